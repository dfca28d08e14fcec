"""``threads`` against crash's ``ps``: the same tasks (idle tasks included), states and CPUs, on every
kernel of the matrix (arm64's crash IPI takes the stopped CPUs offline: their idle tasks are threads
too, as crash's ``ps`` lists them)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import parse_thread_name, stopped_session
from tests.helpers.crash_parse import crash_state_letter, parse_ps

pytestmark = pytest.mark.timeout(900)


@pytest.mark.every_kernel
def test_threads_equal_crash_ps(sample: Any, crash_answers: dict[str, str], tmp_path: Path) -> None:
    ps = parse_ps(crash_answers["ps"])
    with stopped_session(sample, tmp_path) as (client, stopped):
        threads = client.call("threads")["threads"]
    ids = [t["id"] for t in threads]
    assert len(set(ids)) == len(ids) and all(0 < i < 2**31 for i in ids)
    ours = [parse_thread_name(t["name"]) for t in threads]
    assert len(ours) == len(ps) >= sample.expected["min_tasks"]
    assert Counter(t["pid"] for t in ours) == Counter(row.pid for row in ps)
    assert sum(1 for t in ours if t["pid"] == 0) == sum(1 for row in ps if row.pid == 0) >= 2  # idle tasks
    # States as ps letters, per PID (idle tasks share PID 0 and are all running).
    crash_states = Counter((row.pid, crash_state_letter(row.state), row.name) for row in ps)
    assert Counter((t["pid"], t["state"], t["comm"]) for t in ours) == crash_states
    # The tasks that were on a CPU carry it, as crash's ">" marks them.
    assert {(t["pid"], t["cpu"]) for t in ours if t["cpu"] is not None} == {
        (row.pid, row.cpu) for row in ps if row.active
    }
    assert ours[0]["pid"] == sample.expected["crashed_pid"] and stopped["body"]["threadId"] == ids[0]


def test_d_state_tasks_are_listed_as_d(sample_oops: Any, crash_oops: dict[str, str], tmp_path: Path) -> None:
    with stopped_session(sample_oops, tmp_path) as (client, _):
        threads = [parse_thread_name(t["name"]) for t in client.call("threads")["threads"]]
    d_pids = sorted(t["pid"] for t in threads if t["state"] == "D")
    # crash's UN tasks: the scenario's waiters, and any task that slept uninterruptibly at that instant.
    assert d_pids == sorted(row.pid for row in parse_ps(crash_oops["ps"]) if row.state == "UN")
    assert set(sample_oops.expected["d_state_pids"]) <= set(d_pids)
