"""A dump of a live guest (``no-panic``: QEMU ``dump-guest-memory``, nothing crashed): the adapter
stops with ``reason: "pause"`` on CPU 0's current task and everything else still works.

crash 8.0.6 cannot open this dump (9.0.2 can: ``samples/crash_choice.py``); these tests' oracles are
drgn on the same file (``cpu_curr``, the PID table), the table of task states evaluated with the kernel
source's defines (``tests/helpers/task_states.py``) and the facts the guest recorded before the dump
(``LABFACT`` lines: the spinning task and its CPU, the D-state waiters).

QEMU stops the guest at an arbitrary instant: which task each CPU was running (the spinner is
usually on its CPU, but a kworker may have had it), a task caught waking or in D for a moment, are
read from the dump, never assumed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import drgn
import pytest
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.pid import find_task, for_each_task
from drgn.helpers.linux.sched import cpu_curr, idle_task
from tests.e2e._session import config_for, focus_index, parse_thread_name, stack_of
from tests.helpers import crash_compare as cc
from tests.helpers.crash_parse import parse_bt
from tests.helpers.dap_client import DapClient
from tests.helpers.task_states import documented_letter, kernel_state_defines, raw_state

pytestmark = pytest.mark.timeout(600)

REQUEST_TIMEOUT = 120


class Session:
    """One adapter session on the ``no-panic`` sample, stopped."""

    def __init__(self, client: DapClient, stopped: dict[str, Any]) -> None:
        self.client = client
        self.stopped = stopped["body"]
        self.threads = client.call("threads", timeout=REQUEST_TIMEOUT)["threads"]
        self.by_id = {t["id"]: parse_thread_name(t["name"]) for t in self.threads}
        frames = stack_of(client, self.stopped["threadId"])
        self.frame_id = frames[focus_index(frames)]["id"]

    def thread_of(self, pid: int) -> int:
        ids = [tid for tid, t in self.by_id.items() if t["pid"] == pid]
        assert len(ids) == 1, (pid, ids)
        return ids[0]

    def console(self, line: str, *, frame: bool = True) -> tuple[str, dict[str, Any]]:
        """Run a console line (as VS Code does, in the selected frame); return (text, response)."""
        return self.client.repl(line, self.frame_id if frame else None, REQUEST_TIMEOUT)


@pytest.fixture(scope="module")
def session(sample_nopanic: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    client = DapClient(tmp_path_factory.mktemp("no-panic"))
    try:
        stopped = client.launch_and_stop(config_for(sample_nopanic))
        yield Session(client, stopped)
        assert client.schema_errors == [], client.schema_errors
    finally:
        client.close()


@pytest.fixture(scope="module")
def prog(sample_nopanic: Any) -> drgn.Program:
    """drgn on the same dump: the oracle where crash cannot go."""
    program = drgn.Program()
    program.set_core_dump(str(sample_nopanic.vmcore))
    program.load_debug_info([str(sample_nopanic.vmlinux)])
    return program


@pytest.fixture(scope="module")
def letter_of(sample_nopanic: Any) -> Any:
    """A task's state letter by the documented table (``struct task_struct *`` → letter)."""
    defines = kernel_state_defines(sample_nopanic)
    return lambda task: documented_letter(defines, *raw_state(task))


def _all_tasks(prog: drgn.Program) -> list[drgn.Object]:
    """Every task as crash's ``ps`` lists them: each CPU's idle task, then the PID table's tasks."""
    return [idle_task(prog, cpu) for cpu in for_each_online_cpu(prog)] + list(for_each_task(prog))


def test_the_sample_has_no_panic(sample_nopanic: Any, prog: drgn.Program) -> None:
    """The premise: the guest did not crash (no panic CPU, no crash facts)."""
    assert sample_nopanic.expected["stop_reason"] == "pause"
    assert sample_nopanic.expected["crashed_pid"] is None and sample_nopanic.expected["panic"] is None
    with pytest.raises(LookupError):
        prog.crashed_thread()


def test_stops_with_pause_on_cpu0s_current_task(
    session: Session, sample_nopanic: Any, prog: drgn.Program, letter_of: Any
) -> None:
    stopped = session.stopped
    assert stopped["reason"] == "pause" and stopped["allThreadsStopped"] is True
    assert re.search(r"without a panic|no panic", stopped.get("description", "")), stopped
    events = [e["event"] for e in session.client.events]
    assert events.count("stopped") == 1
    current = cpu_curr(prog, 0)
    shown = session.by_id[stopped["threadId"]]
    assert shown == {
        "pid": current.pid.value_(),
        "comm": current.comm.string_().decode(),
        "state": letter_of(current),
        "cpu": 0,
    }
    assert session.threads[0]["id"] == stopped["threadId"]  # listed first, as the crashed task would be
    # Exactly that task_struct, not another task with the same PID (every idle task has PID 0).
    cpus = session.client.call("vmcore/cpus", timeout=REQUEST_TIMEOUT)["cpus"]
    cpu0 = next(c for c in cpus if c["cpu"] == 0)
    assert int(str(cpu0["task"]), 16) == current.value_() and cpu0["threadId"] == stopped["threadId"]
    assert not any(c.get("crashed") for c in cpus)


