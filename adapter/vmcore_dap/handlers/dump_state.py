"""The open dump of a session, its threads and its frame ids: what the other handler modules share.

Public API (other handler modules build on it):

* :func:`current_dump` ``(session) -> Dump`` — the opened dump, or :class:`UserError`
  "no vmcore is open (send launch first)".
* :func:`dump_state` ``(session) -> DumpState`` — the whole per-session state (panic info, source
  map, the stack service, the stop).
* :func:`stacks` ``(session) -> StackService`` — every task's stack
  (:class:`~vmcore_dap.dump.stacks.service.StackService`), whose task numbers are the thread ids;
  the whole task list (:func:`complete_thread_list` first).
* :func:`complete_thread_list` ``(session)`` — a large dump stops before its tasks are all listed
  (``launch``); this lists the rest now if that is not done yet, and tells the client with a
  ``thread`` event.
* :func:`thread_task` ``(session, thread_id) -> TaskInfo`` — the task behind a DAP thread id
  (:class:`StaleReference` for an unknown id).
* :func:`task_stack` ``(session, thread_id) -> TaskStack`` — the presented stack.
* :func:`frame_id` / :func:`frame_ids` — the DAP frame ids of stack rows.
* :func:`lookup_frame` ``(session, frame_id) -> FrameRef`` — what a frame id denotes: the row with the
  task's own drgn frame and saved registers.

Thread ids are small integers handed out in the order of the task list (crashed task = 1 when there
is one), the head of the list at launch and the rest once listed; task addresses never travel as
numbers. Everything here that touches drgn must run where the channel runs drgn work (the worker, or
the reader thread while it holds the worker off for a ``direct`` request: :mod:`vmcore_dap.dap.channel`);
:attr:`DumpState.threads_body` is plain data and safe from the reader thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vmcore_dap.dap import registry
from vmcore_dap.dap.handles import HandleBlocks
from vmcore_dap.dap.session import Session
from vmcore_dap.dap.transport import EncodedBody, encode_json
from vmcore_dap.errors import StaleReference, UserError

if TYPE_CHECKING:
    # ``launch`` creates the state before it opens the dump; the dump layer's task, panic, stack and
    # source modules are imported while drgn indexes (:func:`vmcore_dap.handlers.import_at_stop`).
    import drgn

    from vmcore_dap.dump.kernel.panic import PanicInfo
    from vmcore_dap.dump.kernel.tasks import TaskInfo, TaskListing
    from vmcore_dap.dump.opening.opener import Dump
    from vmcore_dap.dump.sources.source_map import SourceMap
    from vmcore_dap.dump.stacks.frames import StackFrameInfo, TaskStack
    from vmcore_dap.dump.stacks.service import FrameRef, StackService

__all__ = [
    "LISTING_CHUNK",
    "DumpState",
    "complete_thread_list",
    "current_dump",
    "dump_state",
    "frame_id",
    "frame_ids",
    "lookup_frame",
    "stacks",
    "task_stack",
    "thread_task",
]


#: Tasks listed between two rounds of answering the client's requests (a few ms of a compressed kdump).
LISTING_CHUNK = 64


def _no_source_map() -> SourceMap:
    """The source map before ``launch`` sets the configured one."""
    from vmcore_dap.dump.sources.source_map import SourceMap

    return SourceMap()


@dataclass
class DumpState:
    """Per-session state of the dump; created empty, filled by ``launch``."""

    dump: Dump | None = None
    panic: PanicInfo | None = None
    sources: SourceMap = field(default_factory=_no_source_map)
    stacks: StackService | None = None
    #: The task list; for a large dump only its head is numbered at launch (:meth:`finish_listing`).
    listing: TaskListing | None = None
    #: How many threads the published list holds.
    thread_count: int = 0
    #: The ``threads`` response body (``{"id", "name"}`` in display order), encoded once per list and
    #: replaced whole, so the reader thread can serve it. Only the encoded text is kept: the names as
    #: strings of their own would be 6 MB more at 50,000 tasks.
    threads_body: EncodedBody = field(default_factory=lambda: EncodedBody('{"threads":[]}'))
    #: The thread of the session's one ``stopped`` event (set when it is sent): the crashed task, or
    #: CPU 0's current task for a dump without a panic or with ``stopOnPanic: false``.
    stopped_thread_id: int | None = None
    #: ``id(row)`` -> (row, the JSON of its DAP ``StackFrame`` after ``id``): rows of shared stacks
    #: are shaped once.
    shaped_rows: dict[int, tuple[StackFrameInfo, str]] = field(default_factory=dict)
    #: ``id(rows)`` -> (rows, their JSON as in :attr:`shaped_rows`) for the row list of a stack
    #: group's representative (:attr:`TaskStack.rows_from`): one lookup per ``stackTrace`` of a
    #: shared stack instead of one per row; kept per group, not per task.
    shaped_groups: dict[int, tuple[list[StackFrameInfo], list[str]]] = field(default_factory=dict)
    #: frame ids: a block per thread, row ``i`` at ``base + i``.
    frames: HandleBlocks[int] = field(default_factory=lambda: HandleBlocks("frameId"))
    #: CPU seconds the background steps spent matching stacks after the stop (for the log).
    background_cpu: float = 0.0

    def open(self, dump: Dump, listing: TaskListing, crashed: drgn.Object | None, panic: PanicInfo) -> None:
        """Take the opened dump and its task list (numbered 1, 2, … in display order: all of it when
        the listing is done, else its head) and publish the thread list."""
        from vmcore_dap.dump.stacks.service import StackService

        tasks = listing.tasks() if listing.done else listing.head
        service = StackService(dump.prog, tasks, crashed.value_() if crashed is not None else None)
        self.panic = panic
        self.stacks = service
        self.listing = None if listing.done else listing
        self._publish_threads()
        self.dump = dump

    @property
    def all_listed(self) -> bool:
        """Whether every task of the dump is numbered (has a thread id)."""
        return self.listing is None

    def finish_listing(self) -> list[TaskInfo]:
        """Number the rest of the task list (walking it now if it is not done) and publish the
        whole thread list; return the tasks just numbered (none when every task already was)."""
        if self.listing is None or self.stacks is None:
            return []
        rest = self.listing.rest()
        self.stacks.add_tasks(rest)
        self.listing = None
        self._publish_threads()
        return rest

    def _publish_threads(self) -> None:
        assert self.stacks is not None
        tasks = self.stacks.tasks
        body = ",".join(encode_json({"id": key, "name": info.display_name}) for key, info in tasks.items())
        self.threads_body = EncodedBody(f'{{"threads":[{body}]}}')
        self.thread_count = len(tasks)

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


def _service(session: Session) -> StackService:
    """The stack service as it is (for a large dump just after the stop: the head of the list)."""
    current_dump(session)
    service = dump_state(session).stacks
    assert service is not None
    return service


def complete_thread_list(session: Session) -> None:
    """Number every task of the dump (walking the rest of the list now if the stop came first, with
    the client's other requests answered between chunks), and send a ``thread`` event when that added
    threads, so the client asks for ``threads`` again."""
    current_dump(session)
    state = dump_state(session)
    listing = state.listing
    if listing is None:
        return
    while not listing.step(LISTING_CHUNK):
        session.serve_pending()
    added = state.finish_listing()
    if added:
        session.send_event(
            "thread", {"reason": "started", "threadId": _service(session).key_of(added[0].address)}
        )


def stacks(session: Session) -> StackService:
    """Return the stack service of the opened dump, every task of it numbered.

    :raises UserError: before a successful ``launch``.
    """
    complete_thread_list(session)
    return _service(session)


def thread_task(session: Session, thread_id: object) -> TaskInfo:
    """Return the task of ``thread_id``.

    :raises StaleReference: for an id this session never handed out.
    """
    ok = isinstance(thread_id, int) and not isinstance(thread_id, bool)
    tasks = _service(session).tasks
    if ok and thread_id not in tasks and not dump_state(session).all_listed:
        if registry.running_direct():  # finishing the list takes seconds: not on the reader thread
            raise registry.NeedsWorker(f"threadId {thread_id} is not listed yet")
        tasks = stacks(session).tasks
    info = tasks.get(thread_id) if ok else None  # type: ignore[call-overload]
    if info is None:
        raise StaleReference(
            f"unknown threadId {thread_id}: not a thread of this dump (refresh the Threads view)"
        )
    return info


def task_stack(session: Session, thread_id: int) -> TaskStack:
    """Return the presented stack of a thread (unwound on first use, or shared: see the stack service)."""
    thread_task(session, thread_id)
    return _service(session).stack(thread_id)


def frame_id(session: Session, thread_id: int, index: int, stack: TaskStack | None = None) -> int:
    """Return the DAP frame id of row ``index`` of a thread's stack (the same id every time).

    :param stack: the thread's presented stack, when the caller has it (a shared stack is made anew
        on each :func:`task_stack`).
    """
    return frame_ids(session, thread_id, index, index + 1, stack)[0]


def frame_ids(
    session: Session, thread_id: int, start: int, end: int, stack: TaskStack | None = None
) -> list[int]:
    """Return the DAP frame ids of rows ``start`` to ``end`` (exclusive) of a thread's stack.

    A thread's rows have consecutive ids (one block per stack); what a row holds is looked up when
    its id is used (:func:`lookup_frame`), so handing out a page of ids creates nothing per frame.

    :param stack: as for :func:`frame_id`.
    """
    rows = len((stack if stack is not None else task_stack(session, thread_id)).frames)
    base = dump_state(session).frames.base(thread_id, rows)
    return list(range(base + start, base + end))


def lookup_frame(session: Session, frame_id: object) -> FrameRef:
    """Return what a DAP frame id denotes, with the task's own drgn frame (unwound now if its
    presented stack was shared).

    :raises StaleReference: for an id never handed out (or handed out before a reset).
    """
    service = _service(session)
    thread_id, index = dump_state(session).frames.get(frame_id)
    try:
        return service.frame(thread_id, index)
    except IndexError:
        raise StaleReference(
            f"frame {frame_id} of thread {thread_id} is not in the task's own unwinding "
            "(refresh the Call Stack view)"
        ) from None
