"""Every task of the dump, as ``ps`` (and crash's ``ps``) would list it.

drgn's ``prog.threads()`` omits PID 0, but each CPU has its own idle task (``swapper/N``), and a crash
engineer expects to see them, especially the ones that were running. So the list is: each online
CPU's idle task (from ``idle_task``), then every task reachable through the PID hash, with its
``ps`` state letter and, for tasks that were on a CPU when the dump was taken, that CPU.

The PID table is a tree read from the dump; a damaged one can loop. The walk stops at the first task
seen twice (each task has exactly one PID) or after ``pid_max`` entries, and says so. Names are
escaped (:func:`~vmcore_dap.target.values.escape_bytes`): a ``comm`` may hold control characters or
bytes that are not UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass

import drgn
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import cpu_curr, idle_task, task_cpu, task_state_to_char

from vmcore_dap.target.values import escape_bytes

__all__ = ["TaskInfo", "list_tasks", "task_info", "running_tasks"]

_PF_KTHREAD = 0x00200000  # include/linux/sched.h, unchanged since v2.6.


@dataclass(frozen=True)
class TaskInfo:
    """What a thread list shows about one task.

    :param task: ``struct task_struct *``.
    :param cpu: the CPU the task last ran on (``task_cpu``).
    :param on_cpu: whether it was the current task of ``cpu`` when the dump was taken.
    """

    task: drgn.Object
    address: int
    pid: int
    tgid: int
    comm: str
    state: str
    cpu: int
    on_cpu: bool
    is_idle: bool
    is_kernel_thread: bool

    @property
    def display_name(self) -> str:
        """``PID 123 labbug-writer [R] CPU1`` (the CPU only for tasks that were running)."""
        where = f" CPU{self.cpu}" if self.on_cpu else ""
        return f"PID {self.pid} {self.comm} [{self.state}]{where}"


def running_tasks(prog: drgn.Program) -> dict[int, int]:
    """Map the address of each CPU's current task to that CPU."""
    result: dict[int, int] = {}
    for cpu in for_each_online_cpu(prog):
        try:
            result[cpu_curr(prog, cpu).value_()] = cpu
        except drgn.FaultError:
            continue
    return result


def task_info(task: drgn.Object, running: dict[int, int], is_idle: bool = False) -> TaskInfo:
    """Describe one task.

    :param task: ``struct task_struct *``.
    :param running: :func:`running_tasks`.
    """
    address = task.value_()
    try:
        comm = escape_bytes(task.comm.string_())
    except drgn.FaultError:
        comm = "<unreadable>"
    try:
        state = task_state_to_char(task)
    except drgn.FaultError:
        state = "?"
    try:
        cpu = task_cpu(task)
    except drgn.FaultError:
        cpu = -1
    try:
        flags = task.flags.value_()
    except drgn.FaultError:
        flags = 0
    on_cpu = address in running
    if on_cpu:
        cpu = running[address]
    return TaskInfo(
        task=task,
        address=address,
        pid=task.pid.value_(),
        tgid=task.tgid.value_(),
        comm=comm,
        state=state,
        cpu=cpu,
        on_cpu=on_cpu,
        is_idle=is_idle,
        is_kernel_thread=bool(flags & _PF_KTHREAD) or is_idle,
    )


def _pid_limit(prog: drgn.Program) -> int:
    """More PID-table entries than a sane kernel can hold: ``pid_max`` (default 4,194,304)."""
    try:
        return int(prog["pid_max"].value_()) + 1
    except (LookupError, drgn.FaultError):
        return 1 << 22


def list_tasks(
    prog: drgn.Program, first: drgn.Object | None = None, problems: list[str] | None = None
) -> list[TaskInfo]:
    """List every task: idle tasks by CPU, then the rest by PID; ``first`` (the crashed task) leads.

    :param first: ``struct task_struct *`` to put at the head of the list, or ``None``.
    :param problems: where to append what is wrong with the dump's PID table, if anything.
    """
    running = running_tasks(prog)
    tasks: list[TaskInfo] = []
    seen: set[int] = set()
    for cpu in for_each_online_cpu(prog):
        idle = idle_task(prog, cpu)
        if idle.value_() not in seen:
            seen.add(idle.value_())
            tasks.append(task_info(idle, running, is_idle=True))
    others = []
    listed: set[int] = set()
    limit = _pid_limit(prog)
    problem = None
    try:
        for count, task in enumerate(for_each_task(prog)):
            address = task.value_()
            if address in listed:
                problem = f"task {address:#x} appears twice (a cycle): stopped after {count} entries"
                break
            if count >= limit:
                problem = f"more than pid_max ({limit - 1}) entries: stopped"
                break
            listed.add(address)
            if address not in seen:
                seen.add(address)
                others.append(task_info(task, running))
    except drgn.FaultError as exc:
        if not others:
            raise
        problem = f"unreadable at {exc.address:#x} after {len(others)} tasks"
    if problem is not None and problems is not None:
        problems.append(f"the kernel's PID table is corrupt: {problem}; the thread list may be incomplete")
    others.sort(key=lambda t: (t.pid, t.address))
    tasks.extend(others)
    if first is not None:
        address = first.value_()
        tasks.sort(key=lambda t: t.address != address)  # stable: only moves the crashed task
    return tasks
