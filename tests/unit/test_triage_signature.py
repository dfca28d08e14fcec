"""The signature rules on stacks and log lines as kernels print them (no dump needed).

The stacks below are the normalised crashed stacks of the samples (6.1), and the same crash as other
releases lay it out: 6.9+ dispatches system calls through ``x64_sys_call``, 6.6+ starts kernel
threads from ``ret_from_fork_asm``, 5.10 still has ``new_sync_write``, GCC may split a function into
``.cold``/``.isra`` parts. The end-to-end proof on real dumps is tests/e2e/test_triage.py.
"""

from __future__ import annotations

from vmcore_dap.dump.kernel.panic import PanicInfo
from vmcore_dap.dump.kernel.panic_kind import NO_PANIC
from vmcore_dap.triage.signature import SIGNATURE_DEPTH, crash_signature

OOPS_NULL_61 = [
    "labbug_walk",
    "labbug_trigger_write",
    "proc_reg_write",
    "vfs_write",
    "ksys_write",
    "do_syscall_64",
    "entry_SYSCALL_64",
]
OOPS_NULL_OTHER_BUILD = [
    "labbug_walk.isra.0",
    "labbug_trigger_write",
    "proc_reg_write",
    "new_sync_write",
    "vfs_write",
    "ksys_write",
    "__x64_sys_write",
    "x64_sys_call",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
]
#: The same crash on arm64 (6.12): the exception entered at el1h_64_sync, the system call at el0t_64_sync.
OOPS_NULL_ARM64 = [
    "labbug_walk",
    "labbug_trigger_write",
    "proc_reg_write",
    "vfs_write",
    "ksys_write",
    "__arm64_sys_write",
    "invoke_syscall",
    "el0_svc_common",
    "do_el0_svc",
    "el0_svc",
    "el0t_64_sync_handler",
    "el0t_64_sync",
]
IRQ_OOPS_61 = [
    "labbug_tick",
    "labbug_timer_fn",
    "__hrtimer_run_queues",
    "hrtimer_interrupt",
    "__sysvec_apic_timer_interrupt",
    "sysvec_apic_timer_interrupt",
    "asm_sysvec_apic_timer_interrupt",
    "labbug_irq_wait",
    "labbug_irq_write",
    "proc_reg_write",
    "vfs_write",
    "ksys_write",
    "do_syscall_64",
    "entry_SYSCALL_64",
]
SYSRQ_61 = [
    "panic",
    "sysrq_handle_crash",
    "__handle_sysrq",
    "write_sysrq_trigger",
    "proc_reg_write",
    "vfs_write",
    "ksys_write",
    "do_syscall_64",
    "entry_SYSCALL_64",
]


def _panic(oops: str | None, panic: str | None, *report: str) -> PanicInfo:
    return PanicInfo(panic=panic, oops=oops, taint="", report=list(report))


NULL_DEREF = _panic("BUG: kernel NULL pointer dereference, address: 0000000000000008", "Oops: 0000 [#1] SMP")
SYSRQ = _panic("sysrq: Trigger a crash", "Kernel panic - not syncing: sysrq triggered crash")


def test_the_same_bug_on_another_build_has_the_same_signature() -> None:
    kind = NULL_DEREF.kind
    assert crash_signature(kind, OOPS_NULL_61) == crash_signature(kind, OOPS_NULL_OTHER_BUILD)
    assert crash_signature(kind, OOPS_NULL_61) == crash_signature(kind, OOPS_NULL_ARM64)


def test_signature_names_the_fault_and_its_callers() -> None:
    signature = crash_signature(NULL_DEREF.kind, OOPS_NULL_61)
    assert signature.frames == ("labbug_walk", "labbug_trigger_write")
    assert signature.title == "NULL pointer dereference in labbug_walk"
    assert len(signature.id) == 16 and int(signature.id, 16) >= 0


def test_an_interrupt_stack_stops_at_the_entry() -> None:
    signature = crash_signature(NULL_DEREF.kind, IRQ_OOPS_61)
    assert signature.frames == ("labbug_tick", "labbug_timer_fn")


def test_different_bugs_differ() -> None:
    kinds = {
        crash_signature(NULL_DEREF.kind, OOPS_NULL_61).id,
        crash_signature(NULL_DEREF.kind, IRQ_OOPS_61).id,
        crash_signature(SYSRQ.kind, SYSRQ_61).id,
        # same stack, another class: another bug
        crash_signature(_panic("kernel BUG at mm/slub.c:42!", None).kind, OOPS_NULL_61).id,
    }
    assert len(kinds) == 4


def test_a_direct_panic_call_is_cut() -> None:
    signature = crash_signature(SYSRQ.kind, SYSRQ_61)
    assert signature.frames == ("sysrq_handle_crash", "__handle_sysrq", "write_sysrq_trigger")
    assert signature.title == "SysRq crash in sysrq_handle_crash"


def test_a_lockup_is_signed_by_the_stuck_code_below_the_watchdog() -> None:
    lockup = _panic(None, "Kernel panic - not syncing: softlockup: hung tasks")
    stack = [
        "panic",
        "watchdog_timer_fn",
        "__hrtimer_run_queues",
        "hrtimer_interrupt",
        "__sysvec_apic_timer_interrupt",
        "sysvec_apic_timer_interrupt",
        "asm_sysvec_apic_timer_interrupt",
        "spin_forever",
        "my_ioctl",
        "__x64_sys_ioctl",
        "do_syscall_64",
        "entry_SYSCALL_64",
    ]
    signature = crash_signature(lockup.kind, stack)
    assert signature.panic_class == "soft-lockup"
    assert signature.frames == ("spin_forever", "my_ioctl")


def test_the_depth_is_bounded() -> None:
    deep = [f"f{i}" for i in range(20)]
    assert len(crash_signature(NULL_DEREF.kind, deep).frames) == SIGNATURE_DEPTH


def test_a_dump_without_a_panic_has_a_title() -> None:
    assert crash_signature(NO_PANIC, []).title == "dump without a panic"
