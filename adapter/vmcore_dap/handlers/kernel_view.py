"""Custom ``vmcore/*`` requests behind the extension's Kernel view, Stacks picture and crash report.

Documented for clients in ``docs/custom-requests.md``. Everything is computed on first request and
kept for the session (a dump never changes); grouping all stacks reports progress and honours
``cancel``. Thread ids are the ones ``threads`` hands out; task addresses travel as ``"0x…"`` strings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import PROGRESS_INTERVAL, Session
from vmcore_dap.dump.kernel.tasks import TaskInfo
from vmcore_dap.dump.stacks.groups import StackGroups
from vmcore_dap.dump.stacks.service import StackService
from vmcore_dap.errors import InvalidArguments, NotAvailable
from vmcore_dap.handlers.dump_state import (
    current_dump,
    dump_state,
    frame_id,
    stacks,
    task_stack,
    thread_task,
)
from vmcore_dap.handlers.source import source_for_address
from vmcore_dap.handlers.stack import format_frame, frame_listing

if TYPE_CHECKING:
    # The lock, summary and report modules load on the view's first request, not on the way to the
    # first picture (every handler module is imported at start).
    from vmcore_dap.dump.kernel.locks import BlockedTask
    from vmcore_dap.dump.report.summary import Summary

__all__: list[str] = []

log = logging.getLogger(__name__)


@dataclass
class _KernelViewState:
    summary: Summary | None = None
    blocked: list[BlockedTask] | None = None


def _state(session: Session) -> _KernelViewState:
    return session.component(_KernelViewState)


def _thread_ref(service: StackService, address: int) -> dict[str, Any] | None:
    """``{threadId, pid, comm, state, name}`` of the task at ``address``, or ``None`` if not listed."""
    thread_id = service.key_of(address)
    if thread_id is None:
        return None
    return _thread_body(thread_id, service.task(thread_id))


def _thread_body(thread_id: int, info: TaskInfo) -> dict[str, Any]:
    return {
        "threadId": thread_id,
        "pid": info.pid,
        "comm": info.comm,
        "state": info.state,
        "name": info.display_name,
    }


def _summary(session: Session) -> Summary:
    from vmcore_dap.dump.report.summary import summarize

    kv = _state(session)
    if kv.summary is None:
        dump = current_dump(session)
        panic = dump_state(session).panic
        assert panic is not None
        kv.summary = summarize(dump.prog, panic, stacks(session))
    return kv.summary


def _faulting_frame(session: Session) -> dict[str, Any] | None:
    state = dump_state(session)
    thread_id = state.crashed_thread_id
    if thread_id is None:
        return None
    stack = task_stack(session, thread_id)
    index = stack.focus
    info = stack.frames[index]
    frame = format_frame(
        frame_id(session, thread_id, index, stack), info, state.sources, frame_listing(session)
    )
    frame["threadId"] = thread_id
    frame["index"] = index
    return frame


@registry.request("vmcore/summary")
def summary(session: Session, args: Args) -> dict[str, Any]:
    """The panic summary: ``sys`` facts, panic and oops lines, taint, the oops report, the log's tail."""
    result = _summary(session)
    state = dump_state(session)
    panic = result.panic
    return {
        "facts": [{"name": name, "value": value} for name, value in result.facts],
        "panic": panic.panic,
        "oops": panic.oops,
        "taint": panic.taint,
        "taintDescription": panic.taint_description,
        "report": panic.report,
        "logTail": result.log_tail,
        "crashedThreadId": state.crashed_thread_id,
        "faultingFrame": _faulting_frame(session),
    }


@registry.request("vmcore/cpus")
def cpus(session: Session, args: Args) -> dict[str, Any]:
    """The task that was current on each CPU (online or stopped by the crash), and the function it was in."""
    from vmcore_dap.dump.report.summary import cpu_tasks

    state = dump_state(session)
    rows = []
    for cpu in cpu_tasks(current_dump(session).prog, stacks(session)):
        rows.append(
            {
                "cpu": cpu.cpu,
                "pid": cpu.pid,
                "comm": cpu.comm,
                "state": cpu.state,
                "idle": cpu.is_idle,
                "function": cpu.function,
                "task": f"{cpu.task.value_():#x}",
                "threadId": state.thread_for_address(cpu.task.value_()),
                "crashed": state.thread_for_address(cpu.task.value_()) == state.crashed_thread_id
                and state.crashed_thread_id is not None,
            }
        )
    return {"cpus": rows}


