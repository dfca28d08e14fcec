"""Run ``crash`` command lines on the dump through drgn's crash-compatible command set.

drgn >= 0.3 ships most of crash's commands (``drgn.commands._crash``); this module is the one door
to them. It adds what a console inside a debug adapter needs and drgn's interactive mode does not
offer:

* the crash *current context* is the task the user selected in the Call Stack, per command line;
  with none selected, the task the session stopped on (:attr:`CrashConsole.default_task`), else
  :func:`default_context`: :func:`~vmcore_dap.dump.kernel.panic.focus_task`, the panicking task or
  CPU 0's current task in a dump taken without a panic (drgn's own default, ``crashed_thread()``,
  fails there with "panic_cpu is not set");
* output is captured through a real file descriptor (drgn's pipes and redirections hand
  ``sys.stdout`` to a shell pipeline, which needs ``fileno()``), and can be streamed in chunks of
  lines while the command runs, with a hook that may abort it (cancellation);
* our own commands (:mod:`vmcore_dap.dump.console.extra_commands`: ``dis``, ``struct -o`` …) live in a
  namespace of our own layered over drgn's, so drgn's global table is never modified;
* errors become one line a person can act on; an unknown command suggests the nearest name, and a
  line whose first word is a misspelt command is told so (:func:`misspelt_command`) instead of
  reaching Python.

Nothing here knows about DAP: ``CrashConsole(prog).run("ps | grep cat", task)`` works from a shell.
"""

from __future__ import annotations

import argparse
import builtins
import difflib
import fcntl
import io
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import drgn
import drgn.commands._crash  # noqa: F401 - registers drgn's crash commands
from drgn.commands import (
    CommandArgumentError,
    CommandError,
    CommandExitStatusError,
    CommandNotFoundError,
    argument,
)

from vmcore_dap.dump.console.namespace import VMCORE_CRASH_NAMESPACE, vmcore_crash_command
from vmcore_dap.dump.errors import describe_fault
from vmcore_dap.dump.kernel.panic import focus_task
from vmcore_dap.errors import AdapterError, Cancelled, UserError

__all__ = [
    "CommandResult",
    "CrashConsole",
    "VMCORE_CRASH_NAMESPACE",
    "command_names",
    "command_flags",
    "default_context",
    "describe_command_error",
    "is_command_line",
    "misspelt_command",
    "vmcore_crash_command",
]


def default_context(prog: drgn.Program) -> drgn.Object | None:
    """Return the task crash commands run in when none is named: the task a debugger shows first
    (:func:`~vmcore_dap.dump.kernel.panic.focus_task`).

    ``None`` when none can be read; drgn then falls back to its own rule.
    """
    return focus_task(prog)


#: Lines of output collected before a chunk is handed to the ``on_output`` callback.
DEFAULT_CHUNK_LINES = 200


def _ensure_extras() -> None:
    # Importing registers our commands into the namespace. Done on the first console line rather than
    # at import, so the first picture of a crash does not pay for loading capstone (~0.15 s).
    import vmcore_dap.dump.console.extra_commands  # noqa: F401
    import vmcore_dap.dump.console.log_dates  # noqa: F401
    import vmcore_dap.dump.console.ps_states  # noqa: F401
    import vmcore_dap.dump.console.structure_commands  # noqa: F401
    from vmcore_dap.dump.console.reachable_tasks import install

    install()


def command_names(prog: drgn.Program) -> list[str]:
    """Every crash command name available on ``prog``, sorted."""
    _ensure_extras()
    return sorted(name for name, _ in VMCORE_CRASH_NAMESPACE.enabled(prog))


