"""Session-wide tables of small integer handles (thread ids, frame ids, variables references).

Model: one table per kind, ints > 0, and a key ``(parent, name)`` so that expanding the same path twice
hands out the same number and the table does not grow while a user clicks around. A vmcore never
resumes, so handles stay valid for the whole session unless :meth:`HandleTable.reset` is called
(hex toggle, debug info reloaded), after which the client is sent ``invalidated``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from vmcore_dap.errors import StaleReference

__all__ = ["HandleTable"]

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

    def intern_keys(self, keys: list[K]) -> list[int]:
        """Return the handles of ``keys`` (one lock for all), each key being its own entry.

        For tables whose entries are keys that say where to find the thing (a thread and a row), so
        handing out a page of ids creates nothing else.
        """
        handles = []
        with self._lock:
            for key in keys:
                handle = self._by_key.get(key)
                if handle is None:
                    if self._next > _MAX_HANDLE:
                        raise RuntimeError(f"too many {self.kind} handles in one session")
                    handle = self._next
                    self._next += 1
                    self._by_key[key] = handle
                    self._entries[handle] = key  # type: ignore[assignment]
                handles.append(handle)
        return handles

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
