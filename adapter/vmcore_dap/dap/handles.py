"""Session-wide tables of small integer handles (thread ids, frame ids, variables references).

Model: one table per kind, ints > 0, and a key ``(parent, name)`` so that expanding the same path twice
hands out the same number and the table does not grow while a user clicks around. A vmcore never
resumes, so handles stay valid for the whole session unless :meth:`HandleTable.reset` is called
(hex toggle, debug info reloaded), after which the client is sent ``invalidated``.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from vmcore_dap.errors import StaleReference

__all__ = ["HandleBlocks", "HandleTable"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

#: JavaScript clients keep numbers exact only up to 2**53; DAP ids must stay far below.
_MAX_HANDLE = 2**31 - 1


class HandleTable(Generic[T]):
    """Map stable keys to small positive integers and back.

    :param kind: what the handles name, for error messages ("variablesReference", "frameId").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._by_key: dict[Hashable, int] = {}
        self._entries: dict[int, T] = {}
        self._next = 1

    def intern(self, key: Hashable, factory: Callable[[], T]) -> int:
        """Return the handle of ``key``, creating its entry with ``factory()`` the first time."""
        with self._lock:
            handle = self._by_key.get(key)
            if handle is not None:
                return handle
            if self._next > _MAX_HANDLE:
                raise RuntimeError(f"too many {self.kind} handles in one session")
            handle = self._next
            self._next += 1
            self._by_key[key] = handle
            self._entries[handle] = factory()
            return handle

    def get(self, handle: object) -> T:
        """Return the entry of ``handle``.

        :raises StaleReference: for a number this table never handed out (or one from before a reset).
        """
        entry: T | None = None
        if isinstance(handle, int) and not isinstance(handle, bool):  # JSON true is not handle 1
            entry = self._entries.get(handle)
        if entry is None:
            raise StaleReference(
                f"unknown {self.kind} {handle!s}: it was never handed out in this session or is stale"
                " (refresh the view)"
            )
        return entry

    def find(self, key: Hashable) -> int | None:
        """Return the handle already assigned to ``key``, if any."""
        return self._by_key.get(key)

    def reset(self) -> None:
        """Forget every handle; numbers are not reused, so old ones are reported as stale."""
        with self._lock:
            self._by_key.clear()
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> Iterator[tuple[int, T]]:
        """Iterate over ``(handle, entry)`` in creation order."""
        return iter(list(self._entries.items()))


class HandleBlocks(Generic[K]):
    """Consecutive handles for the rows of one owner: row ``i`` of owner ``k`` is ``base(k) + i``.

    For frame ids: ``stackTrace`` of every thread of a 5,000-task dump hands out ~65,000 of them,
    and one allocation per stack instead of one table entry per row is what keeps that cheap. An
    owner whose row count grows gets a new block; ids of its old block stay valid.

    :param kind: what the handles name, for error messages ("frameId").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        # 50,000 stacks make 50,000 blocks: the base of an owner's latest block in a dict, every
        # block's base and size in two machine arrays (ascending bases), its owner in a list -- no
        # tuple per block (half the memory of (base, size) tuples and lists of them).
        self._blocks: dict[K, int] = {}  # owner -> base of its latest block
        self._starts = array("q")  # every block's base, ascending
        self._sizes = array("q")  # the size of the block at the same index
        self._owners: list[K] = []  # the owner of the block at the same index
        self._next = 1

    def base(self, owner: K, size: int) -> int:
        """Return the first handle of ``owner``'s block of (at least) ``size`` rows."""
        with self._lock:
            found = self._blocks.get(owner)
            if found is not None and self._sizes[bisect.bisect_right(self._starts, found) - 1] >= size:
                return found
            if self._next + size > _MAX_HANDLE:
                raise RuntimeError(f"too many {self.kind} handles in one session")
            base = self._next
            self._next += max(size, 1)
            self._blocks[owner] = base
            self._starts.append(base)
            self._sizes.append(size)
            self._owners.append(owner)
            return base

    def get(self, handle: object) -> tuple[K, int]:
        """Return ``(owner, row)`` of ``handle``.

        :raises StaleReference: for a number never handed out.
        """
        if isinstance(handle, int) and not isinstance(handle, bool):
            with self._lock:
                at = bisect.bisect_right(self._starts, handle) - 1
                if at >= 0:
                    row = handle - self._starts[at]
                    if row < self._sizes[at]:
                        return self._owners[at], row
        raise StaleReference(
            f"unknown {self.kind} {handle!s}: it was never handed out in this session or is stale"
            " (refresh the view)"
        )