def test_each_cpus_current_task_carries_its_cpu(
    session: Session, sample_nopanic: Any, prog: drgn.Program, letter_of: Any
) -> None:
    expected = sample_nopanic.expected
    on_cpu = {(t["pid"], t["cpu"], t["state"]) for t in session.by_id.values() if t["cpu"] is not None}
    assert on_cpu == {
        (cpu_curr(prog, cpu).pid.value_(), cpu, letter_of(cpu_curr(prog, cpu)))
        for cpu in for_each_online_cpu(prog)
    }
    # The spinner is pinned to its CPU and never stops: it carries that CPU unless, at the instant
    # QEMU stopped the guest, another task (a kworker, rcu_preempt) had the CPU.
    spin = session.by_id[session.thread_of(expected["spin_pid"])]
    spinner_current = cpu_curr(prog, expected["spin_cpu"]).pid.value_() == expected["spin_pid"]
    assert spin["cpu"] == (expected["spin_cpu"] if spinner_current else None), (spin, spinner_current)
    assert session.stopped["threadId"] != session.thread_of(expected["spin_pid"])


def test_threads_are_every_task(
    session: Session, sample_nopanic: Any, prog: drgn.Program, letter_of: Any
) -> None:
    tasks = _all_tasks(prog)
    ours = list(session.by_id.values())
    assert len(ours) == len(tasks) >= sample_nopanic.expected["min_tasks"]
    assert Counter((t["pid"], t["state"]) for t in ours) == Counter(
        (t.pid.value_(), letter_of(t)) for t in tasks
    )


def test_d_state_waiters_are_d_in_mutex_lock(
    session: Session, sample_nopanic: Any, prog: drgn.Program, letter_of: Any
) -> None:
    expected = sample_nopanic.expected
    d_pids = sorted(t["pid"] for t in session.by_id.values() if t["state"] == "D")
    # The guest's three waiters, and any task that slept uninterruptibly at that instant.
    assert d_pids == sorted(t.pid.value_() for t in _all_tasks(prog) if letter_of(t) == "D")
    assert set(expected["d_state_pids"]) <= set(d_pids) and len(expected["d_state_pids"]) == 3
    for pid in expected["d_state_pids"]:
        names = [f["name"] for f in stack_of(session.client, session.thread_of(pid))]
        assert any("mutex_lock" in n for n in names) and "labbug_wait_write" in names, (pid, names)
        assert names[-1].startswith("write(fd="), (pid, names)


def test_exception_info_says_there_is_no_panic(session: Session) -> None:
    response = session.client.request(
        "exceptionInfo", {"threadId": session.stopped["threadId"]}, timeout=REQUEST_TIMEOUT
    )
    message = response.get("message", "")
    assert not response["success"]
    assert "no panic" in message, message
    assert "Internal adapter error" not in message and "Traceback" not in message, message
    assert response["body"]["error"]["format"] == message


def test_console_ps_lists_every_task(session: Session, prog: drgn.Program, letter_of: Any) -> None:
    text, response = session.console("ps")
    assert response["success"], response.get("message")
    rows = cc.ps_entries(text)
    tasks = _all_tasks(prog)
    assert Counter((r.pid, r.task, r.state) for r in rows) == Counter(
        (t.pid.value_(), t.value_(), letter_of(t)) for t in tasks
    )
    assert {(r.pid, r.cpu) for r in rows if r.active} == {
        (cpu_curr(prog, cpu).pid.value_(), cpu) for cpu in for_each_online_cpu(prog)
    }


def test_console_bt_in_the_stopped_frame_is_cpu0s_task(session: Session, prog: drgn.Program) -> None:
    text, response = session.console("bt")
    assert response["success"], response.get("message")
    (task,) = parse_bt(text)
    current = cpu_curr(prog, 0)
    assert (task.pid, task.task, task.cpu) == (current.pid.value_(), current.value_(), 0)
    assert "do_idle" in [f.symbol for f in task.frames] or current.pid.value_() != 0


def test_console_bt_pid_of_a_waiter(session: Session, sample_nopanic: Any, prog: drgn.Program) -> None:
    pid = sample_nopanic.expected["d_state_pids"][0]
    text, response = session.console(f"bt {pid}")
    assert response["success"], response.get("message")
    (task,) = parse_bt(text)
    assert (task.pid, task.task) == (pid, find_task(prog, pid).value_())
    symbols = [f.symbol for f in task.frames]
    assert "__mutex_lock" in symbols and "labbug_wait_write" in symbols, symbols


def test_console_bt_without_a_frame_is_the_stopped_task(session: Session, prog: drgn.Program) -> None:
    text, response = session.console("bt", frame=False)
    assert response["success"] and "panic_cpu" not in text, (response.get("message"), text)
    (task,) = parse_bt(text)
    assert task.task == cpu_curr(prog, 0).value_()
