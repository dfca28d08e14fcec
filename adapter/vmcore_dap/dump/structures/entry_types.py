"""What a list holds: the entry type and the member it is linked through.

First the table of well-known links (:mod:`~vmcore_dap.dump.structures.known_links`), by where the
head lives (``struct task_struct.children``, the global ``modules``). For any other head the first
entry tells: drgn's ``slab_object_info`` gives the slab object the first node lies in, hence the
node's offset inside it and the object's size; the entry type is a struct with a member of the
head's kind at that offset that fits the object. The struct names tried are the slab cache's own
name (``KMEM_CACHE(labbug_req, …)`` names its cache ``labbug_req``) and every struct named in the
debug info of the dump's modules (their ``.debug_str``; drgn has no way to list types): one
candidate is used, several are offered to the person ("View entries as…"), none leaves the nodes raw.
Trees infer the same way from their first node (an ``rb_node`` member at its offset) and maps from
their first entry (a whole object, no member).

A module's debug info names every kernel struct it touches (``struct page``, ``struct kobject``…),
and in a ``kmalloc-96`` object a dozen of them have a ``list_head`` at offset 8. So the structs a
module defines itself (drgn finds them declared in one of its ``.c`` files) come first: when any of
them fits, the kernel's are not offered. The head's own place is never an entry (the entries of
``struct labuaf_dev.reqs`` are not ``struct labuaf_dev`` linked through ``reqs``), and a generic
``kmalloc-N`` object holds a struct larger than the next smaller ``kmalloc`` size (kmalloc picks the
smallest cache that fits, mm/slab_common.c).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import drgn

from vmcore_dap.dump.opening.elf import read_elf_header
from vmcore_dap.dump.structures.chains import Chain
from vmcore_dap.dump.structures.known_links import Link, link_for_member, link_for_symbol

__all__ = [
    "EntryType",
    "Inference",
    "container_of_expression",
    "entry_type_for",
    "infer_entry_types",
    "infer_from_object",
]


@dataclass(frozen=True)
class EntryType:
    """Entries are ``container_of(node, type_name, member)``.

    :param source: ``"table"`` (a well-known link; ``detail`` says the versions it holds for),
        ``"slab"`` (inferred from the first entry's slab object; ``detail`` names its cache) or
        ``"chosen"`` (picked by the person).
    """

    type_name: str
    member: str
    source: str
    detail: str = ""

    @property
    def label(self) -> str:
        """``struct task_struct.tasks``: how a choice is named (a map's entries, whole objects with no
        member: ``struct labuaf_req``)."""
        return f"{self.type_name}.{self.member}" if self.member else self.type_name


@dataclass(frozen=True)
class Inference:
    """The candidates found from the first entry's slab object, and the object that was looked at."""

    candidates: tuple[EntryType, ...]
    cache_name: str | None = None
    offset: int | None = None


def _versions(link: Link) -> str:
    since = f"v{link.since[0]}.{link.since[1]}"
    return f"{since}+" if link.until is None else f"{since}–v{link.until[0]}.{link.until[1]}"


def _from_link(link: Link) -> EntryType:
    return EntryType(link.entry, link.member, "table", _versions(link))


def entry_type_for(prog: drgn.Program, head: drgn.Object, container: str | None) -> EntryType | None:
    """The entry type the table knows for ``head``: by ``container`` (``struct rq.cfs_tasks``), else
    by the global symbol that starts at ``head``'s address (``modules``)."""
    if container is not None:
        link = link_for_member(prog, container)
        if link is not None and link.member:
            return _from_link(link)
    address = head.address_
    if address is None:
        return None
    try:
        symbol = prog.symbol(address)
    except LookupError:
        return None
    if symbol.address != address:
        return None
    link = link_for_symbol(prog, symbol.name)
    return _from_link(link) if link is not None and link.member else None


# -- inference ------------------------------------------------------------------------------------

_SHT_STRTAB_NAME = b".debug_str"


def _section(path: Path, name: bytes) -> bytes:
    """The contents of section ``name`` of the ELF file at ``path`` (empty when absent)."""
    with open(path, "rb") as f:
        header = read_elf_header(f)
        if header is None or not header.shoff:
            return b""
        fmt = header.endian + ("IIQQQQIIQQ" if header.is_64 else "IIIIIIIIII")
        f.seek(header.shoff)
        table = f.read(header.shentsize * header.shnum)
        f.seek(62 if header.is_64 else 50)
        (shstrndx,) = struct.unpack(header.endian + "H", f.read(2))
        sections = [struct.unpack_from(fmt, table, i * header.shentsize) for i in range(header.shnum)]
        if shstrndx >= len(sections):
            return b""
        f.seek(sections[shstrndx][4])
        names = f.read(sections[shstrndx][5])
        for fields in sections:
            end = names.find(b"\0", fields[0])
            if names[fields[0] : end] == name:
                f.seek(fields[4])
                return f.read(fields[5])
    return b""


_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]{2,63}")


