"""The open dump of a session, its thread table and its frame ids: the API other handler modules use.

Public API (stable; variables/evaluate, disassembly and the console build on it):

* :func:`current_dump` ``(session) -> Dump`` — the opened dump, or :class:`UserError`
  "no vmcore is open (send launch first)".
* :func:`dump_state` ``(session) -> DumpState`` — the whole per-session state (threads, panic info,
  source map, cached stacks).
* :func:`thread_of` ``(session, thread_id) -> drgn.Object`` — the ``struct task_struct *`` of a DAP
  thread id (:class:`StaleReference` for an unknown id).
* :func:`task_stack` ``(session, thread_id) -> TaskStack`` — the presented stack (cached per thread).
* :func:`frame_id` ``(session, thread_id, index) -> int`` — the DAP frame id of a stack row.
* :func:`lookup_frame` ``(session, frame_id) -> FrameRef`` — what a frame id denotes:
  ``thread_id``, ``task`` (``struct task_struct *``), ``trace`` (drgn ``StackTrace`` or ``None``),
  ``index`` (row in the presented stack), ``trace_index`` (index in ``trace`` or ``None``),
  ``frame`` (drgn ``StackFrame``, ``None`` for label rows), ``pt_regs`` (a ``struct pt_regs`` for
  interrupt/exception/syscall labels, else ``None``), ``info`` (the row's
  :class:`~vmcore_dap.dump.stacks.frames.StackFrameInfo`).

A sleeping task whose kernel stack has the same signature (:func:`~vmcore_dap.dump.stacks.groups.
stack_signature`) as a task already unwound is presented from that task's rows, with its own bottom
row (:func:`~vmcore_dap.dump.stacks.frames.share_stack`); drgn unwinds it only when one of its frames is
looked up, so ``lookup_frame`` always answers with the task's own ``frame``/``trace``/``pt_regs``.
Sending ``stackTrace`` for all 5,000 threads of a dump thus unwinds one task per distinct stack.

Thread ids are small integers handed out once at launch (crashed task = 1 when there is one); task
addresses never travel as numbers. Everything here that touches drgn must run on the worker thread;
:meth:`DumpState.thread_rows` is plain data and safe from the reader thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import drgn

from vmcore_dap.dap.handles import HandleBlocks
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.kernel.panic import PanicInfo
from vmcore_dap.dump.kernel.tasks import TaskInfo
from vmcore_dap.dump.opening.opener import Dump
from vmcore_dap.dump.sources.source_map import SourceMap
from vmcore_dap.dump.stacks.frames import StackFrameInfo, TaskStack, share_stack, unwind_task
from vmcore_dap.dump.stacks.groups import SignatureTable, stack_signature
from vmcore_dap.errors import StaleReference, UserError

__all__ = [
    "DumpState",
    "FrameRef",
    "ThreadEntry",
    "current_dump",
    "dump_state",
    "frame_id",
    "lookup_frame",
    "task_stack",
    "thread_of",
    "thread_entry",
]


@dataclass(frozen=True)
class ThreadEntry:
    """One DAP thread: its id, the name people see, and the task behind it."""

    thread_id: int
    name: str
    info: TaskInfo

    @property
    def task(self) -> drgn.Object:
        """``struct task_struct *``."""
        return self.info.task


@dataclass(frozen=True)
class FrameRef:
    """What a DAP frame id denotes (see the module docstring)."""

    thread_id: int
    task: drgn.Object
    trace: drgn.StackTrace | None
    index: int
    trace_index: int | None
    frame: drgn.StackFrame | None
    pt_regs: drgn.Object | None
    info: StackFrameInfo


@dataclass
class DumpState:
    """Per-session state of the dump; created empty, filled by ``launch``."""

    dump: Dump | None = None
    panic: PanicInfo | None = None
    sources: SourceMap = field(default_factory=SourceMap)
    threads: dict[int, ThreadEntry] = field(default_factory=dict)
    #: ``(thread id, name)`` in display order; replaced whole, so the reader thread can serve it.
    thread_rows: tuple[tuple[int, str], ...] = ()
    crashed_thread_id: int | None = None
    #: The thread of the session's one ``stopped`` event (set when it is sent): the crashed task, or
    #: CPU 0's current task for a dump without a panic or with ``stopOnPanic: false``.
    stopped_thread_id: int | None = None
    #: ``id(row)`` -> (row, the JSON of its DAP ``StackFrame`` after ``id``): rows of shared stacks
    #: are shaped once.
    shaped_rows: dict[int, tuple[StackFrameInfo, str]] = field(default_factory=dict)
    #: frame ids: a block per thread, row ``i`` at ``base + i``.
    frames: HandleBlocks[int] = field(default_factory=lambda: HandleBlocks("frameId"))
    _stacks: dict[int, TaskStack] = field(default_factory=dict)
    #: stack signature key -> thread id of the task whose exact stack others with it reuse.
    _by_signature: SignatureTable[int] = field(default_factory=SignatureTable)
    #: the tasks' own unwinding, for threads whose presented stack is shared.
    _exact: dict[int, TaskStack] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install_threads(self, tasks: list[TaskInfo], crashed: drgn.Object | None) -> None:
        """Number the tasks 1, 2, … in display order and publish the table."""
        crashed_address = crashed.value_() if crashed is not None else None
        entries = {}
        for number, info in enumerate(tasks, start=1):
            entries[number] = ThreadEntry(number, info.display_name, info)
            if info.address == crashed_address:
                self.crashed_thread_id = number
        self.threads = entries
        self.thread_rows = tuple((e.thread_id, e.name) for e in entries.values())

    def thread_for_address(self, address: int) -> int | None:
        """Return the thread id of the task at ``address``, if it is in the table."""
        return next((tid for tid, e in self.threads.items() if e.info.address == address), None)


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


def thread_entry(session: Session, thread_id: object) -> ThreadEntry:
    """Return the table entry of ``thread_id``.

    :raises StaleReference: for an id this session never handed out.
    """
    state = dump_state(session)
    current_dump(session)
    ok = isinstance(thread_id, int) and not isinstance(thread_id, bool)
    entry = state.threads.get(thread_id) if ok else None  # type: ignore[call-overload]
    if entry is None:
        raise StaleReference(
            f"unknown threadId {thread_id}: not a thread of this dump (refresh the Threads view)"
        )
    return entry


def thread_of(session: Session, thread_id: int) -> drgn.Object:
    """Return the ``struct task_struct *`` behind a DAP thread id."""
    return thread_entry(session, thread_id).task


def task_stack(session: Session, thread_id: int) -> TaskStack:
    """Return the presented stack of a thread, unwinding it on first use (then cached).

    A sleeping task whose stack signature matches an unwound task's gets that task's rows (see the
    module docstring); running tasks, the crashed task and unreadable stacks are unwound.
    """
    state = dump_state(session)
    entry = thread_entry(session, thread_id)
    with state._lock:
        stack = state._stacks.get(thread_id)
    if stack is None:
        stack = _present(state, current_dump(session).prog, entry)
        with state._lock:
            stack = state._stacks.setdefault(thread_id, stack)
    return stack


def _present(state: DumpState, prog: drgn.Program, entry: ThreadEntry) -> TaskStack:
    """Build a thread's stack, from a representative with the same signature when there is one."""
    signature = None
    if not entry.info.on_cpu and entry.thread_id != state.crashed_thread_id:
        signature = stack_signature(prog, entry.task, entry.info.stack)
    if signature is not None:
        with state._lock:
            representative_id = state._by_signature.find(signature)
            representative = state._stacks.get(representative_id) if representative_id is not None else None
        if representative is not None:
            shared = share_stack(prog, representative, entry.task, entry.info)
            if shared is not None:
                return shared
    stack = unwind_task(prog, entry.task)
    if signature is not None:
        with state._lock:
            state._by_signature.register(signature, stack.trace, entry.thread_id)
    return stack


