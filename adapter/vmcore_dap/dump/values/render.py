"""Show drgn Objects the way a C debugger does: one line per value, children on demand.

A :class:`Variable` is a named drgn ``Object`` plus the C expression that names it (``evaluateName``)
and the prefix its members are reached through. :func:`render` turns one into a :class:`Rendered`
line (value text, C type, how many children, memory reference) and :func:`children` lists the
members, elements or pointee, computing nothing until asked. Memory that the dump lacks never
fails a whole list: the affected value reads ``<error: cannot read 0x…: excluded from the dump>``.

Conventions, as kernel developers read them:
- pointers always in hex, followed by ``<symbol+offset>`` when they point into a known symbol;
  ``char *`` also shows the string; pointers to structs expand straight to the pointee's members;
- ``char`` arrays show as escaped strings (control characters and invalid UTF-8 as ``\\xNN``),
  bounded in length; other arrays expand by index with paging;
- enums by enumerator name, bit-fields with their width in the type (``unsigned int : 1``);
- ``type`` is drgn's ``type_name()``, i.e. the kernel's own spelling (``struct task_struct *``).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import drgn

from vmcore_dap.dump.memory.page_filter import explain_unreadable
from vmcore_dap.dump.memory.reading import PAGE_SIZE
from vmcore_dap.dump.memory.symbol_index import symbol_or_none

__all__ = [
    "Variable",
    "Rendered",
    "absent_text",
    "render",
    "children",
    "render_children",
    "scalar_page",
    "ScalarPage",
    "fault_text",
    "escape_bytes",
    "full_string",
    "MAX_STRING",
]

#: Longest string shown inline, in bytes; longer ones end with "...".
MAX_STRING = 256
#: Arrays of at most this many scalars get an inline preview ``{1, 4, 9, 16}``.
_PREVIEW_ELEMENTS = 8

_STRUCTLIKE = (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION, drgn.TypeKind.CLASS)
_CHAR_PRIMITIVES = (
    drgn.PrimitiveType.C_CHAR,
    drgn.PrimitiveType.C_SIGNED_CHAR,
    drgn.PrimitiveType.C_UNSIGNED_CHAR,
)
_POSTFIX_EXPR = re.compile(r"^[A-Za-z_]\w*(?:(?:\.|->)[A-Za-z_]\w*|\[\d+\])*$")


@dataclass(frozen=True)
class Variable:
    """A value to show: its display name, the object, and how to name it in C.

    :param name: what the client shows (``dev``, ``[3]``, ``<anonymous union>``).
    :param obj: the drgn object.
    :param expr: a C expression for ``evaluate`` that yields ``obj``, or ``None`` if there is none
        (registers, anonymous members).
    :param member_prefix: text to put before a member name to reach this object's members
        (``dev->``, ``task->se.``); computed from ``expr`` when ``None``.
    :param key: what makes this child unique among its siblings (defaults to ``name``).
    :param always_hex: show integers in hex whatever the client asks (registers).
    :param container: ``struct task_struct.tasks`` when this is a member (or an element of an array
        member) of a struct: what a ``list_head`` links depends on where it lives.
    """

    name: str
    obj: drgn.Object
    expr: str | None = None
    member_prefix: str | None = None
    key: str | None = None
    always_hex: bool = False
    container: str | None = None

    @property
    def stable_key(self) -> str:
        """The key of this variable among its siblings, for stable handles."""
        return self.key if self.key is not None else self.name


@dataclass(frozen=True)
class Rendered:
    """One displayed line: value text, type, number of children and memory reference."""

    value: str
    type: str
    named: int = 0
    indexed: int = 0
    memory_reference: str | None = None

    @property
    def expandable(self) -> bool:
        """Whether the client should be given a variables reference."""
        return bool(self.named or self.indexed)


# -- errors ----------------------------------------------------------------------------------------


def fault_text(prog: drgn.Program, address: int) -> str:
    """Say in one bracketed phrase why ``address`` cannot be read from the dump.

    The reason comes from :func:`~vmcore_dap.dump.memory.page_filter.explain_unreadable`, the one place
    that tells "excluded by makedumpfile -d 31 (a user page)" from "not mapped" or "truncated".
    """
    try:
        why = explain_unreadable(prog, address)
    except Exception:  # noqa: BLE001 - a diagnosis must never hide the value's fault itself
        why = "not present in the dump"
    return f"<error: cannot read {address:#x}: {why}>"


def _fault(obj: drgn.Object, exc: drgn.FaultError) -> str:
    return fault_text(obj.prog_, exc.address)


# -- small formatting helpers -----------------------------------------------------------------------

#: Printable ASCII that :func:`escape_bytes` keeps as it is.
_PLAIN_ASCII = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", '"': '\\"', "\\": "\\\\", "\0": "\\0"}


def escape_bytes(data: bytes) -> str:
    """Render bytes as the inside of a C string literal, keeping valid UTF-8 readable.

    Control characters become ``\\n``, ``\\t`` or ``\\xNN``; bytes that are not valid UTF-8 become
    ``\\xNN``, so the output is unambiguous and safe to put in a JSON string.
    """
    if not data.translate(None, _PLAIN_ASCII):  # most names: nothing to escape (checked in C)
        return data.decode("ascii")
    out: list[str] = []
    for ch in data.decode("utf-8", errors="surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _format_int(value: int, size: int, hex_: bool) -> str:
    if not hex_:
        return str(value)
    if value < 0:
        value &= (1 << (8 * size)) - 1
    return f"{value:#x}"


def _symbolize(prog: drgn.Program, address: int) -> str:
    if address == 0:
        return ""
    symbol = symbol_or_none(prog, address)
    if symbol is None:
        return ""
    offset = address - symbol.address
    return f" <{symbol.name}+{offset:#x}>" if offset else f" <{symbol.name}>"


def _is_char(type_: drgn.Type) -> bool:
    """A plain ``char``/``signed char``/``unsigned char``, not a typedef such as ``u8``."""
    return type_.kind == drgn.TypeKind.INT and type_.primitive in _CHAR_PRIMITIVES


def _read_c_string(prog: drgn.Program, address: int, limit: int) -> tuple[bytes, bool]:
    """Read up to ``limit`` bytes at ``address`` stopping at NUL; page by page.

    :returns: the bytes before the NUL, and whether the string was cut at ``limit``.
    :raises drgn.FaultError: if the first byte cannot be read (a later page failing just ends it).
    """
    data = b""
    page = PAGE_SIZE
    while len(data) < limit:
        chunk = min(limit - len(data), page - (address + len(data)) % page)
        try:
            block = prog.read(address + len(data), chunk)
        except drgn.FaultError:
            if not data:
                raise
            return data, True
        nul = block.find(b"\0")
        if nul >= 0:
            return data + block[:nul], False
        data += block
    return data, True


def _quoted(data: bytes, cut: bool) -> str:
    return f'"{escape_bytes(data)}"' + ("..." if cut else "")


def _type_text(obj: drgn.Object) -> str:
    text = obj.type_.type_name()
    if obj.bit_field_size_:
        text += f" : {obj.bit_field_size_}"
    return text


def _memory_reference(obj: drgn.Object) -> str | None:
    address = obj.address_
    return f"{address:#x}" if address is not None else None


def _probe(obj: drgn.Object) -> str | None:
    """Return an error text if the first byte of an aggregate in memory cannot be read."""
    address = obj.address_
    if address is None:
        return None
    try:
        obj.prog_.read(address, 1)
    except drgn.FaultError as exc:
        return _fault(obj, exc)
    return None


# -- rendering ------------------------------------------------------------------------------------


#: What an absent value is said to be, by drgn's reason: "optimized out" only when the debug info
#: says so; a value whose location could not be computed (registers the unwinder lost:
#: ``scopes.frame_value``; a DWARF operation drgn does not implement) is unknown, not optimized out.
_ABSENT_TEXT = {
    drgn.AbsenceReason.OPTIMIZED_OUT: "<optimized out>",
    drgn.AbsenceReason.NOT_IMPLEMENTED: "<unknown: drgn cannot evaluate its DWARF location>",
    drgn.AbsenceReason.OTHER: "<unknown>",
}


def absent_text(obj: drgn.Object) -> str:
    """How to show an absent object (``<optimized out>``, ``<unknown: …>``)."""
    return _ABSENT_TEXT.get(obj.absence_reason_, "<optimized out>")


def render(obj: drgn.Object, *, hex_: bool = False) -> Rendered:
    """Compute the one-line display of ``obj``; never raises for unreadable or absent values."""
    type_text = _type_text(obj)
    if obj.absent_:
        return Rendered(absent_text(obj), type_text)
    try:
        return _render(obj, type_text, hex_)
    except drgn.FaultError as exc:
        return Rendered(_fault(obj, exc), type_text, memory_reference=_memory_reference(obj))
    except (drgn.ObjectAbsentError, drgn.OutOfBoundsError, TypeError, ValueError, LookupError) as exc:
        # One odd value (bad DWARF, an impossible bit-field) must not fail the whole list.
        return Rendered(f"<error: {exc}>", type_text, memory_reference=_memory_reference(obj))


def _render(obj: drgn.Object, type_text: str, hex_: bool) -> Rendered:  # noqa: C901 - one case per kind
    type_ = obj.type_.unaliased()
    kind = type_.kind
    prog = obj.prog_
    memref = _memory_reference(obj)
    if kind in (drgn.TypeKind.INT, drgn.TypeKind.BOOL):
        value = obj.value_()
        if kind == drgn.TypeKind.BOOL:
            return Rendered("true" if value else "false", type_text, memory_reference=memref)
        text = _format_int(value, drgn.sizeof(obj.type_), hex_)
        if _is_char(type_):
            text += f" '{escape_bytes(bytes([value & 0xFF]))}'"
        return Rendered(text, type_text, memory_reference=memref)
    if kind == drgn.TypeKind.ENUM:
        value = obj.value_()
        for enumerator in type_.enumerators or ():
            if enumerator.value == value:
                return Rendered(enumerator.name, type_text, memory_reference=memref)
        return Rendered(_format_int(value, drgn.sizeof(obj.type_), hex_), type_text, memory_reference=memref)
    if kind == drgn.TypeKind.FLOAT:
        return Rendered(repr(obj.value_()), type_text, memory_reference=memref)
    if kind == drgn.TypeKind.POINTER:
        return _render_pointer(obj, type_, type_text)
    if kind == drgn.TypeKind.ARRAY:
        return _render_array(obj, type_, type_text, hex_)
    if kind in _STRUCTLIKE:
        if not type_.is_complete():
            return Rendered("<incomplete type>", type_text, memory_reference=memref)
        error = _probe(obj)
        if error is not None:
            return Rendered(error, type_text, memory_reference=memref)
        return Rendered("{...}", type_text, named=len(type_.members or ()), memory_reference=memref)
    if kind == drgn.TypeKind.FUNCTION:
        address = obj.address_
        if address is None:
            return Rendered("<function>", type_text)
        return Rendered(f"{address:#x}{_symbolize(prog, address)}", type_text, memory_reference=memref)
    if kind == drgn.TypeKind.VOID:
        return Rendered("void", type_text)
    return Rendered(f"<{kind.name.lower()}>", type_text, memory_reference=memref)


def _render_pointer(obj: drgn.Object, type_: drgn.Type, type_text: str) -> Rendered:
    prog = obj.prog_
    address = obj.value_()
    text = f"{address:#x}"
    target = type_.type
    target_kind = target.unaliased_kind()
    if address == 0:
        return Rendered(text, type_text)
    memref = f"{address:#x}"
    if _is_char(target.unaliased()):
        try:
            data, cut = _read_c_string(prog, address, MAX_STRING)
            text += " " + _quoted(data, cut)
        except drgn.FaultError as exc:
            return Rendered(f"{text} {fault_text(prog, exc.address)}", type_text, memory_reference=memref)
        return Rendered(text, type_text, named=1, memory_reference=memref)
    text += _symbolize(prog, address)
    if target_kind in (drgn.TypeKind.VOID, drgn.TypeKind.FUNCTION) or not target.is_complete():
        return Rendered(text, type_text, memory_reference=memref)
    try:
        prog.read(address, 1)
    except drgn.FaultError as exc:
        return Rendered(f"{text} {fault_text(prog, exc.address)}", type_text, memory_reference=memref)
    if target_kind in _STRUCTLIKE:
        return Rendered(text, type_text, named=len(target.unaliased().members or ()), memory_reference=memref)
    return Rendered(text, type_text, named=1, memory_reference=memref)


def _render_array(obj: drgn.Object, type_: drgn.Type, type_text: str, hex_: bool) -> Rendered:
    memref = _memory_reference(obj)
    length = type_.length or 0
    element = type_.type.unaliased()
    if length == 0:
        return Rendered("[]", type_text, memory_reference=memref)
    if _is_char(_strip_qualifiers(type_.type)):  # typedefs such as u8 are bytes, not text
        size = min(length, MAX_STRING)
        raw = _array_bytes(obj, size)
        nul = raw.find(b"\0")
        data, cut = (raw[:nul], False) if nul >= 0 else (raw, length > MAX_STRING)
        return Rendered(_quoted(data, cut), type_text, indexed=length, memory_reference=memref)
    error = _probe(obj)
    if error is not None:
        return Rendered(error, type_text, memory_reference=memref)
    if length <= _PREVIEW_ELEMENTS and element.kind in (drgn.TypeKind.INT, drgn.TypeKind.ENUM):
        items = [render(obj[i], hex_=hex_).value for i in range(length)]
        return Rendered("{" + ", ".join(items) + "}", type_text, indexed=length, memory_reference=memref)
    return Rendered(f"[{length}]", type_text, indexed=length, memory_reference=memref)


def _strip_qualifiers(type_: drgn.Type) -> drgn.Type:
    return type_.unqualified() if type_.qualifiers else type_


def _array_bytes(obj: drgn.Object, size: int) -> bytes:
    if obj.address_ is not None:
        return obj.prog_.read(obj.address_, size)
    return obj.to_bytes_()[:size]


# -- children -------------------------------------------------------------------------------------


def _wrap(expr: str) -> str:
    return expr if _POSTFIX_EXPR.match(expr) else f"({expr})"


def _prefix(var: Variable, arrow: bool) -> str | None:
    if var.member_prefix is not None and not arrow:
        return var.member_prefix
    if var.expr is None:
        return None
    return _wrap(var.expr) + ("->" if arrow else ".")


def children(
    var: Variable, *, start: int = 0, count: int | None = None, filter_: str | None = None
) -> list[Variable]:
    """List the children of ``var``: members, the pointee's members or ``*p``, or array elements.

    :param start: first child (for paging arrays).
    :param count: how many; ``None`` for all the rest.
    :param filter_: ``"indexed"`` or ``"named"`` to ask for one kind only (DAP's ``filter``).
    """
    obj = var.obj
    if obj.absent_:
        return []
    type_ = obj.type_.unaliased()
    kind = type_.kind
    if kind == drgn.TypeKind.ARRAY:
        if filter_ == "named":
            return []
        return _elements(var, type_, start, count)
    if filter_ == "indexed":
        return []
    if kind in _STRUCTLIKE:
        result = _members(obj, type_, _prefix(var, arrow=False))
    elif kind == drgn.TypeKind.POINTER:
        result = _pointee(var, type_)
    else:
        result = []
    end = None if count is None else start + count
    return result[start:end]


def _members(obj: drgn.Object, type_: drgn.Type, prefix: str | None) -> list[Variable]:
    result: list[Variable] = []
    for index, member in enumerate(type_.members or ()):
        if member.name is None:
            child = _anonymous(obj, member)
            kind = member.type.unaliased_kind().name.lower()
            result.append(
                Variable(
                    f"<anonymous {kind}>",
                    child,
                    None,
                    member_prefix=prefix,
                    key=f"<anonymous {index}>",
                )
            )
            continue
        child = obj.member_(member.name)
        expr = f"{prefix}{member.name}" if prefix is not None else None
        result.append(Variable(member.name, child, expr, container=f"{type_.type_name()}.{member.name}"))
    return result


def _anonymous(obj: drgn.Object, member: drgn.TypeMember) -> drgn.Object:
    """The object of an unnamed struct/union member, at its offset inside ``obj``."""
    if obj.address_ is not None:
        return drgn.Object(obj.prog_, member.type, address=obj.address_ + member.bit_offset // 8)
    data = obj.to_bytes_()
    offset = member.bit_offset // 8
    return drgn.Object.from_bytes_(obj.prog_, member.type, data[offset : offset + member.type.size])


def _pointee(var: Variable, type_: drgn.Type) -> list[Variable]:
    obj = var.obj
    target = type_.type
    target_kind = target.unaliased_kind()
    if obj.value_() == 0 or target_kind in (drgn.TypeKind.VOID, drgn.TypeKind.FUNCTION):
        return []
    if not target.is_complete():
        return []
    pointee = obj[0]
    if target_kind in _STRUCTLIKE:
        return _members(pointee, target.unaliased(), _prefix(var, arrow=True))
    expr = f"*{_wrap(var.expr)}" if var.expr is not None else None
    return [Variable(f"*{var.name}", pointee, expr)]


def _elements(var: Variable, type_: drgn.Type, start: int, count: int | None) -> list[Variable]:
    length = type_.length or 0
    start = max(0, min(start, length))
    end = length if count is None or count <= 0 else min(length, start + count)
    base = _wrap(var.expr) if var.expr is not None else None
    return [
        Variable(f"[{i}]", var.obj[i], f"{base}[{i}]" if base is not None else None, container=var.container)
        for i in range(start, end)
    ]


# -- children with their renderings -----------------------------------------------------------------

#: Element kinds an array page formats straight from its bytes.
_SCALAR_KINDS = (drgn.TypeKind.INT, drgn.TypeKind.BOOL, drgn.TypeKind.ENUM, drgn.TypeKind.FLOAT)
_FLOAT_CODES = {4: "f", 8: "d"}


@dataclass(frozen=True)
class ScalarPage:
    """Elements ``first``, ``first + 1``, … of an array of scalars in memory, as columns.

    What a client shows of each element (name, value, C type, ``evaluateName``, memory reference)
    comes from one read of the page and a few list comprehensions: no drgn ``Object``,
    :class:`Variable` or :class:`Rendered` per element, which for a 4,096-element page were most of
    the time the ``variables`` request took. The texts are exactly those :func:`children` and
    :func:`render` give element by element.

    :param first: index of the first element.
    :param values: the value text of each element (as :attr:`Rendered.value`).
    :param type: the C type of every element (as :attr:`Rendered.type`).
    :param address: where element ``first`` is.
    :param size: bytes per element.
    :param expr_base: the array's C expression, ready to be indexed (``dev->buf``, ``(*p)``), or
        ``None`` when the array has no expression (its elements have no ``evaluateName`` then).
    """

    first: int
    values: list[str]
    type: str
    address: int
    size: int
    expr_base: str | None

    def names(self) -> list[str]:
        """``[i]`` for each element, as :class:`Variable` names them."""
        return [f"[{i}]" for i in range(self.first, self.first + len(self.values))]

    def evaluate_names(self) -> list[str] | None:
        """``base[i]`` for each element, or ``None`` when the array has no C expression."""
        base = self.expr_base
        if base is None:
            return None
        return [f"{base}[{i}]" for i in range(self.first, self.first + len(self.values))]

    def addresses(self) -> range:
        """The address of each element."""
        return range(self.address, self.address + len(self.values) * self.size, self.size)

    def memory_references(self) -> list[str]:
        """``0x…`` of each element's address, as :attr:`Rendered.memory_reference`."""
        return list(map(hex, self.addresses()))


def _page_bounds(length: int, start: int, count: int | None) -> tuple[int, int]:
    """``[first, end)`` of a page of an array, clamped exactly as :func:`children` clamps it."""
    first = max(0, min(start, length))
    end = length if count is None or count <= 0 else min(length, first + count)
    return first, end


def scalar_page(
    var: Variable,
    *,
    start: int = 0,
    count: int | None = None,
    filter_: str | None = None,
    hex_: bool = False,
) -> ScalarPage | None:
    """The page of :func:`children` of ``var`` as a :class:`ScalarPage`, when it can be one.

    ``None`` when ``var`` is not an array in memory of integers, enums, booleans or floats, when the
    page is empty, or when the page cannot be read in one piece (element by element, each unreadable
    element then says why). Arguments as for :func:`render_children`.
    """
    obj = var.obj
    if filter_ == "named" or obj.absent_:
        return None
    type_ = obj.type_.unaliased()
    if type_.kind != drgn.TypeKind.ARRAY:
        return None
    first, end = _page_bounds(type_.length or 0, start, count)
    if end <= first:
        return None
    base = _wrap(var.expr) if var.expr is not None else None
    return _scalar_page(obj, first, end - first, hex_, base)


def render_children(
    var: Variable,
    *,
    start: int = 0,
    count: int | None = None,
    filter_: str | None = None,
    hex_: bool = False,
    kids: list[Variable] | None = None,
) -> list[tuple[Variable, Rendered]]:
    """:func:`children` of ``var``, each with its :func:`render` (``hex_`` unless it is always hex).

    :param kids: those children, when the caller has listed them already (the Variables handler
        notes their pointers before they are rendered).

    A page of an array of integers, enums, booleans or floats in memory is read once and formatted
    from its bytes (:func:`scalar_page`): rendering element by element costs a drgn read and a type
    lookup each, about 5 µs. The text is the same either way.
    """
    if kids is None:
        kids = children(var, start=start, count=count, filter_=filter_)
    if kids and var.obj.type_.unaliased_kind() == drgn.TypeKind.ARRAY:
        page = scalar_page(var, start=start, count=count, filter_=filter_, hex_=hex_)
        if page is not None:
            rows = zip(kids, page.values, page.memory_references(), strict=True)
            return [(kid, Rendered(text, page.type, memory_reference=ref)) for kid, text, ref in rows]
    return [(kid, render(kid.obj, hex_=hex_ or kid.always_hex)) for kid in kids]


def _scalar_page(
    array: drgn.Object, first: int, n: int, hex_: bool, expr_base: str | None
) -> ScalarPage | None:
    """Elements ``first`` … ``first + n - 1`` of ``array`` from one read; ``None`` to render one by one."""
    element = array.type_.unaliased().type
    plain = element.unaliased()
    kind = plain.kind
    address = array.address_
    if kind not in _SCALAR_KINDS or address is None or array.absent_ or not plain.is_complete():
        return None
    size = drgn.sizeof(element)
    platform = array.prog_.platform
    little = platform is None or bool(platform.flags & drgn.PlatformFlags.IS_LITTLE_ENDIAN)
    order = "<" if little else ">"
    if kind == drgn.TypeKind.FLOAT:
        if size not in _FLOAT_CODES:
            return None
        code = order + _FLOAT_CODES[size]
    elif size not in (1, 2, 4, 8):
        return None
    else:
        signed = bool(plain.is_signed) if kind == drgn.TypeKind.INT else False
        if kind == drgn.TypeKind.ENUM:
            signed = bool(plain.type is not None and plain.type.is_signed)
        code = order + {1: "b", 2: "h", 4: "i", 8: "q"}[size]
        if not signed:
            code = code.upper()
    base = address + first * size
    try:
        data = array.prog_.read(base, n * size)
    except drgn.FaultError:
        return None  # element by element, so each unreadable one says why
    type_text = _type_text(array[first])  # the element's own type, qualifiers as drgn gives them
    numbers = [v for (v,) in struct.iter_unpack(code, data)]
    texts: list[str]
    if kind == drgn.TypeKind.FLOAT:
        texts = list(map(repr, numbers))
    elif kind == drgn.TypeKind.BOOL:
        texts = ["true" if v else "false" for v in numbers]
    elif kind == drgn.TypeKind.ENUM:
        names: dict[int, str] = {}
        for enumerator in plain.enumerators or ():
            names.setdefault(enumerator.value, enumerator.name)
        texts = [names.get(v) or _format_int(v, size, hex_) for v in numbers]
    elif hex_:
        texts = [_format_int(v, size, True) for v in numbers]
    else:
        texts = list(map(str, numbers))
    if kind == drgn.TypeKind.INT and _is_char(plain):
        texts = [f"{t} '{escape_bytes(bytes([v & 0xFF]))}'" for t, v in zip(texts, numbers, strict=True)]
    return ScalarPage(first, texts, type_text, base, size, expr_base)


def full_string(obj: drgn.Object, rendered: Rendered, limit: int) -> str:
    """The value of a ``char`` array or ``char *`` with its string read up to ``limit`` bytes instead of
    :data:`MAX_STRING` (for copying it out); ``rendered.value`` when that was not cut or ``obj`` is
    not a string.

    :param rendered: :func:`render` of ``obj``.
    """
    if not rendered.value.endswith("..."):
        return rendered.value
    try:
        if obj.type_.unaliased_kind() == drgn.TypeKind.POINTER:
            data = obj.prog_.read_c_string(obj.value_(), max_size=limit)
        else:
            data = obj.string_()[:limit]
    except (drgn.FaultError, TypeError, ValueError):
        return rendered.value
    return f'"{escape_bytes(data)}"'
