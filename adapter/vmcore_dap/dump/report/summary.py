"""The first screen of a crash: ``sys``'s facts, the panic and oops, the taint, the log's tail, the CPUs.

``sys`` facts come from the console's ``sys`` (drgn's command with crash's DUMPFILE, MEMORY and PANIC
rules), so the Kernel view, the console and crash say the same thing. Per-CPU current tasks come
from each online CPU's runqueue (``cpu_curr``), with the function each was in (the top frame of its
normalised stack from the stack service: for the crashed CPU the faulting function, not the panic
path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import drgn
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.printk import get_printk_records
from drgn.helpers.linux.sched import cpu_curr

from vmcore_dap.dump.kernel.panic import PanicInfo
from vmcore_dap.dump.kernel.task_state import task_state_letter
from vmcore_dap.dump.stacks.frames import unwind_task
from vmcore_dap.dump.stacks.groups import UNWIND_FAILED, USER_MODE
from vmcore_dap.dump.stacks.normalize import normalize_rows
from vmcore_dap.dump.stacks.service import StackService

__all__ = ["CpuTask", "Summary", "cpu_tasks", "log_tail", "summarize", "sys_facts"]

_SYS_LINE = re.compile(r"^\s*(?P<key>[A-Z][A-Z ]*[A-Z]): (?P<value>.*)$")


@dataclass(frozen=True)
class CpuTask:
    """The task that was current on one CPU when the dump was taken.

    :param task: ``struct task_struct *``.
    :param function: top function of its normalised stack, ``"<user mode>"`` for a task running in
        user space, ``None`` if it cannot be unwound.
    """

    cpu: int
    task: drgn.Object
    pid: int
    comm: str
    state: str
    is_idle: bool
    function: str | None


@dataclass
class Summary:
    """Everything the Kernel view's first rows and the crash report show.

    :param facts: ``sys``'s ``(FIELD, value)`` pairs in its order.
    """

    facts: list[tuple[str, str]]
    panic: PanicInfo
    cpus: list[CpuTask]
    log_tail: list[str] = field(default_factory=list)


def sys_facts(prog: drgn.Program) -> list[tuple[str, str]]:
    """Run ``sys`` and split it into ``(FIELD, value)`` pairs (continuation lines joined)."""
    from vmcore_dap.dump.console.commands import CrashConsole  # the command set loads on first use

    text = CrashConsole(prog).run_checked("sys")
    facts: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = _SYS_LINE.match(line)
        if m:
            facts.append((m["key"].strip(), m["value"].strip()))
        elif line.strip() and facts:
            key, value = facts[-1]
            facts[-1] = (key, f"{value} {line.strip()}")
    return facts


def _top_function(prog: drgn.Program, stacks: StackService, task: drgn.Object) -> str | None:
    """The first function of the task's normalised stack: :data:`~vmcore_dap.dump.stacks.groups.USER_MODE`
    for a task running in user space, ``None`` when it cannot be unwound."""
    key = stacks.key_of(task.value_())
    if key is not None:
        top = stacks.normalized(key)[0].function
    else:  # a CPU's task missing from the task list (a damaged PID table): unwind it here
        stack = unwind_task(prog, task)
        frames = normalize_rows(stack.frames)
        top = frames[0].function if frames else USER_MODE if stack.trace is not None else UNWIND_FAILED
    return None if top == UNWIND_FAILED else top


def cpu_tasks(prog: drgn.Program, stacks: StackService) -> list[CpuTask]:
    """The current task of each online CPU, with the function it was in."""
    result = []
    for cpu in for_each_online_cpu(prog):
        try:
            task = cpu_curr(prog, cpu)
            pid = task.pid.value_()
            comm = task.comm.string_().decode("utf-8", "replace")
        except drgn.FaultError:
            continue
        try:
            state = task_state_letter(task)
        except (drgn.FaultError, LookupError):
            state = "?"
        function = _top_function(prog, stacks, task)
        result.append(
            CpuTask(
                cpu=cpu,
                task=task,
                pid=pid,
                comm=comm,
                state=state,
                is_idle=pid == 0,
                function=function,
            )
        )
    return result


def log_tail(prog: drgn.Program, count: int = 40) -> list[str]:
    """The last ``count`` lines of the kernel log, with ``[seconds.micros]`` timestamps like ``log``."""
    try:
        records = get_printk_records(prog)
    except (drgn.FaultError, LookupError, ValueError):
        return []
    lines: list[str] = []
    for record in records[-count:]:
        stamp = f"[{record.timestamp // 1_000_000_000:5d}.{record.timestamp % 1_000_000_000 // 1000:06d}]"
        for text in record.text.decode("utf-8", "replace").split("\n"):
            lines.append(f"{stamp} {text}")
    return lines[-count:]


def summarize(prog: drgn.Program, panic: PanicInfo, stacks: StackService, tail: int = 40) -> Summary:
    """Collect the summary (``sys`` runs drgn's commands: call on the drgn thread)."""
    return Summary(
        facts=sys_facts(prog), panic=panic, cpus=cpu_tasks(prog, stacks), log_tail=log_tail(prog, tail)
    )