def _exact_stack(session: Session, thread_id: int) -> TaskStack:
    """The task's own unwinding (its presented stack unless that was shared)."""
    stack = task_stack(session, thread_id)
    if not stack.shared:
        return stack
    state = dump_state(session)
    with state._lock:
        exact = state._exact.get(thread_id)
    if exact is None:
        exact = unwind_task(current_dump(session).prog, thread_entry(session, thread_id).task)
        with state._lock:
            exact = state._exact.setdefault(thread_id, exact)
    return exact


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
    """Return what a DAP frame id denotes.

    A row of a shared stack (:func:`_present`) is resolved in the task's own unwinding, done now if
    it was not yet.

    :raises StaleReference: for an id never handed out (or handed out before a reset).
    """
    current_dump(session)
    thread_id, index = dump_state(session).frames.get(frame_id)
    stack = task_stack(session, thread_id)
    if stack.shared:
        stack = _exact_stack(session, thread_id)
        if index >= len(stack.frames):
            raise StaleReference(
                f"frame {frame_id} of thread {thread_id} is not in the task's own unwinding "
                "(refresh the Call Stack view)"
            )
    info = stack.frames[index]
    return FrameRef(
        thread_id=thread_id,
        task=thread_entry(session, thread_id).task,
        trace=stack.trace,
        index=index,
        trace_index=info.trace_index,
        frame=info.frame,
        pt_regs=info.pt_regs,
        info=info,
    )
