"""drgn's crash commands on a dump whose PID table cannot be read: every task the kernel's lists reach.

drgn's ``ps``, ``foreach``, ``sys`` (TASKS), ``runq`` and ``search`` find tasks with
``for_each_task``, a walk of the PID table. When the dump left the table's pages out (makedumpfile
-d 31 on a kernel it does not support drops slab pages, seen on sid's 7.2), that walk faults before
the first task and the whole command fails; ``ps`` then fails on the first task whose
``mm_struct`` (slab too) is gone. Here ``for_each_task`` of those command modules is replaced once,
at the console's first line, by :func:`for_each_reachable_task`: drgn's walk while it reads, then
the tasks on ``init_task.tasks`` and each process's thread list, plus one line on stderr (the
console shows it after the output) saying what could not be read and why; ``ps`` shows 0 for
memory counters it cannot read, and says so in one line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import drgn
from drgn.helpers.linux.cpumask import for_each_possible_cpu
from drgn.helpers.linux.mm import TaskRss, task_rss, task_vsize
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import idle_task

from vmcore_dap.dump.kernel.tasks import tasks_on_lists, unreadable_pid_table
from vmcore_dap.dump.memory.page_filter import explain_unreadable

__all__ = ["for_each_reachable_task", "install"]

#: drgn's command modules that call ``for_each_task`` by that name.
_COMMAND_MODULES = ("common", "_sched", "_search", "_sys")


def _program_of(args: tuple[Any, ...]) -> drgn.Program:
    if args and isinstance(args[0], drgn.Program):
        return args[0]
    if args and isinstance(args[0], drgn.Object):
        return args[0].prog_
    return drgn.get_default_prog()


#: Where drgn's ``ps`` could not read a task's memory counters (its ``mm_struct``) in this command.
_unreadable_counters: list[int] = []


def _task_rss_or_zero(prog: drgn.Program, task: drgn.Object) -> TaskRss:
    try:
        return task_rss(prog, task)
    except drgn.FaultError as exc:
        _unreadable_counters.append(exc.address)
        return TaskRss(0, 0, 0, 0)


def _task_vsize_or_zero(task: drgn.Object) -> int:
    try:
        return task_vsize(task)
    except drgn.FaultError as exc:
        _unreadable_counters.append(exc.address)
        return 0


def for_each_reachable_task(*args: Any, idle: bool = False) -> Iterator[drgn.Object]:
    """drgn's ``for_each_task`` (same arguments), continued from the kernel's task lists when the
    PID table cannot be read. After the last task (a command asks for the next one when it is done
    with it) it says on stderr what could not be read."""
    prog = _program_of(args)
    _unreadable_counters.clear()
    yield from _reachable_tasks(prog, args, idle)
    if _unreadable_counters:
        count = len(_unreadable_counters)
        print(
            f"note: VSZ/RSS shown as 0 where a task's mm_struct cannot be read ({count} values; "
            f"{_unreadable_counters[0]:#x}: {explain_unreadable(prog, _unreadable_counters[0])})",
            file=sys.stderr,
        )


def _reachable_tasks(prog: drgn.Program, args: tuple[Any, ...], idle: bool) -> Iterator[drgn.Object]:
    seen: set[int] = set()
    from_table = 0  # idle tasks come from the CPUs, not the PID table
    try:
        for task in for_each_task(*args, idle=idle):
            seen.add(task.value_())
            from_table += task.pid.value_() != 0
            yield task
        return
    except drgn.FaultError as exc:
        address = exc.address
    fallback: list[drgn.Object] = []
    if idle:
        fallback += [idle_task(prog, cpu) for cpu in for_each_possible_cpu(prog)]
    fallback += tasks_on_lists(prog)
    found = 0
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
    print(f"note: {unreadable_pid_table(prog, address, from_table, found, lost)}", file=sys.stderr)


def install() -> None:
    """Point drgn's crash commands at :func:`for_each_reachable_task`, and ``ps``'s memory
    counters at ones that show 0 for an unreadable ``mm_struct`` (idempotent)."""
    import importlib

    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"drgn.commands._crash.{name}")
        if getattr(module, "for_each_task", None) is for_each_task:
            module.for_each_task = for_each_reachable_task  # type: ignore[attr-defined]
    ps = importlib.import_module("drgn.commands._crash._ps")
    if ps.task_rss is task_rss:
        ps.task_rss = _task_rss_or_zero  # type: ignore[attr-defined]
        ps.task_vsize = _task_vsize_or_zero  # type: ignore[attr-defined]
