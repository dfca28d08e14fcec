"""The Kernel view's custom requests against crash, on real dumps through the real adapter.

* ``vmcore/stackGroups``: the groups and their counts equal crash's ``foreach bt`` grouped by the
  same normalisation (``tests/helpers/crash_compare.bt_functions_by_pid``); the fast path (one unwind
  per stack signature) gives exactly the groups of unwinding every task.
* ``vmcore/blocked``: crash's UN tasks; oops-null's waiters wait on the module's mutex, whose owner
  is the task the scenario made hold it (``expected.mutex_holder_pid``); wait times equal crash's
  ``ps -m``.
* ``vmcore/summary``: ``sys`` facts equal crash's ``sys``; the faulting frame is the manifest's.
* ``vmcore/cpus``: each CPU's task and its state equal crash's ``ps`` active (``>``) rows, the
  function it was in crash's ``bt -a``.
* ``vmcore/selectThread``: a ``stopped`` event for that thread with ``preserveFocusHint: false``.
* ``vmcore/crashReport``: Markdown naming the panic, the faulting function and the biggest group.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samples.crash_choice import dump_facts
from tests.conftest import answers_for, get_crash_answers, get_sample, kernel_sample_keys, sample_id
from tests.e2e._session import open_sample_dump, stopped_session
from tests.helpers import crash_compare as cc
from tests.helpers.crash_site import guest_rip
from tests.helpers.dap_client import DapClient
from tests.helpers.kernel_config import config_hz, jiffies_uptime

#: The huge sample's run is ``make test-huge`` (marker ``huge``), not ``make test``.
SCENARIOS = ("oops-null", "sysrq-c", "many-tasks", pytest.param("huge", marks=pytest.mark.huge))
#: The crashed samples of the other kernels of this run (make test: sysrq-c of each), by test id;
#: the tests parametrised with them (:data:`EVERY_KERNEL`) hold the Kernel view's summary, CPUs and
#: report to crash's answers (or, where the oracle table distrusts them, the dump's own clocks) on
#: every kernel. Its groups are the Call Stacks normalised on every kernel (test_stack_agreement),
#: and the Call Stacks crash's foreach bt (test_stack).
OTHER_KERNELS = {f"{key[0]}@{key[1]}": key for key in kernel_sample_keys()}
EVERY_KERNEL = pytest.mark.parametrize("scenario", [*SCENARIOS, *OTHER_KERNELS], indirect=True)
USER_MODE = "<user mode>"

pytestmark = pytest.mark.timeout(1800)  # building a missing sample boots a VM, crash reads 5,000 stacks


@pytest.fixture(scope="module", params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def session(scenario: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DapClient, Any]]:
    sample = get_sample(*OTHER_KERNELS[scenario]) if scenario in OTHER_KERNELS else get_sample(scenario)
    with stopped_session(sample, tmp_path_factory.mktemp(f"kv-{scenario}")) as (client, _stopped):
        yield client, sample


def _crash_groups(foreach_bt: str) -> Counter[tuple[str, ...]]:
    """crash's ``foreach bt`` grouped the way the adapter groups: {functions: number of tasks}."""
    groups: Counter[tuple[str, ...]] = Counter()
    for functions in cc.bt_functions_by_pid(foreach_bt).values():
        groups[tuple(functions) or (USER_MODE,)] += 1
    return groups


@pytest.mark.timeout(600)
def test_stack_groups_equal_crash_foreach_bt(session: tuple[DapClient, Any], scenario: str) -> None:
    client, sample = session
    body = client.call("vmcore/stackGroups", timeout=300)
    ours = Counter({tuple(f["function"] for f in g["frames"]): g["count"] for g in body["groups"]})
    theirs = _crash_groups(get_crash_answers(scenario)["foreach-bt"])
    assert sum(ours.values()) == body["taskCount"] == sum(theirs.values())
    only_ours = {k: v for k, v in ours.items() if theirs.get(k) != v}
    only_theirs = {k: v for k, v in theirs.items() if ours.get(k) != v}
    assert not only_ours and not only_theirs, f"groups differ\n ours: {only_ours}\n crash: {only_theirs}"
    counts = [g["count"] for g in body["groups"]]
    assert counts == sorted(counts, reverse=True), "groups are sorted by size"
    assert body["groupCount"] == len(body["groups"])


