"""``source``: the contents of a ``sourceReference``, and source objects for code addresses.

Other handlers (``stackTrace``, ``disassemble``) call :func:`source_for_address` to get a DAP
``Source`` for an instruction: the local file when it exists
(:func:`~vmcore_dap.dump.sources.code_location.locate`), else a ``sourceReference`` whose content is
the function's annotated disassembly, so clicking a frame always shows something. ``stackTrace`` calls
:func:`listing_for_address` directly for a frame whose own file is missing (an inlined callee's file
may exist when the frame's does not).

Only files inside the configured roots are read, here as everywhere (``sourceRoot``,
``sourceFileMap`` targets, ``debugInfo`` directories: see :mod:`vmcore_dap.dump.sources.source_map`):
a ``source`` request with a ``path`` goes through the same ``SourceMap`` as the frames, so a client
cannot read ``/etc/shadow`` or follow a symbolic link out of a source tree by naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.handles import HandleTable
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.sources.code_location import listing_origin, locate
from vmcore_dap.errors import NotAvailable
from vmcore_dap.handlers.dump_state import current_dump, dump_state

if TYPE_CHECKING:  # the disassembler loads with the first listing, not on the way to the first stop
    from vmcore_dap.dump.disassembly.listing import Listing

__all__ = [
    "SourceInfo",
    "listing_for_address",
    "resolve_source_path",
    "source_for_address",
    "source_reference_for",
]


@dataclass
class _ListingRef:
    start: int
    missing_file: str | None
    outside_roots: bool = False
    listing: Listing | None = None


class _SourceState:
    """Per-session table of listing references."""

    def __init__(self) -> None:
        self.refs: HandleTable[_ListingRef] = HandleTable("sourceReference")


@dataclass(frozen=True)
class SourceInfo:
    """Where to show an address: a DAP ``Source`` object and the line inside it.

    :param source: the ``Source`` body (``name`` plus ``path`` or ``sourceReference``).
    :param line: the line in that source (the DWARF line for a file, the listing line for a reference).
    :param column: the column, 0 when unknown.
    :param dwarf_path: the file name the debug info records, if any.
    """

    source: dict[str, Any]
    line: int
    column: int
    dwarf_path: str | None


def resolve_source_path(session: Session, dwarf_path: str) -> str | None:
    """Return the local file for a DWARF file name, or ``None`` when it is not on this machine.

    The session's :class:`~vmcore_dap.dump.sources.source_map.SourceMap` decides (``sourceFileMap``,
    ``sourceRoot``, the Debian/Ubuntu/RHEL build layouts under it) and caches the answer.
    """
    current_dump(session)
    resolved = dump_state(session).sources.resolve(dwarf_path)
    return resolved.path if resolved.exists else None


def _outside_roots(session: Session, dwarf_path: str | None) -> bool:
    """Whether ``dwarf_path`` names a file that exists but lies outside every configured root."""
    return bool(dwarf_path) and dump_state(session).sources.resolve(dwarf_path or "").outside_roots


def source_reference_for(
    session: Session, address_or_function: int | str, missing_file: str | None = None
) -> int:
    """Return the ``sourceReference`` of the annotated disassembly of a function.

    The same function always gets the same number within a session.

    :param address_or_function: any address in the function, or its name.
    :param missing_file: the source file that was not found, named in the listing's header.
    :raises LookupError: when no function contains the address or bears the name.
    """
    state = session.component(_SourceState)
    prog = current_dump(session).prog
    address = (
        int(prog.symbol(address_or_function).address)
        if isinstance(address_or_function, str)
        else address_or_function
    )
    from vmcore_dap.dump.disassembly.disasm import function_range

    found = function_range(prog, address)
    if found is None:
        raise LookupError(f"no function contains address {address:#x}")
    start = found[0]
    return state.refs.intern(
        ("listing", start), lambda: _ListingRef(start, missing_file, _outside_roots(session, missing_file))
    )


def _listing(session: Session, reference: int) -> Listing:
    from vmcore_dap.dump.disassembly.listing import function_listing

    entry = session.component(_SourceState).refs.get(reference)
    if entry.listing is None:
        entry.listing = function_listing(
            current_dump(session).prog, entry.start, entry.missing_file, outside_roots=entry.outside_roots
        )
    return entry.listing


def source_for_address(
    session: Session, address: int, *, is_return_address: bool = False
) -> SourceInfo | None:
    """Return where to show the instruction at ``address``: its source file, else the listing.

    :param is_return_address: ``address`` is a caller frame's return address; look up the call
        instruction's line (``address - 1``), as debuggers do.
    :returns: ``None`` when no function contains the address (no debug info, no symbol).
    """
    where = locate(
        current_dump(session).prog, dump_state(session).sources, address, is_return_address=is_return_address
    )
    if where.local is not None:
        return SourceInfo(
            {"name": Path(where.local).name, "path": where.local}, where.line, where.column, where.dwarf_path
        )
    return listing_for_address(
        session, address, is_return_address=is_return_address, missing_file=where.dwarf_path
    )


def listing_for_address(
    session: Session,
    address: int,
    *,
    is_return_address: bool = False,
    missing_file: str | None = None,
) -> SourceInfo | None:
    """Return the annotated disassembly of the function at ``address`` as a DAP ``Source``.

    :param is_return_address: as for :func:`source_for_address`.
    :param missing_file: the DWARF file name that was not found (named in the listing and ``origin``).
    :returns: ``None`` when no function contains the address; the line is the instruction's line in
        the listing.
    """
    lookup = address - 1 if is_return_address else address
    try:
        reference = source_reference_for(session, lookup, missing_file)
    except LookupError:
        return None
    listing = _listing(session, reference)
    origin = listing_origin(missing_file, _outside_roots(session, missing_file))
    source = {
        "name": f"{listing.function} (disassembly)",
        "sourceReference": reference,
        "presentationHint": "deemphasize",
        "origin": origin,
    }
    return SourceInfo(source, listing.line_of(lookup), 0, missing_file)


@registry.request("source")
def source(session: Session, args: Args) -> dict[str, Any]:
    """Answer with a listing for our references, or a local file's text for a plain path."""
    reference = args.opt_integer("sourceReference") or 0
    source_arg = args.obj("source")
    if not reference:
        reference = int(source_arg.get("sourceReference") or 0)
    if reference:
        return {"content": _listing(session, reference).text, "mimeType": "text/x-asm"}
    path = source_arg.get("path")
    if isinstance(path, str) and path:
        current_dump(session)
        return {"content": dump_state(session).sources.read(path, "source")}
    raise NotAvailable("source: neither 'sourceReference' nor a 'path' was given")
