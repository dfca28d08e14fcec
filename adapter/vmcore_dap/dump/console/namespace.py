"""The namespace console lines run in: drgn's crash-compatible commands overlaid with ours.

Kept apart from :mod:`~vmcore_dap.dump.console.commands` (which runs lines) and
:mod:`~vmcore_dap.dump.console.extra_commands` (which registers our commands here), so that both
depend on this module and neither on the other.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any

import drgn
import drgn.commands._builtin  # noqa: F401 - registers drgn's own commands (crash's ``!`` runs its ``sh``)
import drgn.commands._crash  # noqa: F401 - registers drgn's crash commands
from drgn.commands import CommandNotFoundError, command
from drgn.commands._crash.common import CRASH_COMMAND_NAMESPACE

__all__ = ["VMCORE_CRASH_NAMESPACE", "ReworkedDrgnCommand", "drgn_command_output", "vmcore_crash_command"]


class _VmcoreCrashNamespace(type(CRASH_COMMAND_NAMESPACE)):  # type: ignore[misc]
    """drgn's crash namespace (same resolution rules: ``!cmd``, ``*``, implicit ``struct``) plus ours.

    Our commands shadow drgn's of the same name (e.g. ``struct`` gains ``-o``); a shadowed drgn
    command stays reachable as :attr:`drgn_commands`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.drgn_commands = CRASH_COMMAND_NAMESPACE._commands

    def lookup(self, prog: drgn.Program, name: str) -> Any:
        command_obj = self._commands.get(name) or self.drgn_commands.get(name)
        if command_obj is None or not command_obj.enabled(prog):
            raise CommandNotFoundError(name)
        return command_obj

    def enabled(self, prog: drgn.Program) -> Iterable[tuple[str, Any]]:
        merged = {**self.drgn_commands, **self._commands}
        return ((name, cmd) for name, cmd in merged.items() if cmd.enabled(prog))


#: The namespace console lines run in: drgn's crash commands overlaid with ours.
VMCORE_CRASH_NAMESPACE = _VmcoreCrashNamespace()


def vmcore_crash_command(**kwargs: Any) -> Callable[[Any], Any]:
    """Register a crash command of ours (same arguments as :func:`drgn.commands.command`)."""
    return command(namespace=VMCORE_CRASH_NAMESPACE, **kwargs)


def drgn_command_output(command_obj: Any, prog: drgn.Program, name: str, args: Any, **kwargs: Any) -> str:
    """Run one of drgn's commands and return what it printed, for a command of ours to rework."""
    buffer = io.StringIO()
    saved, sys.stdout = sys.stdout, buffer
    try:
        command_obj.run(prog, name, args, **kwargs)
    finally:
        sys.stdout = saved
    return buffer.getvalue()


class ReworkedDrgnCommand:
    """One of drgn's commands whose output we rework: drgn's parser (so ``help`` and flag completions
    stay drgn's), our :meth:`run`. Subclasses name the command and say what they change in ``note``.
    """

    name = ""
    note = ""

    def __init__(self) -> None:
        self._drgn = VMCORE_CRASH_NAMESPACE.drgn_commands[self.name]
        self._parser = getattr(self._drgn, "_parser", None)  # flag completions read it
        self.parse = self._drgn.parse
        self.enabled = self._drgn.enabled

    def description(self) -> str:
        return str(self._drgn.description())

    def format_usage(self) -> str:
        return str(self._drgn.format_usage())

    def format_help(self, *, indent: str = "") -> str:
        return str(self._drgn.format_help(indent=indent)) + f"\n\n{indent}{self.note}"

    def drgn_output(self, prog: drgn.Program, name: str, words: Any, **kwargs: Any) -> str:
        """What drgn's own command prints for these arguments."""
        return drgn_command_output(self._drgn, prog, name, words, **kwargs)

    def run(self, prog: drgn.Program, name: str, words: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    @classmethod
    def register(cls) -> None:
        """Put this command in the console's namespace, over drgn's."""
        VMCORE_CRASH_NAMESPACE.register(cls.name, cls())
