"""The kind of crash, from log lines as each architecture's kernel prints them (no dump needed).

The lines are the kernels' own (arch/x86/mm/fault.c show_fault_oops, arch/arm64/mm/fault.c
die_kernel_fault, lib/bug.c, drivers/tty/sysrq.c, kernel/watchdog*.c…). The end-to-end proof on real
dumps is tests/e2e/test_exception.py (the exception widget) and tests/e2e/test_triage.py (the class
in a signature): both read :attr:`PanicInfo.kind`.
"""

from __future__ import annotations

import pytest

from vmcore_dap.dump.kernel.panic import PanicInfo
from vmcore_dap.dump.kernel.panic_kind import _RULES, NO_PANIC, classify


def _panic(oops: str | None, panic: str | None, *report: str) -> PanicInfo:
    return PanicInfo(panic=panic, oops=oops, taint="", report=list(report))


@pytest.mark.parametrize(
    ("oops", "panic", "report", "expected"),
    [
        (
            "BUG: kernel NULL pointer dereference, address: 0000000000000008",
            "Oops: 0000 [#1]",
            [],
            "null-deref",
        ),
        (
            "BUG: kernel NULL pointer dereference, address: 0000000000000008",
            "Kernel panic - not syncing: Fatal exception in interrupt",
            [],
            "null-deref",
        ),
        # x86-64 before v5.1 (f28b11a2abd9)
        ("BUG: unable to handle kernel NULL pointer dereference at 0000000000000008", None, [], "null-deref"),
        ("BUG: unable to handle kernel paging request at ffffc90000a3c000", None, [], "bad-address"),
        ("BUG: unable to handle page fault for address: ffffc90000a3c000", "Oops: 0002", [], "bad-address"),
        # arm64 die_kernel_fault()
        (
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
            "Kernel panic - not syncing: Oops: Fatal exception",
            ["Internal error: Oops: 0000000096000004 [#1] SMP"],
            "null-deref",
        ),
        (
            "Unable to handle kernel paging request at virtual address ffff800080a3c000",
            "Kernel panic - not syncing: Oops: Fatal exception",
            [],
            "bad-address",
        ),
        # arm64 __do_kernel_fault()'s permission faults (5.10 … 7.2) and 7.2's pKVM-protected memory
        *(
            (f"Unable to handle kernel {what} at virtual address ffff800080a3c000", "Oops", [], "bad-address")
            for what in (
                "write to read-only memory",
                "execute from non-executable memory",
                "read from unreadable memory",
                "access to hypervisor-protected memory",
            )
        ),
        ("kernel BUG at fs/ext4/inode.c:1234!", "Oops: invalid opcode: 0000 [#1]", [], "bug"),
        (None, "Kernel panic - not syncing: softlockup: hung tasks", [], "soft-lockup"),
        ("BUG: soft lockup - CPU#1 stuck for 22s! [spin:123]", None, [], "soft-lockup"),
        (
            None,
            "Kernel panic - not syncing: Hard LOCKUP",
            ["NMI watchdog: Watchdog detected hard LOCKUP"],
            "hard-lockup",
        ),
        (None, "Kernel panic - not syncing: hung_task: blocked tasks", [], "hung-task"),
        (None, "Kernel panic - not syncing: Out of memory and no killable processes...", [], "oom"),
        ("sysrq: Trigger a crash", "Kernel panic - not syncing: sysrq triggered crash", [], "sysrq"),
        ("SysRq : Trigger a crash", "SysRq : Trigger a crash", [], "sysrq"),
        (
            "general protection fault, probably for non-canonical address",
            "general protection fault",
            [],
            "gpf",
        ),
        (None, "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009", [], "init-killed"),
        (None, "Kernel panic - not syncing: something else", [], "panic"),
        ("Oops: 0000 [#1] SMP", "Oops: 0000 [#1] SMP", [], "oops"),
        ("BUG: scheduling while atomic: swapper/0/0/0x00000002", "Oops: 0000 [#1] SMP", [], "oops"),
    ],
)
def test_panic_kinds(oops: str | None, panic: str | None, report: list[str], expected: str) -> None:
    assert _panic(oops, panic, *report).kind.name == expected


def test_the_exception_widget_and_triage_name_a_crash_alike() -> None:
    """x86's and arm64's words for one fault give one kind, one label (the widget's headline)."""
    x86 = _panic("BUG: kernel NULL pointer dereference, address: 0000000000000008", "Oops: 0002 [#1]")
    arm64 = _panic("Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008", "")
    assert x86.kind == arm64.kind
    assert x86.kind.label == "NULL pointer dereference"
    sysrq = _panic("sysrq: Trigger a crash", "Kernel panic - not syncing: sysrq triggered crash")
    assert sysrq.kind.label == "SysRq crash"


def test_each_kind_has_one_name_and_one_label() -> None:
    names = [kind.name for kind, _ in _RULES]
    labels = [kind.label for kind, _ in _RULES]
    assert len(set(names)) == len(names) and len(set(labels)) == len(labels)


def test_no_panic() -> None:
    assert classify(None, None) == NO_PANIC
    assert _panic(None, None).kind.name == "no-panic"
