"""``disassemble``: instructions around an address for VS Code's Disassembly view.

Always exactly ``instructionCount`` entries (unreadable bytes come back as ``presentationHint:
"invalid"`` fillers), re-aligned so that the instruction at the reference address is exactly the one
at offset 0. ``symbol`` and ``location``/``line`` are set on the first entry and wherever they change.
Instruction breakpoints make no sense in a dump: ``supportsInstructionBreakpoints`` stays unset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import drgn

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.errors import InvalidArguments
from vmcore_dap.handlers.dump_state import current_dump
from vmcore_dap.handlers.source import resolve_source_path, source_reference_for

if TYPE_CHECKING:  # the disassembler loads on the first disassemble, not on the way to the first stop
    from vmcore_dap.dump.disassembly.disasm import Instruction

__all__ = ["parse_memory_reference"]

#: More than VS Code ever asks for at once (it pages by ~50); bounds a hostile request.
_MAX_COUNT = 100_000


def parse_memory_reference(prog: drgn.Program | None, command: str, text: str) -> int:
    """Turn a ``memoryReference`` (``0x…``, decimal, or a symbol name) into an address."""
    value = text.strip()
    try:
        address = int(value, 0)
    except ValueError:
        if prog is None:
            raise InvalidArguments(f"{command}: memoryReference '{text}' is not an address") from None
        try:
            address = int(prog.symbol(value).address)
        except LookupError:
            raise InvalidArguments(
                f"{command}: memoryReference '{text}' is neither an address (0x…) nor a symbol"
            ) from None
    if not 0 <= address < 1 << 64:
        raise InvalidArguments(f"{command}: memoryReference '{text}' is outside the 64-bit address space")
    return address


def _prog(session: Session) -> drgn.Program:
    return current_dump(session).prog


def _entry(
    session: Session, insn: Instruction, previous: Instruction | None, resolve: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "address": f"{insn.address:#018x}",
        "instructionBytes": insn.bytes.hex(" "),
        "instruction": insn.text if not insn.invalid else f"{insn.mnemonic}  ; {insn.reason}",
    }
    if insn.invalid:
        entry["presentationHint"] = "invalid"
        if insn.file is None:  # unreadable, or no line: nothing more to say
            return entry
        # An undecodable word inside a function (on arm64, the next function's ftrace ops pointer,
        # where the return address of a noreturn call points) keeps its symbol and line, as gdb and
        # the console's dis show them; all of them, as after any invalid entry.
    first = previous is None or previous.invalid or insn.invalid
    if resolve and insn.symbol and (first or insn.function != previous.function):  # type: ignore[union-attr]
        entry["symbol"] = insn.symbol
    if insn.file is not None and insn.line is not None:
        same_file = not first and previous.file == insn.file  # type: ignore[union-attr]
        if not same_file:
            local = resolve_source_path(session, insn.file)
            if local is not None:
                entry["location"] = {"name": local.rsplit("/", 1)[-1], "path": local}
            else:
                try:
                    reference = source_reference_for(session, insn.address, insn.file)
                    entry["location"] = {"name": insn.file.rsplit("/", 1)[-1], "sourceReference": reference}
                except LookupError:
                    pass
        if not same_file or previous.line != insn.line:  # type: ignore[union-attr]
            entry["line"] = insn.line
            if insn.column:
                entry["column"] = insn.column
    return entry


@registry.request("disassemble")
def disassemble(session: Session, args: Args) -> dict[str, Any]:
    """Disassemble ``instructionCount`` instructions from ``memoryReference`` + ``offset``."""
    prog = _prog(session)
    base = parse_memory_reference(prog, "disassemble", args.string("memoryReference"))
    base = (base + args.integer("offset", 0)) % (1 << 64)
    count = args.integer("instructionCount", minimum=0)
    if count > _MAX_COUNT:
        raise InvalidArguments(f"disassemble: instructionCount {count} is too large (at most {_MAX_COUNT})")
    resolve = args.boolean("resolveSymbols", True)
    from vmcore_dap.dump.disassembly.disasm import disassemble_at

    insns = disassemble_at(prog, base, args.integer("instructionOffset", 0), count)
    session.check_cancelled()
    out = []
    previous: Instruction | None = None
    for insn in insns:
        out.append(_entry(session, insn, previous, resolve))
        previous = insn
    return {"instructions": out}
