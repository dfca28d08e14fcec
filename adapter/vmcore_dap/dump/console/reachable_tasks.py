"""drgn's crash commands on a dump whose PID table cannot be read: every task the kernel's lists reach.

drgn's ``ps``, ``foreach``, ``sys`` (TASKS), ``runq`` and ``search`` find tasks with
``for_each_task``, a walk of the PID table. When the dump left the table's pages out (makedumpfile
-d 31 on a kernel it does not support drops slab pages, seen on sid's 7.2), that walk faults before
the first task and the whole command fails; ``ps`` then fails on the first task whose
``mm_struct`` (slab too) is gone. Here ``for_each_task`` of those command modules is replaced once,
at the console's first line, by :func:`for_each_reachable_task`: drgn's walk while it reads, then
the tasks on ``init_task.tasks`` and each process's thread list, plus one line on stderr (the
console shows it after the output) saying what could not be read and why; ``ps`` shows 0 for
memory counters it cannot read, and says so in one line. With ``idle=True`` the idle tasks are
those of every CPU the dump holds, not only the online ones (arm64's crash IPI takes the stopped
CPUs offline; crash's ``ps``, ``sys`` TASKS and ``foreach`` count their idle tasks).

``sys``'s TASKS is a count of that same walk, 1.2 s of reading every task at 50,000 tasks. A debug
session has already walked the table for its thread list
(:class:`~vmcore_dap.dump.kernel.tasks.TaskListing`), so TASKS is counted from that listing when it
read the whole table cleanly (:func:`listed_task_count`), and by the walk otherwise.

drgn's ``bt`` of several tasks (``foreach bt``, ``bt PID PID…``) stops at the first task whose
stack cannot be read (a lossy dump left the stack's page out): :func:`print_each_bt` prints the
others too, a line under each task it could not unwind, and one line on stderr naming them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import drgn
from drgn.helpers.linux.mm import TaskRss, task_rss, task_vsize
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import idle_task

from vmcore_dap.dump.errors import describe_fault
from vmcore_dap.dump.kernel.cpus import dumped_cpus
from vmcore_dap.dump.kernel.tasks import program_listing, tasks_on_lists, unreadable_pid_table
from vmcore_dap.dump.memory.page_filter import explain_unreadable

__all__ = ["for_each_reachable_task", "install", "listed_task_count", "print_each_bt"]

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
    if idle:
        # drgn's for_each_task(idle=True) takes the idle tasks of online CPUs; arm64's crash IPI
        # takes the stopped CPUs offline, and their idle tasks are tasks too (crash's ps, TASKS and
        # foreach list them, as the thread list does): every CPU the dump holds.
        for cpu in dumped_cpus(prog):
            task = idle_task(prog, cpu)
            seen.add(task.value_())
            yield task
    from_table = 0
    try:
        for task in for_each_task(*args):
            if task.value_() not in seen:
                seen.add(task.value_())
                from_table += 1
                yield task
        return
    except drgn.FaultError as exc:
        address = exc.address
    fallback = list(tasks_on_lists(prog))
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


def listed_task_count(prog: drgn.Program) -> int | None:
    """What :func:`for_each_reachable_task` yields with ``idle=True`` when the PID table reads (the
    idle task of every CPU the dump holds, then every other task of the PID table), counted from the
    program's task listing; ``None`` when there is no listing or its walk did not read the whole
    table cleanly (a fault, a cycle), where only the walk itself gives the number. A listing still
    under way is finished first: that costs what the walk it replaces would, and the debug session
    then has its whole thread list."""
    listing = program_listing(prog)
    if listing is None:
        return None
    listing.rest()
    if listing.pid_table_tasks is None:
        return None
    idle = {idle_task(prog, cpu).value_() for cpu in dumped_cpus(prog)}
    return len(idle) + listing.pid_table_tasks - len(idle & listing.pid_table_idle)


def _sys_tasks(get_tasks: Callable[[drgn.Program], Any]) -> Callable[[drgn.Program], Any]:
    """drgn's TASKS getter of ``sys``, answered by :func:`listed_task_count` when it can."""

    def tasks(prog: drgn.Program) -> Any:
        count = listed_task_count(prog)
        return str(count) if count is not None else get_tasks(prog)

    _SYS_TASKS_GETTERS.add(tasks)
    return tasks


