"""Leave pages out of a copy of a kdump-compressed vmcore, as makedumpfile's filtering does.

A lossy dump's diagnosis ("makedumpfile excluded pages …, re-dump with -d 23 …") depends on which
pages a real ``makedumpfile -d 31`` run happened to drop. To test it every time, a test copies a
real compressed dump and excludes the pages it chooses (those of the PID table, a task's stack): the
file stays a makedumpfile file with its own ``-d`` level, only with those pages no longer written.

The format (makedumpfile's ``diskdump_mod.h``): block 0 is the ``disk_dump_header``, then
``sub_hdr_size`` blocks of ``kdump_sub_header``, then ``bitmap_blocks`` blocks holding two bitmaps of
equal length (bit *n* = page frame *n*, least significant bit first: the first says the page is RAM,
the second that it was written), then one 24-byte ``page_desc`` per written page, in page-frame
order, each naming its data's file offset. Readers find a page's descriptor by counting the written
pages before it, so excluding a page is clearing its bit in the second bitmap *and* removing its
descriptor (the data offsets are absolute: nothing else moves).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

__all__ = ["copy_excluding_pages", "dump_level", "page_excluded"]

_SIGNATURE = b"KDUMP   "
_PAGE_DESC_SIZE = 24
# disk_dump_header of a 64-bit kernel: signature[8], header_version, utsname (6 × 65 bytes, padded to
# 408 for the 8-byte aligned struct timeval), then status, block_size, sub_hdr_size, bitmap_blocks.
_HEADER_INTS = struct.Struct("<IiiI")
_HEADER_INTS_OFFSET = 408 + 16


def _layout(path: Path) -> tuple[int, int, int]:
    """``(block_size, offset of the second bitmap, bytes of each bitmap)`` of a compressed kdump."""
    with open(path, "rb") as f:
        head = f.read(_HEADER_INTS_OFFSET + _HEADER_INTS.size)
    if head[:8] != _SIGNATURE:
        raise ValueError(f"{path} is not a kdump-compressed file (signature {head[:8]!r})")
    _status, block_size, sub_hdr_size, bitmap_blocks = _HEADER_INTS.unpack_from(head, _HEADER_INTS_OFFSET)
    half = bitmap_blocks * block_size // 2
    return block_size, (1 + sub_hdr_size) * block_size + half, half


def dump_level(path: Path) -> int:
    """makedumpfile's ``-d`` level, from the ``kdump_sub_header`` (its ``dump_level``, after
    ``phys_base``)."""
    block_size, _, _ = _layout(path)
    with open(path, "rb") as f:
        f.seek(block_size + 8)
        (level,) = struct.unpack("<i", f.read(4))
    return int(level)


def page_excluded(path: Path, pfn: int) -> bool:
    """Whether page frame ``pfn`` is RAM (first bitmap) that makedumpfile did not write (second)."""
    _block_size, second, length = _layout(path)
    byte, bit = divmod(pfn, 8)
    if byte >= length:
        return False
    with open(path, "rb") as f:
        f.seek(second - length + byte)
        ram = f.read(1)[0] >> bit & 1
        f.seek(second + byte)
        written = f.read(1)[0] >> bit & 1
    return bool(ram and not written)


def copy_excluding_pages(source: Path, target: Path, pfns: set[int]) -> set[int]:
    """Copy the kdump-compressed ``source`` to ``target`` without the pages ``pfns``.

    :returns: the page frames that were written in ``source`` and are excluded now (a page that
        was not written stays as it was).
    """
    shutil.copyfile(source, target)
    _block_size, second, length = _layout(target)
    with open(target, "r+b") as f:
        f.seek(second)
        bitmap = bytearray(f.read(length))
        written = int.from_bytes(bitmap, "little").bit_count()
        descriptors_at = second + length
        f.seek(descriptors_at)
        table = bytearray(f.read(written * _PAGE_DESC_SIZE))
        excluded = set()
        for pfn in sorted(pfns, reverse=True):  # from the end, so earlier indexes stay valid
            byte, bit = divmod(pfn, 8)
            if byte >= len(bitmap) or not bitmap[byte] >> bit & 1:
                continue
            index = (
                int.from_bytes(bitmap[:byte], "little").bit_count()
                + (bitmap[byte] & ((1 << bit) - 1)).bit_count()
            )
            del table[index * _PAGE_DESC_SIZE : (index + 1) * _PAGE_DESC_SIZE]
            bitmap[byte] &= ~(1 << bit) & 0xFF
            excluded.add(pfn)
        f.seek(second)
        f.write(bitmap)
        f.seek(descriptors_at)
        f.write(table)
    return excluded
