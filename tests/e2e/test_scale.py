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

import drgn
import pytest
from drgn.helpers.linux.pid import find_task
from tests.e2e._session import (
    normalized_dap_stack,
    open_sample_dump,
    parse_thread_name,
    source_line,
    stack_of,
    stopped_session,
)
from tests.helpers.crash_parse import CRASH_STATE_TO_LETTER, parse_ps, split_tasks
from tests.helpers.stack_normalize import assert_stacks_match, normalize_crash_bt

from vmcore_dap.dump.kernel.tasks import list_tasks
from vmcore_dap.dump.stacks.frames import share_stack, unwind_task
from vmcore_dap.dump.stacks.signature import stack_signature
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
    crash_states = Counter((row.pid, CRASH_STATE_TO_LETTER[row.state], row.name) for row in ps)
    assert Counter((t["pid"], t["state"], t["comm"]) for t in ours) == crash_states
    # The one process with 5,000 threads: its main thread and every thread, as crash lists them.
    many = [t for t in ours if t["comm"] == expected["many_comm"]]
    assert len(many) == expected["many_threads"] + 1 == sum(1 for r in ps if r.name == expected["many_comm"])
    assert expected["many_pid"] in {t["pid"] for t in many}
    assert sorted(t["pid"] for t in ours if t["state"] == "D") == sorted(expected["d_state_pids"])
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
    """20 sleeping tasks with one stack signature: the adapter unwinds the first and presents the
    others from it. Each one's ``stackTrace`` must still equal drgn's unwinding of that very task
    (names, lines, pcs, the syscall label from its own registers), and ``scopes``/``variables`` on a
    shared frame must show that task's registers (its own stack pointer)."""
    prog = open_sample_dump(sample_many).prog
    with stopped_session(sample_many, tmp_path) as (client, _):
        threads = _threads(client)
        by_signature: dict[tuple[object, ...], list[tuple[int, drgn.Object]]] = {}
        for thread in threads:
            parsed = parse_thread_name(thread["name"])
            if parsed["cpu"] is not None:
                continue  # idle tasks and tasks on a CPU are always unwound on their own
            task = find_task(prog, parsed["pid"])
            signature = stack_signature(prog, task)
            if signature is not None:
                by_signature.setdefault(tuple(signature.keys()), []).append((thread["id"], task))
        members = max(by_signature.values(), key=len)
        assert len(members) >= 20
        sample = members[:: len(members) // 20][:20]
        stack_pointers = set()
        for thread_id, task in sample:
            frames = stack_of(client, thread_id)
            own = unwind_task(prog, task)
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
        assert len(stack_pointers) == len(sample)  # the check above can tell the tasks apart


def test_stale_entry_addresses_below_the_cut_do_not_defeat_sharing(sample_many: Any) -> None:
    """Uninitialised slots of a system call's frame often hold stale return addresses into
    ``do_syscall_64`` below the real one; the signature's first candidate cut is then wrong. A task's
    later candidates must still find the stack of a task unwound before (that is what keeps
    ``stackTrace`` of every thread from unwinding hundreds of tasks), and what it is given must be
    exactly its own unwinding."""
    prog = open_sample_dump(sample_many).prog
    infos = [i for i in list_tasks(prog) if not i.on_cpu]
    registered: dict[tuple[object, ...], Any] = {}
    rescued = []  # (task, representative stack): found by a candidate other than the first
    unwound = 0
    for info in infos:
        signature = stack_signature(prog, info.task)
        if signature is None:
            continue
        keys = list(signature.keys())
        if keys[0] in registered:
            continue
        later = next((registered[k] for k in keys[1:] if k in registered), None)
        if later is not None:
            rescued.append((info.task, later))
            continue
        stack = unwind_task(prog, info.task)
        unwound += 1
        reusable = signature.reusable_key(stack.trace)
        if reusable is not None:
            registered[reusable] = stack
    print(f"{len(infos)} sleeping tasks: {unwound} unwound, {len(rescued)} found by a later candidate")
    assert len(rescued) >= 50, "the sample no longer shows stale return addresses below the cut"
    assert unwound < len(rescued)
    for task, representative in rescued[:: max(1, len(rescued) // 25)]:
        shared = share_stack(prog, representative, task)
        own = unwind_task(prog, task)
        assert shared is not None
        assert [(f.kind, f.name, f.pc, f.line) for f in shared.frames] == [
            (f.kind, f.name, f.pc, f.line) for f in own.frames
        ]
