"""The Debug Console: crash commands in the REPL, completions, and the oops shown at the stop.

* :func:`repl_interceptor` is tried by ``evaluate`` (context ``repl``) before drgn Python: a line
  naming a crash command runs it (:mod:`vmcore_dap.dump.console.commands`) in the context of the
  task of the request's ``frameId`` (without one, the task of the ``stopped`` event: the crashed
  task, or CPU 0's current task in a dump without a panic) and streams its output as
  ``output`` events, in chunks, cancellable between chunks. ``%py <expr>`` and any other line go to
  drgn Python (the variables handler).
* ``completions``: command names, flags, symbols, member paths (:mod:`vmcore_dap.dump.console.completions`).
* :func:`announce_panic_log`: the kernel log's last report up to the panic
  (:func:`~vmcore_dap.dump.kernel.panic.panic_log_lines`), printed right after the ``stopped`` event
  so the console opens on the oops.

Lines of output that name a source location (``bt -l``, ``dis -l``, drgn's ``bt``) are sent as their
own ``output`` event with ``source``/``line``, which VS Code renders as a link.
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING, Any

import drgn

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.errors import translate_error
from vmcore_dap.dump.kernel.panic import dmesg_text, panic_log_lines
from vmcore_dap.errors import UserError
from vmcore_dap.handlers.dump_state import current_dump, dump_state, lookup_frame, thread_task
from vmcore_dap.handlers.stop import AFTER_STOP
from vmcore_dap.handlers.variables import PY_PREFIX, REPL_INTERCEPTORS

if TYPE_CHECKING:
    # drgn's crash command set and ours take ~0.15 s to import: they load on the first console
    # line, not on the way to the first picture of the crash.
    from vmcore_dap.dump.console.commands import CrashConsole
    from vmcore_dap.dump.console.completions import SymbolIndex

__all__ = ["ConsoleState", "announce_panic_log", "repl_interceptor", "run_console_command", "split_py_prefix"]

log = logging.getLogger(__name__)

#: Lines per ``output`` event while a command streams.
CHUNK_LINES = 200
#: At most this many kernel log lines are printed at the stop.
PANIC_LOG_MAX_LINES = 120

# "/path/file.c: 123" (crash's bt -l, dis -l) or "(kernel/sched/core.c:5238:2)" / "at file.c:12" (drgn).
_SOURCE_LINE = re.compile(
    r"^\s*(?P<file>[\w./+-]+\.(?:c|h|S|s|rs|cc|cpp)): (?P<line>\d+)\s*$"
    r"|\((?P<file2>[\w./+-]+\.(?:c|h|S|s|rs|cc|cpp)):(?P<line2>\d+)(?::\d+)?\)\s*$"
    r"|\bat (?P<file3>[\w./+-]+\.(?:c|h|S|s|rs|cc|cpp)):(?P<line3>\d+)\b"
)


class ConsoleState:
    """Per-session console state: the crash command runner and the symbol index of the program."""

    def __init__(self) -> None:
        self._console: CrashConsole | None = None
        self._symbols: SymbolIndex | None = None

    def console(self, prog: drgn.Program) -> CrashConsole:
        if self._console is None:
            from vmcore_dap.dump.console.commands import CrashConsole

            self._console = CrashConsole(prog)
        return self._console

    def symbols(self, prog: drgn.Program) -> SymbolIndex:
        if self._symbols is None:
            from vmcore_dap.dump.console.completions import SymbolIndex

            self._symbols = SymbolIndex(prog)
        return self._symbols


def split_py_prefix(line: str) -> str | None:
    """Return the Python expression of a ``%py <expr>`` line, or ``None`` if it has no such prefix."""
    stripped = line.lstrip()
    if stripped == PY_PREFIX or stripped.startswith(PY_PREFIX + " "):
        return stripped[len(PY_PREFIX) :].strip()
    return None


def _source_of(text: str) -> tuple[str, int] | None:
    m = _SOURCE_LINE.search(text)
    if m is None:
        return None
    for f, n in (("file", "line"), ("file2", "line2"), ("file3", "line3")):
        if m.group(f):
            return m.group(f), int(m.group(n))
    return None


def _source_body(path: str) -> dict[str, Any]:
    """A DAP ``Source`` for a path printed by crash or drgn (a path only when it exists here)."""
    body: dict[str, Any] = {"name": os.path.basename(path)}
    if os.path.isabs(path) and os.path.exists(path):
        body["path"] = path
    else:
        body["origin"] = f"as named by the debug info: {path}"
    return body


def emit_output(session: Session, text: str, category: str = "console") -> None:
    """Send ``text`` as ``output`` events; each line naming a source location gets its own, linked."""
    plain: list[str] = []
    for line in text.splitlines(keepends=True):
        where = _source_of(line)
        if where is None:
            plain.append(line)
            continue
        if plain:
            session.output("".join(plain), category)
            plain = []
        session.output(line, category, source=_source_body(where[0]), line=where[1])
    if plain:
        session.output("".join(plain), category)


def _current_task(session: Session, frame_id: int | None) -> drgn.Object | None:
    """The ``struct task_struct *`` of the frame the request names, else of the stopped thread.

    ``None`` (before the stop is announced) leaves the choice to
    :func:`~vmcore_dap.dump.console.commands.default_context`, which makes the same one.
    """
    if frame_id is not None:
        return lookup_frame(session, frame_id).task
    stopped = dump_state(session).stopped_thread_id
    return thread_task(session, stopped).task if stopped is not None else None


def _current_frame(session: Session, frame_id: int | None) -> drgn.StackFrame | None:
    if frame_id is None:
        return None
    try:
        return lookup_frame(session, frame_id).frame
    except Exception:  # noqa: BLE001 - a stale frame only costs the locals in completions
        return None


def _prog(session: Session) -> drgn.Program:
    return current_dump(session).prog


def _console(session: Session) -> CrashConsole:
    """The session's crash console."""
    return session.component(ConsoleState).console(_prog(session))


