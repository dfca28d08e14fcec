"""``stackTrace``: a thread's presented stack, paged with ``startFrame``/``levels``.

Each row becomes a DAP ``StackFrame``: function name (``[inlined]`` after functions the compiler
inlined, ``function+0xoff`` and ``subtle`` where there is no source), the source path through
``sourceFileMap``/``sourceRoot``, ``instructionPointerReference`` as a ``"0x…"`` string, the kernel
module as ``moduleId``, and ``label`` rows for interrupt, exception and system-call boundaries. Frames
of the panic path above the fault are ``subtle`` and their source ``deemphasize``d, so clients focus
the faulting frame.

A frame whose file is not on this machine still opens: its source carries a ``sourceReference`` to
the function's annotated disassembly (:func:`vmcore_dap.handlers.source.listing_for_address`) and the
frame's ``line`` is the instruction's line in that listing, as DAP requires. It still names its file
and line for people: ``path`` is the (mapped) DWARF path — DAP shows ``path`` in the UI and fetches the
content through the reference — ``origin`` says ``kernel/fork.c:2370 is not on this machine …`` (or,
for a file that exists outside every configured source root, that it is not read and which setting
would allow it), and
``adapterData`` holds ``{"file", "line", "column"}`` of the DWARF location for tools and tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.dap.transport import EncodedBody, encode_json
from vmcore_dap.dump.sources.source_map import OUTSIDE_ROOTS_HINT, SourceMap
from vmcore_dap.dump.stacks.frames import StackFrameInfo
from vmcore_dap.handlers.dump_state import DumpState, dump_state, frame_ids, task_stack
from vmcore_dap.handlers.source import SourceInfo, listing_for_address

__all__ = ["INLINE_SUFFIX", "ListingLookup", "format_frame", "frame_listing"]

#: Appended to the names of inlined functions (clients have no field for it).
INLINE_SUFFIX = " [inlined]"

#: ``listing(info) -> SourceInfo | None``: the disassembly listing to show for a frame whose file is
#: missing (``None`` when no function contains its pc).
ListingLookup = Callable[[StackFrameInfo], "SourceInfo | None"]

_NOT_FOUND_HINT = "set sourceFileMap or sourceRoot in launch.json"


def frame_listing(session: Session) -> ListingLookup:
    """Return the :data:`ListingLookup` of a session, for :func:`format_frame`."""

    def listing(info: StackFrameInfo) -> SourceInfo | None:
        if info.pc is None:
            return None
        return listing_for_address(
            session, info.pc, is_return_address=not info.interrupted, missing_file=info.source_file
        )

    return listing


def format_frame(
    frame_id_: int, info: StackFrameInfo, sources: SourceMap, listing: ListingLookup | None = None
) -> dict[str, Any]:
    """Shape one row as a DAP ``StackFrame``.

    :param listing: where to get the disassembly listing of a frame whose file is not on disk; without
        it such a frame keeps its DWARF line and a ``path`` no client can open.
    """
    body: dict[str, Any] = {"id": frame_id_, "name": info.name, "line": 0, "column": 0}
    if info.kind == "label":
        body["presentationHint"] = "label"
        if info.pc is not None:
            body["instructionPointerReference"] = f"{info.pc:#x}"
        return body
    if info.is_inline:
        body["name"] = info.name + INLINE_SUFFIX
    if info.pc is not None:
        body["instructionPointerReference"] = f"{info.pc:#x}"
    if info.module:
        body["moduleId"] = info.module
    if info.source_file:
        resolved = sources.resolve(info.source_file)
        source: dict[str, Any] = {"name": resolved.name, "path": resolved.path}
        body["source"] = source
        body["line"] = info.line
        body["column"] = info.column or 1
        if not resolved.exists:
            where = f"{info.source_file}:{info.line}"
            if resolved.outside_roots:
                why, hint = "is outside the configured source roots, so it is not read", OUTSIDE_ROOTS_HINT
            else:
                why, hint = "is not on this machine", _NOT_FOUND_HINT
            shown = listing(info) if listing is not None else None
            if shown is None:
                source["origin"] = f"{where} {why} ({hint})"
            else:
                source["sourceReference"] = shown.source["sourceReference"]
                source["origin"] = (
                    f"{where} {why}; showing the disassembly of {info.function or info.name} ({hint})"
                )
                source["adapterData"] = {"file": info.source_file, "line": info.line, "column": info.column}
                body["line"] = shown.line
                body["column"] = 1
        if info.subtle:
            source["presentationHint"] = "deemphasize"
    if info.subtle:
        body["presentationHint"] = "subtle"
    return body


@registry.request("stackTrace")
def stack_trace(session: Session, args: Args) -> EncodedBody:
    """Return ``levels`` frames of a thread's stack from ``startFrame`` (all when ``levels`` is 0).

    Rows of shared stacks (:func:`~vmcore_dap.handlers.dump_state.task_stack`) are the same objects in
    thousands of tasks: each is shaped and encoded once, and a response is those texts with their ids.
    A shared stack's rows are looked up as one list (its group's), so the per-request work is the
    task's own bottom row and the ids: issue 18's ``stackTrace`` of each of 50,000 threads.
    """
    thread_id = args.integer("threadId")
    start = args.integer("startFrame", 0, minimum=0)
    levels = args.integer("levels", 0, minimum=0)
    stack = task_stack(session, thread_id)
    total = len(stack.frames)
    end = total if levels == 0 else min(total, start + levels)
    state = dump_state(session)
    first = min(start, total)
    ids = frame_ids(session, thread_id, first, end, stack)
    common = stack.rows_from
    if common is not None:
        texts = _group_texts(session, state, common)[first:end]
        # The rows after the group's (a shared stack's bottom row) are the task's own, made for
        # this request: shaped, never kept.
        texts += [
            _encoded_row(session, state, info, keep=False)
            for info in stack.frames[max(first, len(common)) : end]
        ]
    else:
        shaped = state.shaped_rows
        texts = []
        for info in stack.frames[first:end]:
            known = shaped.get(id(info))
            texts.append(
                known[1] if known is not None and known[0] is info else _encoded_row(session, state, info)
            )
    frames = [f'{{"id":{id_},{text}' for id_, text in zip(ids, texts, strict=True)]
    return EncodedBody(f'{{"stackFrames":[{",".join(frames)}],"totalFrames":{total}}}')


def _group_texts(session: Session, state: DumpState, rows: list[StackFrameInfo]) -> list[str]:
    """The encoded rows (as :func:`_encoded_row`) of a stack group's shared row list, made once."""
    known = state.shaped_groups.get(id(rows))
    if known is not None and known[0] is rows:
        return known[1]
    texts = []
    for info in rows:
        row = state.shaped_rows.get(id(info))
        texts.append(row[1] if row is not None and row[0] is info else _encoded_row(session, state, info))
    state.shaped_groups[id(rows)] = (rows, texts)
    return texts


def _encoded_row(session: Session, state: DumpState, info: StackFrameInfo, keep: bool = True) -> str:
    """Shape the JSON members of a row's ``StackFrame`` after ``id`` (with the closing brace), and
    cache them when ``keep``."""
    if info.kind == "label":  # no source, no listing: the bottom row of every shared stack
        shaped = format_frame(0, info, state.sources)
    else:
        session.check_cancelled()  # shaping may build a disassembly listing
        shaped = format_frame(0, info, state.sources, frame_listing(session))
    del shaped["id"]
    text = encode_json(shaped)[1:]
    if keep:
        state.shaped_rows[id(info)] = (info, text)
    return text
