"""Code lenses and diagnostics of one document, as plain data (no protocol types).

Both are answered per file from the stack service's function index (one unwinding per distinct
stack, the rows the adapter's Call Stack shows): which functions of this file are on some task's stack
(a lens on each definition line), the faulting line (an error), and the lines where uninterruptible
tasks wait (information). A frame belongs to the document when its DWARF file name maps to the
document's path, so two static functions of the same name in different files never mix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vmcore_dap.dump.kernel.tasks import TaskInfo
from vmcore_dap.lsp.dump_session import DumpSession
from vmcore_dap.lsp.identifiers import function_definitions

__all__ = [
    "Lens",
    "Note",
    "SHOW_TASKS_COMMAND",
    "code_lenses",
    "describe_counts",
    "diagnostics",
    "lens_title",
]

#: Client command run by a lens; its argument is the function name.
SHOW_TASKS_COMMAND = "vmcore-dap.showTasksInFunction"


@dataclass(frozen=True)
class Lens:
    """A code lens: 0-based ``line`` of the function's definition."""

    line: int
    function: str
    title: str
    tasks: tuple[int, ...]


@dataclass(frozen=True)
class Note:
    """A diagnostic: ``severity`` is ``"error"`` or ``"information"``; ``line`` is 0-based."""

    line: int
    severity: str
    message: str


def describe_counts(counts: Counter[str]) -> str:
    """``"D: 3, S: 1"``, states in the order ``ps`` users scan for trouble (D first)."""
    order = "DRSTtXZPI"
    keys = sorted(counts, key=lambda s: (order.index(s) if s in order else len(order), s))
    return ", ".join(f"{state}: {counts[state]}" for state in keys)


def lens_title(counts: Counter[str]) -> str:
    """``"3 tasks here (D: 3)"``."""
    total = sum(counts.values())
    return f"{total} task{'s' if total != 1 else ''} here ({describe_counts(counts)})"


def _tasks_by_function_in(session: DumpSession, path: str) -> dict[str, list[TaskInfo]]:
    """Function → the tasks with a row of it in the document (each task once, in task order)."""
    stacks = session.stacks
    found: dict[str, set[int]] = {}
    for file, functions in stacks.function_index().by_file.items():
        if session.paths.same_file(file, path):
            for function, keys in functions.items():
                found.setdefault(function, set()).update(keys)
    return {function: [stacks.task(key) for key in sorted(keys)] for function, keys in found.items()}


def code_lenses(session: DumpSession, path: str, lines: Sequence[str]) -> list[Lens]:
    """Return a lens for each function defined in the document that is on some task's stack."""
    tasks_by_function = _tasks_by_function_in(session, path)
    if not tasks_by_function:
        return []
    where = function_definitions(lines, set(tasks_by_function))
    lenses = []
    for function, line in sorted(where.items(), key=lambda item: item[1]):
        tasks = tasks_by_function[function]
        counts = Counter(task.state for task in tasks)
        lenses.append(Lens(line, function, lens_title(counts), tuple(task.pid for task in tasks)))
    return lenses


def _who(tasks: list[TaskInfo]) -> str:
    names = ", ".join(f"{task.pid} {task.comm}" for task in tasks[:6])
    return names + (" …" if len(tasks) > 6 else "")


def diagnostics(session: DumpSession, path: str) -> list[Note]:
    """Return the fault (error) and the D-state waits (information) that fall in the document."""
    notes: list[Note] = []
    fault = session.fault()
    if fault is not None and fault.line and session.paths.same_file(fault.file, path):
        notes.append(Note(fault.line - 1, "error", fault.message))
    for (file, line), tasks in sorted(_d_state_waits(session).items(), key=lambda item: item[0][1]):
        if session.paths.same_file(file, path):
            count = len(tasks)
            notes.append(
                Note(
                    line - 1,
                    "information",
                    f"{count} task{'s' if count != 1 else ''} blocked here (D state): PIDs {_who(tasks)}",
                )
            )
    return notes


def _d_state_waits(session: DumpSession) -> dict[tuple[str, int], list[TaskInfo]]:
    """Each (DWARF file, line) on the stack of an uninterruptible task → those tasks."""
    stacks = session.stacks
    waits: dict[tuple[str, int], list[TaskInfo]] = {}
    for key, info in stacks.tasks.items():
        if info.state != "D":
            continue
        places = {
            (row.source_file, row.line) for row in stacks.code_rows(key) if row.source_file and row.line
        }
        for place in places:
            waits.setdefault(place, []).append(info)  # type: ignore[arg-type]
    return waits
