"""Which vmcore-dap, drgn and Python are running: one report for ``--version``, the log and ``initialize``.

The VS Code extension compares the adapter's version with the one it ships (a private environment
made by an older extension, or a ``vmcoreDap.python`` with another release installed) and offers to
update, so the report reads the same wherever it appears. drgn's version matters as much as ours:
the crash commands and the kernel helpers come from drgn, and we use private parts of it
(``docs/compatibility.md`` lists them and the releases tested).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vmcore_dap import __version__

__all__ = ["INITIALIZE_KEY", "Versions", "add_version_argument", "running_versions"]

#: The key of the ``initialize`` response body that holds :meth:`Versions.as_body` (Capabilities is an
#: open object in the DAP schema; clients ignore keys they do not know).
INITIALIZE_KEY = "vmcoreDap"


@dataclass(frozen=True)
class Versions:
    """The versions of the running adapter and of what it stands on."""

    adapter: str
    drgn: str
    python: str
    executable: str

    def line(self, program: str = "vmcore-dap") -> str:
        """One line for people and for the extension's parser:
        ``vmcore-dap 0.1.0 (drgn 0.3.0, Python 3.11.2)``."""
        return f"{program} {self.adapter} (drgn {self.drgn}, Python {self.python})"

    def as_body(self) -> dict[str, Any]:
        """The camel-case form sent to DAP clients in the ``initialize`` response."""
        return {
            "adapterVersion": self.adapter,
            "drgnVersion": self.drgn,
            "pythonVersion": self.python,
            "pythonExecutable": self.executable,
        }


def running_versions() -> Versions:
    """Return the versions of this process: importing drgn here also proves that it loads (the
    extension's set-up runs ``vmcore-dap --version`` to check a new environment)."""
    import drgn

    return Versions(__version__, drgn.__version__, platform.python_version(), sys.executable)


class _VersionAction(argparse.Action):
    """``--version``: like argparse's, but the text (which imports drgn) is made only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, program: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.program = program

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        sys.stdout.write(running_versions().line(self.program) + "\n")
        sys.stdout.flush()
        parser.exit()


def add_version_argument(parser: argparse.ArgumentParser, program: str) -> None:
    """Add ``--version``, which prints :meth:`Versions.line` for ``program`` and exits."""
    parser.add_argument(
        "--version",
        action=_VersionAction,
        program=program,
        help="print the versions of this program, drgn and Python, and exit",
    )
