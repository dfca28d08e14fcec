"""What the session stops on, and the stop: the task list and the panic facts, read at the end of
``launch`` once :mod:`.launch` opened the dump (:func:`take_dump`), then ``configurationDone``, which
answers and then sends the one ``stopped`` event of the session: ``exception`` on the task that
panicked (all threads stopped, the panic as text), or ``pause`` on CPU 0's task for a dump without a
panic or with ``stopOnPanic: false``. The dump's filter level is printed once, just before.

Listing every task costs what reading their pages costs (seconds for 50,000 tasks in a compressed
kdump), while the crash itself is one task. So a dump with more than :data:`LIST_AFTER_STOP_ABOVE`
tasks stops first, with the head of the task list (the crashed task, what each CPU ran, the idle
tasks), and lists the rest after the stop, a chunk at a time, once the client has asked nothing for
:data:`LIST_QUIET` s (a progress report "Listing tasks" runs from before the ``stopped`` event until
the list is done); then a ``thread`` event makes the client fetch ``threads`` again. Requests that
need every task (the Kernel view, "tasks in this function") finish the list first; the Call Stack,
variables and console commands do not wait for it.

While the rest is listed, a second process may read the listed tasks' stacks ahead for matching
(:func:`~vmcore_dap.dump.stacks.prefetch.start_prefetch`: where a CPU was spare while the dump was
opened, or as ``VMCORE_DAP_PREFETCH`` forces). It starts before the stop, so that a Kernel view asked
for at the stop finds it started, but is given tasks only as they are listed: the first picture's
requests share the machine with its start-up, not with its reading.

Once the list is whole, the same background work goes on to read and match every task's stack
(:meth:`~vmcore_dap.dump.stacks.service.StackService.match_stacks`, :data:`MATCH_CHUNK` tasks a
step, and only once the client asked nothing for :data:`MATCH_QUIET` s): the stack groups, the
function index, the blocked tasks and each ``stackTrace`` of a sleeping task need that, and at
50,000 tasks it costs seconds of decompressing pages. A Kernel view opened a while after the stop
finds it done or under way; one opened at once does the rest itself, from where the steps stopped,
with the same answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import drgn

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import PROGRESS_INTERVAL, Progress, Session
from vmcore_dap.dump.errors import describe_fault
from vmcore_dap.dump.kernel.modules import module_list_problem
from vmcore_dap.dump.kernel.panic import crashed_task, focus_task, panic_info
from vmcore_dap.dump.kernel.tasks import TaskListing
from vmcore_dap.dump.opening.opener import Dump
from vmcore_dap.dump.sources.source_map import SourceMap
from vmcore_dap.dump.stacks.idle_cpus import IdleMeter
from vmcore_dap.dump.stacks.prefetch import start_prefetch
from vmcore_dap.errors import UserError
from vmcore_dap.handlers.dump_state import (
    LISTING_CHUNK,
    DumpState,
    complete_thread_list,
    current_dump,
    dump_state,
)

__all__ = ["AFTER_STOP", "LIST_AFTER_STOP_ABOVE", "LIST_QUIET", "MATCH_CHUNK", "MATCH_QUIET", "take_dump"]

log = logging.getLogger(__name__)

#: Called with the session right after the ``stopped`` event, in order (the console registers
#: ``announce_panic_log`` here so the Debug Console opens on the oops). A failing listener is logged
#: and skipped: the stop itself has already been announced.
AFTER_STOP: list[Callable[[Session], None]] = []

#: A dump with more tasks than this (the kernel's ``nr_threads``) stops before its tasks are all
#: listed (the module docstring). Below it listing takes under about 50 ms: the list is whole at the
#: stop, as clients that ignore ``thread`` events need.
LIST_AFTER_STOP_ABOVE = 2_000

#: Seconds without a request before the rest of a large dump's task list is walked in the background.
#: VS Code's requests at the stop (threads, stackTrace, scopes, variables) come a few ms apart: each
#: found a listing step under way (``threads``, answered on the reader thread, waited 4–19 ms for
#: the GIL instead of 0.3 ms at many-tasks) and the second process reading the stacks of the tasks
#: each step listed (expanding ``init_task`` right after: 55–72 ms against 32–37 ms; bench/RESULTS.md,
#: first-session). A request that needs every task lists the rest itself, at once.
LIST_QUIET = 0.1

#: Tasks whose stacks one background step reads and matches after the stop (about 2–3 ms of a
#: compressed kdump: the longest a request that arrives meanwhile waits for the step to end).
MATCH_CHUNK = 64
#: Seconds without a request before the stacks are matched in the background: VS Code's requests at
#: the stop (threads, stackTrace, scopes, variables) come a few ms apart and a lock-step client's
#: closer still, so none of them waits for a step; a user opening a view comes later.
MATCH_QUIET = 0.1


def take_dump(
    session: Session, state: DumpState, dump: Dump, progress: Progress, meter: IdleMeter | None = None
) -> None:
    """Read the opened dump's task list (its head, for a large dump) and panic facts, and make it the
    session's (``launch``'s last step, still inside its progress report).

    :param meter: running since the dump began to open: whether a CPU is spare for the stack
        prefetch (:func:`~vmcore_dap.dump.stacks.prefetch.start_prefetch`).
    """
    config = dump.config
    t0 = time.monotonic()
    progress.update("Reading tasks and the kernel log", 100)
    prefetch = None
    try:
        crashed = crashed_task(dump.prog)
        # The task shown at the stop heads the list: the crashed one, or CPU 0's without a panic.
        listing = TaskListing(dump.prog, focus_task(dump.prog), problems=dump.warnings)
        prefetch = start_prefetch(dump.prog, config.vmcore, meter) if _large(listing) else None
        if prefetch is not None:
            listing.on_listed = lambda tasks: prefetch.feed((t.address, t.stack) for t in tasks)
        # The first chunk here, so a dump whose PID table cannot be read is refused now.
        if not listing.step(LISTING_CHUNK) and not _large(listing):
            listing.rest()
        # Only now: the first chunk, before the stop, never waits for the process to start.
        listing.blocks = prefetch
    except drgn.FaultError as exc:
        if prefetch is not None:
            prefetch.close()
        if not dump.file.truncated:
            raise
        # What is left of a truncated dump does not even hold the task list: refuse it plainly.
        raise UserError(
            f"Cannot open vmcore '{config.vmcore}': {dump.file.warnings[0]}; what is left does not "
            f"hold the kernel's task list ({describe_fault(exc, dump.prog)})"
        ) from None
    info = panic_info(dump.prog)
    module_problem = module_list_problem(dump.prog)
    if module_problem is not None:
        dump.warnings.append(module_problem)
    dump.warnings += [problem.located("launch.json").message for problem in config.directory_problems()]
    dump.timings["tasks"] = time.monotonic() - t0
    state.sources = SourceMap.from_config(config)
    state.open(dump, listing, crashed, info)
    if state.stacks is not None:
        state.stacks.prefetch = prefetch
    log.info(
        "launch: %d threads%s, crashed thread %s, timings %s",
        listing.listed,
        "" if listing.done else f" so far (about {listing.expected()} in all, listed after the stop)",
        state.crashed_thread_id,
        dump.timings,
    )


def _large(listing: TaskListing) -> bool:
    """Whether the dump has so many tasks that they are listed after the stop (and their stacks read
    ahead on a second process while they are)."""
    return listing.expected() > LIST_AFTER_STOP_ABOVE


@registry.request("configurationDone")
def configuration_done(session: Session, args: Args) -> None:
    """Acknowledge the end of configuration, then report the stop."""
    current_dump(session)
    state = dump_state(session)
    session.after_response(lambda: _announce_stop(session, state))


def _stop_target(state: DumpState) -> tuple[int, str]:
    """Return ``(thread id, reason)`` of the one stop of the session."""
    dump = state.dump
    assert dump is not None
    if state.crashed_thread_id is not None and dump.config.stop_on_panic:
        return state.crashed_thread_id, "exception"
    focus = focus_task(dump.prog, prefer_crashed=False)
    thread_id = state.thread_for_address(focus.value_()) if focus is not None else None
    if thread_id is None:  # any listed task will do when CPU 0's cannot be read
        log.warning("CPU 0's current task is not readable or not listed")
        thread_id = state.crashed_thread_id or 1
    return thread_id, "pause"


def _announce_stop(session: Session, state: DumpState) -> None:
    dump = state.dump
    assert dump is not None
    session.output(f"vmcore-dap: opened {dump.config.vmcore}: {dump.filter_description}\n")
    for warning in dump.warnings:
        important = any(word in warning for word in ("truncated", "corrupt", "cannot be read"))
        session.output(f"vmcore-dap: warning: {warning}\n", category="important" if important else "console")
    thread_id, reason = _stop_target(state)
    state.stopped_thread_id = thread_id
    body: dict[str, Any] = {"reason": reason, "threadId": thread_id, "allThreadsStopped": True}
    panic = state.panic
    if reason == "exception" and panic is not None:
        body["description"] = panic.panic or panic.oops or "kernel panic"
        body["text"] = panic.oops or panic.panic or "kernel panic"
    elif state.crashed_thread_id is None:
        body["description"] = "Paused: the dump was taken without a panic (showing CPU 0's task)"
    else:
        body["description"] = "Paused (stopOnPanic is false: showing CPU 0's task)"
    if state.all_listed:
        session.send_event("stopped", body)
        _after_stop(session)
        session.run_when_idle(lambda: _match_stacks(session, state), quiet=MATCH_QUIET)
        return
    # The progress starts before the stop, so a client knows at the stop that the list will grow.
    progress = session.start_progress(
        "Listing tasks", f"{state.thread_count:,} so far", cancellable=False, interval=PROGRESS_INTERVAL
    )
    session.send_event("stopped", body)
    _after_stop(session)
    session.run_when_idle(lambda: _list_more(session, state, progress), quiet=LIST_QUIET)


def _after_stop(session: Session) -> None:
    for listener in AFTER_STOP:
        try:
            listener(session)
        except Exception:  # noqa: BLE001 - never undo a stop that was announced
            log.exception("after-stop listener %s failed", getattr(listener, "__name__", listener))


def _list_more(session: Session, state: DumpState, progress: Progress) -> bool:
    """One step of listing the rest of the tasks (a background job); ``True`` when the list is whole
    (then published, with its ``thread`` event, by :func:`complete_thread_list`)."""
    listing = state.listing
    done = True
    if listing is not None:
        try:
            done = listing.step(LISTING_CHUNK)
        except drgn.FaultError as exc:  # the walk's first chunk at launch read fine: say where it stopped
            why = describe_fault(exc, current_dump(session).prog)
            session.output(f"vmcore-dap: warning: the task list stops early: {why}\n")
        if not done:
            expected = max(listing.expected(), 1)
            progress.update(f"{listing.listed:,} of about {expected:,}", 100.0 * listing.listed / expected)
            return False
        complete_thread_list(session)
        log.info("listed %d tasks after the stop", state.thread_count)
    progress.end()
    session.run_when_idle(lambda: _match_stacks(session, state), quiet=MATCH_QUIET)
    return True


def _match_stacks(session: Session, state: DumpState) -> bool:
    """One step of reading and matching every task's stack once the list is whole (a background
    job, the module docstring); ``True`` when every task is done, here or by a request."""
    service = state.stacks
    if service is None or not state.all_listed:
        return True
    before = service.matched
    t0 = time.process_time()
    done = service.match_stacks(MATCH_CHUNK)
    state.background_cpu += time.process_time() - t0
    if done and before < len(service.tasks):
        log.info(
            "matched every task's stack in the background: %d tasks, %.2f s CPU, %d unwound",
            len(service.tasks),
            state.background_cpu,
            service.unwound,
        )
    return done
