"""crash's output parsers, on crash's real answers about the sample dumps.

The answers come from ``samples/crash_oracle.py`` (crash 8.0.6 run on the sample); the checks are
cross-checks between crash's own commands (``sys`` TASKS vs ``ps`` rows, ``bt -a`` vs CPUS, ...)
so that a parser that drops or misreads lines fails.
"""

from __future__ import annotations

import re

from tests.helpers.crash_parse import (
    CRASH_STATE_TO_LETTER,
    parse_bt,
    parse_dis,
    parse_kmem_i,
    parse_log,
    parse_mod,
    parse_ps,
    parse_rd,
    parse_struct_o,
    parse_sys,
    split_tasks,
    sys_panic_message,
)


def test_sys_fields(crash_answers: dict[str, str], sample) -> None:
    fields = parse_sys(crash_answers["sys"])
    for key in ("KERNEL", "DUMPFILE", "CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "TASKS"):
        assert key in fields
    for key in ("NODENAME", "RELEASE", "VERSION", "MACHINE", "MEMORY", "PANIC"):
        assert key in fields
    assert fields["RELEASE"] == sample.kernel_release
    assert fields["DUMPFILE"].endswith("[PARTIAL DUMP]")
    assert fields["MACHINE"].startswith("x86_64")
    assert sys_panic_message(crash_answers["sys"]) and '"' not in sys_panic_message(crash_answers["sys"])


def test_ps_rows_cover_every_line(crash_answers: dict[str, str]) -> None:
    rows = parse_ps(crash_answers["ps"])
    data_lines = [ln for ln in crash_answers["ps"].splitlines()[1:] if ln.strip()]
    assert len(rows) == len(data_lines) == int(parse_sys(crash_answers["sys"])["TASKS"])
    cpus = int(parse_sys(crash_answers["sys"])["CPUS"])
    assert sorted(r.cpu for r in rows if r.active) == list(range(cpus))
    assert {r.state for r in rows} <= set(CRASH_STATE_TO_LETTER)
    idle = [r for r in rows if r.pid == 0]
    assert [r.name for r in idle] == [f"swapper/{c}" for c in range(cpus)]
    assert all(r.is_kernel_thread for r in idle)
    init = next(r for r in rows if r.pid == 1)
    assert (init.ppid, init.is_kernel_thread) == (0, False)


def test_bt_a_has_one_task_per_cpu_and_foreach_bt_one_per_task(
    crash_answers: dict[str, str],
) -> None:
    rows = parse_ps(crash_answers["ps"])
    per_cpu = parse_bt(crash_answers["bt-a"])
    assert len(split_tasks(crash_answers["bt-a"])) == len(per_cpu)
    assert {t.task for t in per_cpu} == {r.task for r in rows if r.active}
    per_task = parse_bt(crash_answers["foreach-bt"])
    assert sorted((t.pid, t.task) for t in per_task) == sorted((r.pid, r.task) for r in rows)
    by_task = {r.task: r for r in rows}
    assert all(t.comm == by_task[t.task].name and t.cpu == by_task[t.task].cpu for t in per_task)
    # Every task's bt has frames, except a user-space task stopped by the NMI (regs only).
    assert sum(1 for t in per_task if t.frames) >= len(per_task) - len(per_cpu)


def test_bt_frames_and_exception_block(crash_answers: dict[str, str]) -> None:
    (task,) = parse_bt(crash_answers["bt-l"])
    levels = [f.level for f in task.frames]
    assert levels == list(range(len(levels)))
    n_frame_lines = len(re.findall(r"^\s*#\d+ \[", crash_answers["bt-l"], re.MULTILINE))
    assert n_frame_lines == len(task.frames)
    assert all(f.file and f.line for f in task.frames), "bt -l prints a line for every frame"
    for exc in task.exceptions:
        assert {"RIP", "RSP", "RFLAGS", "CS", "SS", "ORIG_RAX"} <= set(exc.registers)
        assert exc.file and exc.line


def test_log_lines(crash_answers: dict[str, str]) -> None:
    lines = parse_log(crash_answers["log"])
    assert lines[0].seconds == 0.0 and lines[0].text.startswith("Linux version ")
    # Every line has a "[seconds]" stamp or continues a multi-line record.
    assert all(ln.seconds is not None or ln.timestamp is None for ln in lines)
    assert any(ln.timestamp is None for ln in lines)  # the samples' logs have such records
    assert lines[-1].seconds and lines[-1].seconds > 0
    dated = parse_log(crash_answers["log-T"])
    assert [ln.text for ln in dated] == [ln.text for ln in lines]
    date = parse_sys(crash_answers["sys"])["DATE"]
    assert dated[-1].timestamp is not None and dated[-1].timestamp[-4:] == date[-4:]  # the year


def test_mod_rows(sample_oops, crash_oops: dict[str, str]) -> None:
    rows = parse_mod(crash_oops["mod"])
    assert [r.name for r in rows if r.name == sample_oops.expected.get("module", "labbug")]
    for r in rows:
        assert r.base and r.size > 0 and r.module


def test_dis_rd_struct_kmem(crash_answers: dict[str, str]) -> None:
    (one,) = parse_dis(crash_answers["dis-l"])
    assert one.file and one.line and one.mnemonic
    reverse = parse_dis(crash_answers["dis-rl"])
    assert reverse[-1].address == one.address and reverse[0].offset == 0
    addrs = [d.address for d in reverse]
    assert addrs == sorted(addrs)
    func = parse_dis(crash_answers["dis-func"])
    assert func[0].offset == 0 and {d.symbol for d in func} == {one.symbol}
    # dis -rl ends at the crash site: the function up to there, the same instructions.
    assert [(d.address, d.mnemonic) for d in reverse[:-1]] == [
        (d.address, d.mnemonic) for d in func[: len(reverse) - 1]
    ]
    words = parse_rd(crash_answers["rd"])
    assert len(words) == 8 and sorted(words) == list(range(min(words), min(words) + 64, 8))
    kmem = parse_kmem_i(crash_answers["kmem-i"])
    assert kmem["FREE"].pages + kmem["USED"].pages == kmem["TOTAL MEM"].pages


def test_struct_o(crash_oops: dict[str, str]) -> None:
    name, members, size = parse_struct_o(crash_oops["struct-o"])
    assert name == "struct labbug_device"
    assert [(m.offset, m.name) for m in members] == [
        (0, "name"),
        (8, "magic"),
        (16, "writes"),
        (24, "head"),
    ]
    assert size == 32
