"""Read dump memory as far as it goes: the readable prefix of a range, and how much after it is missing.

A vmcore is full of holes by design: makedumpfile ``-d 31`` drops free, cache, user and zero pages,
and vmalloc space has unmapped gaps. A memory view must show what is there and mark the rest, not
fail as a whole, so reads here are page-granular: the whole range is tried first (one call in the
common case), then page by page up to the first page that cannot be read.
"""

from __future__ import annotations

from dataclasses import dataclass

import drgn

from vmcore_dap.dump.arch import MIN_PAGE_SIZE
from vmcore_dap.dump.memory.page_filter import explain_unreadable

__all__ = ["MemoryRead", "PAGE_SIZE", "read_prefix", "unreadable_reason"]

#: Probe granularity. A dump's holes are whole pages; probing at the smallest page of any architecture
#: never skips readable bytes.
PAGE_SIZE = MIN_PAGE_SIZE

_ADDRESS_LIMIT = 1 << 64


@dataclass(frozen=True)
class MemoryRead:
    """The result of :func:`read_prefix`.

    :param address: the first address asked for.
    :param data: the bytes read from ``address`` on, up to the first unreadable byte.
    :param unreadable: how many of the requested bytes after ``data`` could not be read (the rest of the
        request, from the first unreadable page on).
    :param reason: why the first unreadable byte is missing, for a person; ``None`` when all was read.
    """

    address: int
    data: bytes
    unreadable: int
    reason: str | None = None


def unreadable_reason(prog: drgn.Program, address: int) -> str:
    """Say why ``address`` cannot be read: excluded by makedumpfile (and which kind of page), not
    mapped, not RAM, or lost to truncation (:func:`.page_filter.explain_unreadable`)."""
    if not prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL:
        return f"{address:#x} is not present in the dump"
    return f"{address:#x}: {explain_unreadable(prog, address)}"


def _readable(prog: drgn.Program, address: int, size: int) -> bytes | None:
    try:
        return prog.read(address, size)
    except drgn.FaultError:
        return None


def read_prefix(prog: drgn.Program, address: int, count: int, *, explain: bool = True) -> MemoryRead:
    """Read ``count`` bytes from ``address`` up to the first unreadable page.

    A ``count`` of 0 is a valid probe and returns an empty read. A range running past the top of the
    address space is clamped (the excess counts as unreadable).

    :param explain: compute :attr:`MemoryRead.reason` (costs a page-table walk) when a hole is found.
    """
    if address < 0 or address >= _ADDRESS_LIMIT:
        raise ValueError(f"address {address:#x} is outside the 64-bit address space")
    if count < 0:
        raise ValueError(f"count must not be negative (got {count})")
    if count == 0:
        return MemoryRead(address, b"", 0)
    readable_count = min(count, _ADDRESS_LIMIT - address)
    whole = _readable(prog, address, readable_count)
    if whole is not None:
        return MemoryRead(address, whole, count - readable_count)
    chunks: list[bytes] = []
    current = address
    end = address + readable_count
    while current < end:
        step = min(PAGE_SIZE - current % PAGE_SIZE, end - current)
        data = _readable(prog, current, step)
        if data is None:
            break
        chunks.append(data)
        current += step
    data = b"".join(chunks)
    reason = unreadable_reason(prog, current) if explain and current < end else None
    return MemoryRead(address, data, count - len(data), reason)
