"""Which tasks sit in which function, and where D-state tasks wait: every task's stack, walked once.

The language server asks the same questions of all stacks over and over (one code lens per function
of every open file, one hover per function), so the stacks of all tasks are unwound once, on first
use, into plain rows (:class:`StackRow`) and indexed by function name. Nothing here holds a drgn
frame after the walk: rows are small and the index can be shared between requests freely.

Function names are DWARF's (inline frames included, as the adapter's Call Stack shows them); frames
without DWARF get their ELF symbol with GCC's clone suffixes (``.isra.0``, ``.cold``) removed, so a
function matches its source name whichever part of it the task is in.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import drgn

from vmcore_dap.dump.kernel.tasks import TaskInfo, list_tasks

__all__ = [
    "StackRow",
    "TaskStackRows",
    "StackIndex",
    "build_stack_index",
    "base_function_name",
    "describe_counts",
]

log = logging.getLogger(__name__)

_CLONE_SUFFIX = re.compile(r"(?:\.(?:cold|isra|constprop|part|lto_priv|llvm)(?:\.\d+)?)+$")
_USER_TOP = 1 << 47  # x86-64: addresses below the canonical hole are user space


def base_function_name(name: str) -> str:
    """Strip GCC clone and split suffixes: ``f.constprop.0.cold`` → ``f``."""
    return _CLONE_SUFFIX.sub("", name)


@dataclass(frozen=True)
class StackRow:
    """One frame of one task, as plain data.

    :param file: the file name as DWARF records it (map it with the source map), or ``None``.
    :param line: the line of the call (or of the faulting instruction for an interrupted frame).
    """

    function: str
    file: str | None
    line: int
    is_inline: bool
    pc: int


@dataclass(frozen=True)
class TaskStackRows:
    """A task and its frames, innermost first."""

    pid: int
    comm: str
    state: str
    address: int
    rows: tuple[StackRow, ...]
    error: str | None = None


@dataclass
class StackIndex:
    """All stacks, indexed by function.

    :param by_function: function name → the tasks that have it on their stack (each task once).
    :param seconds: how long the walk took, for the log and ``docs/lsp.md``.
    """

    tasks: list[TaskStackRows]
    by_function: dict[str, list[TaskStackRows]] = field(default_factory=dict)
    seconds: float = 0.0

    def tasks_in(self, function: str) -> list[TaskStackRows]:
        """Return the tasks with ``function`` on their stack (empty if none)."""
        return self.by_function.get(function, [])

    def state_counts(self, function: str) -> Counter[str]:
        """Count the tasks in ``function`` by ``ps`` state letter."""
        return Counter(task.state for task in self.tasks_in(function))

    def d_state_waits(self) -> dict[tuple[str, int], list[TaskStackRows]]:
        """Map each (DWARF file, line) on the stack of an uninterruptible task to those tasks."""
        waits: dict[tuple[str, int], list[TaskStackRows]] = {}
        for task in self.tasks:
            if task.state != "D":
                continue
            seen: set[tuple[str, int]] = set()
            for row in task.rows:
                if row.file is None or not row.line:
                    continue
                key = (row.file, row.line)
                if key not in seen:
                    seen.add(key)
                    waits.setdefault(key, []).append(task)
        return waits


def describe_counts(counts: Counter[str]) -> str:
    """``"D: 3, S: 1"``, states in the order ``ps`` users scan for trouble (D first)."""
    order = "DRSTtXZPI"
    keys = sorted(counts, key=lambda s: (order.index(s) if s in order else len(order), s))
    return ", ".join(f"{state}: {counts[state]}" for state in keys)


def _frame_row(prog: drgn.Program, frame: drgn.StackFrame) -> StackRow:
    pc = frame.pc
    name = frame.function_name
    if name is None:
        # An address past the end of a noreturn caller belongs to the caller: look up pc - 1.
        lookup = pc if frame.interrupted else pc - 1
        try:
            name = base_function_name(prog.symbol(lookup).name)
        except LookupError:
            name = f"{pc:#x}"
    try:
        location = frame.source()
    except LookupError:
        location = None
    if location is not None and location.filename:
        return StackRow(name, location.filename, location.line, frame.is_inline, pc)
    return StackRow(name, None, 0, frame.is_inline, pc)


def _walk(prog: drgn.Program, info: TaskInfo) -> TaskStackRows:
    rows: list[StackRow] = []
    error: str | None = None
    try:
        for frame in prog.stack_trace(info.task):
            if frame.pc < _USER_TOP:
                break  # drgn continues into user space for tasks in a system call
            rows.append(_frame_row(prog, frame))
    except (drgn.FaultError, ValueError, LookupError) as exc:
        error = str(exc)
    return TaskStackRows(info.pid, info.comm, info.state, info.address, tuple(rows), error)


def build_stack_index(prog: drgn.Program, tasks: Iterable[TaskInfo] | None = None) -> StackIndex:
    """Unwind every task of the dump and index the stacks by function.

    :param tasks: the tasks to walk; all tasks of the dump (idle tasks included) by default.
    """
    start = time.monotonic()
    walked = [_walk(prog, info) for info in (list_tasks(prog) if tasks is None else tasks)]
    index = StackIndex(walked)
    for task in walked:
        for function in dict.fromkeys(row.function for row in task.rows):
            index.by_function.setdefault(function, []).append(task)
    index.seconds = time.monotonic() - start
    log.info("unwound %d tasks in %.2fs", len(walked), index.seconds)
    return index
