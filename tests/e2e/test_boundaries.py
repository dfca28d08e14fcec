"""Exception boundaries on a real stack: a label frame carrying the saved ``pt_regs`` found in memory.

The samples' tasks are never caught inside an interrupt, but the crashed task's stack still holds
the page fault's frames below the panic path. Unwinding from the return address crash's ``bt``
shows inside ``asm_exc_page_fault`` crosses that real exception; the target layer is used directly
(no protocol), and crash's ``[exception RIP: …]`` block is the oracle for the saved registers.
"""

from __future__ import annotations

from typing import Any

import drgn
import pytest
from tests.e2e._session import open_sample_dump
from tests.helpers.crash_parse import parse_bt

from vmcore_dap.dump.kernel.panic import crashed_task
from vmcore_dap.dump.stacks.frames import present_trace

pytestmark = pytest.mark.timeout(900)


def test_page_fault_boundary_is_a_label_with_the_saved_registers(
    sample_oops: Any, crash_oops: dict[str, str]
) -> None:
    bt = parse_bt(crash_oops["bt"])[0]
    entry = next(f for f in bt.frames if f.symbol == "asm_exc_page_fault")
    exception = bt.exceptions[0]
    dump = open_sample_dump(sample_oops)
    prog = dump.prog
    task = crashed_task(prog)
    assert task is not None
    # The state right after exc_page_fault returned into the entry stub: ip = crash's return
    # address, sp = just above the slot crash prints in brackets.
    regs = drgn.Object(prog, "struct pt_regs", value={"ip": entry.address, "sp": entry.sp + 8})
    stack = present_trace(prog, prog.stack_trace(regs), task)
    names = [f.name for f in stack.frames]
    index = names.index("── exception: page fault ──")
    label = stack.frames[index]
    assert label.kind == "label" and names[index - 1] == "asm_exc_page_fault"
    saved = label.pt_regs
    assert saved is not None and saved.address_ is not None  # found in memory, not rebuilt
    assert saved.ip.value_() == exception.registers["RIP"]
    assert saved.sp.value_() == exception.registers["RSP"]
    assert (
        saved.ax.value_() == exception.registers["RAX"] and saved.r12.value_() == exception.registers["R12"]
    )
    faulting = stack.frames[index + 1]
    expected = sample_oops.expected
    assert faulting.name == expected["function"] and faulting.line == expected["line"]
    assert faulting.source_file is not None and faulting.source_file.endswith(expected["file"])
    assert faulting.pc == exception.registers["RIP"]
