"""Code lenses and diagnostics of one document, as plain data (no protocol types).

Both are answered per file from the stack index: which functions of this file are on some task's
stack (a lens on each definition line), the faulting line (an error), and the lines where
uninterruptible tasks wait (information). A frame belongs to the document when its DWARF file name
maps to the document's path, so two static functions of the same name in different files never
mix.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vmcore_dap.lsp.dump_session import DumpSession
from vmcore_dap.lsp.identifiers import function_definitions
from vmcore_dap.lsp.stacks import TaskStackRows, describe_counts

__all__ = ["Lens", "Note", "code_lenses", "diagnostics", "SHOW_TASKS_COMMAND", "lens_title"]

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


def lens_title(counts: Counter[str]) -> str:
    """``"3 tasks here (D: 3)"``."""
    total = sum(counts.values())
    return f"{total} task{'s' if total != 1 else ''} here ({describe_counts(counts)})"


def _tasks_by_function_in(session: DumpSession, path: str) -> dict[str, list[TaskStackRows]]:
    found: dict[str, dict[int, TaskStackRows]] = {}
    for task in session.stacks.tasks:
        for row in task.rows:
            if row.file is not None and session.paths.same_file(row.file, path):
                found.setdefault(row.function, {})[task.address] = task
    return {function: list(tasks.values()) for function, tasks in found.items()}


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


def _who(tasks: list[TaskStackRows]) -> str:
    names = ", ".join(f"{task.pid} {task.comm}" for task in tasks[:6])
    return names + (" …" if len(tasks) > 6 else "")


def diagnostics(session: DumpSession, path: str) -> list[Note]:
    """Return the fault (error) and the D-state waits (information) that fall in the document."""
    notes: list[Note] = []
    fault = session.fault()
    if fault is not None and fault.line and session.paths.same_file(fault.file, path):
        notes.append(Note(fault.line - 1, "error", fault.message))
    for (file, line), tasks in sorted(session.stacks.d_state_waits().items(), key=lambda item: item[0][1]):
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
