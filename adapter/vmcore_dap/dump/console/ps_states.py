"""The console's ``ps``: drgn's, with the state letters every other view shows.

drgn's ``ps`` prints the kernel's ``/proc`` letter, which calls a task caught waking (crash's ``WA``)
or being forked (``NE``) ``R``. The thread list, the Kernel view and the crash report name states by
:mod:`vmcore_dap.dump.kernel.task_state`, so the console must too: this runs drgn's ``ps`` and puts
that letter in the ``ST`` column (and the ``[R]`` of ``-l``/``-m``), and counts ``-S`` by it.
``-m`` (the time since each task last ran) is drgn's ``-l`` with each timestamp taken from its CPU's
runqueue clock here, for every CPU the dump holds: drgn's own reads the online CPUs' clocks only.
Everything else (selection, columns, ``--drgn``) is drgn's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import drgn
from drgn.commands import CommandError
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.sched import cpu_rq, idle_task

from vmcore_dap.dump.console.namespace import ReworkedDrgnCommand
from vmcore_dap.dump.kernel.cpus import dumped_cpus
from vmcore_dap.dump.kernel.task_state import task_state_letter
from vmcore_dap.dump.kernel.tasks import running_tasks

__all__ = ["fix_ps_states"]

#: A row of the table: marker, PID, PPID, CPU, TASK (or KSTACKP with -s), ST, ...
_ROW = re.compile(
    r"^(?P<head>[> ]?\s*(?P<pid>\d+)\s+\d+\s+(?P<cpu>\d+)\s+(?P<pointer>[0-9a-f]+|--)\s+)"
    r"(?P<st>\S+)(?P<tail>\s.*)$"
)
#: ``-l``/``-m``: ``[timestamp] [R]  PID: 1  TASK: ffff…  CPU: 0  COMMAND: "init"``.
_ARRIVAL = re.compile(
    r"^(?P<head>\[[^\]]*\] \[)(?P<st>[^\]]+)(?P<tail>\]\s+PID:\s+\d+\s+TASK:\s+(?P<task>[0-9a-f]+)\s.*)$"
)
#: A cluster of single-letter flags that holds ``S`` (``-S``, ``-kS``).
_SUMMARY_FLAG = re.compile(r"-[a-zA-Z]*S[a-zA-Z]*")
#: A cluster of single-letter flags that holds ``m`` (``-m``, ``-km``).
_ELAPSED_FLAG = re.compile(r"-[a-zA-Z]*m[a-zA-Z]*")
#: A row of drgn's ``ps -l``: ``[last_arrival] [R]  PID: 0  TASK: ffff…  CPU: 1  COMMAND: "swapper/1"``.
_LAST_ARRIVAL = re.compile(r"^\[\s*(?P<ns>\d+)\] (?P<header>\[.*)$")
#: The task header of such a row (drgn's ``_print_task_header``, after the timestamp).
_HEADER = re.compile(
    r"^\[[^\]]+\]\s+PID:\s+(?P<pid>\d+)\s+TASK:\s+(?P<task>[0-9a-f]+)\s+CPU:\s+(?P<cpu>\d+)\s"
)


def _task_of_row(prog: drgn.Program, match: re.Match[str], by_pointer: bool) -> drgn.Object | None:
    if by_pointer:
        return drgn.Object(prog, "struct task_struct *", int(match["pointer"], 16))
    pid = int(match["pid"])  # -s shows the stack pointer: find the task by PID (idle tasks by CPU)
    task = idle_task(prog, int(match["cpu"])) if pid == 0 else find_task(prog, pid)
    return task if task else None


def _letter(task: drgn.Object | None, fallback: str) -> str:
    if task is None:
        return fallback
    try:
        return task_state_letter(task)
    except (drgn.FaultError, LookupError):
        return fallback


def fix_ps_states(prog: drgn.Program, text: str) -> str:
    """Replace drgn's state letters in ``ps`` output by :func:`task_state_letter`'s.

    :param text: what drgn's ``ps`` printed (the table, with or without ``-s``, or ``-l``/``-m`` lines).
    """
    out = []
    by_pointer = True
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        if body.split()[:5] == ["PID", "PPID", "CPU", "KSTACKP", "ST"]:
            by_pointer = False
        elif (m := _ROW.match(body)) and (task := _task_of_row(prog, m, by_pointer)) is not None:
            letter = _letter(task, m["st"])
            body = m["head"] + letter.ljust(len(m["st"])) + m["tail"]
        elif m := _ARRIVAL.match(body):
            task = drgn.Object(prog, "struct task_struct *", int(m["task"], 16))
            body = m["head"] + _letter(task, m["st"]) + m["tail"]
        out.append(body + line[len(line.rstrip("\n")) :])
    return "".join(out)


def add_stopped_idle_tasks(prog: drgn.Program, text: str) -> str:
    """Add the idle tasks of CPUs that are not online to a plain ``ps`` table.

    drgn's ``ps`` lists the idle tasks of online CPUs only (``for_each_task(idle=True)``); arm64's
    crash IPI takes the stopped CPUs offline (:mod:`~vmcore_dap.dump.kernel.cpus`), and crash's ``ps``
    lists their idle tasks too. Each missing one is the first idle row with its own ``>`` marker,
    CPU, task, state and name.
    """
    lines = text.splitlines(keepends=True)
    idle_rows = [
        (i, m) for i, line in enumerate(lines) if (m := _ROW.match(line.rstrip("\n"))) and m["pid"] == "0"
    ]
    if not idle_rows:
        return text
    listed = {int(m["cpu"]) for _, m in idle_rows}
    first = idle_rows[0][1]
    head = first["head"]
    pointer_at = head.rindex(first["pointer"])
    cpu_at = head.rindex(first["cpu"], 0, pointer_at)
    running = running_tasks(prog)
    added = []
    for cpu in dumped_cpus(prog):
        if cpu in listed:
            continue
        task = idle_task(prog, cpu)
        marker = ">" if task.value_() in running else " "
        new_head = (
            marker
            + head[1:cpu_at]
            + str(cpu).rjust(len(first["cpu"]))
            + head[cpu_at + len(first["cpu"]) : pointer_at]
            + f"{task.value_():x}".rjust(len(first["pointer"]))
            + head[pointer_at + len(first["pointer"]) :]
        )
        tail = first["tail"].replace(f"[swapper/{first['cpu']}]", f"[swapper/{cpu}]")
        added.append(new_head + _letter(task, first["st"]).ljust(len(first["st"])) + tail + "\n")
    last = idle_rows[-1][0]
    return "".join(lines[: last + 1] + added + lines[last + 1 :])


def _duration(nanoseconds: int) -> str:
    """``days hh:mm:ss.mmm``, as crash's and drgn's ``ps -m`` print the time since a task ran."""
    days, rest = divmod(nanoseconds, 86_400 * 10**9)
    hours, rest = divmod(rest, 3_600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds, rest = divmod(rest, 10**9)
    return f"{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{rest // 10**6:03d}"


def _stopped_idle_headers(prog: drgn.Program, headers: list[str]) -> list[tuple[int, str]]:
    """(last_arrival, header) of the idle task of each dumped CPU ``headers`` lacks, each made from
    the first idle task's header with its own task, CPU and name."""
    idle = [(m, header) for header in headers if (m := _HEADER.match(header)) and m["pid"] == "0"]
    if not idle:
        return []
    m, model = idle[0]
    listed = {int(m["cpu"]) for m, _ in idle}
    added = []
    for cpu in dumped_cpus(prog):
        if cpu in listed:
            continue
        task = idle_task(prog, cpu)
        header = (
            model[: m.start("task")]
            + f"{task.value_():x}".rjust(len(m["task"]))
            + model[m.end("task") : m.start("cpu")]
            + str(cpu).ljust(len(m["cpu"]))
            + model[m.end("cpu") :].replace(f'"swapper/{m["cpu"]}"', f'"swapper/{cpu}"', 1)
        )
        added.append((task.sched_info.last_arrival.value_(), header))
    return added


