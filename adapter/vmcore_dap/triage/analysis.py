"""Read one dump the way a crash engineer reads it first, and write down what was found.

:func:`triage_dump` is what a worker runs: a picklable function of plain arguments that returns a
plain JSON-able report (:mod:`.report`), so it can run in a local process pool or on a Dask worker.
It never raises: a dump that cannot be read, or an analysis that breaks half way, gives a report
whose ``error`` says why, and what was learnt before the failure is kept.

The Markdown is the adapter's "Copy crash report" (:func:`~vmcore_dap.dump.report.crash_report.
crash_report`), fed exactly what the Kernel view feeds it: the same task list, the crashed task's
presented stack, the stack groups and the blocked tasks.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import drgn

from vmcore_dap.dump.kernel.locks import BlockedTask, blocked_tasks
from vmcore_dap.dump.kernel.modules import KernelModule, list_modules, module_list_problem
from vmcore_dap.dump.kernel.panic import crashed_task, kernel_log_lines, panic_info
from vmcore_dap.dump.kernel.panic_kind import HUNG_TASK, NO_PANIC
from vmcore_dap.dump.kernel.tasks import TaskInfo, list_tasks, running_tasks, task_info
from vmcore_dap.dump.opening.debuginfo import default_debug_dirs
from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.opening.opener import Dump, open_dump
from vmcore_dap.dump.opening.vmcore_file import inspect_vmcore
from vmcore_dap.dump.report.crash_report import crash_report
from vmcore_dap.dump.report.summary import Summary, summarize
from vmcore_dap.dump.stacks.frames import TaskStack, unwind_task
from vmcore_dap.dump.stacks.groups import StackGroups
from vmcore_dap.dump.stacks.normalize import Frame, base_function_name, normalize_drgn_trace
from vmcore_dap.dump.stacks.service import StackService
from vmcore_dap.errors import UserError
from vmcore_dap.triage import report
from vmcore_dap.triage.signature import crash_signature, panic_path_length

__all__ = ["TriageOptions", "triage_dump"]

log = logging.getLogger(__name__)

#: How many of the biggest stack groups the report lists (the crash report's default too).
TOP_GROUPS = 10

T = TypeVar("T")

_HUNG_TASK_LINE = re.compile(r"INFO: task (?P<comm>.+):(?P<pid>\d+) blocked for more than")


@dataclass(frozen=True)
class TriageOptions:
    """How to find debug info: as the adapter does, plus these directories (searched by build ID for
    the vmlinux, and for kernel module files by name, each file checked by build ID by drgn)."""

    debug_info_dirs: tuple[Path, ...] = ()

    def launch_config(self, vmcore: Path, release: str | None) -> LaunchConfig:
        """The launch configuration the adapter would get for ``vmcore`` with these options."""
        return LaunchConfig(
            vmcore=vmcore,
            debug_info=self.debug_info_dirs,
            debug_info_directories=(*default_debug_dirs(release), *self.debug_info_dirs),
        )


class _Clock:
    """Seconds per analysis step, for the report's ``timings``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round(now - self._last, 4)
        self._last = now


def triage_dump(path: str, options: TriageOptions) -> dict[str, Any]:
    """Analyse the vmcore at ``path`` and return its report (never raises)."""
    start = time.monotonic()
    vmcore = Path(path)
    result = report.new_report(vmcore)
    clock = _Clock()
    try:
        vmfile = inspect_vmcore(vmcore)
        report.describe_file(result, vmfile)
        clock.lap("inspect")
        dump = open_dump(options.launch_config(vmcore, vmfile.release))
        clock.lap("open")
        _analyse(result, dump, options, clock)
    except UserError as exc:
        result["error"] = {"kind": "unreadable", "message": str(exc)}
    except drgn.FaultError as exc:
        # The dump opened but lacks memory the first look needs (the task list, the log): a partial
        # or damaged dump, said as the adapter says it; what was read before stays in the report.
        quality = result.get("quality") or {}
        why = "; ".join(quality.get("warnings") or []) or "a page it needs is not in the dump"
        result["error"] = {"kind": "unreadable", "message": f"Cannot read vmcore '{vmcore}': {exc} ({why})"}
    except Exception as exc:  # noqa: BLE001 - one bad dump must not end the run; the report says why
        log.exception("triage of %s failed", vmcore)
        result["error"] = {
            "kind": "internal",
            "message": f"Internal error while reading '{vmcore}': {type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8).splitlines()[-8:],
        }
    clock.timings["total"] = round(time.monotonic() - start, 4)
    result["timings"] = clock.timings
    return result


