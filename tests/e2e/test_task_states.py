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
from pathlib import Path
from typing import Any

import pytest
from drgn import sizeof
from drgn.helpers.linux.pid import for_each_task
from tests.conftest import get_sample, kernel_sample_keys, sample_id
from tests.e2e._session import open_sample_dump, parse_thread_name, stopped_session
from tests.helpers import crash_compare as cc
from tests.helpers.crash_batch import run_crash
from tests.helpers.crash_parse import crash_state_letter, parse_ps
from tests.helpers.elf_patch import copy_elf, open_elf, patch_phys, phys_of
from tests.helpers.task_states import documented_letter, kernel_state_defines, raw_state, state_member

from vmcore_dap.dump.kernel.task_state import CRASH_STATE_LETTERS, StateBits, state_bits, state_letter
from vmcore_dap.dump.kernel.tasks import list_tasks

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def bits(sample: Any) -> StateBits:
    return state_bits(open_sample_dump(sample).prog)


#: Every sample of the default kernel, then the crashed samples of the other kernels of this run.
_EVERY_SAMPLE = [
    (scenario, None, None) for scenario in ("oops-null", "sysrq-c", "irq-oops", "many-tasks", "no-panic")
] + kernel_sample_keys()


@pytest.mark.parametrize("key", _EVERY_SAMPLE, ids=sample_id)
def test_every_task_is_named_as_the_table_says(key: tuple[str, str | None, str | None]) -> None:
    """The thread list's letter of every task equals the table evaluated on the task's raw state
    with the kernel source's own defines (the oracle test_no_panic relies on, crash cannot open it)."""
    sample = get_sample(*key)
    defines = kernel_state_defines(sample)
    infos = list_tasks(open_sample_dump(sample).prog)
    wrong = [
        (info.pid, info.comm, info.state, documented_letter(defines, *raw_state(info.task)))
        for info in infos
        if info.state != documented_letter(defines, *raw_state(info.task))
    ]
    assert not wrong, wrong[:10]
    print(sample_id(key), dict(Counter(info.state for info in infos)))


@pytest.mark.every_kernel
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


@pytest.mark.every_kernel
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


@pytest.mark.every_kernel
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


# -- every state of the table, planted in a copy of a real dump, against crash ---------------------


def _planted(defines: dict[str, int]) -> list[tuple[str, int, int]]:
    """(crash's code, ``__state``, ``exit_state``) for one task per row of the table, as the kernel
    sets them (``TASK_KILLABLE``, ``TASK_STOPPED`` carry ``TASK_WAKEKILL``; a zombie has
    ``TASK_DEAD``), one precedence case, and crash's ``??`` for ``TASK_RTLOCK_WAIT`` where the kernel
    has it (v5.15, with PREEMPT_RT's sleeping spinlocks; not on 5.10)."""
    d = defines
    rtlock = [("??", d["TASK_RTLOCK_WAIT"], 0)] if "TASK_RTLOCK_WAIT" in d else []
    return [
        ("RU", 0, 0),
        ("UN", d["TASK_UNINTERRUPTIBLE"] | d["TASK_WAKEKILL"], 0),
        ("ID", d["TASK_UNINTERRUPTIBLE"] | d["TASK_NOLOAD"], 0),
        ("ZO", d["TASK_DEAD"], d["EXIT_ZOMBIE"]),
        ("ST", d["TASK_WAKEKILL"] | d["__TASK_STOPPED"], 0),
        ("TR", d["__TASK_TRACED"], 0),
        ("TR", d["TASK_INTERRUPTIBLE"] | d["__TASK_TRACED"], 0),
        ("DE", d["TASK_DEAD"], d["EXIT_DEAD"]),
        ("PA", d["TASK_PARKED"], 0),
        ("WA", d["TASK_WAKING"], 0),
        ("NE", d["TASK_NEW"], 0),
    ] + rtlock


#: oops-null, and sysrq-c of every other kernel of this run (the states do not depend on the scenario;
#: crash reads each patched copy once, its answer cached by the copy's content: arm64's in ``make
#: test-matrix`` only, ``extra_crash_run``).
_PLANTED_SAMPLES = [("oops-null", None, None)] + [
    key for key in kernel_sample_keys(extra_crash_run=True) if key[0] == "sysrq-c"
]


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("key", _PLANTED_SAMPLES, ids=sample_id)
def test_planted_states_equal_crash_in_every_view(
    key: tuple[str, str | None, str | None], tmp_path: Path
) -> None:
    """The states no scenario can catch on purpose (a task waking, being forked, a zombie …) written
    into sleeping tasks of a copy of the sample's ELF vmcore (oops-null's, and each other kernel's
    crashed sample): crash's ``ps`` on that file names each as the table's crash column says, and the
    thread names, the console's ``ps`` and ``ps -S`` show the table's letter; crash's ``??`` (a state
    it cannot name) is documented as our ``D``."""
    sample = get_sample(*key)
    defines = kernel_state_defines(sample)
    prog = open_elf(sample)
    sleepers = sorted(
        (t for t in for_each_task(prog) if t.comm.string_() == b"sleep"), key=lambda t: t.pid.value_()
    )
    rows = _planted(defines)
    assert len(sleepers) >= len(rows)
    vmcore = copy_elf(sample, tmp_path)
    planted: dict[int, str] = {}  # task address → crash's code
    for (code, state, exit_state), task in zip(rows, sleepers, strict=False):
        for member, value in ((state_member(task), state), (task.exit_state, exit_state)):
            assert member.address_ is not None
            patch_phys(vmcore, phys_of(prog, member.address_), value.to_bytes(sizeof(member.type_), "little"))
        planted[task.value_()] = code

    crash_ps, _log = run_crash(sample, ["ps"], vmcore=vmcore)
    crash_rows = {row.task: row for row in parse_ps(crash_ps)}
    assert {task: crash_rows[task].state for task in planted} == planted
    expected = {
        task: "D" if row.state == "??" else crash_state_letter(row.state) for task, row in crash_rows.items()
    }

    with stopped_session(sample, tmp_path / "dap", vmcore=str(vmcore)) as (client, stopped):
        threads = client.call("threads")["threads"]
        # A request the worker answers after the stop's panic log, so that log is not read as ps's.
        client.call("stackTrace", {"threadId": stopped["body"]["threadId"]})
        (ps_text, ps_response), (summary_text, summary_response) = client.repl("ps"), client.repl("ps -S")
    assert ps_response["success"] and summary_response["success"], (ps_response, summary_response)
    ours_ps = {r.task: r.state for r in cc.ps_entries(ps_text)}
    summary = dict(line.split(": ") for line in summary_text.strip().splitlines())
    assert ours_ps == expected
    assert {s.strip(): int(n) for s, n in summary.items()} == dict(Counter(expected.values()))
    # Thread names by PID (the planted tasks are sleepers, never PID 0).
    letters = {parse_thread_name(t["name"])["pid"]: parse_thread_name(t["name"])["state"] for t in threads}
    assert {task: letters[crash_rows[task].pid] for task in planted} == {
        task: expected[task] for task in planted
    }