def _groups(session: Session, exact: bool) -> StackGroups:
    service = stacks(session)
    with session.progress(
        "Grouping kernel stacks", f"{len(service.tasks)} tasks", interval=PROGRESS_INTERVAL
    ) as progress:

        def check(done: int, total: int) -> None:
            progress.update(f"{done} of {total} tasks", 100.0 * done / max(total, 1))

        result = service.groups(check, exact=exact)
    log.info(
        "grouped %d tasks into %d stacks in %.2f s (%d unwound)",
        result.task_count,
        len(result.groups),
        result.seconds,
        result.unwound,
    )
    return result


@registry.request("vmcore/stackGroups")
def stack_groups(session: Session, args: Args) -> dict[str, Any]:
    """All tasks grouped by identical normalised stack, biggest group first.

    Arguments: ``exact`` (unwind every task instead of once per stack signature), ``limit`` (at
    most this many groups; 0 for all).
    """
    exact = args.boolean("exact", False)
    limit = args.integer("limit", 0, minimum=0)
    result = _groups(session, exact)
    groups = result.groups[:limit] if limit else result.groups
    return {
        "taskCount": result.task_count,
        "groupCount": len(result.groups),
        "seconds": round(result.seconds, 3),
        "unwound": result.unwound,
        "groups": [
            {
                "count": g.count,
                "states": dict(g.states.most_common()),
                "stateLetters": g.state_letters,
                "frames": [
                    {
                        "function": f.function,
                        "module": f.module,
                        "pc": f"{f.pc:#x}" if f.pc is not None else None,
                    }
                    for f in g.frames
                ],
                "threadIds": g.members,
                "pids": g.pids,
            }
            for g in groups
        ],
    }


def _blocked(session: Session) -> list[BlockedTask]:
    from vmcore_dap.dump.kernel.locks import blocked_tasks
    from vmcore_dap.dump.stacks.waits import LockFinder

    kv = _state(session)
    if kv.blocked is None:
        service = stacks(session)
        finder = LockFinder(service)
        kv.blocked = blocked_tasks(current_dump(session).prog, list(service.tasks.values()), finder.lock_of)
        log.info("blocked tasks: %d, %d unwound for their lock", len(kv.blocked), finder.unwound)
    return kv.blocked


@registry.request("vmcore/blocked")
def blocked(session: Session, args: Args) -> dict[str, Any]:
    """Tasks in ``D`` state: the lock each waits for, the lock's owner, how long it has waited."""
    from vmcore_dap.dump.kernel.locks import format_wait

    state = dump_state(session)
    rows = []
    for b in _blocked(session):
        row: dict[str, Any] = {
            "threadId": state.thread_for_address(b.info.address),
            "pid": b.info.pid,
            "comm": b.info.comm,
            "state": b.info.state,
            "name": b.info.display_name,
            "waitedNs": b.waited_ns,
            "waited": format_wait(b.waited_ns),
            "lock": None,
        }
        if b.lock is not None:
            owner_address = b.lock.owner_address
            row["lock"] = {
                "kind": b.lock.kind,
                "address": f"{b.lock.address:#x}" if b.lock.address is not None else None,
                "symbol": b.lock.symbol,
                "description": b.lock.description,
                "function": b.lock.function,
                "owner": _thread_ref(stacks(session), owner_address) if owner_address is not None else None,
                "ownerTask": f"{owner_address:#x}" if owner_address is not None else None,
                "ownerIsReaderHint": b.lock.owner_is_reader_hint,
            }
        rows.append(row)
    return {"tasks": rows}


