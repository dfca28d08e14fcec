"""Who waits for what: the lock a blocked task sleeps on, its owner, and how long it has waited.

A task blocked on a sleeping lock has the lock-taking slow path on its stack, with the lock as that
function's argument (drgn reads it from DWARF locations; when the compiler dropped it the lock is
reported unknown rather than guessed):

* ``struct mutex``: ``__mutex_lock``/``__mutex_lock_common`` (``lock``); the owner is
  ``mutex.owner`` with its low 3 flag bits masked (``MUTEX_FLAGS``, kernel/locking/mutex.c, v4.10+);
* ``struct rw_semaphore``: ``rwsem_down_{read,write}_slowpath`` (``sem``); ``rw_semaphore.owner``
  names the writer, or with ``RWSEM_READER_OWNED`` (bit 0) only the last reader (a hint);
* ``struct completion``: ``__wait_for_common``/``wait_for_common`` (``x``), which has no owner.

The wait time is what crash's ``ps -m`` shows: the task's runqueue clock minus
``sched_info.last_arrival`` (drgn's ``task_since_last_arrival_ns``).

Unwinding a task costs drgn 2–4 ms, so :func:`blocked_tasks` takes the lock from a caller's
``lock_of`` when it has a cheaper way (:mod:`vmcore_dap.dump.stacks.waits`: waiters sharing a stack),
which checks its answer against the lock's wait list (:func:`lock_waiters`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import drgn
from drgn.helpers.linux.sched import task_since_last_arrival_ns

from vmcore_dap.dump.kernel.lists import ListWalk, bounded_list_entries
from vmcore_dap.dump.kernel.tasks import TaskInfo

__all__ = [
    "BlockedTask",
    "LockInfo",
    "blocked_on",
    "blocked_tasks",
    "format_wait",
    "lock_at",
    "lock_waiters",
    "slow_path",
    "unwound_lock",
]

# kernel/locking/mutex.c: MUTEX_FLAGS; kernel/locking/rwsem.c: RWSEM_OWNER_FLAGS_MASK.
_MUTEX_FLAGS = 0x07
_RWSEM_OWNER_FLAGS = 0x07
_RWSEM_READER_OWNED = 0x01

#: (function on the stack, argument holding the lock, kind of lock), innermost functions first.
_LOCK_FUNCTIONS: tuple[tuple[str, str, str], ...] = (
    ("__mutex_lock_common", "lock", "mutex"),
    ("__mutex_lock", "lock", "mutex"),
    ("__ww_mutex_lock", "lock", "mutex"),
    ("mutex_lock_io", "lock", "mutex"),
    ("rwsem_down_write_slowpath", "sem", "rw_semaphore"),
    ("rwsem_down_read_slowpath", "sem", "rw_semaphore"),
    ("do_wait_for_common", "x", "completion"),
    ("__wait_for_common", "x", "completion"),
    ("wait_for_common", "x", "completion"),
    ("wait_for_common_io", "x", "completion"),
)
_BY_FUNCTION = {name: (arg, kind) for name, arg, kind in _LOCK_FUNCTIONS}

#: The waiter each sleeping lock keeps on its ``wait_list`` (on the waiting task's stack), by kind:
#: ``struct mutex_waiter`` (kernel/locking/mutex.h) and ``struct rwsem_waiter`` (kernel/locking/rwsem.c)
#: each link ``list`` into the lock's ``wait_list`` and name the sleeping ``task``, unchanged from
#: v4.x to v6.x.
_WAITERS = {"mutex": "struct mutex_waiter", "rw_semaphore": "struct rwsem_waiter"}
#: More waiters than one lock's list holds in any dump worth reading (a bound, not a limit).
_MAX_WAITERS = 1 << 16


@dataclass(frozen=True)
class LockInfo:
    """A lock a task waits for.

    :param kind: ``mutex``, ``rw_semaphore`` or ``completion``.
    :param address: the lock's address, ``None`` when the argument was optimised out.
    :param symbol: the global variable the lock is (``labbug_lock``), or ``None``.
    :param owner: ``struct task_struct *`` of the owner, ``None`` when none is recorded.
    :param owner_is_reader_hint: an rwsem owned by readers only records the last one.
    :param function: the function on the stack that waits.
    """

    kind: str
    address: int | None
    symbol: str | None
    owner: drgn.Object | None
    owner_is_reader_hint: bool
    function: str

    @property
    def owner_address(self) -> int | None:
        """Address of the owner's ``task_struct``."""
        return self.owner.value_() if self.owner is not None else None

    @property
    def description(self) -> str:
        """``mutex labbug_lock (0xffffffffc0238000)``."""
        where = f"{self.address:#x}" if self.address is not None else "address optimised out"
        return f"{self.kind} {self.symbol} ({where})" if self.symbol else f"{self.kind} at {where}"


@dataclass(frozen=True)
class BlockedTask:
    """A task in uninterruptible sleep (``D``), what it waits for and for how long.

    :param waited_ns: runqueue clock minus ``sched_info.last_arrival``, ``None`` if unknown.
    :param lock: ``None`` when no known lock-taking function is on its stack.
    """

    info: TaskInfo
    waited_ns: int | None
    lock: LockInfo | None


