"""Shared plumbing of the builder: the cache location, progress output, errors, subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

__all__ = [
    "BuildError",
    "KNOWN_SCENARIOS",
    "ON_DEMAND_SCENARIOS",
    "SAMPLES_DIR",
    "SCENARIOS",
    "cache_root",
    "progress",
    "run",
]

#: The ``samples/`` directory of the checkout this builder lives in.
SAMPLES_DIR = Path(__file__).resolve().parent.parent

#: The scenarios of the default kernel that ``make test`` uses, in build order (``--all``).
SCENARIOS = ("oops-null", "sysrq-c", "many-tasks", "no-panic", "irq-oops", "list-uaf")

#: Scenarios built only when named: ``huge`` (≈50,000 tasks, 8 CPUs, 6 GiB; half an hour under
#: TCG) serves ``make bench`` and ``make test-huge``, not ``make test`` or the kernel matrix.
ON_DEMAND_SCENARIOS = ("huge",)

#: Every scenario ``make-vmcore`` knows.
KNOWN_SCENARIOS = SCENARIOS + ON_DEMAND_SCENARIOS


class BuildError(Exception):
    """A sample cannot be built; the message says what failed and what to do."""


def cache_root() -> Path:
    """Return ``$VMCORE_DAP_CACHE`` or ``~/.cache/vmcore-dap`` (outside any clone)."""
    env = os.environ.get("VMCORE_DAP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "vmcore-dap"


def progress(message: str) -> None:
    """Print a progress line on stderr (stdout stays free for callers' data)."""
    print(f"[make-vmcore] {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    stdin: int | IO[bytes] | None = None,
) -> str:
    """Run a command and return its stdout; raise BuildError naming ``what`` on failure.

    The error carries the end of the command's output, so a person can act on it
    without re-running anything.
    """
    args = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=stdin,
            check=False,
        )
    except FileNotFoundError as e:
        raise BuildError(f"Cannot {what}: '{args[0]}' is not installed") from e
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"Cannot {what}: '{args[0]}' did not finish in {timeout:.0f} s") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BuildError(f"Cannot {what}: '{' '.join(args[:4])}…' exited with {proc.returncode}\n{tail}")
    return proc.stdout
