"""The table of docs/console.md ("Task states"), evaluated on a task's raw state with the kernel
source's own ``#define``\\ s: the oracle for dumps crash cannot open (the ``no-panic`` sample).

Written from the documentation and the kernel headers, not from the adapter's code (which reads the
bits from ``task_state_array`` the way crash does); ``tests/e2e/test_task_states.py`` checks that
both agree on every task of every sample, and crash checks the adapter where it can.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import drgn

__all__ = ["documented_letter", "kernel_state_defines", "raw_state", "state_member"]

_DEFINE = re.compile(r"^#define\s+(?P<name>_*(?:TASK|EXIT)_[A-Z_]+)\s+(?P<value>0x[0-9a-fA-F]+)\b", re.M)


def kernel_state_defines(sample: Any) -> dict[str, int]:
    """``#define TASK_…/EXIT_… 0x…`` of the sample's own kernel source (include/linux/sched.h)."""
    from samples.kernel_source import debian_version_of_vmlinux, ensure_kernel_source

    tree = ensure_kernel_source(debian_version_of_vmlinux(Path(sample.vmlinux)))
    text = (tree / "include" / "linux" / "sched.h").read_text()
    return {m["name"]: int(m["value"], 16) for m in _DEFINE.finditer(text)}


def state_member(task: drgn.Object) -> drgn.Object:
    """A task's ``__state`` member: ``task_struct.state`` was renamed ``__state`` in v5.14
    (2f064a59a11f "sched: Change task_struct::state")."""
    try:
        return task.member_("__state")
    except LookupError:
        return task.member_("state")


def raw_state(task: drgn.Object) -> tuple[int, int]:
    """``(__state, exit_state)`` of a ``struct task_struct *``."""
    return state_member(task).value_(), task.exit_state.value_()


def documented_letter(defines: dict[str, int], state: int, exit_state: int) -> str:
    """The letter the table gives a task whose ``__state`` and ``exit_state`` are these."""
    d = defines.get
    value = state | exit_state
    # Rows tested in crash's order, a later match winning; DE only if no row of the first group matched.
    matched = [
        letter
        for letter, bit in (
            ("S", d("TASK_INTERRUPTIBLE", 0)),
            ("D", d("TASK_UNINTERRUPTIBLE", 0)),
            ("Z", d("EXIT_ZOMBIE", 0)),
            ("T", d("__TASK_STOPPED", 0)),
            ("t", d("__TASK_TRACED", 0)),
        )
        if value & bit
    ]
    letter = "R" if value == 0 else "?"
    if matched:
        letter = matched[-1]
        if letter == "D" and value & d("TASK_NOLOAD", 0):
            letter = "I"
    elif value & (d("EXIT_DEAD", 0) | d("TASK_DEAD", 0)):
        letter = "X"
    exact = {d("TASK_PARKED"): "P", d("TASK_WAKING"): "W", d("TASK_NEW"): "N"}
    letter = exact.get(value, letter)
    if letter == "?" and value & (d("TASK_RTLOCK_WAIT", 0) | d("TASK_FROZEN", 0)):
        letter = "D"
    return letter
