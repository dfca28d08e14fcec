"""drgn's crash commands on a dump whose PID table cannot be read: every task the kernel's lists reach.

drgn's ``ps``, ``foreach``, ``sys`` (TASKS), ``runq`` and ``search`` find tasks with
``for_each_task``, a walk of the PID table. When the dump left the table's pages out (makedumpfile
-d 31 on a kernel it does not support drops slab pages, seen on sid's 7.2), that walk faults before
the first task and the whole command fails. Here ``for_each_task`` of those command modules is
replaced once, at the console's first line, by :func:`for_each_reachable_task`: drgn's walk while it
reads, then the tasks on ``init_task.tasks`` and each process's thread list, plus one line on stderr
(the console shows it after the output) saying what could not be read and why.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import drgn
from drgn.helpers.linux.cpumask import for_each_possible_cpu
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import idle_task

from vmcore_dap.dump.kernel.tasks import tasks_on_lists, unreadable_pid_table

__all__ = ["for_each_reachable_task", "install"]

#: drgn's command modules that call ``for_each_task`` by that name.
_COMMAND_MODULES = ("common", "_sched", "_search", "_sys")


def _program_of(args: tuple[Any, ...]) -> drgn.Program:
    if args and isinstance(args[0], drgn.Program):
        return args[0]
    if args and isinstance(args[0], drgn.Object):
        return args[0].prog_
    return drgn.get_default_prog()


def for_each_reachable_task(*args: Any, idle: bool = False) -> Iterator[drgn.Object]:
    """drgn's ``for_each_task`` (same arguments), continued from the kernel's task lists when the
    PID table cannot be read."""
    seen: set[int] = set()
    try:
        for task in for_each_task(*args, idle=idle):
            seen.add(task.value_())
            yield task
        return
    except drgn.FaultError as exc:
        prog = _program_of(args)
        address = exc.address
    fallback: list[drgn.Object] = []
    if idle:
        fallback += [idle_task(prog, cpu) for cpu in for_each_possible_cpu(prog)]
    fallback += tasks_on_lists(prog)
    before, found = len(seen), 0
    lost = 0
    for task in fallback:
        if task.value_() in seen:
            continue
        seen.add(task.value_())
        try:
            task.pid.read_()
        except drgn.FaultError:
            lost += 1
            continue
        found += 1
        yield task
    print(f"note: {unreadable_pid_table(prog, address, before, found, lost)}", file=sys.stderr)


def install() -> None:
    """Point drgn's crash commands at :func:`for_each_reachable_task` (idempotent)."""
    import importlib

    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"drgn.commands._crash.{name}")
        if getattr(module, "for_each_task", None) is for_each_task:
            module.for_each_task = for_each_reachable_task  # type: ignore[attr-defined]
