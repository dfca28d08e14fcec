"""Where to show a code address: its source line in a file on this machine, else why not.

Every view that opens code for an address (a stack frame, a disassembly line, the Kernel view's
faulting frame) asks :func:`locate`: the line table's location of the instruction (of the call, for a
return address), mapped by the session's :class:`~.source_map.SourceMap`. When the file is not there
(or lies outside the configured roots) the caller shows the function's annotated disassembly
(:mod:`vmcore_dap.dump.disassembly.listing`) instead; :func:`listing_origin` says why in one phrase.
"""

from __future__ import annotations

from dataclasses import dataclass

import drgn

from vmcore_dap.dump.sources.source_map import OUTSIDE_ROOTS_HINT, SourceMap

__all__ = ["CodeLocation", "listing_origin", "locate"]


@dataclass(frozen=True)
class CodeLocation:
    """The source location of an instruction.

    :param lookup: the address looked up (``address - 1`` for a return address: the call).
    :param dwarf_path: the file the line table names, ``None`` when it has no line for the address.
    :param local: that file on this machine, inside the configured roots; ``None`` when it is not.
    :param outside_roots: the file exists but lies outside every configured root (so it is not read).
    """

    lookup: int
    dwarf_path: str | None
    line: int
    column: int
    local: str | None
    outside_roots: bool


def locate(
    prog: drgn.Program, sources: SourceMap, address: int, *, is_return_address: bool = False
) -> CodeLocation:
    """Find the source of the instruction at ``address``.

    :param is_return_address: ``address`` is a caller frame's return address; look up the call
        instruction's line (``address - 1``), as debuggers do.
    """
    lookup = address - 1 if is_return_address else address
    try:
        loc = prog.source_location(lookup)[0]
    except (LookupError, IndexError):
        return CodeLocation(lookup, None, 0, 0, None, False)
    if not loc.filename:
        return CodeLocation(lookup, None, loc.line, loc.column, None, False)
    resolved = sources.resolve(loc.filename)
    local = resolved.path if resolved.exists else None
    return CodeLocation(lookup, loc.filename, loc.line, loc.column, local, resolved.outside_roots)


def listing_origin(missing_file: str | None, outside_roots: bool) -> str:
    """Why a disassembly listing is shown instead of a file, for a ``Source``'s ``origin``."""
    if not missing_file:
        return "disassembly: no line information"
    if outside_roots:
        return f"disassembly: {missing_file} is outside the configured source roots ({OUTSIDE_ROOTS_HINT})"
    return "disassembly: source file not found"
