"""The ten-times-larger sample (``huge``: ≈50,000 tasks on 8 CPUs) through the real adapter, against crash.

``make test-huge`` runs these (marker ``huge``); ``make test`` does not (pyproject's addopts). What
the guest did is in the manifest (``expected``: the kinds of sleepers with their processes, the locks
with holders and waiters from the labbug module's own log, the spinner on every CPU); crash's answers
on the same dump are the oracle for everything the dump itself says.

* ``threads`` lists exactly crash's ``ps`` (PIDs, states, names): every kind's processes and threads,
  the lock waiters in D, the stopped process in T, the zombies in Z.
* ``vmcore/blocked``: every D task waits on the lock the module says it blocked on, whose owner is its
  holder (a reader-owned rw-semaphore names one of its reader holders, as a hint); the chain holder
  (``lh-io``) waits on ``labbug_cfg_mutex`` while holding ``labbug_io_mutex``; the locks read from
  shared stacks equal drgn's unwinding of each waiter.
* The stacks of D tasks (each lock and mode) equal crash's ``foreach bt`` under the shared
  normalisation, and every task's stack group equals crash's grouping of its ``foreach bt``
  (``tests/e2e/test_kernel_view.py`` runs its tests on this sample too).
* The reader keeps answering ``threads`` while the worker groups 50,000 stacks; ``foreach bt`` in the
  Debug Console streams its output and stops on ``cancel``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import (
    blocked_both_ways,
    grouped_service,
    normalized_dap_stack,
    parse_thread_name,
    stack_of,
    stopped_session,
)
from tests.helpers.crash_parse import CRASH_STATE_TO_LETTER, parse_ps, split_tasks
from tests.helpers.dap_client import DapClient
from tests.helpers.stack_normalize import assert_stacks_match, normalize_crash_bt

pytestmark = [pytest.mark.huge, pytest.mark.timeout(3600)]

#: No request may take longer than this on the loaded test machine (a hang fails here; speed is
#: measured by make bench, not here).
REQUEST_TIMEOUT = 600


@pytest.fixture(scope="module")
def session(sample_huge: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DapClient, Any]]:
    with stopped_session(sample_huge, tmp_path_factory.mktemp("huge")) as (client, stopped):
        yield client, stopped


@pytest.fixture(scope="module")
def threads(session: tuple[DapClient, Any]) -> list[dict[str, Any]]:
    client, _stopped = session
    found: list[dict[str, Any]] = client.call("threads", timeout=REQUEST_TIMEOUT)["threads"]
    return found


def test_threads_equal_crash_ps(
    sample_huge: Any,
    crash_huge: dict[str, str],
    session: tuple[DapClient, Any],
    threads: list[dict[str, Any]],
) -> None:
    expected = sample_huge.expected
    ps = parse_ps(crash_huge["ps"])
    ours = [parse_thread_name(t["name"]) for t in threads]
    ids = [t["id"] for t in threads]
    assert len(set(ids)) == len(ids) and all(0 < i < 2**31 for i in ids)
    assert len(ours) == len(ps) >= expected["min_tasks"] > 50_000
    crash_rows = Counter((row.pid, CRASH_STATE_TO_LETTER[row.state], row.name) for row in ps)
    assert Counter((t["pid"], t["state"], t["comm"]) for t in ours) == crash_rows
    by_comm = Counter(t["comm"] for t in ours)
    for kind in expected["kinds"]:
        # Each process of a kind: its main thread (in pause) and its share of the kind's threads.
        assert by_comm[kind["comm"]] == kind["processes"] + kind["threads"], kind["name"]
        assert set(kind["pids"]) <= {t["pid"] for t in ours if t["comm"] == kind["comm"]}
    stopped = expected["stopped"]  # its main thread and every thread, stopped by SIGSTOP
    assert [t["state"] for t in ours if t["comm"] == stopped["comm"]] == ["T"] * (stopped["threads"] + 1)
    zombies = expected["zombies"]  # children that exited unreaped keep their parent's comm
    assert (
        sorted(t["state"] for t in ours if t["comm"] == zombies["comm"]) == ["S"] + ["Z"] * zombies["count"]
    )
    assert sorted(t["pid"] for t in ours if t["state"] == "D") == expected["d_state_pids"]
    assert ours[0]["pid"] == expected["crashed_pid"] and session[1]["body"]["threadId"] == ids[0]


def _lock_table(expected: dict[str, Any]) -> dict[int, tuple[str, dict[str, Any]]]:
    """pid → (lock name, waiter record) for every task the module logged as blocked."""
    return {w["pid"]: (lock["name"], w) for lock in expected["locks"] for w in lock["waiters"]}


def test_blocked_tasks_wait_on_their_lock_and_name_its_owner(
    sample_huge: Any, session: tuple[DapClient, Any]
) -> None:
    client, _stopped = session
    expected = sample_huge.expected
    holders = {lock["name"]: set(lock["holder_pids"]) for lock in expected["locks"]}
    # The guest's name for a kind of lock and the kernel's (struct mutex, struct rw_semaphore).
    kinds = {
        lock["name"]: {"mutex": "mutex", "rwsem": "rw_semaphore"}[lock["kind"]] for lock in expected["locks"]
    }
    waiting = _lock_table(expected)
    tasks = client.call("vmcore/blocked", timeout=REQUEST_TIMEOUT)["tasks"]
    assert sorted(t["pid"] for t in tasks) == expected["d_state_pids"]
    for task in tasks:
        name, waiter = waiting[task["pid"]]
        lock = task["lock"]
        assert lock is not None and lock["symbol"] == name, (task["pid"], waiter, lock)
        assert lock["kind"] == kinds[name], (name, lock)
        owner = lock["owner"]
        assert owner is not None and owner["pid"] in holders[name], (name, lock, holders[name])
        if name == "labbug_tree_rwsem":  # held by three readers: the owner field is a hint
            assert lock["ownerIsReaderHint"], lock
    chain = next(lock for lock in expected["locks"] if lock["name"] == "labbug_io_mutex")["holder_pids"]
    assert waiting[chain[0]][0] == "labbug_cfg_mutex", "the io mutex's holder waits for the cfg mutex"


def test_blocked_tasks_from_shared_stacks_equal_each_tasks_own_unwinding(sample_huge: Any) -> None:
    """The few hundred waiters' locks, read from the stacks they share (``dump/stacks/waits.py``),
    are what drgn's unwinding of each waiter gives, and most waiters need no unwinding of their own."""
    fast, slow, finder = blocked_both_ways(grouped_service(sample_huge))
    assert fast == slow
    assert sorted({row[0] for row in fast}) == sorted({row[0] for row in slow})
    assert finder.shared >= len(sample_huge.expected["d_state_pids"]) // 2, (finder.shared, finder.unwound)
    print(f"{len(fast)} blocked: {finder.shared} from a shared stack, {finder.unwound} unwound")


