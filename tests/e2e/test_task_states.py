"""Task states as crash names them (``vmcore_dap.dump.kernel.task_state``), on the samples' kernels.

The samples can only show the states their tasks happened to be in (R, S, D, I, and now and then a
task caught waking); the thread list, the console's ``ps`` and the Kernel view are compared with
crash's ``ps`` on every task elsewhere (test_core_threads, test_console, test_kernel_view). Here:

* every task of every sample is named as the table, evaluated on its raw state with the kernel
  source's ``#define``\\ s (``tests/helpers/task_states.py``), says;
* the state bits read from the dump's ``task_state_array`` (as crash reads them) equal those
  ``#define``\\ s, so every state the samples cannot show is still named from the right bit;
* each row of the table in docs/console.md, built from those bits, gets its letter, in crash 8.0.6's
  order of precedence (a later row wins; ``DE`` only when nothing else matched).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from tests.conftest import get_sample
from tests.e2e._core_support import open_sample_dump
from tests.helpers.task_states import documented_letter, kernel_state_defines, raw_state

from vmcore_dap.dump.kernel.task_state import CRASH_STATE_LETTERS, StateBits, state_bits, state_letter
from vmcore_dap.dump.kernel.tasks import list_tasks

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def bits(sample: Any) -> StateBits:
    return state_bits(open_sample_dump(sample).prog)


@pytest.mark.parametrize("scenario", ["oops-null", "sysrq-c", "irq-oops", "many-tasks", "no-panic"])
def test_every_task_is_named_as_the_table_says(scenario: str) -> None:
    """The thread list's letter of every task equals the table evaluated on the task's raw state
    with the kernel source's own defines (the oracle test_no_panic relies on, crash cannot open it)."""
    sample = get_sample(scenario)
    defines = kernel_state_defines(sample)
    infos = list_tasks(open_sample_dump(sample).prog)
    wrong = [
        (info.pid, info.comm, info.state, documented_letter(defines, *raw_state(info.task)))
        for info in infos
        if info.state != documented_letter(defines, *raw_state(info.task))
    ]
    assert not wrong, wrong[:10]
    print(scenario, dict(Counter(info.state for info in infos)))


def test_state_bits_equal_the_kernel_sources_defines(sample: Any, bits: StateBits) -> None:
    defines = kernel_state_defines(sample)
    expected = {
        "interruptible": "TASK_INTERRUPTIBLE",
        "uninterruptible": "TASK_UNINTERRUPTIBLE",
        "stopped": "__TASK_STOPPED",
        "traced": "__TASK_TRACED",
        "exit_dead": "EXIT_DEAD",
        "exit_zombie": "EXIT_ZOMBIE",
        "parked": "TASK_PARKED",
        "dead": "TASK_DEAD",
        "waking": "TASK_WAKING",
        "noload": "TASK_NOLOAD",
        "new": "TASK_NEW",
        "rtlock_wait": "TASK_RTLOCK_WAIT",
        "frozen": "TASK_FROZEN",
    }
    ours = {field: getattr(bits, field) for field in expected if expected[field] in defines}
    theirs = {field: defines[name] for field, name in expected.items() if name in defines}
    assert ours == theirs
    assert defines["TASK_RUNNING"] == 0
    # A state this kernel does not have yet (TASK_RTLOCK_WAIT before v5.15, TASK_FROZEN before
    # v6.1) is named from a bit no task of it can carry.
    for field, name in expected.items():
        if name not in defines:
            assert getattr(bits, field) >= defines["TASK_STATE_MAX"], (field, name)


def test_each_crash_state_has_its_documented_letter(bits: StateBits) -> None:
    """One value per row of the table, each as the kernel sets it (``TASK_KILLABLE``, ``TASK_IDLE``,
    ``TASK_STOPPED`` carry ``TASK_WAKEKILL``; a zombie has ``TASK_DEAD`` in ``__state``)."""
    wakekill = bits.dead << 1
    rows = {
        "RU": (0, 0),
        "IN": (bits.interruptible, 0),
        "UN": (bits.uninterruptible | wakekill, 0),
        "ID": (bits.uninterruptible | bits.noload, 0),
        "ZO": (bits.dead, bits.exit_zombie),
        "ST": (bits.stopped | wakekill, 0),
        "TR": (bits.traced, 0),
        "DE": (bits.dead, bits.exit_dead),
        "PA": (bits.parked, 0),
        "WA": (bits.waking, 0),
        "NE": (bits.new, 0),
    }
    assert set(rows) == set(CRASH_STATE_LETTERS)
    assert {crash: state_letter(bits, *values) for crash, values in rows.items()} == CRASH_STATE_LETTERS


def test_crash_precedence_and_the_states_crash_cannot_name(bits: StateBits) -> None:
    # A later row of crash's task_state_string() wins over an earlier one …
    assert state_letter(bits, bits.interruptible | bits.traced, 0) == "t"
    assert state_letter(bits, bits.uninterruptible | bits.stopped, 0) == "T"
    assert state_letter(bits, bits.interruptible, bits.exit_zombie) == "Z"
    # … DE only when no sleeping, exiting or stopped row matched …
    assert state_letter(bits, bits.dead | bits.interruptible, 0) == "S"
    assert state_letter(bits, bits.dead, 0) == "X"
    # … PA, WA and NE only for exactly that value (crash's "state == _WAKING_").
    assert state_letter(bits, bits.waking | bits.interruptible, 0) == "S"
    assert state_letter(bits, bits.parked, bits.exit_zombie) == "Z"
    # TASK_IDLE with a freezable sleep's extra bit is still I (crash tests the bits, not the value).
    freezable = bits.rtlock_wait << 1 if bits.rtlock_wait else 0
    assert state_letter(bits, bits.uninterruptible | bits.noload | freezable, 0) == "I"
    # crash prints ?? for these two; /proc (and we) say D. Anything else nobody names is "?".
    if bits.rtlock_wait:
        assert state_letter(bits, bits.rtlock_wait, 0) == "D"
    if bits.frozen:
        assert state_letter(bits, bits.frozen, 0) == "D"
    assert state_letter(bits, bits.dead << 1, 0) == "?"  # TASK_WAKEKILL alone
