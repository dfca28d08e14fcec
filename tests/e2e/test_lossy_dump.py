"""Lossy dumps (makedumpfile left out pages the kernel's own structures need): diagnosed, not misnamed.

sid's 7.2 dumped by kdump-tools' default ``makedumpfile -c -d 31`` is the real case: makedumpfile
does not support 7.x ("The kernel version is not supported"), takes slab pages for user pages and
drops them. Which slab pages a build loses is a race, so two tests:

* the real ``lossy-d31`` file of the sid sample, against the complete dump of the same guest run
  (same directory) and plain drgn, whatever this build lost;
* a planted copy of that file with the pages *this test* picks left out as makedumpfile leaves
  pages out (``tests/helpers/kdump_patch.py``): a page of the PID table, and the kernel stacks of
  two sleeping tasks. The diagnosis, the fallback task listing and every console command's answer
  are then always exercised, against plain drgn on the same planted file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import drgn
import pytest
from drgn.helpers.linux.cpumask import for_each_present_cpu
from drgn.helpers.linux.idr import idr_for_each
from drgn.helpers.linux.pid import find_task, for_each_task
from drgn.helpers.linux.sched import cpu_curr
from drgn.helpers.linux.stack import kernel_stack_trace
from samples.sample_store import Sample, launch_configuration, load_sample
from tests.conftest import get_sample
from tests.e2e._session import open_sample_dump, parse_thread_name, stack_of, stopped_session
from tests.helpers.crash_parse import split_tasks
from tests.helpers.elf_patch import phys_of
from tests.helpers.kdump_patch import copy_excluding_pages, dump_level

from vmcore_dap.dump.kernel.panic import focus_task
from vmcore_dap.dump.kernel.tasks import TaskListing
from vmcore_dap.dump.stacks.prefetch import MAX_SHARE, PREFETCH_ENV, start_prefetch

pytestmark = pytest.mark.timeout(900)

LOSSY_KERNEL = "sid-7-amd64"

_PS_ROW = re.compile(r"^>?\s*(\d+)\s+\d+\s+\d+\s+[0-9a-f]+\s+\S+\s+[\d.]+\s+\d+\s+\d+\s+\[?(.*?)\]?$", re.M)


def _pid_table_readable(prog: drgn.Program) -> bool:
    try:
        for _ in for_each_task(prog):
            pass
    except drgn.FaultError:
        return False
    return True


def _thread_names(client: Any) -> set[tuple[int, str]]:
    infos = [parse_thread_name(t["name"]) for t in client.call("threads")["threads"]]
    assert not [info for info in infos if info["state"] == "?"], "a task's state could not be read"
    return {(info["pid"], info["comm"]) for info in infos}


def _console(client: Any, line: str) -> str:
    """A console line's whole text (its output events, stderr's notes included); it must succeed."""
    start = len(client.events)
    response = client.request("evaluate", {"expression": line, "context": "repl"}, timeout=300)
    assert response["success"], response
    return "".join(e["body"]["output"] for e in client.events[start:] if e["event"] == "output")


def _outputs(client: Any) -> str:
    return "".join(e["body"]["output"] for e in client.events if e["event"] == "output")


def _tasks_on_lists(prog: drgn.Program) -> dict[tuple[int, str], drgn.Object]:
    """Plain drgn: every task ``init_task.tasks`` and each process's thread list reach, each list
    walked from both ends (an unreadable node hides what lies between its neighbours)."""

    def walk(head: drgn.Object, member: str, backwards: bool) -> Iterator[drgn.Object]:
        node = head.prev if backwards else head.next
        while node != head:
            yield drgn.container_of(node, "struct task_struct", member)
            node = node.prev if backwards else node.next

    leaders: list[drgn.Object] = []
    for backwards in (False, True):
        try:
            leaders.extend(walk(prog["init_task"].tasks.address_of_(), "tasks", backwards))
        except drgn.FaultError:
            pass
    reached: dict[tuple[int, str], drgn.Object] = {}

    def add(task: drgn.Object) -> None:
        reached[(task.pid.value_(), task.comm.string_().decode(errors="replace"))] = task

    for leader in leaders:
        try:
            add(leader)
        except drgn.FaultError:
            continue
        for backwards in (False, True):
            try:
                for task in walk(leader.signal.thread_head.address_of_(), "thread_node", backwards):
                    add(task)
            except drgn.FaultError:
                pass
    return reached


def _reached_on_lists(prog: drgn.Program) -> set[tuple[int, str]]:
    return set(_tasks_on_lists(prog))


def _ps_rows(text: str) -> set[tuple[int, str]]:
    return {(int(m[1]), m[2]) for m in _PS_ROW.finditer(text)}


def test_lossy_d31_dump_diagnosed_and_every_task_listed(tmp_path: Path) -> None:
    """The build's own -d 31 file: whatever it lost, no "corrupt" verdict, names from the task
    structs, no task invented, every task the kernel's lists reach listed, and ``sys``/``ps``
    answering with every listed task."""
    good = get_sample("sysrq-c", LOSSY_KERNEL)
    lossy = load_sample(good.dir, "lossy-d31")
    assert lossy.vmcore != good.vmcore and lossy.vmcore.parent == good.dir
    # The sample's launch.json opens the variant's file, not the complete dump beside it.
    assert launch_configuration(lossy)["configurations"][0]["vmcore"] == str(lossy.vmcore)
    with stopped_session(good, tmp_path / "good") as (client, _):
        complete = _thread_names(client)
    with stopped_session(lossy, tmp_path / "lossy") as (client, _):
        listed = _thread_names(client)
        output = _outputs(client)
        sys_text = _console(client, "sys")
        ps_text = _console(client, "ps")
    # The console's sys keeps its TASKS line and ps its rows: every task the adapter lists.
    assert re.search(rf"^\s+TASKS: {len(listed)}$", sys_text, re.M), sys_text
    assert _ps_rows(ps_text) == listed, (_ps_rows(ps_text) ^ listed, ps_text[-3000:])
    # Whether this run's -d 31 file lost the PID table is a race of the build: ask plain drgn (the
    # planted test below takes that path every time).
    pid_table_lost = not _pid_table_readable(open_sample_dump(lossy).prog)
    assert "corrupt" not in output, output
    if pid_table_lost:
        _assert_pid_table_diagnosis(output, sys_text, ps_text)
    # Names come from the task structs, not "[?]", and no task of the complete dump is invented.
    assert listed <= complete, listed - complete
    missing = complete - listed
    assert not missing or pid_table_lost, missing
    reached = _reached_on_lists(open_sample_dump(lossy).prog)
    assert reached and reached <= listed, reached - listed


def _assert_pid_table_diagnosis(output: str, sys_text: str, ps_text: str) -> str:
    """The launch's warning names the cause and the remedy; sys and ps each say it in one line."""
    warning = next(line for line in output.splitlines() if "PID table cannot be read" in line)
    assert "slab page" in warning and "-d 23" in warning and "raw ELF" in warning, warning
    assert "The kernel version is not supported" in warning, warning
    assert re.search(r"Listed \d+ tasks from the PID table and \d+ more", warning), warning
    assert "PID table cannot be read" in sys_text, sys_text
    assert "PID table cannot be read" in ps_text, ps_text[-3000:]
    return warning


