"""A crash in hard interrupt context (``irq-oops``): the stack across the IRQ stack, its boundary rows.

The sample's hrtimer callback faults while ``labirq`` spins in the kernel (``labbug_irq_wait``) on
CPU 1, so the crashed task's stack runs: panic path → page fault boundary → the timer callback on
the IRQ stack → the ``asm_sysvec_apic_timer_interrupt`` boundary → the interrupted kernel frame →
the ``write()`` system call. crash's ``bt`` is the oracle: its two ``[exception RIP: …]`` blocks
give the registers each boundary saved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import (
    focus_index,
    normalized_dap_stack,
    parse_thread_name,
    source_line,
    stack_of,
    stopped_session,
)
from tests.helpers.crash_parse import BtException, parse_bt
from tests.helpers.dap_client import DapClient
from tests.helpers.stack_normalize import assert_stacks_match, normalize_crash_bt

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def irq_session(
    sample_irq: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DapClient, dict[str, Any], list[dict[str, Any]]]]:
    """One adapter stopped on the irq-oops panic: the client, the ``stopped`` event, the crashed stack."""
    with stopped_session(sample_irq, tmp_path_factory.mktemp("irq")) as (client, stopped):
        yield client, stopped, stack_of(client, stopped["body"]["threadId"])


def _exceptions(crash_irq: dict[str, str]) -> list[BtException]:
    """crash's exception blocks of the crashed task: the page fault, then the timer interrupt."""
    (bt,) = parse_bt(crash_irq["bt"])
    assert len(bt.exceptions) == 2, bt.exceptions
    return bt.exceptions


