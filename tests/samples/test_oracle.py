"""The crash oracle agrees with the guest on every kernel of the matrix (issue 14, item 2; issue 2, item 5).

The manifest's ``expected`` block is what the guest recorded before it crashed; every other test
trusts it. Here it is checked against an independent reader of the same dump: the real ``crash``
that ``samples/crash_choice.py`` picks for the dump (Debian's crash 8.0.6 for x86-64 kernels up to
6.x, 9.0.2 for 7.x and QEMU dumps, the arm64 build under qemu-aarch64), run in batch mode by
``samples/crash_oracle.py``. Each sample of this run (``samples_under_test``: one of every kernel in
``make test``, the whole matrix in ``make test-matrix``) gets every test.

Where the table says crash gives no answer or a wrong one on a kind of dump (``answers.missing``,
``answers.distrusted``), a test uses another oracle for that fact and says which: drgn names an
address crash cannot, VMCOREINFO's CRASHTIME is the crash time, binutils on the module's .ko gives
the lines of its code where crash's gdb misplaces them (6.12). A distrusted answer must really be
wrong on the dump, or the table's row is stale.

drgn must open the kdump-compressed and the ELF variant alike and find the same crashed thread and
the same stack as crash (by ``tests.helpers.stack_normalize``).
"""

from __future__ import annotations

import itertools
import re
import subprocess
from datetime import datetime
from typing import TYPE_CHECKING

import drgn
import pytest
from samples.crash_builds import ensure_crash, load_builds
from samples.crash_choice import CrashRow, choose_crash, dump_facts
from samples.crash_oracle import (
    COMMANDS,
    PANIC_PATH,
    CrashNotApplicable,
    MissingCrashAnswer,
    ensure_crash_answers,
)
from tests.helpers.crash_compare import crash_date, kmem_i_figures, uptime_seconds
from tests.helpers.crash_parse import (
    TaskBt,
    parse_bt,
    parse_dis,
    parse_log,
    parse_mod,
    parse_ps,
    parse_struct_o,
    parse_sys,
    split_tasks,
    sys_panic_message,
)
from tests.helpers.kernel_config import config_hz, jiffies_uptime
from tests.helpers.ko_lines import ko_function, ko_line, overlaid_lines, truncated_listing
from tests.helpers.stack_normalize import (
    Frame,
    assert_stacks_match,
    base_function_name,
    normalize_crash_bt,
    normalize_crash_task,
    normalize_drgn_trace,
    stack_differences,
)

from vmcore_dap.dump.arch import arch_of

if TYPE_CHECKING:
    from samples.crash_oracle import CrashAnswers
    from samples.sample_store import Sample

pytestmark = pytest.mark.timeout(3600)  # the first run builds the samples and crash's answers


def _matrix_labels() -> list[str]:
    from samples.sample_store import samples_under_test

    return [spec.label for spec in samples_under_test()]


@pytest.fixture(scope="module", params=_matrix_labels())
def matrix_case(request: pytest.FixtureRequest) -> tuple[Sample, CrashAnswers]:
    """A sample of the matrix and crash's answers about it."""
    from samples.sample_store import samples_under_test
    from tests.conftest import get_crash_answers, get_sample

    spec = next(s for s in samples_under_test() if s.label == request.param)
    sample = get_sample(spec.scenario, spec.kernel, spec.variant)
    try:
        return sample, get_crash_answers(spec.scenario, spec.kernel, spec.variant)
    except CrashNotApplicable as e:
        pytest.skip(
            f"no crash oracle for {spec.label}: {e} (test_crash_opens_the_dump_iff_the_table_says_so "
            "checks that crash fails on it; its tests elsewhere use the guest's facts and drgn)"
        )


