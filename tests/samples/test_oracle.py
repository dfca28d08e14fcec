"""Every sample's manifest agrees with crash, and drgn opens both dump formats (issue 2, item 5).

The manifest's ``expected`` block is what every other test trusts about a sample, so it is checked
here against an independent reader of the same dump: crash >= 8.0.4, run in batch mode by
``samples/crash_oracle.py``.  drgn must open the kdump-compressed and the ELF variant alike and find
the same crashed thread and the same stack as crash (by ``tests.helpers.stack_normalize``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import drgn
import pytest
from tests.helpers.crash_parse import (
    parse_bt,
    parse_log,
    parse_mod,
    parse_ps,
    parse_struct_o,
    parse_sys,
    split_tasks,
    sys_panic_message,
)
from tests.helpers.stack_normalize import (
    Frame,
    assert_stacks_match,
    normalize_crash_bt,
    normalize_crash_task,
    normalize_drgn_trace,
)

if TYPE_CHECKING:
    from samples.sample_store import Sample

pytestmark = pytest.mark.timeout(1800)  # the first run builds crash and the samples


def _crash_site(frames: list[Frame]) -> Frame:
    """The function the task crashed in: the exception's, or the caller of a direct panic()."""
    return next(f for f in frames if f.function != "panic")


def test_panic_string_matches_crash_sys(sample: Sample, crash_answers: dict[str, str]) -> None:
    assert sys_panic_message(crash_answers["sys"]) == sample.expected["panic"]


def test_sys_release_and_task_count(sample: Sample, crash_answers: dict[str, str]) -> None:
    fields = parse_sys(crash_answers["sys"])
    assert fields["RELEASE"] == sample.kernel_release
    rows = parse_ps(crash_answers["ps"])
    assert int(fields["TASKS"]) == len(rows)
    assert len(rows) >= sample.expected["min_tasks"]


def test_crashed_task_matches_crash_bt(sample: Sample, crash_answers: dict[str, str]) -> None:
    (task,) = parse_bt(crash_answers["bt"])
    exp = sample.expected
    assert (task.pid, task.comm, task.cpu) == (
        exp["crashed_pid"],
        exp["crashed_comm"],
        exp["crashed_cpu"],
    )
    # ps marks the same task as active on that CPU.
    row = next(r for r in parse_ps(crash_answers["ps"]) if r.task == task.task)
    assert (row.active, row.pid, row.cpu, row.name) == (True, task.pid, task.cpu, task.comm)


def test_faulting_function_and_line_match_crash_bt_l(sample: Sample, crash_answers: dict[str, str]) -> None:
    top = _crash_site(normalize_crash_bt(crash_answers["bt-l"]))
    exp = sample.expected
    assert top.function == exp["function"]
    assert top.file is not None and top.file.rsplit("/", 1)[-1] == exp["file"]
    assert top.line == exp["line"]
    # dis -l of the faulting address names the same source line.
    assert f"{exp['file']}: {exp['line']}" in crash_answers["dis-l"]


def test_oops_line_is_in_crash_log(sample: Sample, crash_answers: dict[str, str]) -> None:
    texts = [line.text for line in parse_log(crash_answers["log"])]
    assert any(sample.expected["oops_line"] in t for t in texts), texts[-40:]


def test_every_cpu_and_task_has_a_back_trace(crash_answers: dict[str, str]) -> None:
    cpus = int(parse_sys(crash_answers["sys"])["CPUS"])
    assert len(split_tasks(crash_answers["bt-a"])) == cpus
    rows = parse_ps(crash_answers["ps"])
    per_task = parse_bt(crash_answers["foreach-bt"])
    assert sorted(t.task for t in per_task) == sorted(r.task for r in rows)


def test_d_state_and_mutex_holder(sample_oops: Sample, crash_oops: dict[str, str]) -> None:
    exp = sample_oops.expected
    by_pid = {r.pid: r for r in parse_ps(crash_oops["ps"])}
    assert exp["d_state_pids"], "the oops-null sample promises tasks in D state"
    for pid in exp["d_state_pids"]:
        assert by_pid[pid].state == "UN", by_pid[pid]
    assert exp["mutex_holder_pid"] in by_pid
    assert exp["mutex_holder_pid"] not in exp["d_state_pids"]


def test_module_is_loaded_with_its_debug_info(sample_oops: Sample, crash_oops: dict[str, str]) -> None:
    rows = {r.name: r for r in parse_mod(crash_oops["mod"])}
    for ko in sample_oops.debug_info:
        name = ko.name.removesuffix(".ko").replace("-", "_")
        assert rows[name].object_file == str(ko), crash_oops["mod"]
    name, members, size = parse_struct_o(crash_oops["struct-o"])
    assert name == "struct labbug_device" and members and size


def _open(sample: Sample, which: str) -> drgn.Program:
    """Open one dump variant with the sample's vmlinux and module .ko files, all of them required."""
    prog = drgn.Program()
    prog.set_core_dump(str(getattr(sample, which)))
    prog.load_debug_info([sample.vmlinux, *sample.debug_info])  # raises if any is missing
    assert not [m.name for m in prog.modules() if m.wants_debug_file()]
    return prog


@pytest.mark.parametrize("which", ["vmcore", "vmcore_elf"])
def test_drgn_opens_dump_and_finds_crashed_thread(
    sample: Sample, crash_answers: dict[str, str], which: str
) -> None:
    prog = _open(sample, which)
    thread = prog.crashed_thread()
    assert thread.tid == sample.expected["crashed_pid"]
    assert thread.object.comm.string_().decode() == sample.expected["crashed_comm"]
    (task,) = parse_bt(crash_answers["bt"])
    assert thread.object.value_() == task.task
    ours = normalize_drgn_trace(thread.stack_trace())
    assert_stacks_match(ours, normalize_crash_bt(crash_answers["bt-l"]))


def test_drgn_stacks_of_every_task_match_crash_foreach_bt(
    sample: Sample, crash_answers: dict[str, str]
) -> None:
    """The normalisation holds for every task, not just the crashed one: same functions, same
    return addresses (sleeping tasks, kernel threads, idle tasks, the CPU stopped by NMI)."""
    prog = _open(sample, "vmcore")
    failures = []
    tasks = parse_bt(crash_answers["foreach-bt"])
    for task in tasks:
        ours = normalize_drgn_trace(prog.stack_trace(drgn.Object(prog, "struct task_struct *", task.task)))
        try:
            assert_stacks_match(ours, normalize_crash_task(task), check_lines="none")
        except AssertionError as e:
            failures.append(f"PID {task.pid} ({task.comm}): {e}")
    assert not failures, f"{len(failures)} of {len(tasks)} tasks differ:\n" + "\n".join(failures[:5])
