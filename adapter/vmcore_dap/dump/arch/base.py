"""The interface every architecture module implements (:class:`Arch`); see :mod:`vmcore_dap.dump.arch`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

import drgn

from vmcore_dap.errors import UserError

if TYPE_CHECKING:
    import capstone

__all__ = ["Arch", "Syntax", "UnsupportedArchitecture"]

#: Assembly syntax of a disassembly: AT&T (as crash, gdb and objdump print x86) or Intel.
Syntax = Literal["att", "intel"]


class UnsupportedArchitecture(UserError):
    """The dump is of an architecture vmcore-dap has no :class:`Arch` for."""


class Arch(ABC):
    """The facts of one architecture (one instance per architecture, shared by every program).

    Attributes are read-only by convention; subclasses set them as class attributes.
    """

    #: The kernel's name for it (``uname -m``).
    name: str
    #: drgn's :class:`drgn.Architecture` for it.
    drgn_arch: drgn.Architecture
    #: Its directory under the kernel tree's ``arch/`` (``x86`` for x86-64 and i386).
    source_dir: str
    #: The lowest kernel virtual address: anything below is user space or not canonical. A stack
    #: frame at a lower address is where drgn went on into the user program.
    kernel_space_start: int
    #: The lowest address of the kernel image and module space: a stack word at or above it is a
    #: return address candidate (text) or kernel data, never a pointer into a stack.
    kernel_image_start: int
    #: Whether a sleeping task's stack signature (:mod:`vmcore_dap.dump.stacks.signature`) may stand for
    #: its unwinding: the words it reads are the words unwinding reads.
    stack_signatures: bool = True
    #: ``CONFIG_ILLEGAL_POINTER_VALUE``, the ``POISON_POINTER_DELTA`` of list poisons
    #: (include/linux/poison.h).
    poison_pointer_delta: int
    #: ``THREAD_SIZE`` when the kernel's ``union thread_union`` type is missing.
    default_thread_size: int
    #: ``struct pt_regs`` member → the name drgn gives that register in ``StackFrame.registers()``.
    pt_regs_registers: Mapping[str, str]
    #: The ``pt_regs`` members holding the instruction and stack pointers.
    pt_regs_ip: str
    pt_regs_sp: str
    #: The ``pt_regs`` members :meth:`from_user_mode` and :meth:`syscall_number` read.
    mode_registers: tuple[str, ...]
    #: The ``pt_regs`` members that hold system-call arguments 1 to 6.
    syscall_argument_registers: tuple[str, ...]
    #: Functions a system call passes through on its way into the kernel: when drgn's unwinding
    #: reaches user space from one of them, the user registers are a system call's.
    syscall_entries: frozenset[str]
    #: System-call entry functions that put a random gap on the stack before calling the handler
    #: (``add_random_kstack_offset()``, v5.13).
    randomized_syscall_entries: tuple[str, ...]
    #: Prefixes of the architecture's system-call wrappers (``__x64_sys_write``).
    syscall_wrapper_prefixes: tuple[str, ...]
    #: Labels inside assembly functions that kallsyms (and crash) name instead of the function.
    label_aliases: Mapping[str, str]
    #: The architecture's part of the kdump machinery cut from the top of a stack (its NMI path).
    crash_machinery: frozenset[str]
    #: The architecture's functions that run only because the kernel is dying or being dumped.
    dump_path_functions: frozenset[str]

    def is_kernel_address(self, address: int) -> bool:
        """Whether ``address`` lies in the kernel's half of the address space."""
        return address >= self.kernel_space_start

    def stack_top_padding(self, prog: drgn.Program) -> int:
        """``TOP_OF_KERNEL_STACK_PADDING``: bytes left free above a task's user ``pt_regs``."""
        return 0

    @abstractmethod
    def from_user_mode(self, saved: Mapping[str, int]) -> bool:
        """Whether registers saved at kernel entry (:attr:`mode_registers` of a ``pt_regs``) were
        taken in user mode."""

    @abstractmethod
    def syscall_number(self, saved: Mapping[str, int]) -> int | None:
        """The system call a task entered the kernel for, from its entry ``pt_regs``
        (:attr:`mode_registers`); ``None`` when it entered by an interrupt or exception."""

    @abstractmethod
    def boundary_name(self, entry_function: str | None) -> str:
        """Name the boundary an entry stub implements (``asm_exc_page_fault`` → "exception: page
        fault"), for the label row of an interrupt or exception in a stack."""

    @abstractmethod
    def capstone(self, syntax: Syntax) -> capstone.Cs:
        """A capstone disassembler for this architecture, with instruction details on."""