@pytest.mark.parametrize("label", _matrix_labels())
def test_crash_opens_the_dump_iff_the_table_says_so(label: str) -> None:
    """crash opens every dump the table gives it, and fails on those the table says it cannot open
    (so a row that gives up crash for a kind of dump is not stale)."""
    from samples.sample_store import samples_under_test
    from tests.conftest import get_crash_answers, get_sample

    spec = next(s for s in samples_under_test() if s.label == label)
    sample = get_sample(spec.scenario, spec.kernel, spec.variant)
    choice = choose_crash(dump_facts(sample))
    if choice.row.opens:
        assert (
            get_crash_answers(spec.scenario, spec.kernel, spec.variant).meta["crash"]["build"] == choice.build
        )
        return
    with pytest.raises(CrashNotApplicable, match=re.escape(choice.row.why)):
        ensure_crash_answers(sample)
    argv = [*ensure_crash(choice.build).argv, *choice.flags, "-s", str(sample.vmlinux), str(sample.vmcore)]
    proc = subprocess.run(
        argv, input="sys\nexit\n", capture_output=True, text=True, timeout=1800, check=False
    )
    assert proc.returncode != 0 and "TASKS:" not in proc.stdout, (proc.returncode, proc.stdout[-2000:])


def _crashed(sample: Sample) -> bool:
    """Whether the guest crashed (a ``no-panic`` dump is of a running guest)."""
    return sample.expected.get("crashed_pid") is not None


def _open(sample: Sample, which: str = "vmcore") -> drgn.Program:
    """Open one dump variant with the sample's vmlinux and module .ko files, and the debug info of
    any other loaded module from the kernel's -dbg tree: all of them required."""
    prog = drgn.Program()
    prog.set_core_dump(str(getattr(sample, which)))
    prog.debug_info_options.kernel_directories = (
        str(sample.debug_info_dir / "lib" / "modules" / sample.kernel_release),
    )
    prog.load_debug_info([sample.vmlinux, *sample.debug_info])  # raises if any is missing
    if [m for m in prog.modules() if m.wants_debug_file()]:
        prog.load_default_debug_info()  # the kernel's own modules (no-panic's qemu_fw_cfg)
    assert not [m.name for m in prog.modules() if m.wants_debug_file()]
    return prog


def _below_panic(frames: list[Frame]) -> list[Frame]:
    """A stack from the frame below the panic path (PANIC_PATH) on."""
    return list(itertools.dropwhile(lambda f: f.function in PANIC_PATH, frames))


def _row(sample: Sample) -> CrashRow:
    """The table's row for ``sample``'s dump."""
    return choose_crash(dump_facts(sample)).row


def _crash_frames(sample: Sample, task: TaskBt) -> list[Frame]:
    """crash's stack of one task, normalised with what the table says of crash's back traces on
    this kind of dump (arm64: frames printed 4 bytes early, no register block after el1h_64_*)."""
    row = _row(sample)
    return normalize_crash_task(task, pc_bias=row.pc_bias, exception_entries=row.exception_entries)


def _stack_differences(prog: drgn.Program, sample: Sample, answers: CrashAnswers, name: str) -> list[str]:
    """Each task of the back-trace answer ``name`` whose stack is not drgn's, with why. What the
    table distrusts is left out of the comparison and checked on its own: the panic path where
    crash drops panic()'s frame (6.12), tasks QEMU stopped in user code (crash shows stale
    interrupt frames), tasks on a CPU of an arm64 QEMU dump (crash lists no frame)."""
    below_panic = not answers.trusts(name, "panic-frame")
    stale_user = not answers.trusts(name, "running-user")
    bare_active = set() if answers.trusts(name, "active") else _active_tasks(answers)
    found = []
    for task in parse_bt(answers[name]):
        ours = _drgn_frames(prog, task.task)
        theirs = _crash_frames(sample, task)
        if stale_user and not ours:
            continue  # running user code: checked in test_distrusted_back_traces_differ_from_drgn
        if task.task in bare_active and not task.frames:
            continue  # on a CPU, no frame from crash (arm64 QEMU dump): checked there too
        if below_panic:
            ours, theirs = _below_panic(ours), _below_panic(theirs)
        if diff := stack_differences(ours, theirs, check_lines="none"):
            found.append(f"PID {task.pid} ({task.comm}): {'; '.join(diff)}")
    return found


