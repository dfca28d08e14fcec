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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import drgn
from drgn.helpers.linux.sched import task_since_last_arrival_ns

from vmcore_dap.dump.kernel.tasks import TaskInfo

__all__ = ["BlockedTask", "LockInfo", "blocked_on", "blocked_tasks", "format_wait"]

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


def blocked_on(prog: drgn.Program, trace: drgn.StackTrace) -> LockInfo | None:
    """Find the lock a task waits for in its stack trace, or ``None``."""
    found: tuple[drgn.StackFrame, str, str] | None = None
    for frame in trace:
        name = frame.name
        if name in _BY_FUNCTION:
            arg, kind = _BY_FUNCTION[name]
            found = (frame, arg, kind)
            try:
                value = frame[arg]
            except (KeyError, LookupError, ValueError):
                continue
            if value.absent_:
                continue  # an outer frame may still hold it (inlined __mutex_lock_common)
            try:
                lock = value.read_()
                address = lock.value_()
                owner, hint = _owner_of(prog, kind, lock[0])
            except (drgn.FaultError, LookupError, AttributeError):
                return LockInfo(kind, None, None, None, False, name)
            return LockInfo(kind, address, _symbol_at(prog, address), owner, hint, name)
        if found is not None and not frame.is_inline:
            break  # past the physical frame of the slow path: the argument is gone
    if found is None:
        return None
    return LockInfo(found[2], None, None, None, False, found[0].name or "?")


def blocked_tasks(prog: drgn.Program, tasks: Iterable[TaskInfo]) -> list[BlockedTask]:
    """Describe every task in ``D`` state among ``tasks``: its lock, owner and wait, longest first."""
    result = []
    for info in tasks:
        if info.state != "D":
            continue
        try:
            waited: int | None = max(task_since_last_arrival_ns(info.task), 0)
        except (drgn.FaultError, LookupError, AttributeError):
            waited = None
        try:
            lock = blocked_on(prog, prog.stack_trace(info.task))
        except (drgn.FaultError, ValueError, LookupError):
            lock = None
        result.append(BlockedTask(info, waited, lock))
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
