"""A crash signature that survives a rebuild: the panic class plus the few frames that name the bug.

Two dumps of the same bug, on two builds or two releases of the kernel, differ in every address, in
GCC's clone suffixes, in what got inlined, in the entry code (``x64_sys_call`` arrived in 6.9,
``ret_from_fork_asm`` in 6.6) and in the VFS plumbing a system call passes. So the signature is
computed from the crashed task's stack *after* the one normalisation the tests use against crash
(:mod:`vmcore_dap.dump.stacks.normalize`: start at the faulting frame, suffixes stripped, inline frames
merged, offsets and addresses gone), and then:

1. the panic/exception path still above the fault (a direct ``panic()`` call, as SysRq-c makes) is
   cut from the top (:data:`~vmcore_dap.dump.stacks.frames.DUMP_PATH_FUNCTIONS`);
2. the stack stops at the first interrupt or exception entry (``asm_*`` on x86-64, ``el1h_64_*`` on
   arm64): below it lies whatever the CPU happened to be running, not the crash. For a lockup or an
   RCU stall it is the other way round: the watchdog's frames are above the entry and the stuck code
   below it, so the frames below are taken;
3. generic frames are dropped wherever they are (:data:`GENERIC_FRAMES`: system-call dispatch, VFS
   dispatch, interrupt, softirq and timer plumbing, kthread/workqueue/idle loops, the scheduler core);
   and system-call wrappers of every architecture;
4. the first :data:`SIGNATURE_DEPTH` remaining functions are kept.

The signature's ``id`` is a hash of the class and those functions; its ``title`` reads like a
syzbot title ("NULL pointer dereference in labbug_walk").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vmcore_dap.dump.kernel.panic_kind import LOCKUP_KINDS, PanicKind
from vmcore_dap.dump.stacks.frames import DUMP_PATH_FUNCTIONS
from vmcore_dap.dump.stacks.normalize import CRASH_MACHINERY, base_function_name

__all__ = [
    "GENERIC_FRAMES",
    "SIGNATURE_DEPTH",
    "Signature",
    "crash_signature",
    "is_entry_frame",
    "panic_path_length",
]

#: How many functions of the stack a signature keeps (ABRT keeps 6 of an oops; fewer is steadier
#: across releases once the generic frames are gone, and still tells bugs apart).
SIGNATURE_DEPTH = 4

#: Frames that say how the CPU got somewhere, not what went wrong (names after normalisation).
GENERIC_FRAMES = frozenset(
    {
        # system-call entry and dispatch (x86-64; 6.9 added x64_sys_call; arm64's el0 path)
        "entry_SYSCALL_64",
        "do_syscall_64",
        "x64_sys_call",
        "do_fast_syscall_32",
        "do_int80_syscall_32",
        "syscall_enter_from_user_mode",
        "syscall_exit_to_user_mode",
        "el0_svc",
        "el0_svc_common",
        "do_el0_svc",
        "invoke_syscall",
        "el0t_64_sync_handler",
        "el0t_64_sync",
        # VFS dispatch of read/write/ioctl (5.10 still has new_sync_write, 6.x calls write_iter inline)
        "ksys_write",
        "ksys_read",
        "vfs_write",
        "vfs_read",
        "new_sync_write",
        "new_sync_read",
        "vfs_iter_write",
        "vfs_iter_read",
        "do_iter_write",
        "do_iter_read",
        "proc_reg_write",
        "proc_reg_read",
        "proc_reg_read_iter",
        "kernfs_fop_write_iter",
        "kernfs_fop_read_iter",
        "seq_read",
        "seq_read_iter",
        "vfs_ioctl",
        "do_vfs_ioctl",
        # hard interrupts, timers, softirqs
        "__hrtimer_run_queues",
        "hrtimer_interrupt",
        "__sysvec_apic_timer_interrupt",
        "sysvec_apic_timer_interrupt",
        "__sysvec_call_function_single",
        "sysvec_call_function_single",
        "__common_interrupt",
        "common_interrupt",
        "handle_irq_event",
        "handle_irq_event_percpu",
        "__handle_irq_event_percpu",
        "handle_edge_irq",
        "handle_fasteoi_irq",
        "irq_exit_rcu",
        "__irq_exit_rcu",
        "__do_softirq",
        "handle_softirqs",
        "do_softirq",
        "__local_bh_enable_ip",
        "run_timer_softirq",
        "__run_timers",
        "call_timer_fn",
        "expire_timers",
        "tasklet_action_common",
        "tasklet_action",
        "run_ksoftirqd",
        "gic_handle_irq",
        "el1_interrupt",
        "el1h_64_irq_handler",
        "call_on_irq_stack",
        "do_interrupt_handler",
        # kernel threads, workqueues, idle
        "kthread",
        "ret_from_fork",
        "ret_from_fork_asm",
        "worker_thread",
        "process_one_work",
        "smpboot_thread_fn",
        "cpu_startup_entry",
        "do_idle",
        "start_secondary",
        "secondary_startup_64",
        "rest_init",
        "start_kernel",
        # the scheduler core (how a task sleeps, not why)
        "__schedule",
        "schedule",
        "schedule_timeout",
        "schedule_preempt_disabled",
        "io_schedule",
        "preempt_schedule_common",
        "preempt_schedule_irq",
    }
)


#: System-call wrappers of every architecture (``__x64_sys_write``, ``__arm64_sys_write``,
#: ``__se_sys_write``, ``__do_sys_write``): the system call's name, not the bug's.
_SYSCALL_WRAPPER = re.compile(r"^__(?:x64|x32|ia32|arm64|riscv|s390x|s390|se|do)_sys_\w+$")


def is_entry_frame(function: str) -> bool:
    """Whether an interrupt or exception entered at ``function`` (x86-64 ``asm_*``, arm64 ``el1h_*``)."""
    return function.startswith(("asm_exc_", "asm_sysvec_", "asm_common_", "asm_spurious_", "el1h_64_"))


@dataclass(frozen=True)
class Signature:
    """A crash signature.

    :param id: 16 hex digits; equal for the same class and functions, whatever kernel build.
    :param title: ``"<class label> in <first function>"``.
    :param frames: the functions the signature keeps, innermost first.
    """

    id: str
    title: str
    panic_class: str
    frames: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        """The signature as the report's ``signature`` object (docs/triage.md)."""
        return {"id": self.id, "title": self.title, "class": self.panic_class, "frames": list(self.frames)}