#: The TASKS getters :func:`install` put in place (so a second install keeps them).
_SYS_TASKS_GETTERS: set[Callable[[drgn.Program], Any]] = set()


#: drgn's own ``_print_bt`` (one call prints the back traces of several tasks), kept by install().
_drgn_print_bt: Any = None

#: At most this many unreadable tasks are named in the closing line; the rest are counted.
_NAMED_TASKS = 10


def print_each_bt(prog: drgn.Program, tasks: Iterable[drgn.Object], args: Any) -> Any:
    """drgn's back trace of ``tasks`` (``_print_bt``), one task at a time, so that a task whose
    stack cannot be read does not end the command: under its header a line says why, the next task
    follows, and after the last one a line on stderr names every task it could not unwind.

    Returns the last trace drgn printed, as drgn's does (``None`` if none)."""
    trace = None
    unreadable: list[str] = []
    first_fault: drgn.FaultError | None = None
    for i, task in enumerate(tasks):
        if i > 0:
            print()  # drgn separates tasks with a blank line; each call below prints one task
        try:
            trace = _drgn_print_bt(prog, [task], args) or trace
        except drgn.FaultError as exc:
            sys.stdout.flush()
            first_fault = first_fault or exc
            print(f"(stack cannot be read: {describe_fault(exc, prog)})")
            unreadable.append(_task_name(task))
    if unreadable:
        named = ", ".join(unreadable[:_NAMED_TASKS])
        more = f" and {len(unreadable) - _NAMED_TASKS} more" if len(unreadable) > _NAMED_TASKS else ""
        assert first_fault is not None
        print(
            f"note: the stacks of {len(unreadable)} tasks cannot be read ({named}{more}); "
            f"the first: {describe_fault(first_fault, prog)}",
            file=sys.stderr,
        )
    return trace


def _task_name(task: drgn.Object) -> str:
    """``PID 2 kthreadd``, or the task's address when its ``task_struct`` cannot be read."""
    try:
        return f"PID {task.pid.value_()} {task.comm.string_().decode(errors='replace')}"
    except drgn.FaultError:
        return f"task {task.value_():#x}"


def install() -> None:
    """Point drgn's crash commands at :func:`for_each_reachable_task`, ``ps``'s memory counters at
    ones that show 0 for an unreadable ``mm_struct``, ``bt``'s loop over tasks at
    :func:`print_each_bt` and ``sys``'s TASKS at :func:`listed_task_count` (idempotent)."""
    import importlib

    global _drgn_print_bt
    bt = importlib.import_module("drgn.commands._crash._bt")
    if bt._print_bt is not print_each_bt:
        _drgn_print_bt = bt._print_bt
        bt._print_bt = print_each_bt  # type: ignore[attr-defined]

    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"drgn.commands._crash.{name}")
        if getattr(module, "for_each_task", None) is for_each_task:
            module.for_each_task = for_each_reachable_task  # type: ignore[attr-defined]
    sys_module = importlib.import_module("drgn.commands._crash._sys")
    fields = sys_module._FIELDS
    for i, (field_name, append, getter) in enumerate(fields):
        if field_name == "TASKS" and getter not in _SYS_TASKS_GETTERS:
            fields[i] = (field_name, append, _sys_tasks(getter))
    ps = importlib.import_module("drgn.commands._crash._ps")
    if ps.task_rss is task_rss:
        ps.task_rss = _task_rss_or_zero  # type: ignore[attr-defined]
        ps.task_vsize = _task_vsize_or_zero  # type: ignore[attr-defined]
