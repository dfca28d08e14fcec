"""Disassemble dump memory with capstone, symbolized and annotated with drgn's line table.

Used by the DAP ``disassemble`` request, by the ``source`` fallback listing, and by the console's
crash-compatible ``dis -l``. The API is stable:

- :class:`Instruction`: one decoded instruction (or an ``invalid`` filler entry for unreadable or
  undecodable bytes), with its ``func+0xoff`` symbol and innermost source file:line.
- :func:`disassemble_at`: exactly ``count`` entries starting ``instruction_offset`` instructions from
  an address, negative offsets included.
- :func:`disassemble_function`: the whole function containing an address (or named), followed by its
  GCC ``.cold`` part.
- :func:`function_range`: the ``[start, end)`` and name of the function containing an address.

Why decoding starts at a function: x86 instructions have variable length, so decoding backwards from
an address is ambiguous. A function's start is a known instruction boundary; decoding forward from it
lands exactly on every instruction of the function, so the instructions *before* an address are the
tail of that forward decode (and, past the function's start, the tail of the previous function's).

Operands: direct call/jump targets get ``<symbol+0xoff>`` after the address, and RIP-relative data
operands get a ``# 0xaddr <symbol+0xoff>`` comment, as objdump and gdb (hence crash) print them.
AT&T syntax is the default because that is what crash, gdb and objdump show kernel developers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import drgn

from vmcore_dap.dump.arch import Syntax, arch_of
from vmcore_dap.dump.memory.reading import PAGE_SIZE, read_prefix, unreadable_reason
from vmcore_dap.dump.memory.symbol_index import find_symbol

if TYPE_CHECKING:
    import capstone

__all__ = [
    "Instruction",
    "Syntax",
    "disassemble_at",
    "disassemble_function",
    "disassemble_range",
    "function_range",
    "symbolize",
]


#: Longest x86 instruction; also the longest undecodable run we look back over without a symbol.
_MAX_INSN = 15
#: How far back to look for a decoding start when no symbol covers an address.
_UNSYMBOLIZED_LOOKBACK = 64
#: Bytes decoded per step while walking forward through memory without a known end.
_FORWARD_CHUNK = 256
#: A function larger than this is decoded only from a nearer point (an oversized "symbol" is usually
#: a data blob or the end of a section).
_MAX_FUNCTION = 1 << 20

_CACHE_KEY = "vmcore_dap.dump.disassembly.disasm"


@dataclass(frozen=True)
class Instruction:
    """One disassembled instruction, or a filler entry for bytes that are not one.

    :param address: where the instruction starts.
    :param size: its length in bytes (1 for a filler byte; a whole hole's page remainder is never
        collapsed into one entry, so addresses stay contiguous).
    :param bytes: the raw bytes (empty for unreadable memory).
    :param mnemonic: e.g. ``mov``; ``(bad)`` for undecodable bytes, ``??`` for unreadable memory.
    :param op_str: operands, with branch targets and RIP-relative data symbolized.
    :param symbol: ``func+0xoff`` of the address, if a symbol covers it.
    :param function: the name of that symbol.
    :param file: innermost source file from the line table (as the debug info names it).
    :param line: its line; ``None`` when the line table has nothing for the address.
    :param column: its column, 0 when unknown.
    :param invalid: a filler entry (unreadable or undecodable), never executed.
    :param reason: why a filler entry is invalid.
    """

    address: int
    size: int
    bytes: bytes
    mnemonic: str
    op_str: str
    symbol: str | None = None
    function: str | None = None
    file: str | None = None
    line: int | None = None
    column: int = 0
    invalid: bool = False
    reason: str | None = None
    #: Targets referenced by operands (branch destination or RIP-relative data), for callers that want
    #: to link them.
    targets: tuple[int, ...] = field(default=(), compare=False)

    @property
    def text(self) -> str:
        """Mnemonic and operands as one string."""
        return f"{self.mnemonic} {self.op_str}".rstrip()

    @property
    def end(self) -> int:
        """The address after the instruction."""
        return self.address + self.size


# -- capstone --------------------------------------------------------------------------------


def _capstone(prog: drgn.Program, syntax: Syntax) -> capstone.Cs:
    cache = _program_cache(prog)
    key = ("cs", syntax)
    md = cache.get(key)
    if md is None:
        md = _make_capstone(prog, syntax)
        cache[key] = md
    return md


def _quick_capstone(prog: drgn.Program) -> capstone.Cs:
    """A second decoder for the program's architecture, without capstone's instruction details: it
    finds where instructions start several times faster, for bytes decoded only to get somewhere.
    Its mnemonics and operands (Intel syntax on x86) are never shown (see :func:`_decode_bytes`)."""
    cache = _program_cache(prog)
    md = cache.get("cs-quick")
    if md is None:
        md = _make_capstone(prog, "intel")
        md.detail = False
        cache["cs-quick"] = md
    return md


def _make_capstone(prog: drgn.Program, syntax: Syntax) -> capstone.Cs:
    if prog.platform is None:
        raise ValueError("cannot disassemble: the program has no platform (no dump or kernel is open)")
    return arch_of(prog).capstone(syntax)


def _is_x86(md: capstone.Cs) -> bool:
    import capstone

    return bool(md.arch == capstone.CS_ARCH_X86)


# gdb and objdump (binutils >= 2.31) print these without the AT&T "q" that capstone adds; match them
# so output reads like crash's ``dis``.
_ATT_MNEMONIC = {
    "callq": "call",
    "retq": "ret",
    "jmpq": "jmp",
    "pushq": "push",
    "popq": "pop",
    "leaveq": "leave",
}


#: The operand size in bytes each AT&T suffix names.
_ATT_SUFFIX_SIZE = {"b": 1, "w": 2, "l": 4, "q": 8}


def _att_mnemonic(insn: Any) -> str:
    """Drop capstone's AT&T size suffix where a register operand already implies the size.

    objdump and gdb write ``mov %rsp,%rbp`` and ``xor %eax,%eax`` but ``movq $0x0,(%rax)``; capstone
    always writes the suffix. Sign/zero extensions (``movzbl``, ``movslq``) keep theirs, as in objdump:
    their capstone name (``movzx``) is not the mnemonic minus one letter. The register must be of the
    suffix's size: in ``shlq %cl,0x48(%r12)`` the count register says nothing of the memory operand's
    size (capstone 6 lists ``%cl`` as an operand, 5.x did not).
    """
    import capstone

    mnemonic: str = _ATT_MNEMONIC.get(insn.mnemonic, insn.mnemonic)
    size = _ATT_SUFFIX_SIZE.get(mnemonic[-1:])
    if size is None:
        return mnemonic
    from capstone import x86

    try:
        has_register = any(op.type == x86.X86_OP_REG and op.size == size for op in insn.operands)
        name = insn.insn_name()
    except capstone.CsError:
        return mnemonic
    if has_register and mnemonic[:-1] == name:
        return str(name)
    return mnemonic


# -- per-program caches ----------------------------------------------------------------------


def _program_cache(prog: drgn.Program) -> dict[Any, Any]:
    """Our slot in ``prog.cache`` (drgn's per-program dict for helpers; Program is not weak-referable)."""
    cache = prog.cache.get(_CACHE_KEY)
    if cache is None:
        cache = {"lines": {}, "symbols": {}}
        prog.cache[_CACHE_KEY] = cache
    return cache  # type: ignore[no-any-return]


#: Functions are 16-byte aligned on x86-64; GCC fills the gap after one with nops or int3.
_FUNCTION_ALIGNMENT = 16


def _padding_owner(prog: drgn.Program, address: int) -> drgn.Symbol | None:
    """The function whose alignment padding holds ``address``, extended to cover it.

    kallsyms (and so crash) knows no symbol sizes: an address in the padding after a function is
    ``function+off``. That is where the return address of a call to a noreturn function such as
    ``panic()`` lands (``sysrq_handle_crash+22`` in a SysRq-c dump), so frames and ``dis`` must
    name it the same way.
    """
    for back in range(1, _FUNCTION_ALIGNMENT):
        try:
            sym = find_symbol(prog, address - back)
        except LookupError:
            continue
        end = sym.address + sym.size
        padded_end = -(-end // _FUNCTION_ALIGNMENT) * _FUNCTION_ALIGNMENT  # next possible function
        if sym.kind != drgn.SymbolKind.FUNC or not end <= address < padded_end:
            return None
        return drgn.Symbol(sym.name, sym.address, padded_end - sym.address, sym.binding, sym.kind)
    return None


def _symbol(prog: drgn.Program, address: int) -> drgn.Symbol | None:
    symbols: dict[int, drgn.Symbol | None] = _program_cache(prog)["symbols"]
    if address in symbols:
        return symbols[address]
    try:
        sym: drgn.Symbol | None = find_symbol(prog, address)
    except LookupError:
        sym = _padding_owner(prog, address)
    if len(symbols) > 100_000:
        symbols.clear()
    symbols[address] = sym
    return sym


def symbolize(prog: drgn.Program, address: int, *, zero_offset: bool = True) -> str | None:
    """Return ``name+0xoff`` for ``address`` (``name`` alone at offset 0 if ``zero_offset`` is false)."""
    sym = _symbol(prog, address)
    if sym is None:
        return None
    offset = address - sym.address
    if offset == 0 and not zero_offset:
        return sym.name
    return f"{sym.name}+{offset:#x}"


def _line_of(prog: drgn.Program, function_start: int, address: int) -> tuple[str | None, int | None, int]:
    """Innermost file, line and column of ``address``, cached per function (a lookup costs ~0.3 ms)."""
    lines: dict[int, dict[int, tuple[str | None, int | None, int]]] = _program_cache(prog)["lines"]
    table = lines.setdefault(function_start, {})
    hit = table.get(address)
    if hit is None:
        try:
            loc = prog.source_location(address)[0]
            hit = (loc.filename, loc.line or None, loc.column or 0)
        except (LookupError, IndexError, ValueError):
            hit = (None, None, 0)
        table[address] = hit
    return hit


# -- functions -------------------------------------------------------------------------------


def function_range(prog: drgn.Program, address: int) -> tuple[int, int, str] | None:
    """Return ``(start, end, name)`` of the function (symbol) containing ``address``, or ``None``."""
    sym = _symbol(prog, address)
    if sym is None or sym.size == 0:
        return None
    return sym.address, sym.address + sym.size, sym.name


def _cold_part(prog: drgn.Program, name: str) -> drgn.Symbol | None:
    """GCC moves unlikely paths of ``name`` into a separate ``name.cold`` symbol."""
    try:
        return prog.symbol(f"{name}.cold")
    except LookupError:
        return None


# -- decoding --------------------------------------------------------------------------------


def _filler(address: int, data: bytes, reason: str, unreadable: bool) -> Instruction:
    """One undecodable unit (``data``: the architecture's instruction unit) or one unreadable byte."""
    return Instruction(
        address=address,
        size=max(len(data), 1),
        bytes=data,
        mnemonic="??" if unreadable else "(bad)",
        op_str="",
        invalid=True,
        reason=reason,
    )


_ATT_IMMEDIATE = re.compile(r"\$(-?)(\d+)\b")
_ATT_DISPLACEMENT = re.compile(r"(?<![\w%$.])(-?)(\d+)(?=\()")


def _att_hex(op_str: str) -> str:
    """Write AT&T immediates and displacements in hex, as objdump and gdb do.

    capstone prints values below 10 in decimal (``$1``, ``8(%rax)``) and some 64-bit immediates as
    unsigned decimal (``$18446744072639750456``); scale factors (``(%rax,%rbx,8)``) stay decimal.
    """
    op_str = _ATT_IMMEDIATE.sub(lambda m: f"${m.group(1)}{int(m.group(2)):#x}", op_str)
    return _ATT_DISPLACEMENT.sub(lambda m: f"{m.group(1)}{int(m.group(2)):#x}", op_str)


def _symbolized_operands(prog: drgn.Program, md: capstone.Cs, insn: Any) -> tuple[str, tuple[int, ...]]:
    """Return capstone's operand string with branch targets and RIP-relative data named."""
    import capstone

    op_str: str = insn.op_str
    if _is_x86(md) and md.syntax == capstone.CS_OPT_SYNTAX_ATT:
        op_str = _att_hex(op_str)
    targets: list[int] = []
    is_branch = any(insn.group(g) for g in (capstone.CS_GRP_JUMP, capstone.CS_GRP_CALL))
    try:
        operands = insn.operands
    except capstone.CsError:
        operands = []
    if _is_x86(md):
        from capstone import x86

        for op in operands:
            if is_branch and op.type == x86.X86_OP_IMM:
                targets.append(op.imm & 0xFFFFFFFFFFFFFFFF)
            elif op.type == x86.X86_OP_MEM and op.mem.base == x86.X86_REG_RIP and op.mem.index == 0:
                targets.append((insn.address + insn.size + op.mem.disp) & 0xFFFFFFFFFFFFFFFF)
        if len(targets) == 1:
            name = symbolize(prog, targets[0], zero_offset=False)
            if name is not None:
                if is_branch and not op_str.startswith("*"):
                    op_str = f"{op_str} <{name}>"
                else:
                    op_str = f"{op_str}  # {targets[0]:#x} <{name}>"
    elif md.arch == capstone.CS_ARCH_AARCH64 and is_branch:
        from capstone import aarch64

        for op in operands:
            if op.type == aarch64.AARCH64_OP_IMM:
                targets.append(op.imm & 0xFFFFFFFFFFFFFFFF)
        if len(targets) == 1:
            name = symbolize(prog, targets[0], zero_offset=False)
            if name is not None:
                op_str = f"{op_str} <{name}>"
    return op_str, tuple(targets)


def _instruction(prog: drgn.Program, md: capstone.Cs, insn: Any) -> Instruction:
    """The :class:`Instruction` of a capstone instruction decoded with details."""
    import capstone

    op_str, targets = _symbolized_operands(prog, md, insn)
    att = _is_x86(md) and md.syntax == capstone.CS_OPT_SYNTAX_ATT
    mnemonic = _att_mnemonic(insn) if att else insn.mnemonic
    return Instruction(insn.address, insn.size, bytes(insn.bytes), mnemonic, op_str, targets=targets)


def _decode_bytes(
    prog: drgn.Program, md: capstone.Cs, address: int, data: bytes, stop: int | None, *, quick: bool = False
) -> list[Instruction]:
    """Decode ``data`` (at ``address``) into instructions; undecodable bytes become fillers of the
    architecture's instruction unit (1 byte on x86-64, 4 on arm64: decoding goes on at the next
    aligned instruction, not inside one).

    An instruction that would run past ``stop`` is not emitted: its bytes become fillers, so decoding a
    region never produces an instruction that overlaps the next known boundary.

    :param quick: decode without capstone's details (:func:`_quick_capstone`): addresses, sizes,
        bytes and fillers are the same, but mnemonics and operands are raw. For bytes decoded only to
        find where the wanted instructions start; :func:`_detailed` finishes the ones that are kept.
    """
    out: list[Instruction] = []
    offset = 0
    unit = arch_of(prog).instruction_unit
    while offset < len(data):
        progressed = False
        if quick:
            for insn_address, size, mnemonic, op_str in _quick_capstone(prog).disasm_lite(
                data[offset:], address + offset
            ):
                if stop is not None and insn_address + size > stop:
                    break
                out.append(Instruction(insn_address, size, data[offset : offset + size], mnemonic, op_str))
                offset += size
                progressed = True
        else:
            for insn in md.disasm(data[offset:], address + offset):
                if stop is not None and insn.address + insn.size > stop:
                    break
                out.append(_instruction(prog, md, insn))
                offset += insn.size
                progressed = True
        if offset >= len(data):
            break
        if not progressed:
            step = min(unit, len(data) - offset)
            out.append(
                _filler(address + offset, data[offset : offset + step], "not a valid instruction", False)
            )
            offset += step
    return out


def _detailed(prog: drgn.Program, md: capstone.Cs, insns: list[Instruction]) -> list[Instruction]:
    """Decode again, with details, the instructions a quick decode found (fillers stay as they are).

    One instruction decodes the same from its own bytes as inside the run it came from, so the result
    is exactly what decoding the whole run with details gives.
    """
    out = []
    for insn in insns:
        if not insn.invalid:
            for full in md.disasm(insn.bytes, insn.address, 1):
                insn = _instruction(prog, md, full)
        out.append(insn)
    return out


def disassemble_range(
    prog: drgn.Program, start: int, end: int, *, syntax: Syntax = "att", annotate: bool = True
) -> list[Instruction]:
    """Decode ``[start, end)`` exactly: instructions, then fillers for undecodable or unreadable bytes.

    ``start`` must be an instruction boundary (a function start, or an address known to begin one).
    """
    out = _decode_range(prog, _capstone(prog, syntax), start, end)
    return _annotate(prog, out) if annotate else out


def _decode_range(
    prog: drgn.Program, md: capstone.Cs, start: int, end: int, *, quick: bool = False
) -> list[Instruction]:
    """:func:`disassemble_range` without annotations; ``quick`` as for :func:`_decode_bytes`."""
    out: list[Instruction] = []
    current = start
    while current < end:
        read = read_prefix(prog, current, end - current, explain=False)
        if read.data:
            out.extend(_decode_bytes(prog, md, current, read.data, end, quick=quick))
            current += len(read.data)
        if read.unreadable:
            # Fill the unreadable page up to its end (or ``end``), one entry per byte, then go on.
            hole_end = min(end, (current // PAGE_SIZE + 1) * PAGE_SIZE)
            reason = unreadable_reason(prog, current)
            out.extend(_filler(a, b"", reason, True) for a in range(current, hole_end))
            current = hole_end
    return out


def _annotate(prog: drgn.Program, insns: Iterable[Instruction]) -> list[Instruction]:
    """Fill ``symbol``, ``function`` and source lines (cached per function)."""
    out = []
    for insn in insns:
        sym = _symbol(prog, insn.address)
        if sym is None:
            out.append(insn)
            continue
        symbol = f"{sym.name}+{insn.address - sym.address:#x}"
        if insn.invalid and not insn.bytes:  # unreadable: no line; an undecodable word keeps its own
            out.append(_replace(insn, symbol=symbol, function=sym.name))
            continue
        # An undecodable word inside a function (on arm64, the next function's ftrace ops pointer after
        # a noreturn call, where the caller's return address points) has its line in the line table,
        # as gdb shows it.
        file, line, column = _line_of(prog, sym.address, insn.address)
        out.append(_replace(insn, symbol=symbol, function=sym.name, file=file, line=line, column=column))
    return out


def _replace(insn: Instruction, **changes: Any) -> Instruction:
    return dataclasses.replace(insn, **changes)


# -- navigation ------------------------------------------------------------------------------


def _boundary_before(prog: drgn.Program, md: capstone.Cs, end: int) -> int:
    """Return an instruction boundary below ``end`` from which forward decoding lands on ``end``.

    The start of the function containing ``end - 1`` when there is one; otherwise the lowest point within
    :data:`_UNSYMBOLIZED_LOOKBACK` bytes whose decoding reaches ``end`` exactly (x86 decoding
    re-synchronizes within a few instructions), or ``end - 1`` as a last resort (a 1-byte filler).
    """
    if end <= 0:
        return 0
    sym = _symbol(prog, end - 1)
    if sym is not None and sym.size and end - sym.address <= _MAX_FUNCTION:
        return int(sym.address)
    if sym is not None and sym.size:  # an oversized symbol: step back from a nearer point
        low = end - _UNSYMBOLIZED_LOOKBACK
    else:
        low = max(0, end - _UNSYMBOLIZED_LOOKBACK)
        # Do not reach into a preceding function from its middle: if a function ends inside the
        # window, start at its end (padding follows it).
        for probe in range(end - 1, low - 1, -1):
            before = _symbol(prog, probe)
            if before is not None and before.size:
                low = int(before.address + before.size)
                if low >= end:
                    return int(before.address)
                break
    read = read_prefix(prog, low, end - low, explain=False)
    if len(read.data) == end - low:
        for start in range(low, end):
            insns = _decode_bytes(prog, md, start, read.data[start - low :], end, quick=True)
            if insns and insns[-1].end == end and not any(i.invalid for i in insns):
                return start
    return end - 1


def _instructions_before(prog: drgn.Program, md: capstone.Cs, base: int, n: int) -> list[Instruction]:
    """Return the ``n`` instructions (or fillers) that end exactly at ``base``, in address order,
    quickly decoded (:func:`_decode_bytes`): most of what is decoded here only leads up to them."""
    collected: list[Instruction] = []
    end = base
    while len(collected) < n and end > 0:
        start = _boundary_before(prog, md, end)
        collected[:0] = _decode_range(prog, md, start, end, quick=True)
        end = start
    while len(collected) < n:  # below address 0: nothing can exist there
        collected.insert(0, _filler(0, b"", "below the start of the address space", True))
    return collected[-n:]


def _instructions_from(prog: drgn.Program, md: capstone.Cs, base: int, n: int) -> list[Instruction]:
    """Return ``n`` instructions (or fillers) starting at ``base``, decoding forward chunk by chunk,
    quickly decoded (:func:`_decode_bytes`): a chunk holds more than ``n`` of them."""
    out: list[Instruction] = []
    current = base
    limit = 1 << 64
    while len(out) < n:
        if current >= limit:
            out.append(_filler(limit - 1, b"", "beyond the end of the address space", True))
            continue
        want = min(limit - current, max(_FORWARD_CHUNK, (n - len(out)) * _MAX_INSN))
        read = read_prefix(prog, current, want, explain=False)
        if read.data:
            insns = _decode_bytes(prog, md, current, read.data, None, quick=True)
            if read.unreadable == 0 and current + want < limit:
                # The chunk was cut by our own size, not by a hole: trailing bytes that did not
                # decode may be the start of an instruction that continues in the next chunk.
                data_end = current + len(read.data)
                while len(insns) > 1 and insns[-1].invalid and insns[-1].address > data_end - _MAX_INSN:
                    insns.pop()
            out.extend(insns)
            current = insns[-1].end
        else:
            hole_end = min(limit, (current // PAGE_SIZE + 1) * PAGE_SIZE, current + (n - len(out)))
            reason = unreadable_reason(prog, current)
            out.extend(_filler(a, b"", reason, True) for a in range(current, hole_end))
            current = hole_end
    return out[:n]


def disassemble_at(
    prog: drgn.Program, address: int, instruction_offset: int, count: int, *, syntax: Syntax = "att"
) -> list[Instruction]:
    """Return exactly ``count`` entries, the first being ``instruction_offset`` instructions from ``address``.

    Negative offsets walk back by decoding forward from the enclosing function's start (see the module
    docstring), so the entry at offset 0 is always the instruction at ``address`` — the same one crash's
    ``dis`` shows. Unreadable or undecodable bytes yield ``invalid`` filler entries of 1 byte each, so the
    list is always complete and contiguous. Only the entries returned are decoded with details and
    symbolized (see :func:`_detailed`).

    :param address: the reference address (for a frame: its pc).
    :param instruction_offset: index of the first entry relative to the instruction at ``address``.
    :param count: how many entries to return (0 gives an empty list).
    """
    if count <= 0:
        return []
    md = _capstone(prog, syntax)
    out: list[Instruction] = []
    if instruction_offset < 0:
        before = _instructions_before(prog, md, address, -instruction_offset)
        out.extend(before[:count])
        remaining = count - len(out)
        if remaining > 0:
            out.extend(_instructions_from(prog, md, address, remaining))
    else:
        forward = _instructions_from(prog, md, address, instruction_offset + count)
        out.extend(forward[instruction_offset:])
    return _annotate(prog, _detailed(prog, md, out[:count]))


def disassemble_function(
    prog: drgn.Program, address_or_symbol: int | str, *, syntax: Syntax = "att"
) -> list[Instruction]:
    """Return every instruction of a function, then those of its ``.cold`` part if it has one.

    :param address_or_symbol: any address inside the function (its main or its ``.cold`` part), or its
        name.
    :raises LookupError: when no symbol covers the address or bears the name.
    """
    if isinstance(address_or_symbol, str):
        sym = prog.symbol(address_or_symbol)
    else:
        found = _symbol(prog, address_or_symbol)
        if found is None:
            raise LookupError(f"no function contains address {address_or_symbol:#x}")
        sym = found
    name = sym.name
    if name.endswith(".cold"):
        try:
            sym = prog.symbol(name[: -len(".cold")])
            name = sym.name
        except LookupError:
            pass
    parts = [sym] if name.endswith(".cold") else [sym, _cold_part(prog, name)]
    out: list[Instruction] = []
    for part in parts:
        if part is not None and part.size:
            out.extend(disassemble_range(prog, part.address, part.address + part.size, syntax=syntax))
    return out
