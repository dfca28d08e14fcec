"""``stackTrace``: a thread's presented stack, paged with ``startFrame``/``levels``.

Each row becomes a DAP ``StackFrame``: function name (``[inlined]`` after functions the compiler
inlined, ``function+0xoff`` and ``subtle`` where there is no source), the source path through
``sourceFileMap``/``sourceRoot`` (kept even when the file is not on disk, so the frame still names
its file and line), ``instructionPointerReference`` as a ``"0x…"`` string, the kernel module as
``moduleId``, and ``label`` rows for interrupt, exception and system-call boundaries. Frames of the
panic path above the fault are ``subtle`` and their source ``deemphasize``d, so clients focus the
faulting frame.
"""

from __future__ import annotations

from typing import Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.handlers.context import dump_state, frame_id, task_stack
from vmcore_dap.target.frames import StackFrameInfo
from vmcore_dap.target.sources import SourceMap

__all__ = ["INLINE_SUFFIX", "format_frame"]

#: Appended to the names of inlined functions (clients have no field for it).
INLINE_SUFFIX = " [inlined]"


def format_frame(frame_id_: int, info: StackFrameInfo, sources: SourceMap) -> dict[str, Any]:
    """Shape one row as a DAP ``StackFrame``."""
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
        if info.subtle:
            source["presentationHint"] = "deemphasize"
        if not resolved.exists:
            source["origin"] = "not found on disk (set sourceFileMap or sourceRoot in launch.json)"
        body["source"] = source
        body["line"] = info.line
        body["column"] = info.column or 1
    if info.subtle:
        body["presentationHint"] = "subtle"
    return body


@registry.request("stackTrace", capabilities=("supportsDelayedStackTraceLoading",))
def stack_trace(session: Session, args: Args) -> dict[str, Any]:
    """Return ``levels`` frames of a thread's stack from ``startFrame`` (all when ``levels`` is 0)."""
    thread_id = args.integer("threadId")
    start = args.integer("startFrame", 0, minimum=0)
    levels = args.integer("levels", 0, minimum=0)
    stack = task_stack(session, thread_id)
    total = len(stack.frames)
    end = total if levels == 0 else min(total, start + levels)
    sources = dump_state(session).sources
    frames = []
    for index in range(min(start, total), end):
        session.check_cancelled()
        frames.append(format_frame(frame_id(session, thread_id, index), stack.frames[index], sources))
    return {"stackFrames": frames, "totalFrames": total}