def command_flags(prog: drgn.Program, name: str) -> list[str]:
    """The option strings (``-l``, ``--drgn`` …) a command accepts, or ``[]`` if unknown."""
    _ensure_extras()
    try:
        command_obj = VMCORE_CRASH_NAMESPACE.lookup(prog, name)
    except CommandNotFoundError:
        return []
    parser = getattr(command_obj, "_parser", None)
    if not isinstance(parser, argparse.ArgumentParser):
        return []
    flags: set[str] = set()
    for action in parser._actions:
        if action.help is not argparse.SUPPRESS or action.option_strings == ["--drgn"]:
            flags.update(s for s in action.option_strings if s not in ("-h", "--help"))
    return sorted(flags)


def is_command_line(prog: drgn.Program, line: str) -> bool:
    """Whether ``line`` starts with the name of a crash command (``!`` shell escapes included).

    Type names that crash accepts as implicit ``struct`` commands (``task_struct 0x…``) are not
    counted: such a line is far more likely a drgn Python expression.
    """
    _ensure_extras()
    word = _first_word(line)
    if not word:
        return False
    if word.startswith("!"):
        return True
    try:
        VMCORE_CRASH_NAMESPACE.lookup(prog, word)
    except CommandNotFoundError:
        return False
    return True


def misspelt_command(prog: drgn.Program, line: str) -> str | None:
    """The "command not found" message for a line whose first word is a misspelt crash command.

    Only for a first word that nothing else could mean: not a Python builtin, not a kernel symbol or
    type, and close to a command name (``sturct``, ``foreah``). Anything else goes to Python, whose
    own error then explains it.
    """
    words = line.split()
    if not words or not words[0].isidentifier() or words[0] in dir(builtins):
        return None
    word = words[0]
    if not difflib.get_close_matches(word, command_names(prog), n=1, cutoff=0.75):
        return None
    try:
        prog[word]
        return None
    except (KeyError, LookupError):
        pass
    return describe_command_error(CommandNotFoundError(word), prog)


def _first_word(line: str) -> str:
    stripped = line.strip()
    end = len(stripped)
    for i, ch in enumerate(stripped):
        if ch.isspace() or ch in "|><;":
            end = i
            break
    return stripped[:end]


@dataclass
class CommandResult:
    """What one command line printed.

    :param output: everything the command printed (also when it was streamed through
        ``on_output``), followed by what it wrote to stderr.
    :param error: one-line error message, or ``None`` when the command succeeded.
    """

    output: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _StreamingFile(io.TextIOWrapper):
    """A text file over a real (O_APPEND) file descriptor that reports each chunk of new lines.

    Commands print to it; shell pipelines started by drgn write to the same descriptor directly.
    Every ``chunk_lines`` lines written through Python, ``on_chunk`` is called (it reads the new
    bytes back from the descriptor, so it also sees what a pipeline wrote).
    """

    def __init__(self, fd: int, chunk_lines: int, on_chunk: Callable[[], None]) -> None:
        super().__init__(
            io.BufferedWriter(io.FileIO(fd, "a", closefd=False)), encoding="utf-8", errors="replace"
        )
        self._chunk_lines = chunk_lines
        self._on_chunk = on_chunk
        self._lines = 0

    def write(self, s: str) -> int:
        n = super().write(s)
        self._lines += s.count("\n")
        if self._lines >= self._chunk_lines:
            self._lines = 0
            self.flush()
            self._on_chunk()
        return n