def _registers(client: DapClient, frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    scopes = {
        s["name"]: s["variablesReference"] for s in client.call("scopes", {"frameId": frame["id"]})["scopes"]
    }
    assert "Registers" in scopes, scopes
    variables = client.call("variables", {"variablesReference": scopes["Registers"]})["variables"]
    return {v["name"]: v for v in variables}


def _assert_saved_registers(client: DapClient, label: dict[str, Any], exception: BtException) -> None:
    """The label's Registers scope is the ``pt_regs`` crash printed, read where it lies in memory."""
    registers = _registers(client, label)
    for ours, theirs in {
        "ip": "RIP",
        "sp": "RSP",
        "flags": "RFLAGS",
        "ax": "RAX",
        "bx": "RBX",
        "r12": "R12",
    }.items():
        assert int(registers[ours]["value"], 16) == exception.registers[theirs], (ours, registers[ours])
    # An lvalue found on the stack (not rebuilt from unwound registers): its evaluateName is an address.
    name = registers["ip"]["evaluateName"]
    assert re.fullmatch(r"\(\(struct pt_regs \*\)0x[0-9a-f]+\)->ip", name), name
    evaluated = client.call("evaluate", {"expression": name, "frameId": label["id"], "context": "hover"})
    assert int(evaluated["result"], 0) == exception.registers["RIP"]


def test_crashed_stack_matches_crash_bt(irq_session: Any, crash_irq: dict[str, str]) -> None:
    _, _, frames = irq_session
    ours = normalized_dap_stack(frames)
    crash = normalize_crash_bt(crash_irq["bt-l"])
    assert_stacks_match(ours, crash, check_lines="first")
    names = [f.function for f in ours]
    # Both stacks: the callback, the IRQ stack's frames, the entry stub, then the interrupted task.
    assert names[:2] == ["labbug_tick", "labbug_timer_fn"], names
    entry = names.index("asm_sysvec_apic_timer_interrupt")
    assert names[entry + 1 : entry + 3] == ["labbug_irq_wait", "labbug_irq_write"], names


def test_interrupt_boundary_is_a_label_with_the_interrupted_registers(
    irq_session: Any, sample_irq: Any, crash_irq: dict[str, str]
) -> None:
    client, _, frames = irq_session
    expected = sample_irq.expected
    entry = expected["interrupt_entry"]
    kind = entry.removeprefix("asm_sysvec_").replace("_", " ")
    names = [f["name"] for f in frames]
    index = names.index(f"── interrupt: {kind} ──")
    assert kind == "apic timer interrupt"
    label = frames[index]
    assert label["presentationHint"] == "label"
    assert names[index - 1] == entry  # the entry stub, on the task stack
    interrupted = frames[index + 1]
    assert interrupted["name"] == expected["interrupted_function"]
    assert Path(interrupted["source"]["path"]).name == "labbug.c" and source_line(interrupted) > 0
    timer_exception = _exceptions(crash_irq)[1]
    assert timer_exception.symbol == expected["interrupted_function"]
    assert int(interrupted["instructionPointerReference"], 16) == timer_exception.registers["RIP"]
    assert int(label["instructionPointerReference"], 16) == timer_exception.registers["RIP"]
    _assert_saved_registers(client, label, timer_exception)
    # The interrupted frame's own local (volatile, on its stack) is readable.
    scopes = {
        s["name"]: s["variablesReference"]
        for s in client.call("scopes", {"frameId": interrupted["id"]})["scopes"]
    }
    locals_ = {
        v["name"]: v for v in client.call("variables", {"variablesReference": scopes["Locals"]})["variables"]
    }
    assert int(locals_["spins"]["value"]) > 0, locals_["spins"]


def test_page_fault_boundary_on_the_irq_stack(irq_session: Any, crash_irq: dict[str, str]) -> None:
    """The fault's own boundary: the saved registers lie on the IRQ stack, near its top."""
    client, _, frames = irq_session
    names = [f["name"] for f in frames]
    index = names.index("── exception: page fault ──")
    assert names[index - 1] == "asm_exc_page_fault" and names[index + 1] == "labbug_tick"
    assert index < names.index("── interrupt: apic timer interrupt ──")
    _assert_saved_registers(client, frames[index], _exceptions(crash_irq)[0])


def test_frames_above_the_boundary_are_the_timer_callbacks(irq_session: Any, sample_irq: Any) -> None:
    _, _, frames = irq_session
    expected = sample_irq.expected
    names = [f["name"] for f in frames]
    start = names.index("── exception: page fault ──") + 1
    end = names.index("── interrupt: apic timer interrupt ──")
    physical = [n for n in names[start:end] if not n.endswith(" [inlined]")]
    # The oops's <IRQ> call trace (unreliable "?" entries left out), then the entry stub.
    assert physical == [expected["function"], *expected["irq_functions"], expected["interrupt_entry"]]
    # The task got in by write() to /proc/labbug/irq: the bottom row.
    assert re.match(r"^write\(fd=\d+, buf=0x[0-9a-f]+, count=5\)$", names[-1]), names[-1]


def test_faulting_frame_is_the_focus_with_its_locals(irq_session: Any, sample_irq: Any) -> None:
    client, stopped, frames = irq_session
    expected = sample_irq.expected
    focus = frames[focus_index(frames)]
    assert focus["name"] == expected["function"]
    assert Path(focus["source"]["path"]).name == expected["file"]
    assert source_line(focus) == expected["line"]
    for frame in frames[: focus_index(frames)]:
        assert frame.get("presentationHint") in ("subtle", "label"), frame
    scopes = {
        s["name"]: s["variablesReference"] for s in client.call("scopes", {"frameId": focus["id"]})["scopes"]
    }
    locals_ = {
        v["name"]: v for v in client.call("variables", {"variablesReference": scopes["Locals"]})["variables"]
    }
    for name, value in expected["locals"].items():
        assert locals_[name]["value"] == str(value), (name, locals_[name])
    # The crashed thread is the interrupted task, on the CPU the interrupt ran on.
    threads = {t["id"]: t["name"] for t in client.call("threads")["threads"]}
    crashed = parse_thread_name(threads[stopped["body"]["threadId"]])
    assert (crashed["pid"], crashed["comm"], crashed["cpu"]) == (
        expected["crashed_pid"],
        expected["crashed_comm"],
        expected["crashed_cpu"],
    )


def test_stop_and_exception_info_say_fatal_exception_in_interrupt(
    irq_session: Any, sample_irq: Any, crash_irq: dict[str, str]
) -> None:
    client, stopped, _ = irq_session
    expected = sample_irq.expected
    panic = re.search(r'PANIC: "(.*)"', crash_irq["sys"])
    assert panic is not None and panic.group(1) == expected["panic"]
    assert expected["panic"] == "Kernel panic - not syncing: Fatal exception in interrupt"
    assert stopped["body"]["reason"] == "exception"
    assert stopped["body"]["description"] == expected["panic"]
    info = client.call("exceptionInfo", {"threadId": stopped["body"]["threadId"]})
    assert info["description"] == expected["panic"]
    assert info["exceptionId"] == "NULL pointer dereference"
    assert info["details"]["message"] == expected["oops_line"]
    report = info["details"]["stackTrace"].splitlines()
    assert report[0] == expected["oops_line"] and report[-1].startswith("Kernel Offset:")
    assert " <IRQ>" in report and " </IRQ>" in report
    assert "Kernel panic - not syncing: Fatal exception in interrupt" in report
