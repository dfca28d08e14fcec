"""A function's disassembly annotated with file:line, shown when its source file is not on this machine.

Clicking a frame must always show something. When the file its debug info names cannot be found, the
editor gets this listing instead (through a DAP ``sourceReference``): every instruction of the function
(and its ``.cold`` part), with a ``file:line`` comment wherever the line table changes, so the reader
still sees which source lines the code came from. :attr:`Listing.line_of` maps an address to its line in
the listing, so a frame points at its own instruction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import drgn

from vmcore_dap.dump.disassembly.disasm import Instruction, disassemble_function

__all__ = ["Listing", "function_listing"]


@dataclass(frozen=True)
class Listing:
    """The text of a listing and where each instruction is in it.

    :param function: the function's name.
    :param start: its start address.
    :param text: the listing, lines separated by ``\\n``.
    :param lines: instruction address → 1-based line in ``text``.
    """

    function: str
    start: int
    text: str
    lines: dict[int, int] = field(default_factory=dict)

    def line_of(self, address: int) -> int:
        """The listing line of the instruction containing ``address`` (1 when it is not in the function)."""
        if address in self.lines:
            return self.lines[address]
        best = 1
        for insn_address, line in self.lines.items():
            if insn_address <= address:
                best = line
        return best


def _location(insn: Instruction) -> str | None:
    if insn.file is None or insn.line is None:
        return None
    return f"{insn.file}:{insn.line}"


def function_listing(
    prog: drgn.Program, address: int, missing_file: str | None = None, *, outside_roots: bool = False
) -> Listing:
    """Disassemble the function containing ``address`` into an annotated listing.

    :param missing_file: the source file that was looked for and not found, named in the header.
    :param outside_roots: ``missing_file`` exists but lies outside the configured source roots, so
        it was not read (the header says so rather than "not found").
    :raises LookupError: when no function contains ``address``.
    """
    insns = disassemble_function(prog, address)
    if not insns:
        raise LookupError(f"no function contains address {address:#x}")
    first = insns[0]
    name = first.function or f"{first.address:#x}"
    out = [f"; {name}: disassembly with source lines from the debug info"]
    if missing_file and outside_roots:
        out.append(f"; source file outside the configured source roots, not read: {missing_file}")
        out.append("; (add its directory to the launch setting 'sourceRoot' or 'sourceFileMap' to open it)")
    elif missing_file:
        out.append(f"; source file not found on this machine: {missing_file}")
        out.append("; (set the launch setting 'sourceRoot' or 'sourceFileMap' to open the real file)")
    out.append("")
    lines: dict[int, int] = {}
    last_location: str | None = None
    last_function: str | None = name
    for insn in insns:
        if insn.function != last_function:
            out.append("")
            out.append(f"; {insn.function}")
            last_function = insn.function
        location = _location(insn)
        if location is not None and location != last_location:
            out.append(f"; {location}")
            last_location = location
        offset = insn.symbol.rsplit("+", 1)[-1] if insn.symbol else ""
        out.append(f"{insn.address:#018x} <+{offset}>  {insn.bytes.hex(' '):<32} {insn.text}")
        lines[insn.address] = len(out)
    return Listing(name, first.address, "\n".join(out) + "\n", lines)