#: DWARF 5 keeps a compile unit's file and directory names in ``.debug_line_str``.
_LINE_STRINGS_NAME = b".debug_line_str"
_SOURCE_FILE = re.compile(rb"[^\0]*\.c")


@dataclass(frozen=True)
class _ModuleNames:
    """What the dump's modules' debug info names: every struct, and the modules' own ``.c`` files
    (their compile units; not the generated ``.mod.c``)."""

    structs: list[str]
    sources: list[str]


def _module_struct_names(prog: drgn.Program) -> list[str]:
    """Struct names of the dump's modules with debug info (their ``.debug_str`` strings that name a
    struct), computed once per program."""
    return _module_names(prog).structs


def _module_names(prog: drgn.Program) -> _ModuleNames:
    cached = prog.cache.get("vmcore_dap.module_names")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    names: list[str] = []
    sources: set[str] = set()
    seen: set[bytes] = set()
    for module in prog.modules():
        if not isinstance(module, drgn.RelocatableModule):  # the kernel's loadable modules
            continue
        path = module.debug_file_path
        if not path:
            continue
        try:
            strings = _section(Path(path), _SHT_STRTAB_NAME)
            line_strings = _section(Path(path), _LINE_STRINGS_NAME)
        except OSError:
            continue
        for text in (strings, line_strings):
            sources.update(
                word.decode(errors="replace")
                for word in text.split(b"\0")
                if _SOURCE_FILE.fullmatch(word) and not word.endswith(b".mod.c")
            )
        for word in strings.split(b"\0"):
            if word in seen or not _IDENTIFIER.fullmatch(word):
                continue
            seen.add(word)
            try:
                type_ = prog.type("struct " + word.decode())
            except (LookupError, SyntaxError):  # not a struct; a C keyword
                continue
            if type_.is_complete():
                names.append(type_.type_name())
    found = _ModuleNames(names, sorted(sources))
    prog.cache["vmcore_dap.module_names"] = found
    return found


def _defined_by_a_module(prog: drgn.Program, type_name: str) -> bool:
    """Whether a module declares ``type_name`` in one of its own ``.c`` files (drgn's lookup by the
    file of the definition), rather than using a kernel struct."""
    for source in _module_names(prog).sources:
        try:
            prog.type(type_name, source)
        except (LookupError, ValueError):
            continue
        return True
    return False


def _smaller_kmalloc(object_size: int) -> int:
    """The ``kmalloc-N`` size below ``object_size``: a struct in a ``kmalloc-96`` object is larger
    than 64 bytes (the sizes run 8, 16, 32, 64, 96, 128, 192, 256, then double)."""
    return {96: 64, 192: 128}.get(object_size, object_size // 2)


_NODE_TYPES = {
    "rbtree": "struct rb_node",
    "hlist": "struct hlist_node",
    "hlist_nulls": "struct hlist_nulls_node",
    "llist": "struct llist_node",
}


def _entry_members(type_: drgn.Type, offset: int, kind: str, prefix: str = "") -> list[str]:
    """Members of ``type_`` at ``offset`` whose type is the node type of a ``kind`` list."""
    wanted = _NODE_TYPES.get(kind, "struct list_head")
    found = []
    for member in type_.members or ():
        start = member.bit_offset // 8
        mtype = member.type.unaliased()
        if mtype.kind not in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION) or not mtype.is_complete():
            continue
        if not start <= offset < start + (mtype.size or 0):
            continue
        path = f"{prefix}{member.name}" if member.name else prefix.rstrip(".")
        if start == offset and mtype.type_name() == wanted:
            found.append(path)
        else:
            found += _entry_members(mtype, offset - start, kind, f"{path}." if path else "")
    return found