def run_console_command(session: Session, line: str, frame_id: int | None) -> dict[str, Any]:
    """Run one crash command line, stream its output, and return the ``evaluate`` response body.

    :raises UserError: the command failed; its one-line message becomes the failed response.
    """
    console = _console(session)
    task = _current_task(session, frame_id)

    def on_output(text: str) -> None:
        emit_output(session, text)
        session.check_cancelled()  # between chunks: a cancel stops the command here
        session.serve_pending()  # and the Call Stack, hovers etc. are answered meanwhile

    result = console.run(line, task, on_output=on_output, chunk_lines=CHUNK_LINES)
    if result.error is not None:
        raise UserError(result.error)
    return {"result": "", "variablesReference": 0}


def repl_interceptor(session: Session, expression: str, frame_id: int | None) -> dict[str, Any] | None:
    """Handle a console line if it is a crash command; return ``None`` to let drgn Python have it.

    ``%py`` lines never reach here (the variables handler evaluates them as Python); the check
    below only keeps that true if the order of things changes.
    """
    if split_py_prefix(expression) is not None:
        return None
    from vmcore_dap.dump.console.commands import is_command_line, misspelt_command

    prog = _prog(session)
    if is_command_line(prog, expression):
        return run_console_command(session, expression.strip(), frame_id)
    typo = misspelt_command(prog, expression)
    if typo is not None:
        raise UserError(typo)
    return None


@registry.request("completions")
def completions(session: Session, args: Args) -> dict[str, Any]:
    """Complete a console line: commands, flags, symbols, ``.``/``->`` member paths."""
    text = args.string("text")
    one_based = session.client.get("columnsStartAt1", True) is not False
    column = args.integer("column") - (1 if one_based else 0)
    line_no = args.opt_integer("line")
    if line_no is not None and line_no > 1:  # multi-line input: complete within the given line
        lines = text.split("\n")
        text = lines[min(line_no, len(lines)) - 1]
    column = max(0, min(column, len(text)))
    from vmcore_dap.dump.console.completions import complete

    prog = _prog(session)
    frame = _current_frame(session, args.opt_integer("frameId"))
    state = session.component(ConsoleState)
    targets = []
    for item in complete(prog, text, column, frame=frame, symbols=state.symbols(prog)):
        target: dict[str, Any] = {
            "label": item.label,
            "type": item.kind,
            "start": item.start + (1 if one_based else 0),
            "length": item.length,
        }
        if item.detail:
            target["detail"] = item.detail
        targets.append(target)
    return {"targets": targets}


REPL_INTERCEPTORS.append(repl_interceptor)


def announce_panic_log(session: Session) -> None:
    """Print the kernel log's last report (up to the panic) in the console; call it after ``stopped``.

    Never raises: a dump whose log cannot be read gets one line saying so.
    """
    # The text of the console's ``log`` (drgn's crash command prints get_dmesg), without building the
    # console: its command sets load on the first console line, not on the way to the first picture.
    # From the records the launch read for the panic facts: the log is not read twice.
    try:
        lines = panic_log_lines(dmesg_text(_prog(session)), PANIC_LOG_MAX_LINES)
        if lines:
            session.output("Kernel log up to the panic (type `log` for all of it, `help` for commands):\n")
            emit_output(session, "\n".join(lines) + "\n", "stderr")
    except Exception as exc:  # noqa: BLE001 - the stop must not fail because of the announcement
        log.exception("announce_panic_log failed")
        translated = translate_error(exc)
        why = translated.message if translated is not None else str(exc)
        session.output(f"Kernel log not available: {why}\n", "important")


AFTER_STOP.append(announce_panic_log)
