"""The console's ``ps``: drgn's, with the state letters every other view shows.

drgn's ``ps`` prints the kernel's ``/proc`` letter, which calls a task caught waking (crash's ``WA``)
or being forked (``NE``) ``R``. The thread list, the Kernel view and the crash report name states by
:mod:`vmcore_dap.dump.kernel.task_state`, so the console must too: this runs drgn's ``ps`` and puts
that letter in the ``ST`` column (and the ``[R]`` of ``-l``/``-m``), and counts ``-S`` by it.
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
from drgn.helpers.linux.sched import idle_task

from vmcore_dap.dump.console.namespace import ReworkedDrgnCommand
from vmcore_dap.dump.kernel.task_state import task_state_letter

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


class _PsCommand(ReworkedDrgnCommand):
    """drgn's ``ps`` whose output names states our way."""

    name = "ps"
    note = "States as in the thread list: W (crash's WA, waking), N (NE, new); see docs/console.md."

    def run(self, prog: drgn.Program, name: str, words: Sequence[str], **kwargs: Any) -> None:
        if any(w in ("--drgn", "-h", "--help") for w in words):
            self._drgn.run(prog, name, words, **kwargs)  # code to run, or help: drgn's own
            return
        summary = [w for w in words if _SUMMARY_FLAG.fullmatch(w)]
        if not summary:
            print(fix_ps_states(prog, self.drgn_output(prog, name, words, **kwargs)), end="")
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