class _Capture:
    """Redirect ``sys.stdout``/``sys.stderr`` to a temporary file and read it back, chunk by chunk."""

    def __init__(self, on_output: Callable[[str], None] | None, chunk_lines: int) -> None:
        self._tmp = tempfile.TemporaryFile(prefix="vmcore-dap-crash-")
        self.fd = self._tmp.fileno()
        # O_APPEND: Python's writes and a pipeline's writes on the same file never overwrite each other.
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) | os.O_APPEND)
        self._on_output = on_output
        self._read_offset = 0
        self._streamed: list[str] = []
        self.stdout = _StreamingFile(self.fd, chunk_lines, self.poll)
        self.stderr_tmp = tempfile.TemporaryFile(mode="w+", prefix="vmcore-dap-crash-err-")

    def poll(self, final: bool = False) -> None:
        """Hand the complete new lines (all remaining text when ``final``) to ``on_output``."""
        size = os.fstat(self.fd).st_size
        if size <= self._read_offset:
            return
        data = os.pread(self.fd, size - self._read_offset, self._read_offset)
        if not final:
            cut = data.rfind(b"\n")
            if cut < 0:
                return
            data = data[: cut + 1]
        self._read_offset += len(data)
        text = data.decode("utf-8", errors="replace")
        self._streamed.append(text)
        if self._on_output is not None and text:
            self._on_output(text)

    def text(self) -> str:
        return "".join(self._streamed)

    def stderr_text(self) -> str:
        self.stderr_tmp.seek(0)
        return self.stderr_tmp.read()

    def close(self) -> None:
        for closer in (self.stdout.close, self.stderr_tmp.close, self._tmp.close):
            try:
                closer()
            except (OSError, ValueError):
                pass


#: sys.stdout is process-global: one command line at a time per thread. Re-entrant, because a line may
#: run inside another on the same thread: a streaming command hands each chunk to its caller, which may
#: answer other requests meanwhile (the adapter's Kernel view runs ``sys`` for its summary), and each
#: run restores the output and current context it found.
_RUN_LOCK = threading.RLock()


def describe_command_error(exc: BaseException, prog: drgn.Program | None = None) -> str:
    """Turn what a crash command raised into one line "<what failed>: <why> (<what to do>)"."""
    if isinstance(exc, CommandNotFoundError):
        hint = ""
        if prog is not None:
            close = difflib.get_close_matches(exc.name, command_names(prog), n=3, cutoff=0.6)
            if close:
                hint = " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"
        return f"{exc.name}: command not found{hint or ' (type help for the list of commands)'}"
    if isinstance(exc, CommandArgumentError):
        text = str(exc).strip().splitlines()
        first = text[-1] if text else "invalid arguments"
        return f"{first} (type help <command> for its usage)"
    if isinstance(exc, CommandExitStatusError):
        return f"pipeline {exc.command!r} exited with status {exc.exit_status}"
    if isinstance(exc, drgn.FaultError):
        return describe_fault(exc, prog)
    if isinstance(exc, drgn.MissingDebugInfoError):
        return f"missing debug info: {exc} (add it to the launch setting 'debugInfo')"
    if isinstance(exc, AdapterError):
        return exc.message
    if isinstance(exc, SyntaxError):
        return f"syntax error: {exc.msg}"
    if isinstance(exc, (LookupError, ValueError, CommandError, NotImplementedError, OSError)):
        message = str(exc).strip().replace("\n", " ") or type(exc).__name__
        if isinstance(exc, KeyError) and message.startswith("'"):
            message = message.strip("'")
        return message
    return f"{type(exc).__name__}: {str(exc).strip()}".replace("\n", " ")


