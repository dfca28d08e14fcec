"""The shared stack normalisation: its rules on fixed frames, then on crash's real bt output."""

from __future__ import annotations

import pytest
from tests.helpers.crash_parse import parse_bt
from tests.helpers.stack_normalize import (
    CRASH_MACHINERY,
    Frame,
    assert_stacks_match,
    base_function_name,
    normalize_crash_bt,
    normalize_frames,
    stack_differences,
)


@pytest.mark.parametrize(
    ("symbol", "function"),
    [
        ("labbug_walk", "labbug_walk"),
        ("labbug_walk.cold", "labbug_walk"),
        ("page_fault_oops.isra.0", "page_fault_oops"),
        ("vfs_write.constprop.0", "vfs_write"),
        ("__schedule.part.0", "__schedule"),
        ("do_one.constprop.0.isra.0", "do_one"),
        ("update_curr.cold.12", "update_curr"),
        ("coldfire_init", "coldfire_init"),  # "cold" only as a whole suffix
        ("x86_64_start_kernel", "x86_64_start_kernel"),
        ("entry_SYSCALL_64_after_hwframe", "entry_SYSCALL_64"),
        ("__x64_sys_pause", "__do_sys_pause"),
    ],
)
def test_base_function_name_strips_gcc_suffixes(symbol: str, function: str) -> None:
    assert base_function_name(symbol) == function


def test_inline_frames_merge_into_their_physical_frame_with_the_innermost_location() -> None:
    # As drgn lists them (innermost first); crash's bt -l shows the innermost location.
    frames = normalize_frames(
        [
            ("context_switch", "kernel/sched/core.c", 5257, True),
            ("__schedule.part.0", "kernel/sched/core.c", 6584, False),
            ("schedule", "kernel/sched/core.c", 6660, False),
        ]
    )
    assert frames == [
        Frame("__schedule", "kernel/sched/core.c", 5257),
        Frame("schedule", "kernel/sched/core.c", 6660),
    ]


def test_pcs_must_match_when_both_sides_know_them() -> None:
    crash = [Frame("f", pc=0xFFFFFFFF81000010)]
    assert stack_differences([Frame("f", pc=0xFFFFFFFF81000010)], crash) == []
    assert stack_differences([Frame("f", pc=0xFFFFFFFF81000011)], crash)
    assert stack_differences([Frame("f")], crash) == []


def test_caller_lines_may_differ_by_one_but_not_the_first() -> None:
    crash = [Frame("f", "/build/linux/a.c", 10), Frame("g", "/build/linux/b.c", 20)]
    assert stack_differences([Frame("f", "a.c", 10), Frame("g", "b.c", 21)], crash) == []
    assert stack_differences([Frame("f", "a.c", 11), Frame("g", "b.c", 20)], crash)
    assert stack_differences([Frame("f", "a.c", 10), Frame("g", "b.c", 22)], crash)


def test_files_compare_by_path_suffix() -> None:
    crash = [Frame("f", "/build/reproducible-path/linux-6.1/fs/read_write.c", 584)]
    assert stack_differences([Frame("f", "./fs/read_write.c", 584)], crash) == []
    assert stack_differences([Frame("f", "fs/open.c", 584)], crash)


def test_mismatch_message_shows_both_stacks() -> None:
    with pytest.raises(AssertionError) as err:
        assert_stacks_match([Frame("f"), Frame("h")], [Frame("f"), Frame("g")])
    text = str(err.value)
    assert "function lists differ" in text
    assert "h" in text and "g" in text


def test_crash_bt_starts_at_the_crash_site(crash_answers: dict[str, str], sample) -> None:
    """On the real dump: the kdump path above the crash site is cut, nothing else."""
    task = parse_bt(crash_answers["bt"])[0]
    frames = normalize_crash_bt(crash_answers["bt"])
    whole = normalize_crash_bt(crash_answers["bt"], start_at_exception=False)
    assert len(whole) == len(task.frames)
    if task.exceptions:  # oops: the faulting function leads, then its callers as crash lists them
        assert frames[0].function == sample.expected["function"]
        # A later exception block (irq-oops: the timer interrupt) adds the frame it interrupted.
        later = {e.registers["RIP"]: e.symbol for e in task.exceptions[1:]}
        assert [f for f in frames[1:] if f.pc not in later] == whole[task.exceptions[0].before_level :]
        assert {f.pc: f.function for f in frames if f.pc in later} == later
    else:  # panic() called directly: machine_kexec and __crash_kexec go, panic stays
        assert [f.function for f in frames[:2]] == ["panic", sample.expected["function"]]
        assert frames == whole[len(whole) - len(frames) :]
        assert {f.function for f in whole[: len(whole) - len(frames)]} <= CRASH_MACHINERY
    assert frames[-1].function == "entry_SYSCALL_64"  # crash's entry_SYSCALL_64_after_hwframe


def test_crash_bt_l_gives_the_crash_site_line(crash_answers: dict[str, str], sample) -> None:
    frames = [f for f in normalize_crash_bt(crash_answers["bt-l"]) if f.function != "panic"]
    top = frames[0]
    assert (top.function, top.line) == (sample.expected["function"], sample.expected["line"])
    assert top.file is not None and top.file.endswith("/" + sample.expected["file"])
    assert all(f.line is not None for f in frames), crash_answers["bt-l"]