def _drgn_frames(prog: drgn.Program, task: int) -> list[Frame]:
    """drgn's stack of the task at address ``task``, normalised."""
    return normalize_drgn_trace(prog.stack_trace(drgn.Object(prog, "struct task_struct *", task)))


def _active_tasks(answers: CrashAnswers) -> set[int]:
    """The tasks crash's ``ps`` marks as running on a CPU (``>``)."""
    return {row.task for row in parse_ps(answers["ps"]) if row.active}


def _raw_outermost(prog: drgn.Program, task: int) -> str | None:
    """The function of the outermost kernel frame drgn unwinds for ``task``, before any normalisation."""
    arch = arch_of(prog)
    names = [
        frame.name
        for frame in prog.stack_trace(drgn.Object(prog, "struct task_struct *", task))
        if arch.is_kernel_address(frame.pc)
    ]
    return names[-1] if names else None


def test_oracle_says_which_crash_answered_and_why(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    sample, answers = matrix_case
    facts = dump_facts(sample)
    choice = choose_crash(facts)
    crash = answers.meta["crash"]
    assert (crash["build"], crash["flags"]) == (choice.build, list(choice.flags))
    assert crash["version"] == load_builds()[crash["build"]].version
    assert answers.meta["why_this_crash"] == choice.row.why
    assert answers.meta["dump"] == {"arch": facts.arch, "release": facts.release, "origin": facts.origin}
    assert facts.release == sample.kernel_release
    if facts.arch == "AARCH64" and facts.va_bits == 52:
        # LPA2: crash reads the linear map right only with PHYS_OFFSET + 0xf000000000000.
        phys_offset = int(facts.vmcoreinfo["NUMBER(PHYS_OFFSET)"], 0)
        assert crash["flags"] == ["-m", f"phys_offset={phys_offset + 0x000F000000000000:#x}"]


def test_missing_answers_are_absent_and_say_why(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    _sample, answers = matrix_case
    for name, why in answers.missing.items():
        assert why and name not in answers
        with pytest.raises(MissingCrashAnswer, match=re.escape(why)):
            answers[name]
    assert set(answers) | set(answers.missing) >= set(COMMANDS)


def test_panic_string_and_release_are_the_guests(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    sample, answers = matrix_case
    fields = parse_sys(answers["sys"])
    assert fields["RELEASE"] == sample.kernel_release
    if _crashed(sample):
        assert sys_panic_message(answers["sys"]) == sample.expected["panic"]
    else:
        assert fields["PANIC"] == '""', "the dump of a running guest names no panic"


def test_crashed_task_is_the_guests(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    sample, answers = matrix_case
    exp = sample.expected
    rows = parse_ps(answers["ps"])
    if not _crashed(sample):
        # No panic task: the guest's spinner is what ran on its CPU.
        (spin,) = [r for r in rows if r.pid == exp["spin_pid"]]
        assert (spin.active, spin.cpu) == (True, exp["spin_cpu"])
        return
    (task,) = parse_bt(answers["bt"])
    assert (task.pid, task.comm, task.cpu) == (exp["crashed_pid"], exp["crashed_comm"], exp["crashed_cpu"])
    # ps marks the same task as active on that CPU.
    row = next(r for r in rows if r.task == task.task)
    assert (row.active, row.pid, row.cpu, row.name) == (True, task.pid, task.cpu, task.comm)


def test_crash_site_is_the_guests_faulting_function_and_line(
    matrix_case: tuple[Sample, CrashAnswers],
) -> None:
    """The function and line crash's ``bt -l`` and ``dis -l`` show the task crashed at. Where crash
    cannot name it (a module's code under ``--no_modules``), the oracle records that, and drgn
    names crash's exception address instead; where crash lists no frame of the panic task (arm64
    QEMU dump), drgn's unwinding of it must reach the guest's function and line."""
    sample, answers = matrix_case
    exp = sample.expected
    if not _crashed(sample):
        assert "crash_site" not in answers.meta["facts"] and "dis-l" in answers.missing
        return
    if not answers.trusts("bt", "active"):
        # crash lists no frame for the panic task (arm64 QEMU dump): the oracle records no site and
        # says why; drgn's unwinding of the crashed thread is the oracle, against the guest's facts.
        assert "crash_site" not in answers.meta["facts"]
        (task,) = parse_bt(answers["bt"])
        assert not task.frames, "crash's bt is distrusted for lacking the panic task's frames, yet has them"
        assert {"dis-l", "dis-rl", "dis-func", "rd"} <= set(answers.missing)
        assert "lists no frame" in answers.missing["dis-l"]
        frames = _open(sample).crashed_thread().stack_trace()  # oracle: drgn
        matching = [f for f in frames if f.name and base_function_name(f.name) == exp["function"]]
        assert len(matching) == 1, [f.name for f in frames]
        file, line, _column = matching[0].source()
        assert (file.rsplit("/", 1)[-1], line) == (exp["file"], exp["line"])
        return
    site = answers.meta["facts"]["crash_site"]
    if site["symbol"] == "no symbolic reference":
        assert {"dis-l", "dis-rl", "dis-func"} <= set(answers.missing)
        locations = _open(sample).source_location(int(site["address"], 16))  # oracle: drgn
        innermost, function = locations[0], locations[-1].name()  # inline calls first
        assert (function, innermost.filename.rsplit("/", 1)[-1], innermost.line) == (
            exp["function"],
            exp["file"],
            exp["line"],
        )
        return
    symbol, _, delta = site["symbol"].partition("+")
    assert base_function_name(symbol) == exp["function"]
    module_function = ko_function(sample.debug_info, symbol)
    (task,) = parse_bt(answers["bt-l"])
    if site["kind"] == "exception RIP":  # bt -l prints the line under the register block
        where = task.exceptions[0]
        file, line = where.file, where.line
    else:  # the frame bt -l printed at that address
        frame = next(f for f in task.frames if f.address == int(site["printed"], 16))
        file, line = frame.file, frame.line
    if module_function is not None and not answers.trusts("bt-l", "module-lines"):
        # crash's gdb may name another code section's line in a module here (6.12: the table says
        # why). Oracle: the module's own line table at crash's function + offset (binutils, no gdb);
        # crash's line, if another, must be the overlay the table names.
        offset = module_function.offset + int(delta or 0)
        assert ko_line(module_function.ko, module_function.section, offset) == (exp["file"], exp["line"])
        if (file and file.rsplit("/", 1)[-1], line) != (exp["file"], exp["line"]):
            overlay = overlaid_lines(sample.debug_info, parse_dis(answers["dis-l"]))
            assert overlay, f"crash's line {file}:{line} is wrong, but not by the overlay the table names"
        return
    assert file is not None and file.rsplit("/", 1)[-1] == exp["file"]
    if site["kind"] == "exception PC" and not answers.trusts("bt-l", "exception-line"):
        assert line != exp["line"], "bt -l's line of the interrupted frame is distrusted, yet right"
    else:
        assert line == exp["line"]
    assert f"{exp['file']}: {exp['line']}" in answers["dis-l"]  # at the crash site's PC


def test_oops_line_is_in_crash_log(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    sample, answers = matrix_case
    texts = [line.text for line in parse_log(answers["log"])]
    if _crashed(sample):
        assert any(sample.expected["oops_line"] in t for t in texts), texts[-40:]
    else:
        assert texts and not any("Kernel panic" in t for t in texts)


def test_every_cpu_and_task_has_a_back_trace(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    _sample, answers = matrix_case
    cpus = int(parse_sys(answers["sys"])["CPUS"].split()[0])
    assert len(split_tasks(answers["bt-a"])) == cpus
    rows = parse_ps(answers["ps"])
    per_task = parse_bt(answers["foreach-bt"])
    assert sorted(t.task for t in per_task) == sorted(r.task for r in rows)


def test_ps_has_every_task_the_guest_started(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    sample, answers = matrix_case
    exp = sample.expected
    rows = parse_ps(answers["ps"])
    by_pid = {r.pid: r for r in rows}
    assert int(parse_sys(answers["sys"])["TASKS"]) == len(rows) >= exp["min_tasks"]
    started = [exp.get("crashed_pid"), exp.get("mutex_holder_pid"), exp.get("spin_pid"), exp.get("many_pid")]
    started += exp.get("d_state_pids", []) + [t["tid"] for t in exp.get("threads", [])]
    absent = [pid for pid in started if pid is not None and pid not in by_pid]
    assert not absent, f"{answers.crash}'s ps lacks tasks the guest started: {absent}"
    for pid in exp.get("d_state_pids", []):
        assert by_pid[pid].state == "UN", by_pid[pid]


#: How far crash's clocks may be from the dump's own: the crash happens within a second of the last
#: log line, and VMCOREINFO's CRASHTIME is taken with it. A dump of a running guest has no
#: CRASHTIME: the host took it in the minute before the manifest's ``built_at``, after the log's
#: last line. (crash's wrong HZ puts UPTIME ≈ 225 s late, its wrong DATE in 1970.)
_CLOCK_SLACK_S = 5
_RUNNING_GUEST_SLACK_S = 120


def _clock_checks(sample: Sample, answers: CrashAnswers) -> dict[str, tuple[bool, str]]:
    """Each clock crash shows, whether it is right by the dump's own clocks, and what was compared."""
    crashtime = dump_facts(sample).vmcoreinfo.get("CRASHTIME")
    if crashtime is not None:
        when, slack, what = int(crashtime), _CLOCK_SLACK_S, f"CRASHTIME {crashtime}"
    else:
        built = datetime.fromisoformat(sample.manifest["built_at"])
        when, slack, what = built.timestamp(), _RUNNING_GUEST_SLACK_S, f"the sample's built_at {built}"
    fields = parse_sys(answers["sys"])
    hz = config_hz(sample)
    jiffies = jiffies_uptime(_open(sample), hz)
    last_log = [line.seconds for line in parse_log(answers["log"]) if line.seconds is not None][-1]
    last_dated = [line.timestamp for line in parse_log(answers["log-T"]) if line.timestamp][-1]
    date, uptime, dated = (
        crash_date(fields["DATE"]),
        uptime_seconds(fields["UPTIME"]),
        crash_date(last_dated),
    )
    return {
        "sys:DATE": (date is not None and abs(date - when) <= slack, f"DATE {fields['DATE']} vs {what}"),
        # UPTIME counts jiffies; the log's seconds come from local_clock(), which can run a second
        # and more ahead of them under TCG (oops-null of 5.10.251: UPTIME 00:00:07, jiffies at
        # CONFIG_HZ 7 s, the log's last line at 8.02 s). The oracle is jiffies at CONFIG_HZ.
        "sys:UPTIME": (
            abs(uptime - jiffies) <= 1,
            f"UPTIME {fields['UPTIME']} vs jiffies at CONFIG_HZ={hz}: {jiffies} s "
            f"(the log ends at {last_log} s)",
        ),
        "log-T": (
            dated is not None and abs(dated - when) <= slack,
            f"log -T's last line [{last_dated}] vs {what}",
        ),
    }


def test_clocks_are_right_where_trusted_and_wrong_where_distrusted(
    matrix_case: tuple[Sample, CrashAnswers],
) -> None:
    """crash's DATE, UPTIME and ``log -T`` against the dump's own clocks (VMCOREINFO's CRASHTIME,
    the log's seconds since boot): right wherever the table trusts them, and wrong wherever it does
    not (else the row is stale and tests give up an oracle for nothing)."""
    sample, answers = matrix_case
    wrong = []
    for key, (right, compared) in _clock_checks(sample, answers).items():
        if right != answers.trusts(*key.split(":")):
            verdict = "distrusted but right" if right else "trusted but wrong"
            wrong.append(f"{key} is {verdict}: {compared}")
    assert not wrong, "\n".join(wrong)


_STACK_CHECKS = ("callers", "panic-frame", "outermost", "running-user", "active")


def test_distrusted_back_traces_differ_from_drgn(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    """Where the table distrusts crash's back traces, they do differ from drgn's unwinding: the
    callers of some task (``foreach bt``, in both directions: ``test_stacks_of_every_task_against_drgn``),
    the panic task's ``panic()`` frame, which drgn finds and crash drops, the outermost frame, or
    every frame of the tasks on CPUs (crash lists none, drgn unwinds them)."""
    sample, answers = matrix_case
    # Checked elsewhere: the clocks (test_clocks_are_right_…), bt -l's line of an interrupted frame
    # (test_crash_site_is_the_guests_faulting_function_and_line).
    # crash's lines of module code (test_distrusted_module_lines_are_the_overlay); kmem ADDR, which is
    # no stored answer (tests/e2e/test_structures.py's oracle asks it and checks that it fails).
    elsewhere = {
        "sys:DATE",
        "sys:UPTIME",
        "log-T",
        "bt-l:exception-line",
        "kmem-i:swap",
        "kmem-addr",
        *_MODULE_CODE_CHECKS,
    }
    unknown = {
        k for k in answers.distrusted if k not in elsewhere and k.partition(":")[2] not in _STACK_CHECKS
    }
    assert not unknown, f"no check for the distrusted answers {unknown}: add one here"
    prog = None
    for key in answers.distrusted:
        name, _, detail = key.partition(":")
        if detail == "callers" and name != "foreach-bt":
            prog = prog or _open(sample)
            assert _stack_differences(prog, sample, answers, name), (
                f"{key} is distrusted, yet crash's {name} is drgn's"
            )
        elif detail == "outermost":
            prog = prog or _open(sample)
            # The normalisation rule cuts the architecture's stack roots (Arch.stack_roots) from both
            # sides, so the difference is seen on drgn's raw unwinding: its outermost frame is a root
            # (ret_from_fork, __primary_switched …) that crash's back trace does not have.
            roots = arch_of(prog).stack_roots
            shorter = [
                task.pid
                for task in parse_bt(answers[name])
                if (outermost := _raw_outermost(prog, task.task)) in roots
                and outermost not in {frame.function for frame in _crash_frames(sample, task)}
            ]
            # foreach bt has kernel threads and idle tasks, whose outermost frame crash leaves out.
            assert shorter or name != "foreach-bt", f"{key} is distrusted, yet no stack is one frame short"
        elif detail == "running-user":
            prog = prog or _open(sample)
            active = _active_tasks(answers)
            stale = [
                task.pid
                for task in parse_bt(answers[name])
                if task.task in active and not _drgn_frames(prog, task.task) and _crash_frames(sample, task)
            ]
            assert stale, (
                f"{key} is distrusted, yet crash lists no kernel frames for a task running user code"
            )
        elif detail == "active":
            prog = prog or _open(sample)
            # Every task on a CPU is a bare header in crash's answer, and drgn unwinds it.
            on_cpu = [task for task in parse_bt(answers[name]) if task.task in _active_tasks(answers)]
            assert on_cpu, f"{key} is distrusted, yet crash's {name} has no task that was on a CPU"
            framed = [task.pid for task in on_cpu if task.frames]
            assert not framed, f"{key} is distrusted, yet crash's {name} lists frames of PIDs {framed}"
            unwound = {task.pid: bool(_drgn_frames(prog, task.task)) for task in on_cpu}
            assert all(unwound.values()), (key, unwound)
        elif detail == "panic-frame":
            prog = prog or _open(sample)
            panicked = next(t for t in parse_bt(answers[name]) if t.pid == sample.expected["crashed_pid"])
            theirs = [f.function for f in _crash_frames(sample, panicked)]
            ours = [f.function for f in normalize_drgn_trace(prog.crashed_thread().stack_trace())]
            if "vpanic" in ours:  # the task called panic(): crash drops its frame
                assert "panic" in ours and "panic" not in theirs, (key, theirs, ours)
            else:  # kdump started from the oops (oops_end): no panic() frame to drop
                assert not {"vpanic", "panic"} & set(theirs), (key, theirs, ours)


def test_stacks_of_every_task_against_drgn(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    """Where the table trusts crash's stacks, drgn unwinds every task as crash does under the one
    normalisation rule (sleeping tasks, kernel threads, idle tasks, the CPU stopped by NMI); where
    it does not (7.x), crash's ``foreach bt`` must indeed differ from drgn's, the oracle for stacks."""
    sample, answers = matrix_case
    failures = _stack_differences(_open(sample), sample, answers, "foreach-bt")
    tasks = len(parse_bt(answers["foreach-bt"]))
    if answers.trusts("foreach-bt", "callers"):
        assert not failures, f"{len(failures)} of {tasks} tasks differ:\n" + "\n".join(failures[:5])
    else:
        assert failures, (
            f"crash's foreach bt is distrusted on {sample.kernel_release}, yet every stack is drgn's"
        )


_MODULE_CODE_CHECKS = (
    *(f"{name}:module-lines" for name in ("bt-l", "dis-l", "dis-rl", "dis-func")),
    "dis-func:module-extent",
)


def test_distrusted_module_lines_are_the_overlay(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    """Where the table distrusts crash's lines of module code, its ``dis -l`` answers on this dump
    show the overlay it names (binutils on the .ko): some instruction of a module function carries
    the line another code section has at the same offset, not its own section's, and ``dis -l
    <function>`` stops before the function's end. Where the table trusts them, no instruction has
    that mark and the listing is whole. A dump whose answers hold no module code shows neither."""
    sample, answers = matrix_case
    listings = {name: parse_dis(answers[name]) for name in ("dis-l", "dis-rl", "dis-func") if name in answers}
    kos = sample.debug_info
    in_module = [
        name for name, listing in listings.items() if any(ko_function(kos, i.symbol) for i in listing)
    ]
    overlay = {name: found for name, listing in listings.items() if (found := overlaid_lines(kos, listing))}
    truncated = truncated_listing(kos, listings.get("dis-func", []))
    lines_trusted = answers.trusts("dis-l", "module-lines")
    extent_trusted = answers.trusts("dis-func", "module-extent")
    if not in_module:
        assert not overlay and truncated is None
        return
    if lines_trusted:
        assert not overlay, f"crash's lines of module code are trusted, yet overlaid: {overlay}"
    else:
        assert overlay, f"crash's lines of module code are distrusted, yet binutils agrees: {listings}"
    if extent_trusted:
        assert truncated is None, truncated
    elif "dis-func" in in_module:
        assert truncated, "dis -l of a module function is distrusted, yet whole"


def test_kmem_i_swap_lines_are_absent_where_distrusted(matrix_case: tuple[Sample, CrashAnswers]) -> None:
    """crash's ``kmem -i`` has its swap lines wherever the table trusts them; where it does not, they
    are absent, and the kernel has neither symbol crash looks for (``swapper_space``, ``swapper_spaces``)."""
    sample, answers = matrix_case
    figures = kmem_i_figures(answers["kmem-i"])
    if answers.trusts("kmem-i", "swap"):
        assert {"TOTAL SWAP", "SWAP USED", "SWAP FREE"} <= set(figures), answers["kmem-i"]
        return
    assert not {"TOTAL SWAP", "SWAP USED", "SWAP FREE"} & set(figures), answers["kmem-i"]
    prog = _open(sample)
    for name in ("swapper_space", "swapper_spaces"):
        with pytest.raises(LookupError):
            prog.symbol(name)


# -- The default kernel's samples: what only oops-null has, and drgn on both dump formats -----------


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


def _crash_site(frames: list[Frame]) -> Frame:
    """The function the task crashed in: the exception's, or the caller of a direct panic()."""
    return next(f for f in frames if f.function not in PANIC_PATH)


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
    assert _crash_site(ours).function == sample.expected["function"]
