"""Patch a copy of a sample's ELF vmcore (``makedumpfile -E``) at kernel addresses found with drgn.

Damaged-dump tests break a real dump this way; the task-state tests put tasks into states no scenario
can catch on purpose (waking, new, zombie …) and ask crash and the adapter about the same file.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

import drgn

__all__ = ["copy_elf", "elf_loads", "open_elf", "patch_phys", "phys_of"]


def elf_loads(path: Path) -> list[tuple[int, int, int]]:
    """``(p_paddr, p_offset, p_filesz)`` of every PT_LOAD of a 64-bit little-endian ELF core."""
    with open(path, "rb") as f:
        header = f.read(64)
        (phoff,) = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    loads = []
    for i in range(phnum):
        p_type, _flags, offset, _vaddr, paddr, filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
        if p_type == 1:
            loads.append((paddr, offset, filesz))
    return loads


def _file_offsets(path: Path, phys: int) -> list[int]:
    """Where physical address ``phys`` is in the ELF core: every segment holding it. Memory the
    kernel freed from its image's init sections is in both the kernel-text and the direct-map
    segments (a module's pages can land there), and readers may take either copy."""
    offsets = [
        offset + phys - paddr for paddr, offset, filesz in elf_loads(path) if paddr <= phys < paddr + filesz
    ]
    assert offsets, f"physical address {phys:#x} is not in the dump {path}"
    return offsets


def patch_phys(path: Path, phys: int, data: bytes) -> None:
    """Overwrite ``data`` at physical address ``phys`` in the ELF core ``path`` (in every copy)."""
    with open(path, "r+b") as f:
        for offset in _file_offsets(path, phys):
            f.seek(offset)
            f.write(data)


def open_elf(sample: Any) -> drgn.Program:
    """drgn on the sample's intact ELF vmcore, with the kernel's debug info."""
    prog = drgn.Program()
    prog.set_core_dump(str(sample.vmcore_elf))
    prog.load_debug_info([str(sample.vmlinux)])
    return prog


def phys_of(prog: drgn.Program, address: int) -> int:
    """Physical address of a kernel virtual address (direct map or kernel image) by the page tables."""
    from drgn.helpers.linux.mm import follow_phys

    return follow_phys(prog["init_mm"].address_of_(), address).value_()


def copy_elf(sample: Any, tmp_path: Path) -> Path:
    """A copy of the sample's ELF vmcore in ``tmp_path``, to patch."""
    target = tmp_path / "vmcore.elf"
    shutil.copyfile(sample.vmcore_elf, target)
    return target