def _analyse(result: dict[str, Any], dump: Dump, options: TriageOptions, clock: _Clock) -> None:
    prog = dump.prog
    for name, seconds in dump.timings.items():
        clock.timings[f"drgn_{name}"] = round(seconds, 4)
    report.describe_dump(result, dump)
    report.describe_quality(result, dump.file, dump.warnings)
    crashed = crashed_task(prog)
    tasks = list_tasks(prog, crashed, problems=dump.warnings)
    panic = panic_info(prog)
    problem = module_list_problem(prog)
    if problem is not None:
        dump.warnings.append(problem)
    clock.lap("tasks")
    kind = panic.kind if (panic.panic or panic.oops) else NO_PANIC
    crashed_info = _crashed_info(prog, crashed, tasks)
    stack = unwind_task(prog, crashed_info.task) if crashed_info is not None else None
    normalised = _normalised(prog, stack)
    clock.lap("crashed_stack")
    signature_functions = [f.function for f in normalised]
    if kind == HUNG_TASK:
        signature_functions = _hung_task_functions(prog, tasks) or signature_functions
    signature = crash_signature(kind, signature_functions)
    result["signature"] = signature.as_json()
    report.describe_panic(result, panic, kind)
    if crashed_info is not None and stack is not None:
        report.describe_crashed(result, crashed_info, stack, normalised)
    clock.lap("signature")

    # What follows describes the dump around the crash. Each part is read on its own: a helper that
    # does not know a kernel's layout yet (a struct member renamed in a new release) costs that
    # part, noted under ``problems``, not the signature and the rest of the report.
    sections = _Sections(result, clock)
    stacks = StackService(prog, tasks, crashed.value_() if crashed is not None else None)
    summary = sections.run("summary", lambda: summarize(prog, panic, stacks), Summary([], panic, []))
    report.describe_system(result, summary.facts)
    groups = sections.run(
        "stack_groups",
        stacks.groups,
        StackGroups([], len(tasks), 0.0),
    )
    report.describe_groups(result, groups, TOP_GROUPS)
    blocked = sections.run("blocked", lambda: blocked_tasks(prog, tasks), list[BlockedTask]())
    report.describe_blocked(result, blocked)
    modules = sections.run("modules", lambda: list_modules(prog), list[KernelModule]())
    report.describe_modules(result, modules, stack, dump)
    markdown = crash_report(
        summary,
        (crashed_info, stack) if crashed_info is not None and stack is not None else None,
        groups,
        blocked,
        top_groups=TOP_GROUPS,
    )
    if result["problems"]:
        notes = [f"- {p['section']}: {p['message']}" for p in result["problems"]]
        markdown += "\n**Parts of this report could not be read:**\n\n" + "\n".join(notes) + "\n"
    result["markdown"] = markdown
    result["launch"] = report.launch_configuration(dump, options.debug_info_dirs)
    # Again: the task list and the module list may have added warnings.
    report.describe_quality(result, dump.file, dump.warnings)
    clock.lap("report")


def _crashed_info(prog: drgn.Program, crashed: drgn.Object | None, tasks: list[TaskInfo]) -> TaskInfo | None:
    """The crashed task as the task list shows it (first), or read on its own when a damaged or
    filtered PID table left it out of the list: the crash is still known from ``panic_cpu``."""
    if crashed is None:
        return None
    if tasks and tasks[0].address == crashed.value_():
        return tasks[0]
    return task_info(crashed, running_tasks(prog))


class _Sections:
    """Run the report's optional parts; a part that fails leaves its fallback and a ``problems`` entry."""

    def __init__(self, result: dict[str, Any], clock: _Clock) -> None:
        self.result, self.clock = result, clock

    def run(self, name: str, read: Callable[[], T], fallback: T) -> T:
        try:
            value = read()
        except Exception as exc:  # noqa: BLE001 - any failure of one part; the report names it
            log.warning("triage of %s: %s failed", self.result["vmcore"], name, exc_info=True)
            self.result["problems"].append({"section": name, "message": f"{type(exc).__name__}: {exc}"})
            value = fallback
        self.clock.lap(name)
        return value


def _normalised(prog: drgn.Program, stack: TaskStack | None) -> list[Frame]:
    """The crashed stack by the tests' rules, with the lines crash's ``bt -l`` prints, from the frame
    that faulted (or called ``panic()``) down."""
    if stack is None or stack.trace is None:
        return []
    frames = normalize_drgn_trace(stack.trace, prog=prog, locations="return")
    return frames[panic_path_length([f.function for f in frames]) :]


def _hung_task_functions(prog: drgn.Program, tasks: Sequence[TaskInfo]) -> list[str] | None:
    """For a hung-task panic, the stack of the first task the watchdog named (the crashed task is the
    watchdog itself: its stack says nothing about the bug)."""
    try:
        lines = kernel_log_lines(prog)
    except (drgn.FaultError, LookupError, ValueError):
        return None
    pid = next((int(m["pid"]) for m in map(_HUNG_TASK_LINE.search, lines) if m), None)
    task = next((t for t in tasks if t.pid == pid), None)
    if task is None:
        return None
    try:
        trace = prog.stack_trace(task.task)
    except (drgn.FaultError, ValueError, LookupError):
        return None
    return [base_function_name(f.function) for f in normalize_drgn_trace(trace, prog=prog, locations=None)]