class CrashConsole:
    """Run crash command lines on one program.

    :param prog: the dump's program.
    """

    def __init__(self, prog: drgn.Program, default_task: drgn.Object | None = None) -> None:
        _ensure_extras()
        self.prog = prog
        #: ``struct task_struct *`` a command line without a task runs in (the task a debug session
        #: stopped on); :func:`default_context` when ``None``.
        self.default_task = default_task
        self._fallback: drgn.Object | None = None
        # No pager: output goes to the console, never to a terminal.
        prog.config["crash_scroll"] = False
        self.globals: dict[str, Any] = {"prog": prog, "drgn": drgn}

    def run(
        self,
        line: str,
        task: drgn.Object | None = None,
        *,
        on_output: Callable[[str], None] | None = None,
        chunk_lines: int = DEFAULT_CHUNK_LINES,
    ) -> CommandResult:
        """Run one crash command line with the current context set to ``task``.

        :param line: e.g. ``"bt -l"``, ``"ps | grep cat"``, ``"foreach bt > /tmp/bt.txt"``.
        :param task: ``struct task_struct *`` of the current context; :attr:`default_task` (else
            :func:`default_context`) if ``None``.
        :param on_output: called with each chunk of complete lines while the command runs, and with
            the rest at the end. It may raise (e.g. :class:`~vmcore_dap.errors.Cancelled`) to stop
            the command; that exception propagates out of :meth:`run`.
        :return: the whole output and, if the command failed, a one-line error.
        """
        if not line.strip():
            return CommandResult("")
        errors: list[BaseException] = []
        if task is None:
            task = self._default()
        with _RUN_LOCK:
            outer_context = self.prog.config.get("crash_context")
            if task is not None:
                self.prog.config["crash_context"] = task
            else:
                self.prog.config.pop("crash_context", None)
            capture = _Capture(on_output, chunk_lines)
            saved = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = capture.stdout, capture.stderr_tmp
            try:
                VMCORE_CRASH_NAMESPACE.run(self.prog, line, globals=self.globals, onerror=errors.append)
            except Exception as exc:  # noqa: BLE001 - drgn raises before onerror in rare paths
                errors.append(exc)
            finally:
                sys.stdout, sys.stderr = saved
                if outer_context is not None:
                    self.prog.config["crash_context"] = outer_context
                try:
                    capture.stdout.flush()
                except (OSError, ValueError):
                    pass
            try:
                for error in errors:
                    if isinstance(error, Cancelled):
                        raise error
                capture.poll(final=True)
                output = capture.text()
                stderr = capture.stderr_text()
            finally:
                capture.close()
        argument_error = any(isinstance(e, CommandArgumentError) for e in errors)
        if stderr and not argument_error:  # argparse prints usage to stderr before its one-line error
            notes = stderr if stderr.endswith("\n") else stderr + "\n"
            output += notes
            if on_output is not None:  # what a command says it could not do reaches the console too
                on_output(notes)
        if errors:
            return CommandResult(output, describe_command_error(errors[0], self.prog))
        return CommandResult(output)

    def _default(self) -> drgn.Object | None:
        if self.default_task is not None:
            return self.default_task
        if self._fallback is None:
            self._fallback = default_context(self.prog)
        return self._fallback

    def run_checked(self, line: str, task: drgn.Object | None = None) -> str:
        """Run ``line`` and return its output; raise :class:`UserError` if it failed."""
        result = self.run(line, task)
        if result.error is not None:
            raise UserError(f"{line.split()[0]}: {result.error}" if line.split() else result.error)
        return result.output


@vmcore_crash_command(
    name="help",
    description="list the commands of the console, or describe one",
    arguments=(argument("command", nargs="*", help="command to describe, or all"),),
)
def _crash_cmd_help(prog: drgn.Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    names = sorted(n for n, _ in VMCORE_CRASH_NAMESPACE.enabled(prog) if n not in ("q", "exit", "*"))
    if not args.command:
        columns = 6
        rows = (len(names) + columns - 1) // columns
        print("crash commands (run in the context of the task selected in the Call Stack):")
        for row in range(rows):
            print("".join(names[i].ljust(13) for i in range(row, len(names), rows)).rstrip())
        print(
            "\nPipes and redirections work: ps | grep bash, log | tail -20, foreach bt > /tmp/bt.txt"
            "\n%py <expression>  evaluates drgn Python (so does any line that is not a command);"
            " prog, task and frame are defined."
            '\nTry "help <command>" for help with a specific command.'
        )
        return
    wanted = names if args.command == ["all"] else args.command
    for i, cmd_name in enumerate(wanted):
        if i:
            print()
        try:
            cmd = VMCORE_CRASH_NAMESPACE.lookup(prog, cmd_name)
        except CommandNotFoundError as e:
            print(describe_command_error(e, prog))
            continue
        print(f"NAME\n  {cmd_name} - {cmd.description()}\n\nSYNOPSIS\n  {cmd.format_usage()}\n")
        print(f"DESCRIPTION\n{cmd.format_help(indent='  ')}")
