"""arm64: the facts of :class:`~vmcore_dap.dump.arch.base.Arch` for ``arch/arm64`` kernels (AArch64).

What the samples of the kernel matrix show (Debian 13's 6.12 arm64, 4 KiB pages, 52-bit VA): drgn
unwinds a task down to its EL0 entry (``el0t_64_sync``) and stops there, registers are ``x0``–``x30``,
``fp``, ``lr``, ``sp``, ``pstate``; ``struct pt_regs`` keeps ``regs[31]``, ``sp``, ``pc``, ``pstate`` in
an anonymous union, then ``orig_x0`` and a 32-bit ``syscallno``.

Not here: ``crash_machinery`` (empty: crash's arm64 ``bt`` goes through the vector after the stop
IPI or the oops, and the tests' crash-side rule starts after it; every task of the arm64 samples
compares equal without it), and stack signatures (:attr:`stack_signatures` is off: with pointer
authentication, return addresses saved on the stack are signed with the stack pointer, so equal words
no longer mean equal stacks; every task is unwound on its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import drgn

from vmcore_dap.dump.arch.base import Arch, Syntax

if TYPE_CHECKING:
    import capstone

__all__ = ["ARCH", "Arm64"]

#: ``PSR_MODE_MASK`` and ``PSR_MODE_EL0t`` (arch/arm64/include/uapi/asm/ptrace.h).
_PSR_MODE_MASK = 0x0000000F
_PSR_MODE_EL0T = 0x00000000


#: What each kind of exception vector is (arch/arm64/kernel/entry.S ``kernel_ventry``).
_VECTOR_KINDS = {
    "sync": "exception: synchronous",
    "irq": "interrupt: IRQ",
    "fiq": "interrupt: FIQ",
    "error": "exception: SError",
}


class Arm64(Arch):
    """AArch64 (``CONFIG_ARM64``)."""

    name = "aarch64"
    drgn_arch = drgn.Architecture.AARCH64
    source_dir = "arm64"
    # The kernel half is TTBR1's: from -(1 << 52) with 52-bit VA (v5.4+, LPA2 since v6.9), from
    # -(1 << 48) with 48-bit VA; user addresses lie below 1 << 52 either way.
    kernel_space_start = 0xFFF0_0000_0000_0000
    kernel_image_start = 0xFFF0_0000_0000_0000  # stack signatures are off (see the module docstring)
    stack_signatures = False
    # THREAD_SIZE = 16 KiB with 4 KiB pages and without KASAN (arch/arm64/include/asm/memory.h).
    default_thread_size = 16384
    # arch/arm64/Kconfig: ILLEGAL_POINTER_VALUE default 0xdead000000000000.
    poison_pointer_delta = 0xDEAD_0000_0000_0000
    # drgn names no "pc" register on AArch64: frames.present_trace fills it from the frame's pc.
    pt_regs_registers: Mapping[str, str] = {"sp": "sp", "pc": "pc", "pstate": "pstate"}
    pt_regs_register_arrays: Mapping[str, str] = {"regs": "x"}
    # A64 instructions are 4 bytes, 4-aligned; between functions lie words that are no instruction
    # (on the 6.12 samples: each function's ftrace ops pointer, 8 bytes before it, written at boot;
    # CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS, v6.4, commit baaf553d3bc3).
    instruction_unit = 4
    pt_regs_ip = "pc"
    pt_regs_sp = "sp"
    mode_registers = ("pstate", "syscallno")
    # The AAPCS64 system-call ABI: arguments in x0-x5; x0 is overwritten by the return value, the
    # entry code keeps the first argument in orig_x0 (arch/arm64/kernel/syscall.c).
    syscall_argument_registers = ("orig_x0", "regs[1]", "regs[2]", "regs[3]", "regs[4]", "regs[5]")
    # el0t_64_sync → el0t_64_sync_handler → el0_svc → do_el0_svc → el0_svc_common → invoke_syscall
    # (v5.13 names; drgn's unwinding ends at el0t_64_sync).
    syscall_entries = frozenset(
        {"el0t_64_sync", "el0t_64_sync_handler", "el0_svc", "do_el0_svc", "el0_svc_common", "invoke_syscall"}
    )
    randomized_syscall_entries = ("invoke_syscall",)
    syscall_wrapper_prefixes = ("__arm64_sys_",)
    label_aliases: Mapping[str, str] = {}
    # The final frame records of a stack (arch/arm64/kernel/head.S: each CPU's, below start_kernel and
    # secondary_start_kernel; entry.S: ret_from_fork, below every kernel thread's function); crash
    # 9.0.2's bt stops above them (measured on the 6.12 samples: idle tasks and kernel threads).
    stack_roots = frozenset({"__primary_switched", "__secondary_switched", "ret_from_fork"})
    crash_machinery: frozenset[str] = frozenset()
    dump_path_functions = frozenset(
        {
            # arch/arm64/kernel/entry.S: the vector table, where QEMU's dump-guest-memory catches a
            # CPU taking an interrupt; lib/delay.c via arch/arm64/lib/delay.c: panic()'s mdelay loop
            # (the crashed CPU of a QEMU dump of a panicked guest, measured on 6.12).
            "vectors",
            "__const_udelay",
            "__udelay",
            "__delay",
            "__delay_cycles",
            "__arch_counter_get_cntvct_stable",  # the timer read inlined in __delay_cycles
            # arch/arm64/kernel/smp.c: a CPU stopped by the panic or crash IPI.
            "do_handle_IPI",
            "ipi_handler",
            "ipi_cpu_crash_stop",
            "local_cpu_stop",
            "cpu_park_loop",
            # arch/arm64/kernel/traps.c, mm/fault.c, entry-common.c: how a kernel oops dies.
            "die",
            "die_kernel_fault",
            "__do_kernel_fault",
            "do_page_fault",
            "do_translation_fault",
            "do_mem_abort",
            "el1_abort",
            "el1h_64_sync_handler",
        }
    )

    def from_user_mode(self, saved: Mapping[str, int]) -> bool:
        """The saved PSTATE's mode is EL0t (``user_mode()``, arch/arm64/include/asm/ptrace.h)."""
        return saved["pstate"] & _PSR_MODE_MASK == _PSR_MODE_EL0T

    def registers_lost(self, registers: Mapping[str, int]) -> bool:
        """A frame without ``sp`` was unwound by its frame record alone (drgn's fallback where there
        is no CFI: the exception vectors, ``el1h_64_irq``, and every caller above them in a QEMU
        dump-guest-memory of a panicked guest, measured on 6.12): it knows only ``fp``/``lr``, so
        neither registers nor ``sp``-relative stack slots can be located."""
        return "sp" not in registers

    def syscall_number(self, saved: Mapping[str, int]) -> int | None:
        """``syscallno`` (32-bit): the system call, or ``NO_SYSCALL`` (-1) for an exception."""
        nr = saved["syscallno"] & 0xFFFFFFFF
        if nr >= 1 << 31:
            nr -= 1 << 32
        return None if nr < 0 else nr

    def boundary_name(self, entry_function: str | None) -> str:
        """Name the boundary from the exception vector drgn unwound through (``el1h_64_irq`` →
        "interrupt: IRQ"; v5.13 names)."""
        if not entry_function:
            return "interrupt or exception"
        kind = entry_function.removesuffix("_handler").rsplit("_", 1)[-1]
        if entry_function.startswith(("el1h_64_", "el1_", "el1t_64_")) and kind in _VECTOR_KINDS:
            return _VECTOR_KINDS[kind]
        return f"interrupted ({entry_function})"

    def capstone(self, syntax: Syntax) -> capstone.Cs:
        """AArch64 in capstone's one syntax (``syntax`` applies to x86 only).

        capstone 6 named the architecture ``CS_ARCH_AARCH64`` (5.x: ``CS_ARCH_ARM64``) and decodes what
        5.x did not: MTE's STGP (a random word read as code, such as the low half of the ftrace ops
        pointer after a ``noreturn`` call, is one on some boots) and the unprivileged loads LDTR*.
        """
        import capstone  # on first use, not at import

        md = capstone.Cs(capstone.CS_ARCH_AARCH64, capstone.CS_MODE_ARM | capstone.CS_MODE_LITTLE_ENDIAN)
        md.detail = True
        md.skipdata = False
        return md


#: The one instance.
ARCH = Arm64()
