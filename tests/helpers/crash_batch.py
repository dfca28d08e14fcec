"""Ask crash, in batch mode, what the stored oracle answers do not cover (``p sym``, ``struct -o T``…).

One crash run answers a whole list of commands (crash takes up to a minute to start on a loaded
machine, 4 to 6 minutes of CPU under qemu-aarch64 for an arm64 dump); the answers are cached next to
the sample, keyed by the crash command line (the build and flags ``samples/crash_choice.py`` picks
for this dump) and the command list, so later runs read them back. A patched copy of the sample's
dump is keyed by its content as well (its SHA-256: seconds, where crash takes minutes on arm64).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["run_crash"]

_CRASH_TIMEOUT_S = 900


def run_crash(sample: Any, commands: list[str], vmcore: Path | None = None) -> list[str]:
    """Run crash once on ``sample`` with module debug info loaded; return each command's output.

    The list returned has one more entry than ``commands``: crash's own stdout and stderr, where it
    prints a command's errors (they do not go into the command's redirection).

    :param vmcore: another dump of the sample's kernel (a patched copy) to read instead of the
        sample's; its answers are cached by its content.
    """
    from samples.crash_oracle import crash_command

    crash = crash_command(sample)
    content = [] if vmcore is None else [_file_sha256(vmcore)]
    key = hashlib.sha256(
        json.dumps([*crash.argv, *crash.module_loads, *commands, *content]).encode()
    ).hexdigest()[:16]
    cache = Path(sample.dir) / "crash-extra" / f"{key}.json"
    if cache.is_file():
        cached: list[str] = json.loads(cache.read_text())
        return cached
    with tempfile.TemporaryDirectory(prefix="crash-batch-") as tmp:
        out = Path(tmp)
        script = ["set scroll off", *(f"{load} >> {out / 'mod.txt'}" for load in crash.module_loads)]
        script += [f"{command} > {out / f'{i}.txt'}" for i, command in enumerate(commands)]
        script.append("exit")
        proc = subprocess.run(
            [*crash.argv, "-s", str(sample.vmlinux), str(vmcore or sample.vmcore)],
            input="\n".join(script) + "\n",
            capture_output=True,
            text=True,
            timeout=_CRASH_TIMEOUT_S,
            check=False,
        )
        outputs = []
        for i, command in enumerate(commands):
            path = out / f"{i}.txt"
            assert path.is_file(), f"crash did not answer {command!r}:\n{proc.stdout[-3000:]}\n{proc.stderr}"
            outputs.append(path.read_text())
        outputs.append(proc.stdout + proc.stderr)
    cache.parent.mkdir(exist_ok=True)
    partial = cache.with_suffix(f".tmp-{os.getpid()}")
    partial.write_text(json.dumps(outputs))
    partial.replace(cache)
    return outputs


def _file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content (a patched dump: what crash's answers depend on)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
