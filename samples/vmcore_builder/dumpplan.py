"""How each kernel's guest saves its dump: makedumpfile's level, the lossy extra file, the raw ELF.

A sample input (``hashing.py``): a change here changes what the dumps are.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DumpPlan", "dump_plan"]


@dataclass(frozen=True)
class DumpPlan:
    """How a kernel's guest saves its dump.

    :param dump_level: makedumpfile's ``-d`` for ``vmcore`` and ``vmcore.elf``.
    :param lossy_d31: also write ``vmcore-d31``, kdump-tools' default ``-c -d 31``, which this
        kernel's makedumpfile gets wrong (slab pages dropped): the ``lossy-d31`` variant.
    :param raw_elf: makedumpfile cannot read this kernel at all; the dump is ``/proc/vmcore``
        copied as it is (an ELF file), as kdump-tools falls back to.
    """

    dump_level: int = 31
    lossy_d31: bool = False
    raw_elf: bool = False


#: Kernel id -> how its dumps are made (the default: makedumpfile -d 31, as kdump-tools).
_DUMP_PLANS: dict[str, DumpPlan] = {
    # makedumpfile 1.7.2 and 1.7.8 say "The kernel version is not supported" for 7.x and at -d 31
    # drop the slab pages the task and PID tables live in (measured: drgn walks 59 of 361 tasks);
    # -d 23 (user pages kept) is complete. Likely cause: Linux 6.10 made PG_slab a page type
    # ("mm: free up PG_slab"), which these makedumpfile versions take for a user or free page.
    "sid-7-amd64": DumpPlan(dump_level=23, lossy_d31=True),
    # The same on 6.12 with the host's makedumpfile 1.7.2: many-tasks at -d 31 broke the task walk
    # after 29 of ~5,000 tasks (small guests happened to keep theirs).
    "deb13-6.12-amd64": DumpPlan(dump_level=23),
    # Debian's arm64 kernels use 4K pages with 52-bit VA (LPA2): makedumpfile 1.7.6/1.7.8 fail with
    # "PAGE SIZE 0x1000 and VA Bits 52 not supported", and kdump-tools copies /proc/vmcore.
    "deb13-6.12-arm64": DumpPlan(raw_elf=True),
}


def dump_plan(kernel_id: str) -> DumpPlan:
    """How ``kernel_id``'s samples are dumped."""
    return _DUMP_PLANS.get(kernel_id, DumpPlan())