@pytest.mark.timeout(600)
def test_group_members_are_crash_tasks(session: tuple[DapClient, Any], scenario: str) -> None:
    """Every member of a group is a task crash puts in the same group (by PID), states add up."""
    client, _sample = session
    body = client.call("vmcore/stackGroups", timeout=300)
    crash_by_pid: dict[tuple[str, ...], list[int]] = {}
    for (pid, _task), functions in cc.bt_functions_by_pid(get_crash_answers(scenario)["foreach-bt"]).items():
        crash_by_pid.setdefault(tuple(functions) or (USER_MODE,), []).append(pid)
    for group in body["groups"]:
        key = tuple(f["function"] for f in group["frames"])
        assert sorted(group["pids"]) == sorted(crash_by_pid[key]), key
        assert len(group["threadIds"]) == group["count"] == sum(group["states"].values())
        assert group["stateLetters"][0] == max(group["states"], key=lambda s: group["states"][s])


@pytest.mark.timeout(3600)  # huge: drgn unwinds 50,000 tasks one by one
def test_fast_grouping_equals_unwinding_every_task(session: tuple[DapClient, Any]) -> None:
    client, _sample = session
    fast = client.call("vmcore/stackGroups", timeout=300)
    exact = client.call("vmcore/stackGroups", {"exact": True}, timeout=3000)
    shape = [(tuple(f["function"] for f in g["frames"]), sorted(g["threadIds"])) for g in fast["groups"]]
    assert shape == [
        (tuple(f["function"] for f in g["frames"]), sorted(g["threadIds"])) for g in exact["groups"]
    ]
    assert exact["unwound"] == exact["taskCount"]
    assert fast["unwound"] <= fast["taskCount"]


@pytest.mark.timeout(600)
@EVERY_KERNEL
def test_summary_facts_equal_crash_sys(session: tuple[DapClient, Any], scenario: str) -> None:
    client, sample = session
    body = client.call("vmcore/summary", timeout=120)
    ours = {f["name"]: cc.squash(f["value"]) for f in body["facts"]}
    answers = answers_for(sample)
    theirs = cc.sys_fields(answers["sys"])
    uptime = jiffies_uptime(open_sample_dump(sample).prog, config_hz(sample))
    differences = cc.sys_differences(ours, answers, dump_facts(sample).vmcoreinfo, uptime)
    assert not differences, differences
    assert ours["PANIC"].strip('"').split('"')[0] == theirs["PANIC"].strip('"').split('"')[0]
    # A filtered dump is marked as crash marks it, without a console line run first in this session.
    assert ("[PARTIAL DUMP]" in ours["DUMPFILE"]) == ("[PARTIAL DUMP]" in theirs["DUMPFILE"]), ours[
        "DUMPFILE"
    ]
    assert abs(cc.memory_bytes(ours["MEMORY"]) - cc.memory_bytes(theirs["MEMORY"])) < 1 << 20
    assert body["panic"] == sample.expected["panic"]
    if sample.scenario == "oops-null":  # the guest recorded its oops (every kernel's oops-null)
        assert body["oops"] == sample.expected["oops_line"]
        assert "O" in body["taint"], body["taint"]
        frame = body["faultingFrame"]
        assert frame["name"] == sample.expected["function"]
        assert frame["source"]["name"] == sample.expected["file"]
        assert frame["line"] == sample.expected["line"]
        assert any(sample.expected["oops_line"] in line for line in body["report"])
    assert body["crashedThreadId"] == 1
    assert body["logTail"], "the log's last lines"


@pytest.mark.timeout(600)
@EVERY_KERNEL
def test_cpus_equal_crash_active_tasks(session: tuple[DapClient, Any], scenario: str) -> None:
    client, sample = session
    cpus = client.call("vmcore/cpus")["cpus"]
    answers = answers_for(sample)
    active = {row.cpu: row for row in cc.ps_entries(answers["ps"]) if row.active}
    assert {c["cpu"]: (c["pid"], int(c["task"], 16)) for c in cpus} == {
        cpu: (row.pid, row.task) for cpu, row in active.items()
    }
    crashed = [c for c in cpus if c["crashed"]]
    assert len(crashed) == 1 and crashed[0]["pid"] == sample.expected["crashed_pid"]
    assert crashed[0]["cpu"] == sample.expected["crashed_cpu"]
    if sample.scenario == "oops-null":  # the guest recorded its oops (every kernel's oops-null)
        assert crashed[0]["function"] == sample.expected["function"]
    # What each CPU was doing is a race (oops-null's spinner is usually in user mode on CPU 1, but a
    # kworker may have had the CPU, or an interrupt the spinner): crash's bt -a of the same dump says.
    entries = frozenset(answers.meta["crash"]["site_rule"][0])  # arm64's vectors (crash_choice)
    bt_a = cc.bt_functions_by_pid(answers["bt-a"], exception_entries=entries)
    for cpu in cpus:
        functions = bt_a[(cpu["pid"], int(cpu["task"], 16))]
        theirs = functions[0] if functions else USER_MODE
        if theirs == "no symbolic reference":
            # crash cannot name a module's code (--no_modules on 7.x; answers.missing says why): the
            # crash site's function is then the guest's own oops line's (test_oracle: drgn finds the
            # manifest's function at crash's exception address).
            assert cpu["crashed"] and "dis-l" in answers.missing, (cpu, functions)
            theirs = guest_rip(sample)[0]
        assert cpu["function"] == theirs, (cpu, functions)
    states = {row.task: row.state for row in cc.ps_entries(answers["ps"])}
    assert {c["cpu"]: c["state"] for c in cpus} == {c["cpu"]: states[int(c["task"], 16)] for c in cpus}


