"""What differs between processor architectures: one module per architecture, behind :class:`Arch`.

Every architecture fact the dump layer uses — where kernel addresses start, the default stack size,
how ``struct pt_regs`` names the registers drgn unwinds, the system-call ABI, the entry code's
labels, capstone's mode — is an attribute or method of an :class:`Arch`, defined once in that
architecture's module (:mod:`.x86_64`). Code asks :func:`arch_of` for the program's architecture.

Two kinds of facts:

* numbers and registers differ per program, so they are always asked of ``arch_of(prog)``;
* *names* of kernel functions (entry-code labels, the NMI path) never collide between architectures
  (``entry_SYSCALL_64`` exists only on x86-64), so rules that work on names alone, such as the stack
  normalisation the tests also apply to crash's output, use the union over all architectures
  (:func:`known_label_aliases`, :func:`known_crash_machinery`, :func:`known_dump_path_functions`)
  without needing a program.

Adding an architecture is one new module here (:mod:`.arm64` was) with a subclass of
:class:`~.base.Arch` and its ``ARCH`` named in :data:`_ARCHES`; nothing else in the dump layer names
an architecture.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

import drgn

from vmcore_dap.dump.arch import arm64, x86_64
from vmcore_dap.dump.arch.base import Arch, Syntax, UnsupportedArchitecture

__all__ = [
    "Arch",
    "MIN_PAGE_SIZE",
    "Syntax",
    "UnsupportedArchitecture",
    "arch_of",
    "known_crash_machinery",
    "known_dump_path_functions",
    "known_label_aliases",
    "syscall_wrapper_pattern",
]

#: The smallest page size of every architecture drgn supports: reading memory in steps of it never
#: skips readable bytes, whatever the dumped kernel's own page size.
MIN_PAGE_SIZE = 4096

#: Every architecture vmcore-dap knows, by drgn's name for it.
_ARCHES: dict[drgn.Architecture, Arch] = {arch.drgn_arch: arch for arch in (x86_64.ARCH, arm64.ARCH)}


def arch_of(prog: drgn.Program) -> Arch:
    """The architecture of the program's dump.

    :raises UnsupportedArchitecture: for a dump of an architecture without a module here.
    """
    platform = prog.platform
    arch = _ARCHES.get(platform.arch) if platform is not None else None
    if arch is None:
        name = platform.arch.name if platform is not None else "unknown"
        known = ", ".join(a.name for a in _ARCHES.values())
        raise UnsupportedArchitecture(
            f"this dump is of architecture {name}, which vmcore-dap does not support yet (supported: {known})"
        )
    return arch


@cache
def known_label_aliases() -> Mapping[str, str]:
    """:attr:`Arch.label_aliases` of every architecture (the names never collide)."""
    merged: dict[str, str] = {}
    for arch in _ARCHES.values():
        merged.update(arch.label_aliases)
    return merged


@cache
def known_crash_machinery() -> frozenset[str]:
    """:attr:`Arch.crash_machinery` of every architecture."""
    return frozenset().union(*(arch.crash_machinery for arch in _ARCHES.values()))


@cache
def known_dump_path_functions() -> frozenset[str]:
    """:attr:`Arch.dump_path_functions` of every architecture."""
    return frozenset().union(*(arch.dump_path_functions for arch in _ARCHES.values()))


@cache
def syscall_wrapper_pattern() -> re.Pattern[str]:
    """Matches every architecture's and the generic system-call wrapper names
    (``__x64_sys_write``, ``__se_sys_write``, ``__do_sys_write``); group 1 is the call's name."""
    prefixes = {p for arch in _ARCHES.values() for p in arch.syscall_wrapper_prefixes}
    # SYSCALL_DEFINEx (include/linux/syscalls.h) makes __se_sys_X and __do_sys_X on every architecture.
    prefixes |= {"__se_sys_", "__do_sys_"}
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    return re.compile(rf"^(?:{alternatives})(\w+)$")
