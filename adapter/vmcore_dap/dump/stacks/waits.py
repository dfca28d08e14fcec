"""The lock each blocked task waits on, read by drgn once per distinct stack instead of once per task.

:func:`~vmcore_dap.dump.kernel.locks.blocked_on` reads the lock from the slow path's argument in the
task's own unwinding, and drgn's unwinding costs 2–4 ms a task: 0.7–3.3 s for the 301 D tasks of the
50,000-task sample. Waiters in the same slow path share their chain of return addresses
(:mod:`.signature`), and a task whose chain is that of a task drgn unwound (its representative in
the :class:`~.service.StackService`) has its frames at the same places in its stack. The lock
argument drgn found in the representative is read from the stack at those places, so the slots of
the representative's stack that hold exactly the lock's address are where the other task keeps its
own lock. :class:`LockFinder` reads those slots of each task sharing the stack; the address they
agree on is taken only when that lock's wait list holds the task (a task in a mutex's or
rw-semaphore's slow path is on exactly that lock's list: :func:`~vmcore_dap.dump.kernel.locks.
lock_waiters`). Anything else — no such slot, slots that disagree, a completion (no wait list checked
here), a list that does not hold the task — is answered by drgn's unwinding of the task, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import drgn

from vmcore_dap.dump.kernel.locks import LockInfo, blocked_on, lock_at, lock_waiters, slow_path, unwound_lock
from vmcore_dap.dump.kernel.tasks import TaskInfo
from vmcore_dap.dump.stacks.service import StackService
from vmcore_dap.dump.stacks.signature import StackReader, StackWords

__all__ = ["LockFinder"]


@dataclass(frozen=True)
class _Learnt:
    """What a representative's unwinding says about where its stack keeps the lock.

    :param lock: the argument as drgn read it (its type is the one every sharer's lock gets).
    :param slots: word indices above the saved stack pointer that hold the lock's address.
    """

    function: str
    kind: str
    lock: drgn.Object
    slots: tuple[int, ...]


class LockFinder:
    """``lock_of`` for :func:`~vmcore_dap.dump.kernel.locks.blocked_tasks` (module docstring).

    :param service: the stack service whose tasks (all of them, numbered) the blocked tasks are.
    """

    def __init__(self, service: StackService) -> None:
        self._service = service
        self._prog = service.prog
        self._reader = StackReader(service.prog)
        self._learnt: dict[int, _Learnt | None] = {}
        self._waiters: dict[tuple[str, int], frozenset[int] | None] = {}
        #: How many tasks drgn unwound for their lock, and how many were read from a shared stack (the
        #: rest were unwound already).
        self.unwound = 0
        self.shared = 0

    def lock_of(self, info: TaskInfo) -> LockInfo | None:
        """The lock ``info``'s task waits for (the same answer as drgn's unwinding of the task)."""
        key = self._service.key_of(info.address)
        if key is not None:
            found = self._shared(key, info)
            if found is not None:
                self.shared += 1
                return found
            own = self._service.stack(key)
            if not own.shared and own.trace is not None:  # unwound already: ask its trace
                return _lock_from_trace(self._prog, own.trace)
        self.unwound += 1
        return unwound_lock(self._prog, info)

    def _shared(self, key: int, info: TaskInfo) -> LockInfo | None:
        service = self._service
        service.normalized(key)  # finds the task's representative, if it has one
        representative = service.representative(key)
        if representative is None:
            return None
        learnt = self._learn(representative)
        if learnt is None:
            return None
        words = self._words(info)
        if words is None:
            return None
        found = {words.word(slot) for slot in learnt.slots}
        if len(found) != 1:
            return None
        address = found.pop()
        if address is None:
            return None
        lock = drgn.Object(self._prog, learnt.lock.type_, address)
        waiters = self._waiters_of(learnt.kind, lock)
        if waiters is None or info.address not in waiters:
            return None
        return lock_at(self._prog, learnt.kind, lock, learnt.function)

    def _learn(self, representative: int) -> _Learnt | None:
        if representative in self._learnt:
            return self._learnt[representative]
        learnt = None
        trace = self._service.stack(representative).trace
        found = slow_path(trace) if trace is not None else None
        if found is not None:
            function, kind, lock = found
            words = self._words(self._service.task(representative)) if lock is not None else None
            try:
                value = lock.read_() if lock is not None else None
                address = value.value_() if value is not None else None
            except (drgn.FaultError, LookupError, AttributeError):
                words = None
            if words is not None and value is not None and address is not None:
                slots = tuple(i for i in range(len(words.data) // 8) if words.word(i) == address)
                if slots:
                    learnt = _Learnt(function, kind, value, slots)
        self._learnt[representative] = learnt
        return learnt

    def _words(self, info: TaskInfo) -> StackWords | None:
        return (
            self._reader.read(info.task)
            if info.stack is None
            else self._reader.read(info.address, info.stack)
        )

    def _waiters_of(self, kind: str, lock: drgn.Object) -> frozenset[int] | None:
        key = (kind, lock.value_())
        if key not in self._waiters:
            self._waiters[key] = lock_waiters(lock, kind)
        return self._waiters[key]


def _lock_from_trace(prog: drgn.Program, trace: drgn.StackTrace) -> LockInfo | None:
    """:func:`~vmcore_dap.dump.kernel.locks.blocked_on` of a trace the stack service already has
    (the errors :func:`~vmcore_dap.dump.kernel.locks.unwound_lock` allows for, alike)."""
    try:
        return blocked_on(prog, trace)
    except (drgn.FaultError, ValueError, LookupError):
        return None
