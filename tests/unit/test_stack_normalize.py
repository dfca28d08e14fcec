"""The shared stack normalisation, on fixed frames (its rules on crash's real ``bt`` are in
tests/samples/test_crash_stack_normalize.py)."""

from __future__ import annotations

import pytest
from tests.helpers.stack_normalize import (
    Frame,
    assert_stacks_match,
    base_function_name,
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
