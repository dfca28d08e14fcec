"""The open dump of a session, its threads and its frame ids: what the other handler modules share.

Public API (other handler modules build on it):

* :func:`current_dump` ``(session) -> Dump`` — the opened dump, or :class:`UserError`
  "no vmcore is open (send launch first)".
* :func:`dump_state` ``(session) -> DumpState`` — the whole per-session state (panic info, source
  map, the stack service, the stop).
* :func:`stacks` ``(session) -> StackService`` — every task's stack
  (:class:`~vmcore_dap.dump.stacks.service.StackService`), whose task numbers are the thread ids.
* :func:`thread_task` ``(session, thread_id) -> TaskInfo`` — the task behind a DAP thread id
  (:class:`StaleReference` for an unknown id).
* :func:`task_stack` ``(session, thread_id) -> TaskStack`` — the presented stack.
* :func:`frame_id` / :func:`frame_ids` — the DAP frame ids of stack rows.
* :func:`lookup_frame` ``(session, frame_id) -> FrameRef`` — what a frame id denotes: the row with the
  task's own drgn frame and saved registers.

Thread ids are small integers handed out once at launch (crashed task = 1 when there is one); task
addresses never travel as numbers. Everything here that touches drgn must run on the worker thread;
:attr:`DumpState.thread_rows` is plain data and safe from the reader thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import drgn

from vmcore_dap.dap.handles import HandleBlocks
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.kernel.panic import PanicInfo
from vmcore_dap.dump.kernel.tasks import TaskInfo
from vmcore_dap.dump.opening.opener import Dump
from vmcore_dap.dump.sources.source_map import SourceMap
from vmcore_dap.dump.stacks.frames import StackFrameInfo, TaskStack
from vmcore_dap.dump.stacks.service import FrameRef, StackService
from vmcore_dap.errors import StaleReference, UserError

__all__ = [
    "DumpState",
    "current_dump",
    "dump_state",
    "frame_id",
    "frame_ids",
    "lookup_frame",
    "stacks",
    "task_stack",
    "thread_task",
]


@dataclass
class DumpState:
    """Per-session state of the dump; created empty, filled by ``launch``."""

    dump: Dump | None = None
    panic: PanicInfo | None = None
    sources: SourceMap = field(default_factory=SourceMap)
    stacks: StackService | None = None
    #: ``(thread id, name)`` in display order; replaced whole, so the reader thread can serve it.
    thread_rows: tuple[tuple[int, str], ...] = ()
    #: The thread of the session's one ``stopped`` event (set when it is sent): the crashed task, or
    #: CPU 0's current task for a dump without a panic or with ``stopOnPanic: false``.
    stopped_thread_id: int | None = None
    #: ``id(row)`` -> (row, the JSON of its DAP ``StackFrame`` after ``id``): rows of shared stacks
    #: are shaped once.
    shaped_rows: dict[int, tuple[StackFrameInfo, str]] = field(default_factory=dict)
    #: frame ids: a block per thread, row ``i`` at ``base + i``.
    frames: HandleBlocks[int] = field(default_factory=lambda: HandleBlocks("frameId"))

    def open(self, dump: Dump, tasks: list[TaskInfo], crashed: drgn.Object | None, panic: PanicInfo) -> None:
        """Take the opened dump and its tasks (numbered 1, 2, … in display order) and publish the
        thread list."""
        service = StackService(dump.prog, tasks, crashed.value_() if crashed is not None else None)
        self.panic = panic
        self.stacks = service
        self.thread_rows = tuple((key, info.display_name) for key, info in service.tasks.items())
        self.dump = dump

    @property
    def crashed_thread_id(self) -> int | None:
        """The thread id of the task that panicked, if any."""
        return self.stacks.crashed_key if self.stacks is not None else None

    def thread_for_address(self, address: int) -> int | None:
        """Return the thread id of the task at ``address``, if it is in the table."""
        return self.stacks.key_of(address) if self.stacks is not None else None


def dump_state(session: Session) -> DumpState:
    """Return the session's dump state (empty before ``launch``)."""
    return session.component(DumpState)


def current_dump(session: Session) -> Dump:
    """Return the opened dump.

    :raises UserError: before a successful ``launch``.
    """
    dump = dump_state(session).dump
    if dump is None:
        raise UserError("no vmcore is open (send launch first)")
    return dump


def stacks(session: Session) -> StackService:
    """Return the stack service of the opened dump.

    :raises UserError: before a successful ``launch``.
    """
    current_dump(session)
    service = dump_state(session).stacks
    assert service is not None
    return service


def thread_task(session: Session, thread_id: object) -> TaskInfo:
    """Return the task of ``thread_id``.

    :raises StaleReference: for an id this session never handed out.
    """
    tasks = stacks(session).tasks
    ok = isinstance(thread_id, int) and not isinstance(thread_id, bool)
    info = tasks.get(thread_id) if ok else None  # type: ignore[call-overload]
    if info is None:
        raise StaleReference(
            f"unknown threadId {thread_id}: not a thread of this dump (refresh the Threads view)"
        )
    return info


def task_stack(session: Session, thread_id: int) -> TaskStack:
    """Return the presented stack of a thread (unwound on first use, or shared: see the stack service)."""
    thread_task(session, thread_id)
    return stacks(session).stack(thread_id)


def frame_id(session: Session, thread_id: int, index: int) -> int:
    """Return the DAP frame id of row ``index`` of a thread's stack (the same id every time)."""
    return frame_ids(session, thread_id, index, index + 1)[0]


def frame_ids(session: Session, thread_id: int, start: int, end: int) -> list[int]:
    """Return the DAP frame ids of rows ``start`` to ``end`` (exclusive) of a thread's stack.

    A thread's rows have consecutive ids (one block per stack); what a row holds is looked up when
    its id is used (:func:`lookup_frame`), so handing out a page of ids creates nothing per frame.
    """
    base = dump_state(session).frames.base(thread_id, len(task_stack(session, thread_id).frames))
    return list(range(base + start, base + end))


def lookup_frame(session: Session, frame_id: object) -> FrameRef:
    """Return what a DAP frame id denotes, with the task's own drgn frame (unwound now if its
    presented stack was shared).

    :raises StaleReference: for an id never handed out (or handed out before a reset).
    """
    service = stacks(session)
    thread_id, index = dump_state(session).frames.get(frame_id)
    try:
        return service.frame(thread_id, index)
    except IndexError:
        raise StaleReference(
            f"frame {frame_id} of thread {thread_id} is not in the task's own unwinding "
            "(refresh the Call Stack view)"
        ) from None