def infer_entry_types(prog: drgn.Program, chain: Chain, exclude: str | None = None) -> Inference:
    """Candidate entry types of ``chain`` from its first node's slab object (see the module doc).

    :param exclude: the head's own place (``struct labuaf_dev.reqs``), never an entry.
    """
    if not chain.nodes:
        return Inference(())
    return infer_from_object(prog, chain.nodes[0], chain.kind, exclude)


def infer_from_object(prog: drgn.Program, first: int, kind: str, exclude: str | None = None) -> Inference:
    """Candidate entry types from the slab object that holds ``first``: a list's or tree's first
    node (``kind``: a chain kind, or ``rbtree``), or a map's first entry (``kind`` ``map``: a whole
    object, member ``""``)."""
    from drgn.helpers.linux.slab import slab_object_info

    try:
        info = slab_object_info(prog, first)
    except (drgn.FaultError, LookupError, ValueError, NotImplementedError):
        info = None
    if info is None or not info.address or not info.slab_cache:
        return Inference(())
    offset = first - info.address
    try:
        cache_name = info.slab_cache.name.string_().decode(errors="replace")
        object_size = info.slab_cache.object_size.value_()
    except (drgn.FaultError, LookupError):
        return Inference((), None, offset)
    generic = cache_name.startswith(("kmalloc-", "kmalloc-rcl-", "kmalloc-cg-", "dma-kmalloc-"))
    names = list(_module_struct_names(prog))
    named_after_cache: set[str] = set()
    if not generic:
        for name in (cache_name, re.sub(r"_(cache|cachep)$", "", cache_name)):
            try:
                named_after_cache.add(prog.type("struct " + name).type_name())
            except (LookupError, SyntaxError):
                pass
    names = sorted(named_after_cache) + names
    candidates: list[EntryType] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        type_ = prog.type(name)
        size = type_.size or 0
        # A cache named after its struct may be sized at run time (task_struct ends in the FPU
        # state, sized for the CPU); any other struct must fit the object.
        fits = size <= object_size and not (generic and size <= _smaller_kmalloc(object_size))
        if name not in named_after_cache and not fits:
            continue
        if kind == "map":
            members = [""] if offset == 0 else []
        else:
            members = _entry_members(type_, offset, kind)
        candidates += [EntryType(name, m, "slab", cache_name) for m in members if f"{name}.{m}" != exclude]
    return Inference(_likeliest(prog, candidates, named_after_cache), cache_name, offset)


def _likeliest(
    prog: drgn.Program, candidates: list[EntryType], named_after_cache: set[str]
) -> tuple[EntryType, ...]:
    """The candidates worth offering: those named after the cache, else those a module defines
    itself when there are any, else all."""
    by_cache = [c for c in candidates if c.type_name in named_after_cache]
    if by_cache:
        return tuple(by_cache)
    own = [c for c in candidates if _defined_by_a_module(prog, c.type_name)]
    return tuple(own or candidates)


def container_of_expression(prog: drgn.Program, text: str, evaluate: object) -> str | None:
    """``struct task_struct.tasks`` for the C expression ``init_task.tasks`` or ``p->tasks``: the
    type of what the last member is taken from, and that member; ``None`` for anything else.

    :param evaluate: ``evaluate(text) -> drgn.Object`` for the left side (a frame's scope).
    """
    m = re.fullmatch(r"(?s)(.+?)\s*(\.|->)\s*([A-Za-z_]\w*)\s*", text)
    if m is None:
        return None
    try:
        left = evaluate(m[1])  # type: ignore[operator]
    except Exception:  # noqa: BLE001 - no container is an answer, not an error
        return None
    type_ = left.type_.unaliased()
    if m[2] == "->":
        if type_.kind != drgn.TypeKind.POINTER:
            return None
        type_ = type_.type.unaliased()
    if type_.kind not in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION):
        return None
    return f"{type_.type_name()}.{m[3]}"