@dataclass(frozen=True)
class Planted:
    """A copy of the sid sample's -d 31 file with pages of the test's choice left out."""

    sample: Sample
    vmcore: Path
    #: The tasks whose stacks are gone (a page of the PID table is gone too).
    stackless: tuple[tuple[int, str], ...]


def _stack_pfns(prog: drgn.Program, task: drgn.Object) -> set[int]:
    """The page frames of a task's kernel stack (vmalloc'd: each page translated on its own)."""
    size = prog["THREAD_SIZE"].value_()
    base = task.stack.value_()
    return {phys_of(prog, base + offset) // 4096 for offset in range(0, size, 4096)}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    good = get_sample("sysrq-c", LOSSY_KERNEL)
    lossy = load_sample(good.dir, "lossy-d31")
    assert dump_level(lossy.vmcore) == 31
    # Addresses from the complete dump of the same guest run (the -d 31 file may lack them).
    prog = open_sample_dump(good).prog
    entries = [entry for _, entry in idr_for_each(prog["init_pid_ns"].idr)]
    middle = entries[len(entries) // 2]  # tasks before it come from the table, the rest from lists
    pfns = {phys_of(prog, middle.value_()) // 4096}
    running = {cpu_curr(prog, cpu).value_() for cpu in for_each_present_cpu(prog)}
    sleeping = [
        task
        for task in for_each_task(prog)
        if task.value_() not in running and task.pid.value_() != good.expected["crashed_pid"]
    ]
    victims = [find_task(prog, 2), max(sleeping, key=lambda task: task.pid.value_())]
    for task in victims:
        pfns |= _stack_pfns(prog, task)
    path = tmp_path_factory.mktemp("planted") / "vmcore-planted"
    copy_excluding_pages(lossy.vmcore, path, pfns)
    return Planted(
        sample=lossy,
        vmcore=path,
        stackless=tuple((t.pid.value_(), t.comm.string_().decode()) for t in victims),
    )


def test_planted_lossy_dump_diagnosed_listed_and_every_console_command_answers(
    planted: Planted, tmp_path: Path
) -> None:
    """The PID table's page and two tasks' stacks left out of a -d 31 file: the launch says what
    makedumpfile did and what to do (re-dump with -d 23 or a newer makedumpfile, keep the raw ELF),
    Threads list every task the kernel's lists reach (plain drgn on the planted file), ``sys`` and
    ``ps`` answer with them plus one line, and ``foreach bt`` prints every task's stack it can read,
    a line under each it cannot, and one line naming those (plain drgn: whose ``kernel_stack_trace``
    faults)."""
    prog = drgn.Program()
    prog.set_core_dump(str(planted.vmcore))
    prog.load_debug_info([str(planted.sample.vmlinux)])
    assert not _pid_table_readable(prog), "the planted file's PID table still reads"
    on_lists = _tasks_on_lists(prog)
    reached = set(on_lists)
    unwinds_fail = set()
    for key, task in on_lists.items():
        try:
            kernel_stack_trace(task)  # plain drgn's helper for a task's kernel stack
        except drgn.FaultError:
            unwinds_fail.add(key)
    assert set(planted.stackless) <= unwinds_fail, (planted.stackless, unwinds_fail)
    with stopped_session(planted.sample, tmp_path, vmcore=str(planted.vmcore)) as (client, _):
        threads = {parse_thread_name(t["name"])["pid"]: t["id"] for t in client.call("threads")["threads"]}
        listed = _thread_names(client)
        output = _outputs(client)
        sys_text = _console(client, "sys")
        ps_text = _console(client, "ps")
        bt_text = _console(client, "foreach bt")
        stackless_rows = {pid: stack_of(client, threads[pid]) for pid, _ in planted.stackless}
    warning = _assert_pid_table_diagnosis(output, sys_text, ps_text)
    assert "excluded from the dump by makedumpfile -d 31" in warning, warning
    assert "corrupt" not in output, output
    assert reached and reached <= listed, reached - listed
    assert re.search(rf"^\s+TASKS: {len(listed)}$", sys_text, re.M), sys_text
    assert _ps_rows(ps_text) == listed, (_ps_rows(ps_text) ^ listed, ps_text[-3000:])
    # foreach bt goes on past the tasks whose stacks are gone: every listed task has its entry.
    chunks = split_tasks(bt_text)
    headers = {}
    for chunk in chunks:
        m = re.match(r'PID:\s*(\d+)\s+TASK:.*COMMAND:\s*"(.*)"', chunk)
        if m:
            headers[(int(m[1]), m[2])] = chunk
    assert set(headers) == listed, set(headers) ^ listed
    unreadable = {key for key, chunk in headers.items() if "(stack cannot be read: " in chunk}
    assert set(planted.stackless) <= unreadable, (planted.stackless, unreadable)
    assert unreadable <= unwinds_fail, unreadable - unwinds_fail
    # One closing line counts them, names the first ten and says why the first could not be read.
    note = next(line for line in bt_text.splitlines() if "stacks of" in line and "cannot be read" in line)
    assert f"the stacks of {len(unreadable)} tasks cannot be read (" in note, note
    inner = note.split("cannot be read (", 1)[1].split("); the first: ", 1)[0]
    named = re.findall(r"PID (\d+) (.*?)(?=, PID | and \d+ more$|$)", inner)
    assert len(named) == min(10, len(unreadable)), note
    assert {(int(pid), comm) for pid, comm in named} <= unreadable, note
    assert "excluded from the dump by makedumpfile -d 31" in note, note
    readable = [chunk for key, chunk in headers.items() if key not in unreadable]
    assert readable and all(re.search(r"^\s*#0 ", c, re.M) or "(active)" in c for c in readable)
    # The Call Stack of such a task is one row saying why, not an error.
    for pid, rows in stackless_rows.items():
        assert len(rows) == 1 and rows[0]["name"].startswith("── cannot unwind this task: "), (pid, rows)


def test_planted_lossy_dump_listed_alike_with_blocks_read_on_a_second_process(
    planted: Planted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing with part of its ``task_struct`` blocks read on the stack prefetch's second
    process (forced on: a dump this small never starts it through DAP) lists the same tasks and
    makes the same diagnosis of the PID table as without it."""
    monkeypatch.setenv(PREFETCH_ENV, "1")
    results = []
    for second_process in (False, True):
        prog = drgn.Program()
        prog.set_core_dump(str(planted.vmcore))
        prog.load_debug_info([str(planted.sample.vmlinux)])
        problems: list[str] = []
        listing = TaskListing(prog, focus_task(prog), problems=problems)
        prefetch = start_prefetch(prog, planted.vmcore) if second_process else None
        assert (prefetch is not None) == second_process
        if prefetch is not None:
            prefetch.fixed_share = MAX_SHARE  # blocks there however far it lags
        done = listing.step(64)
        listing.blocks = prefetch
        while not done:
            done = listing.step(64)
        rows = [
            tuple(getattr(t, f.name) for f in dataclasses.fields(t) if f.name != "prog")
            for t in listing.tasks()
        ]
        results.append((rows, problems, listing.pid_table_tasks))
        if prefetch is not None:
            # The blocks path runs on what the PID table gives after the first step (before the stop);
            # how much of the table this build's -d 31 file kept is a race of the build.
            from_table = (
                re.search(r"Listed (\d+) tasks from the PID table", problems[0]) if problems else None
            )
            if from_table is not None and int(from_table[1]) > 64:
                assert prefetch.blocks_read > 0
            prefetch.close()
    assert results[0][1] and "PID table cannot be read" in results[0][1][0], results[0][1]
    assert results[1] == results[0]