def since_last_arrival(prog: drgn.Program, text: str, *, add_stopped_idle: bool) -> str:
    """Turn drgn's ``ps -l`` output into ``ps -m``'s: each task's ``sched_info.last_arrival`` becomes
    the time from it to its CPU's runqueue clock (newest first, as listed).

    drgn's ``ps -m`` reads the clocks of online CPUs only and fails (``KeyError``) on a task of a CPU
    arm64's crash IPI took offline (:mod:`~vmcore_dap.dump.kernel.cpus`); crash reads every CPU's,
    and lists the stopped CPUs' idle tasks (``add_stopped_idle``: for ``ps -m`` of every task).
    """
    clocks = {cpu: cpu_rq(prog, cpu).clock.value_() for cpu in dumped_cpus(prog)}
    blocks: list[list[tuple[int, str]]] = [[]]  # -C prints a block per CPU, each after "CPU: n"
    titles = [""]
    for line in text.splitlines():
        if m := _LAST_ARRIVAL.match(line):
            blocks[-1].append((int(m["ns"]), m["header"]))
        else:
            titles.append(line)
            blocks.append([])
    if add_stopped_idle:
        blocks[0] += _stopped_idle_headers(prog, [header for _, header in blocks[0]])
        blocks[0].sort(key=lambda row: row[0], reverse=True)
    out = []
    for title, rows in zip(titles, blocks, strict=True):
        if title:
            out.append(title)
        stamps = []
        for ns, header in rows:
            m = _HEADER.match(header)
            clock = clocks.get(int(m["cpu"]), ns) if m else ns
            stamps.append(_duration(max(clock - ns, 0)))
        width = len(stamps[0]) if stamps else 0
        out += [f"[{stamp:>{width}}] {header}" for stamp, (_, header) in zip(stamps, rows, strict=True)]
    return "".join(f"{line}\n" for line in out)


