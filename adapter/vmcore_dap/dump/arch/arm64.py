"""arm64: the facts of :class:`~vmcore_dap.dump.arch.base.Arch` for ``arch/arm64`` kernels (AArch64).

What the samples of the kernel matrix show (Debian 13's 6.12 arm64, 4 KiB pages, 52-bit VA): drgn
unwinds a task down to its EL0 entry (``el0t_64_sync``) and stops there, registers are ``x0``–``x30``,
``fp``, ``lr``, ``sp``, ``pstate``; ``struct pt_regs`` keeps ``regs[31]``, ``sp``, ``pc``, ``pstate`` in
an anonymous union, then ``orig_x0`` and a 32-bit ``syscallno``.

Not yet here (they need arm64 samples compared against crash): the oops and IPI-stop paths of the
panic (``dump_path_functions``, ``crash_machinery`` are empty, as the adapter's behaviour on arm64 dumps
was before this module), and stack signatures (:attr:`stack_signatures` is off: with pointer
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
    pt_regs_registers: Mapping[str, str] = {"sp": "sp", "pstate": "pstate"}
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
    crash_machinery: frozenset[str] = frozenset()
    dump_path_functions: frozenset[str] = frozenset()

    def from_user_mode(self, saved: Mapping[str, int]) -> bool:
        """The saved PSTATE's mode is EL0t (``user_mode()``, arch/arm64/include/asm/ptrace.h)."""
        return saved["pstate"] & _PSR_MODE_MASK == _PSR_MODE_EL0T

    def syscall_number(self, saved: Mapping[str, int]) -> int | None:
        """``syscallno`` (32-bit): the system call, or ``NO_SYSCALL`` (-1) for an exception."""
        nr = saved["syscallno"] & 0xFFFFFFFF
        if nr >= 1 << 31:
            nr -= 1 << 32
        return None if nr < 0 else nr

    def boundary_name(self, entry_function: str | None) -> str:
        """Name the boundary from the exception vector's handler (``el1h_64_sync`` …, v5.13 names)."""
        if not entry_function:
            return "interrupt or exception"
        kinds = {"sync": "exception", "irq": "interrupt", "fiq": "FIQ", "error": "SError"}
        if entry_function.startswith("el1h_64_"):
            kind = entry_function[len("el1h_64_") :].removesuffix("_handler")
            return kinds.get(kind, f"interrupted ({entry_function})")
        return f"interrupted ({entry_function})"

    def capstone(self, syntax: Syntax) -> capstone.Cs:
        """AArch64 in capstone's one syntax (``syntax`` applies to x86 only)."""
        import capstone  # on first use, not at import

        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM | capstone.CS_MODE_LITTLE_ENDIAN)
        md.detail = True
        md.skipdata = False
        return md


#: The one instance.
ARCH = Arm64()