def test_d_state_stacks_equal_crash_foreach_bt(
    sample_huge: Any,
    crash_huge: dict[str, str],
    session: tuple[DapClient, Any],
    threads: list[dict[str, Any]],
) -> None:
    """One waiter of every (lock, mode) and the chain's holder: crash's ``foreach bt`` frames."""
    client, _stopped = session
    chunks = {int(c.split()[1]): c for c in split_tasks(crash_huge["foreach-bt"])}
    by_pid = {parse_thread_name(t["name"])["pid"]: t["id"] for t in threads}
    firsts: dict[tuple[str, str, str], int] = {}
    for pid, (name, waiter) in sorted(_lock_table(sample_huge.expected).items()):
        firsts.setdefault((name, waiter["mode"], waiter["op"]), pid)
    assert len(firsts) >= 6, firsts
    for (name, mode, _op), pid in firsts.items():
        frames = stack_of(client, by_pid[pid])
        names = [f["name"] for f in frames]
        assert "labbug_lock_write" in names, (name, pid, names)
        assert ("down_read" in " ".join(names)) == (mode == "read" and "rwsem" in name), names
        assert names[-1].startswith("write(fd="), (pid, names)
        assert_stacks_match(
            normalized_dap_stack(frames), normalize_crash_bt(chunks[pid]), check_lines="first"
        )


def test_threads_answer_while_every_stack_is_grouped(sample_huge: Any, tmp_path: Path) -> None:
    """``vmcore/stackGroups`` reads 50,000 stacks on the worker; a ``threads`` sent meanwhile is
    answered first, by the reader."""
    with stopped_session(sample_huge, tmp_path) as (client, _stopped):
        count = len(client.call("threads", timeout=REQUEST_TIMEOUT)["threads"])
        long_seq = client.send_request("vmcore/stackGroups")
        time.sleep(0.2)
        t1 = time.monotonic()
        quick = client.wait_response(client.send_request("threads"), timeout=REQUEST_TIMEOUT)
        threads_seconds = time.monotonic() - t1
        groups = client.wait_response(long_seq, timeout=REQUEST_TIMEOUT)
        assert quick["success"] and len(quick["body"]["threads"]) == count
        assert groups["success"] and groups["body"]["taskCount"] == count, groups.get("message")
        order = client.response_order
        assert order.index(quick["request_seq"]) < order.index(long_seq), "threads waited for the grouping"
        print(f"threads while grouping {count} stacks: {threads_seconds:.3f} s")


def test_foreach_bt_streams_and_stops_on_cancel(sample_huge: Any, tmp_path: Path) -> None:
    """The console's ``foreach bt`` sends its output as it goes; ``cancel`` ends it with a cancelled
    response long before 50,000 tasks are printed, and the session keeps working."""
    with stopped_session(sample_huge, tmp_path) as (client, _stopped):
        client.call("threads", timeout=REQUEST_TIMEOUT)
        start = len(client.events)  # the kernel log printed at the stop names PIDs too
        seq = client.send_request("evaluate", {"expression": "foreach bt", "context": "repl"})
        first = client.wait_event(
            "output", lambda e: "PID:" in e["body"]["output"], timeout=REQUEST_TIMEOUT, start=start
        )
        assert first["body"]["output"].lstrip().startswith("PID:"), first["body"]["output"][:200]
        client.call("cancel", {"requestId": seq})
        response = client.wait_response(seq, timeout=REQUEST_TIMEOUT)
        assert not response["success"] and "cancel" in response["message"].lower(), response
        printed = sum(
            e["body"]["output"].count("PID:") for e in client.events[start:] if e["event"] == "output"
        )
        assert printed < sample_huge.expected["min_tasks"] // 2, f"{printed} tasks printed before the cancel"
        assert client.call("threads", timeout=REQUEST_TIMEOUT)["threads"]
