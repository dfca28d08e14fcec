"""x86-64: the facts of :class:`~vmcore_dap.dump.arch.base.Arch` for ``arch/x86`` kernels in 64-bit mode.

Sources are the kernel's headers; the version that introduced a fact is named where it changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import drgn

from vmcore_dap.dump.arch.base import Arch, Syntax

if TYPE_CHECKING:
    import capstone

__all__ = ["ARCH", "X86_64"]

# The asm entry stubs of arch/x86/include/asm/idtentry.h (v5.8+: asm_exc_<name>) name the
# exception they implement; the ones whose name is not already what a person would say:
_EXCEPTION_NAMES = {
    "page_fault": "page fault",
    "invalid_op": "invalid opcode (BUG/WARN)",
    "general_protection": "general protection fault",
    "divide_error": "divide error",
    "int3": "breakpoint",
    "debug": "debug exception",
    "double_fault": "double fault",
    "nmi": "NMI",
    "machine_check": "machine check",
    "stack_segment": "stack segment fault",
    "segment_not_present": "segment not present",
    "alignment_check": "alignment check",
    "coprocessor_error": "x87 FPU error",
    "simd_coprocessor_error": "SIMD FPU error",
    "control_protection": "control protection fault",
}


class X86_64(Arch):
    """x86-64 (``CONFIG_X86_64``)."""

    name = "x86_64"
    drgn_arch = drgn.Architecture.X86_64
    source_dir = "x86"
    # With 4-level paging the kernel half starts at 0xffff800000000000; with 5-level paging (v4.14,
    # CONFIG_X86_5LEVEL, used when the CPU has LA57) at 0xff00000000000000. Nothing canonical lies
    # between the two with 4-level paging, so the lower bound is right for both.
    kernel_space_start = 0xFF00_0000_0000_0000
    # __START_KERNEL_map (arch/x86/include/asm/page_64_types.h): the kernel image is mapped from
    # -2 GiB, modules right above it; the direct map, vmalloc (kernel stacks) and so on lie below.
    kernel_image_start = 0xFFFF_FFFF_8000_0000
    # THREAD_SIZE = PAGE_SIZE << (2 + KASAN_STACK_ORDER) (arch/x86/include/asm/page_64_types.h),
    # 16 KiB without KASAN since v3.15.
    default_thread_size = 16384
    # arch/x86/Kconfig: ILLEGAL_POINTER_VALUE default 0xdead000000000000 if X86_64.
    poison_pointer_delta = 0xDEAD_0000_0000_0000
    pt_regs_registers: Mapping[str, str] = {
        "r15": "r15",
        "r14": "r14",
        "r13": "r13",
        "r12": "r12",
        "bp": "rbp",
        "bx": "rbx",
        "r11": "r11",
        "r10": "r10",
        "r9": "r9",
        "r8": "r8",
        "ax": "rax",
        "cx": "rcx",
        "dx": "rdx",
        "si": "rsi",
        "di": "rdi",
        "ip": "rip",
        "cs": "cs",
        "flags": "rflags",
        "sp": "rsp",
        "ss": "ss",
    }
    pt_regs_ip = "ip"
    pt_regs_sp = "sp"
    mode_registers = ("cs", "orig_ax")
    # The syscall ABI (arch/x86/entry/entry_64.S): arguments in rdi, rsi, rdx, r10, r8, r9.
    syscall_argument_registers = ("di", "si", "dx", "r10", "r8", "r9")
    # entry_SYSCALL_64 (kallsyms names the return address into it entry_SYSCALL_64_after_hwframe)
    # calls do_syscall_64 (v4.6+), which calls the system call.
    syscall_entries = frozenset({"entry_SYSCALL_64", "entry_SYSCALL_64_after_hwframe", "do_syscall_64"})
    randomized_syscall_entries = ("do_syscall_64", "__do_fast_syscall_32", "do_int80_syscall_32")
    # v4.17 (CONFIG_ARCH_HAS_SYSCALL_WRAPPER): every system call is called through __x64_sys_<name>
    # (and __ia32_sys_<name> for 32-bit tasks).
    syscall_wrapper_prefixes = ("__x64_sys_", "__ia32_sys_")
    label_aliases: Mapping[str, str] = {
        "entry_SYSCALL_64_after_hwframe": "entry_SYSCALL_64",
        "entry_SYSCALL_64_safe_stack": "entry_SYSCALL_64",
        "secondary_startup_64_no_verify": "secondary_startup_64",
        # head_64.S: a label inside secondary_startup_64 that every CPU's idle stack ends in on the
        # 6.12 and 7.2 samples (6.1's end in secondary_startup_64_no_verify).
        "common_startup_64": "secondary_startup_64",
    }
    # The NMI that stops the other CPUs for the dump (arch/x86/kernel/reboot.c, crash.c, nmi.c, and
    # the asm NMI entry of entry_64.S).
    crash_machinery = frozenset(
        {
            "crash_nmi_callback",
            "nmi_handle",
            "default_do_nmi",
            "exc_nmi",
            "asm_exc_nmi",
            "end_repeat_nmi",
            "repeat_nmi",
        }
    )
    dump_path_functions = frozenset(
        {
            "native_machine_crash_shutdown",
            "crash_nmi_callback",
            "nmi_handle",
            "default_do_nmi",
            "native_stop_other_cpus",
            "stop_this_cpu",
            # arch/x86/kernel/dumpstack.c, traps.c and mm/fault.c: how an oops dies.
            "oops_end",
            "__die",
            "__die_body",
            "die",
            "die_addr",
            "do_trap",
            "do_error_trap",
            "handle_bug",
            "page_fault_oops",
            "kernelmode_fixup_or_oops",
            "__bad_area_nosemaphore",
            "bad_area_nosemaphore",
            "no_context",
            "do_user_addr_fault",
            "handle_page_fault",
            "rewind_stack_and_make_dead",
        }
    )

    def from_user_mode(self, saved: Mapping[str, int]) -> bool:
        """The saved code segment's privilege level is 3 (``user_mode()``, arch/x86/include/asm/ptrace.h)."""
        return saved["cs"] & 3 == 3

    def syscall_number(self, saved: Mapping[str, int]) -> int | None:
        """``orig_ax``: the system call number, or -1 for an interrupt or exception (the entry code
        stores -1 there, or the exception's error code, which is never a large positive number)."""
        nr = saved["orig_ax"]
        if nr >= 1 << 63:
            nr -= 1 << 64
        return None if nr < 0 else nr

    def stack_top_padding(self, prog: drgn.Program) -> int:
        """``TOP_OF_KERNEL_STACK_PADDING`` (arch/x86/include/asm/thread_info.h): 0, or 16 since v6.9
        in a kernel built with ``CONFIG_X86_FRED`` ("x86/fred: Reserve space for the FRED stack
        frame", merged for v6.9 with tag x86-fred-2024-03-10; Debian's 7.x kernels: the sid-7
        sample's user registers sit 16 bytes lower), known by FRED's user entry point being in the
        kernel: the padding is a build-time constant, whether or not FRED was on at run time."""
        padding: int | None = prog.cache.get("vmcore_dap_stack_top_padding")
        if padding is None:
            try:
                prog.symbol("asm_fred_entrypoint_user")
                padding = 16
            except LookupError:
                padding = 0
            prog.cache["vmcore_dap_stack_top_padding"] = padding
        return padding

    def boundary_name(self, entry_function: str | None) -> str:
        """Name the boundary from the idtentry stub drgn unwound through (v5.8+ names)."""
        if not entry_function:
            return "interrupt or exception"
        name = entry_function
        if name.startswith("asm_exc_"):
            kind = name[len("asm_exc_") :]
            return f"exception: {_EXCEPTION_NAMES.get(kind, kind.replace('_', ' '))}"
        if name.startswith("asm_sysvec_"):
            return f"interrupt: {name[len('asm_sysvec_') :].replace('_', ' ')}"
        if name in ("asm_common_interrupt", "common_interrupt", "asm_spurious_interrupt"):
            return "interrupt: device IRQ"
        if "nmi" in name:
            return "NMI"
        return f"interrupted ({name})"

    def capstone(self, syntax: Syntax) -> capstone.Cs:
        """64-bit x86 in AT&T syntax (as crash's ``dis`` and objdump) or Intel."""
        import capstone  # on first use, not at import: it adds ~20 ms to every adapter start

        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        if syntax == "att":
            md.syntax = capstone.CS_OPT_SYNTAX_ATT
        md.detail = True
        md.skipdata = False
        return md


#: The one instance.
ARCH = X86_64()