@registry.request("vmcore/tasksInFunction")
def tasks_in_function(session: Session, args: Args) -> dict[str, Any]:
    """The tasks with a function on their stack, each with the frame of its first row in it.

    Arguments: ``function`` (any of its names: ``f``, ``f.isra.0`` and ``f.cold`` are one function,
    as the language server's code lenses count them). The frames are the Call Stack's own
    (``stackTrace`` gives the same ids), so a client can open or select them directly.
    """
    function = args.string("function").strip()
    if not function:
        raise InvalidArguments("vmcore/tasksInFunction: 'function' must name a function, e.g. \"schedule\"")
    service = stacks(session)
    state = dump_state(session)
    with session.progress("Finding the tasks", function, interval=PROGRESS_INTERVAL) as progress:

        def check(done: int, total: int) -> None:
            progress.update(f"{done} of {total} tasks", 100.0 * done / max(total, 1))

        keys = service.function_index(check).tasks_in(function)
    wanted = service.base_name(function)
    listing = frame_listing(session)
    tasks = []
    for number, thread_id in enumerate(keys):
        if number % 256 == 0:
            session.check_cancelled()
        stack = service.stack(thread_id)
        index = next(
            i
            for i, row in enumerate(stack.frames)
            if row.kind == "code" and service.base_name(row.function or row.name) == wanted
        )
        frame = format_frame(
            frame_id(session, thread_id, index, stack), stack.frames[index], state.sources, listing
        )
        tasks.append({**_thread_body(thread_id, service.task(thread_id)), "frame": frame})
    return {"function": wanted, "tasks": tasks}


@registry.request("vmcore/selectThread")
def select_thread(session: Session, args: Args) -> dict[str, Any]:
    """Make the client select a thread: re-send ``stopped`` for it with ``preserveFocusHint: false``.

    DAP gives a client no request to focus a thread, and VS Code's extension API cannot select one
    either; a ``stopped`` event for an already stopped thread makes VS Code fetch its stack and focus
    it. The crashed thread keeps its ``exception`` reason so its exception widget stays.
    """
    thread_id = args.integer("threadId")
    name = thread_task(session, thread_id).display_name
    state = dump_state(session)
    body: dict[str, Any] = {
        "threadId": thread_id,
        "preserveFocusHint": False,
        "allThreadsStopped": False,
    }
    panic = state.panic
    if (
        thread_id == state.crashed_thread_id
        and panic is not None
        and current_dump(session).config.stop_on_panic
    ):
        body["reason"] = "exception"
        body["description"] = panic.panic or panic.oops or "kernel panic"
        body["text"] = panic.oops or panic.panic or "kernel panic"
    else:
        body["reason"] = "pause"
        body["description"] = f"Selected in the Kernel view: {name}"
    session.after_response(lambda: session.send_event("stopped", body))
    return {"threadId": thread_id, "name": name}


@registry.request("vmcore/frameSource")
def frame_source(session: Session, args: Args) -> dict[str, Any]:
    """Where to show a code address: ``{source, line}`` (the file, else its disassembly listing).

    Arguments: ``pc`` (``"0x…"`` or an integer), ``returnAddress`` (look up the call, ``pc - 1``).
    """
    raw = args.raw.get("pc")
    try:
        pc = int(raw, 0) if isinstance(raw, str) else int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArguments(
            f"vmcore/frameSource: 'pc' must be an address like \"0xffffffff81000000\", got {raw!r}"
        ) from None
    info = source_for_address(session, pc, is_return_address=args.boolean("returnAddress", False))
    if info is None:
        raise NotAvailable(f"no function contains {pc:#x} (no debug info or symbol for it)")
    return {"source": info.source, "line": info.line, "column": info.column}


@registry.request("vmcore/crashReport")
def crash_report_request(session: Session, args: Args) -> dict[str, Any]:
    """The crash as Markdown for a bug tracker: ``sys``, the crashed stack with source lines, the oops
    log lines, the top stack groups and the blocked tasks."""
    from vmcore_dap.dump.report.crash_report import crash_report

    state = dump_state(session)
    top = args.integer("groups", 10, minimum=0)
    crashed = None
    if state.crashed_thread_id is not None:
        crashed = (
            thread_task(session, state.crashed_thread_id),
            task_stack(session, state.crashed_thread_id),
        )
    markdown = crash_report(
        _summary(session),
        crashed,
        _groups(session, False),
        _blocked(session),
        top_groups=top,
    )
    return {"markdown": markdown}