def panic_path_length(functions: Sequence[str]) -> int:
    """How many of the innermost ``functions`` are the panic/kdump path (``panic`` called directly,
    as SysRq-c does, is still on top of a normalised stack: crash's ``bt`` shows it too)."""
    count = 0
    while count < len(functions) and (
        functions[count] in DUMP_PATH_FUNCTIONS or functions[count] in CRASH_MACHINERY
    ):
        count += 1
    return count


def _signature_frames(kind: PanicKind, functions: Sequence[str]) -> list[str]:
    names = [base_function_name(f) for f in functions]
    names = names[panic_path_length(names) :]
    entry = next((i for i, name in enumerate(names) if is_entry_frame(name)), None)
    if entry is not None:
        if kind.name in LOCKUP_KINDS:
            names = names[entry + 1 :]
        else:
            names = names[:entry]
    kept = [name for name in names if name not in GENERIC_FRAMES and not _SYSCALL_WRAPPER.match(name)]
    return kept[:SIGNATURE_DEPTH]


def crash_signature(kind: PanicKind, functions: Sequence[str]) -> Signature:
    """Build the signature of a crash of class ``kind`` whose crashed stack lists ``functions``.

    :param functions: the crashed task's normalised stack (:func:`~vmcore_dap.dump.stacks.normalize.
        normalize_drgn_trace`), innermost first; empty when there is no crashed task.
    """
    frames = tuple(_signature_frames(kind, functions))
    digest = hashlib.sha256("\n".join((kind.name, *frames)).encode()).hexdigest()[:16]
    title = f"{kind.label} in {frames[0]}" if frames else kind.label
    return Signature(id=digest, title=title, panic_class=kind.name, frames=frames)