def _crash_ps_m(ps_m: str, pids: list[int]) -> dict[int, str]:
    """The wait times of ``pids`` in crash's ``ps -m`` (the oracle's ``ps-m`` answer): {pid: duration}."""
    rows = {
        int(m["pid"]): m["time"]
        for m in re.finditer(r"^(?P<time>\[\d+ [\d:.]+\]) \[\w+\]\s+PID: (?P<pid>\d+)", ps_m, re.M)
    }
    missing = [pid for pid in pids if pid not in rows]
    assert not missing, f"crash's ps -m has no row for PID {missing}:\n{ps_m[:2000]}"
    return {pid: rows[pid] for pid in pids}


#: oops-null of the default kernel and of every other kernel of this run (make test-matrix's).
OOPS_NULL_KEYS = [("oops-null", None, None), *(key for key in kernel_sample_keys() if key[0] == "oops-null")]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("key", OOPS_NULL_KEYS, ids=sample_id)
def test_blocked_tasks_wait_on_the_mutex_its_holder_owns(
    tmp_path: Path, key: tuple[str, str | None, None]
) -> None:
    sample, answers = get_sample(*key), get_crash_answers(*key)
    with stopped_session(sample, tmp_path) as (client, _stopped):
        tasks = client.call("vmcore/blocked")["tasks"]
        # Every task crash shows in UN: the scenario's waiters, and any other task that happened to
        # sleep uninterruptibly at the instant of the dump (a kworker in wait_for_completion()).
        crash_d = sorted(r.pid for r in cc.ps_entries(answers["ps"]) if r.state == "D")
        assert sorted(t["pid"] for t in tasks) == crash_d
        waiters = [t for t in tasks if t["pid"] in sample.expected["d_state_pids"]]
        assert sorted(t["pid"] for t in waiters) == sorted(sample.expected["d_state_pids"])
        holder = sample.expected["mutex_holder_pid"]
        for task in waiters:
            lock = task["lock"]
            assert lock is not None, task
            assert lock["kind"] == "mutex"
            assert lock["owner"] is not None and lock["owner"]["pid"] == holder, lock
        assert all(task["threadId"] is not None for task in tasks)
        assert len({t["lock"]["address"] for t in waiters}) == 1, "all wait on one mutex"
        crash_times = _crash_ps_m(answers["ps-m"], crash_d)
        assert {t["pid"]: t["waited"] for t in tasks} == crash_times
        # Selecting the owner in the Call Stack: a stopped event that asks for focus.
        owner_thread = waiters[0]["lock"]["owner"]["threadId"]
        client.call("vmcore/selectThread", {"threadId": owner_thread})
        event = client.wait_event("stopped", lambda e: e["body"]["threadId"] == owner_thread, timeout=20)
        assert event["body"]["preserveFocusHint"] is False
        assert event["body"]["reason"] == "pause"


@pytest.mark.timeout(600)
@EVERY_KERNEL
def test_crash_report_markdown(session: tuple[DapClient, Any], scenario: str) -> None:
    client, sample = session
    markdown = client.call("vmcore/crashReport", timeout=300)["markdown"]
    groups = client.call("vmcore/stackGroups", {"limit": 1})["groups"]
    assert markdown.startswith("## Kernel crash: ")
    assert sample.expected["panic"] in markdown
    assert f"**×{groups[0]['count']}**" in markdown
    assert f"PID {sample.expected['crashed_pid']}" in markdown
    if sample.scenario == "oops-null":  # the guest recorded its oops (every kernel's oops-null)
        assert re.search(
            rf"^>#\d+\s+{sample.expected['function']}\b.*{sample.expected['file']}:{sample.expected['line']}",
            markdown,
            re.M,
        )
        assert "### Blocked tasks (D state)" in markdown
    assert markdown.count("```") % 2 == 0


def test_bad_requests_are_clear(session: tuple[DapClient, Any]) -> None:
    client, _sample = session
    response = client.request("vmcore/selectThread", {"threadId": 999999})
    assert not response["success"] and "unknown threadId 999999" in response["message"]
    response = client.request("vmcore/frameSource", {"pc": "nonsense"})
    assert not response["success"] and "'pc' must be an address" in response["message"]