def _owner_of(prog: drgn.Program, kind: str, lock: drgn.Object) -> tuple[drgn.Object | None, bool]:
    if kind == "mutex":
        raw = lock.owner.counter.value_()
        address = raw & ~_MUTEX_FLAGS
        hint = False
    elif kind == "rw_semaphore":
        raw = lock.owner.counter.value_()
        address = raw & ~_RWSEM_OWNER_FLAGS
        hint = bool(raw & _RWSEM_READER_OWNED)
    else:
        return None, False
    if not address:
        return None, hint
    return drgn.Object(prog, "struct task_struct *", address), hint


def _symbol_at(prog: drgn.Program, address: int) -> str | None:
    try:
        symbol = prog.symbol(address)
    except LookupError:
        return None
    if symbol.address == address:
        return symbol.name
    return f"{symbol.name}+{address - symbol.address:#x}"


def lock_at(prog: drgn.Program, kind: str, lock: drgn.Object, function: str) -> LockInfo:
    """Describe the lock ``lock`` (the slow path's pointer argument) of ``kind`` that ``function``
    waits in: its address, symbol and owner (all unknown when the argument cannot be read)."""
    try:
        value = lock.read_()
        address = value.value_()
        owner, hint = _owner_of(prog, kind, value[0])
    except (drgn.FaultError, LookupError, AttributeError):
        return LockInfo(kind, None, None, None, False, function)
    return LockInfo(kind, address, _symbol_at(prog, address), owner, hint, function)


def slow_path(trace: drgn.StackTrace) -> tuple[str, str, drgn.Object | None] | None:
    """The lock-taking slow path on ``trace``: ``(function, kind, its lock argument)``, the argument
    ``None`` when the compiler dropped it; ``None`` when no such function is on the stack."""
    found: tuple[str, str, drgn.Object | None] | None = None
    for frame in trace:
        name = frame.name
        if name in _BY_FUNCTION:
            arg, kind = _BY_FUNCTION[name]
            found = (name, kind, None)
            try:
                value = frame[arg]
            except (KeyError, LookupError, ValueError):
                continue
            if value.absent_:
                continue  # an outer frame may still hold it (inlined __mutex_lock_common)
            return name, kind, value
        if found is not None and not frame.is_inline:
            break  # past the physical frame of the slow path: the argument is gone
    return found


def blocked_on(prog: drgn.Program, trace: drgn.StackTrace) -> LockInfo | None:
    """Find the lock a task waits for in its stack trace, or ``None``."""
    found = slow_path(trace)
    if found is None:
        return None
    function, kind, lock = found
    if lock is None:
        return LockInfo(kind, None, None, None, False, function)
    return lock_at(prog, kind, lock, function)


def unwound_lock(prog: drgn.Program, info: TaskInfo) -> LockInfo | None:
    """The lock ``info``'s task waits for, from drgn's unwinding of the task (2–4 ms)."""
    try:
        return blocked_on(prog, prog.stack_trace(info.task))
    except (drgn.FaultError, ValueError, LookupError):
        return None


def lock_waiters(lock: drgn.Object, kind: str) -> frozenset[int] | None:
    """The tasks (``task_struct`` addresses) sleeping on ``lock``'s wait list: every task in a
    mutex's or rw-semaphore's slow path is on exactly one. ``None`` for a kind without a waiter
    type here, or a list that cannot be walked to its end."""
    waiter = _WAITERS.get(kind)
    if waiter is None:
        return None
    walk = ListWalk()
    try:
        tasks = frozenset(
            entry.task.value_()
            for entry in bounded_list_entries(
                lock.wait_list.address_of_(), waiter, "list", walk, limit=_MAX_WAITERS
            )
        )
    except (drgn.FaultError, LookupError, AttributeError):
        return None
    return tasks if walk.problem is None else None


def blocked_tasks(
    prog: drgn.Program,
    tasks: Iterable[TaskInfo],
    lock_of: Callable[[TaskInfo], LockInfo | None] | None = None,
) -> list[BlockedTask]:
    """Describe every task in ``D`` state among ``tasks``: its lock, owner and wait, longest first.

    :param lock_of: the lock a task waits for (default :func:`unwound_lock`): a caller that knows a
        cheaper way to the same answer.
    """
    find = lock_of if lock_of is not None else lambda info: unwound_lock(prog, info)
    result = []
    for info in tasks:
        if info.state != "D":
            continue
        try:
            waited: int | None = max(task_since_last_arrival_ns(info.task), 0)
        except (drgn.FaultError, LookupError, AttributeError):
            waited = None
        result.append(BlockedTask(info, waited, find(info)))
    result.sort(key=lambda b: (-(b.waited_ns or 0), b.info.pid))
    return result


def format_wait(ns: int | None) -> str:
    """``[0 00:00:02.345]`` as crash's ``ps -m`` prints a duration (days hh:mm:ss.ms)."""
    if ns is None:
        return "[unknown]"
    ms_total = ns // 1_000_000
    ms = ms_total % 1000
    seconds = ms_total // 1000
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"[{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}]"