class _PsCommand(ReworkedDrgnCommand):
    """drgn's ``ps`` whose output names states our way."""

    name = "ps"
    note = "States as in the thread list: W (crash's WA, waking), N (NE, new); see docs/console.md."

    def run(self, prog: drgn.Program, name: str, words: Sequence[str], **kwargs: Any) -> None:
        if any(w in ("--drgn", "-h", "--help") for w in words):
            self._drgn.run(prog, name, words, **kwargs)  # code to run, or help: drgn's own
            return
        summary = [w for w in words if _SUMMARY_FLAG.fullmatch(w)]
        if not summary and any(_ELAPSED_FLAG.fullmatch(w) for w in words):
            last = [w.replace("m", "l") if _ELAPSED_FLAG.fullmatch(w) else w for w in words]
            table = since_last_arrival(
                prog, self.drgn_output(prog, name, last, **kwargs), add_stopped_idle=words == ["-m"]
            )
            print(fix_ps_states(prog, table), end="")
            return
        if not summary:
            table = fix_ps_states(prog, self.drgn_output(prog, name, words, **kwargs))
            if not words:  # every task: the stopped CPUs' idle tasks too
                table = add_stopped_idle_tasks(prog, table)
            print(table, end="")
            return
        # -S: the tasks the same selection lists, counted by our letters in drgn's order (first seen
        # first).
        rest = [w.replace("S", "") if w in summary else w for w in words]
        rest = [w for w in rest if w != "-"] + ["-H"]  # -H: no header row
        table = fix_ps_states(prog, self.drgn_output(prog, name, rest, **kwargs))
        counts: Counter[str] = Counter()
        for line in table.splitlines():
            m = _ROW.match(line)
            if m is None:
                raise CommandError(f"ps -S: cannot read drgn's row {line!r}")
            counts[m["st"]] += 1
        for state, number in counts.items():
            print(f"  {state}: {number}")


_PsCommand.register()
