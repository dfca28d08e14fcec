"""The scale sample (``many-tasks``: 5,067 tasks, 5,000 of them threads of one process) against crash.

Thread list and PIDs equal crash's ``ps``; the stacks of the 8 tasks blocked on ``labbug_mutex``
equal crash's ``foreach bt`` under the shared normalisation; and the reader keeps answering
``threads`` while the worker is busy with a request that unwinds every task.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import (
    blocked_both_ways,
    grouped_service,
    normalized_dap_stack,
    open_sample_dump,
    parse_thread_name,
    source_line,
    stack_of,
    stopped_session,
)
from tests.helpers.crash_parse import crash_state_letter, parse_ps, parse_sys, split_tasks
from tests.helpers.stack_normalize import assert_stacks_match, normalize_crash_bt

from vmcore_dap.dump.console.commands import CrashConsole
from vmcore_dap.dump.console.reachable_tasks import listed_task_count
from vmcore_dap.dump.kernel.panic import crashed_task
from vmcore_dap.dump.kernel.tasks import TaskListing, program_listing
from vmcore_dap.dump.stacks.frames import share_stack, unwind_task
from vmcore_dap.dump.stacks.signature import StackWords, read_stack_words
from vmcore_dap.handlers.stack import INLINE_SUFFIX

pytestmark = pytest.mark.timeout(900)

#: A request must never take longer than this on the loaded test machine (a hang fails here).
REQUEST_TIMEOUT = 120


def _threads(client: Any) -> list[dict[str, Any]]:
    threads: list[dict[str, Any]] = client.call("threads", timeout=REQUEST_TIMEOUT)["threads"]
    return threads


def test_threads_equal_crash_ps(sample_many: Any, crash_many: dict[str, str], tmp_path: Path) -> None:
    expected = sample_many.expected
    ps = parse_ps(crash_many["ps"])
    with stopped_session(sample_many, tmp_path) as (client, stopped):
        t0 = time.monotonic()
        threads = _threads(client)
        print(f"threads: {len(threads)} in {time.monotonic() - t0:.3f} s")
    ours = [parse_thread_name(t["name"]) for t in threads]
    ids = [t["id"] for t in threads]
    assert len(set(ids)) == len(ids) and all(0 < i < 2**31 for i in ids)
    assert len(ours) == len(ps) >= expected["min_tasks"] > 5000
    assert Counter(t["pid"] for t in ours) == Counter(row.pid for row in ps)
    crash_states = Counter((row.pid, crash_state_letter(row.state), row.name) for row in ps)
    assert Counter((t["pid"], t["state"], t["comm"]) for t in ours) == crash_states
    # The one process with 5,000 threads: its main thread and every thread, as crash lists them.
    many = [t for t in ours if t["comm"] == expected["many_comm"]]
    assert len(many) == expected["many_threads"] + 1 == sum(1 for r in ps if r.name == expected["many_comm"])
    assert expected["many_pid"] in {t["pid"] for t in many}
    # D: the scenario's 8 waiters, and any other task crash saw in UN at that instant.
    d_pids = sorted(t["pid"] for t in ours if t["state"] == "D")
    assert d_pids == sorted(row.pid for row in ps if row.state == "UN")
    assert set(expected["d_state_pids"]) <= set(d_pids) and len(expected["d_state_pids"]) == 8
    assert ours[0]["pid"] == expected["crashed_pid"] and stopped["body"]["threadId"] == ids[0]


def test_d_state_stacks_equal_crash_foreach_bt(
    sample_many: Any, crash_many: dict[str, str], tmp_path: Path
) -> None:
    chunks = {int(c.split()[1]): c for c in split_tasks(crash_many["foreach-bt"])}
    d_pids = sample_many.expected["d_state_pids"]
    assert len(d_pids) == 8
    with stopped_session(sample_many, tmp_path) as (client, _):
        by_pid = {parse_thread_name(t["name"])["pid"]: t["id"] for t in _threads(client)}
        for pid in d_pids:
            frames = stack_of(client, by_pid[pid])
            names = [f["name"] for f in frames]
            assert "__mutex_lock" in names and "labbug_wait_write" in names, (pid, names)
            assert names[-1].startswith("write(fd="), (pid, names)
            assert_stacks_match(
                normalized_dap_stack(frames), normalize_crash_bt(chunks[pid]), check_lines="first"
            )


def test_threads_answer_while_every_task_is_unwound(sample_many: Any, tmp_path: Path) -> None:
    """``vmcore/stackGroups`` with ``exact`` unwinds all 5,067 tasks on the worker (seconds); a
    ``threads`` sent after it is answered first, quickly, by the reader."""
    with stopped_session(sample_many, tmp_path) as (client, _):
        expected_count = len(_threads(client))
        t0 = time.monotonic()
        long_seq = client.send_request("vmcore/stackGroups", {"exact": True})
        time.sleep(0.2)  # let the worker start on it
        t1 = time.monotonic()
        quick = client.wait_response(client.send_request("threads"), timeout=REQUEST_TIMEOUT)
        threads_seconds = time.monotonic() - t1
        groups = client.wait_response(long_seq, timeout=600)
        long_seconds = time.monotonic() - t0
        print(f"threads while busy: {threads_seconds:.3f} s; stackGroups exact: {long_seconds:.1f} s")
        assert quick["success"] and len(quick["body"]["threads"]) == expected_count
        assert groups["success"], groups.get("message")
        assert groups["body"]["taskCount"] == expected_count
        order = client.response_order
        assert order.index(quick["request_seq"]) < order.index(long_seq), (
            "threads waited for the long request"
        )
        assert threads_seconds < min(5.0, long_seconds / 2), (threads_seconds, long_seconds)


def test_shared_stacks_equal_each_tasks_own_unwinding(sample_many: Any, tmp_path: Path) -> None:
    """20 sleeping tasks whose stacks share one unwound task's: the adapter presents them from it.
    Each one's ``stackTrace`` must still equal drgn's unwinding of that very task (names, lines, pcs,
    the syscall label from its own registers), and ``scopes``/``variables`` on a shared frame must
    show that task's registers (its own stack pointer)."""
    service = grouped_service(sample_many)
    prog = service.prog
    sharing: dict[int, list[int]] = {}
    for key in service.tasks:
        representative = service.representative(key)
        if representative is not None:
            sharing.setdefault(representative, []).append(key)
    members = max(sharing.values(), key=len)
    assert len(members) >= 20
    chosen = [service.tasks[k] for k in members[:: len(members) // 20][:20]]
    with stopped_session(sample_many, tmp_path) as (client, _):
        by_pid = {parse_thread_name(t["name"])["pid"]: t["id"] for t in _threads(client)}
        stack_pointers = set()
        for info in chosen:
            frames = stack_of(client, by_pid[info.pid])
            own = unwind_task(prog, info.task)
            assert own.trace is not None
            assert [f["name"].removesuffix(INLINE_SUFFIX) for f in frames] == [f.name for f in own.frames]
            assert [f.get("presentationHint") == "label" for f in frames] == [
                f.kind == "label" for f in own.frames
            ]
            dap_pcs = [
                int(f["instructionPointerReference"], 16) if "instructionPointerReference" in f else None
                for f in frames
            ]
            assert dap_pcs == [f.pc for f in own.frames]
            assert [source_line(f) if f.get("source") else 0 for f in frames] == [f.line for f in own.frames]
            kernel_pcs = [f.pc for f in own.trace if f.pc >= 1 << 47]
            assert [
                pc for pc, f in zip(dap_pcs, frames, strict=True) if f.get("presentationHint") != "label"
            ] == kernel_pcs
            assert frames[-1]["name"] == own.frames[-1].name  # the syscall with this task's arguments
            # The innermost frame's Registers: this task's own stack pointer, not the first task's.
            scopes = {s["name"]: s for s in client.call("scopes", {"frameId": frames[0]["id"]})["scopes"]}
            registers = {
                v["name"]: v["value"]
                for v in client.call(
                    "variables", {"variablesReference": scopes["Registers"]["variablesReference"]}
                )["variables"]
            }
            own_sp = own.frames[0].frame.registers()["rsp"] if own.frames[0].frame is not None else None
            assert own_sp is not None and int(registers["rsp"], 16) == own_sp
            stack_pointers.add(own_sp)
        assert len(stack_pointers) == len(chosen)  # the check above can tell the tasks apart


def _stale_text_words(words: StackWords, other: StackWords, chain: tuple[tuple[int, int], ...]) -> bool:
    """Whether ``words`` holds, below the last return address of ``chain``, a kernel-text word that is
    not a return address of the chain and differs from ``other``'s word there (a word a stack
    signature of all kernel words would have told apart)."""
    slots = {slot for slot, _pc in chain}
    last = max(slots)
    for slot in range(last):
        mine, theirs = words.word(slot), other.word(slot)
        if slot not in slots and mine is not None and mine >= 0xFFFFFFFF80000000 and mine != theirs:
            return True
    return False


def test_stale_words_between_return_addresses_do_not_defeat_sharing(sample_many: Any) -> None:
    """Unused slots of a sleeping task's frames hold words left over from earlier calls, often stale
    return addresses, different from task to task. The walk along the return addresses never reads
    them: tasks that differ only there share one unwinding (that is what keeps grouping 5,000 or
    50,000 tasks to one unwinding per stack), and what each is given is exactly its own unwinding."""
    service = grouped_service(sample_many)
    prog = service.prog
    chains = service.chains
    keyed: dict[object, int] = {}
    without = 0
    stale = []  # (task, representative key): shared despite stale words of its own
    for key, info in service.tasks.items():
        words = None if info.on_cpu or key == service.crashed_key else read_stack_words(prog, info.task)
        chain = chains.chain_of(words) if words is not None else None
        if chain is None:
            without += 1
            continue
        keyed[chain] = keyed.get(chain, 0) + 1
        representative = service.representative(key)
        if representative is None:
            continue
        other = read_stack_words(prog, service.tasks[representative].task)
        assert other is not None
        if _stale_text_words(words, other, chain[1]):  # type: ignore[arg-type]
            stale.append((info, representative))
    print(
        f"{len(service.tasks)} tasks: {service.unwound} unwound, {len(keyed)} chains, {without} without one, "
        f"{len(stale)} shared despite stale words"
    )
    assert len(stale) >= 50, "the sample no longer shows stale words between return addresses"
    # One unwinding per chain, plus the tasks without one (on a CPU, the crashed task, unreadable).
    assert service.unwound <= len(keyed) + without
    for info, representative in stale[:: max(1, len(stale) // 25)]:
        shared = share_stack(prog, service.stack(representative), info.task, info)
        own = unwind_task(prog, info.task)
        assert shared is not None
        assert [(f.kind, f.name, f.pc, f.line) for f in shared.frames] == [
            (f.kind, f.name, f.pc, f.line) for f in own.frames
        ]


def test_blocked_tasks_from_shared_stacks_equal_each_tasks_own_unwinding(sample_many: Any) -> None:
    """``vmcore/blocked`` reads a waiter's lock from the stack it shares with an unwound task
    (``dump/stacks/waits.py``): every D task's lock, owner, slow path and wait must be what drgn's
    unwinding of that very task gives."""
    fast, slow, finder = blocked_both_ways(grouped_service(sample_many))
    assert fast == slow
    waiting = {row[0] for row in fast if row[2] is not None and row[2][1] is not None}
    assert len(waiting) >= len(sample_many.expected["d_state_pids"]) == 8
    assert finder.shared > 0, "no waiter's lock came from a shared stack"
    print(f"{len(fast)} blocked: {finder.shared} from a shared stack, {finder.unwound} unwound")


def test_sys_tasks_from_the_listing_equal_drgns_walk_and_crash(
    sample_many: Any, crash_many: dict[str, str]
) -> None:
    """``sys``'s TASKS is counted from the session's task listing once that read the whole PID table
    (the Kernel view's summary no longer walks 50,000 tasks a second time): the same number as
    drgn's own walk, before any listing, and as crash's ``sys``."""
    prog = open_sample_dump(sample_many).prog
    console = CrashConsole(prog)
    assert program_listing(prog) is None
    walked = parse_sys(console.run_checked("sys"))["TASKS"]
    assert program_listing(prog) is None, "sys made a listing: the first count was not drgn's walk"
    TaskListing(prog, crashed_task(prog)).tasks()
    assert listed_task_count(prog) is not None
    listed = parse_sys(console.run_checked("sys"))["TASKS"]
    assert walked == listed == parse_sys(crash_many["sys"])["TASKS"]
