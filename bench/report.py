"""Render benchmark results as Markdown: the machine, how it was measured, one table row per cost with
a column per sample, so the growth from ~300 to ≥ 5,000 tasks reads across a line."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["ANALYSIS_HEADING", "Row", "load_average", "machine_description", "render"]

#: Hand-written text after this heading in RESULTS.md survives a new run (bench/run.py keeps it).
ANALYSIS_HEADING = "## Analysis"


@dataclass(frozen=True)
class Row:
    """One measured quantity; ``target`` is an upper bound (``None``: reported only)."""

    name: str
    value: float | None
    unit: str
    target: float | None = None

    @property
    def met(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        return self.value <= self.target

    def formatted(self) -> str:
        if self.value is None:
            return "—"
        if self.unit == "×":
            return f"{self.value:.3f}×"
        if self.unit == "s":
            return f"{self.value:.2f} s"
        if self.unit == "MiB":
            return f"{self.value:.0f} MiB"
        return f"{self.value:.1f} {self.unit}"

    def target_text(self) -> str:
        if self.target is None:
            return ""
        return f"≤ {self.target:g}{'×' if self.unit == '×' else ' ' + self.unit}"


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB RAM"
    except OSError:
        pass
    return "unknown RAM"


def load_average() -> str:
    """The 1- and 5-minute load averages, as ``"3.3 / 3.2"``."""
    try:
        one, five, _fifteen = os.getloadavg()
        return f"{one:.1f} / {five:.1f}"
    except OSError:
        return "unknown"


def machine_description(load_at_start: str | None = None) -> str:
    """CPU, cores, memory, OS, Python and drgn versions — what the numbers depend on."""
    try:
        import drgn

        drgn_version = drgn.__version__
    except ImportError:
        drgn_version = "not installed"
    try:
        os_name = subprocess.run(
            ["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        os_name = platform.platform()
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores, {_memory()}; {os_name}, kernel {platform.release()}; "
        f"Python {platform.python_version()}, drgn {drgn_version}; load average "
        + (f"{load_at_start} at the start, " if load_at_start else "")
        + f"{load_average()} at the end (the machine is shared: ratios of the same run are what to compare)"
    )


def render(
    tables: dict[str, tuple[dict[str, Any], list[Row]]],
    *,
    machine: str,
    crash_version: str,
    runs: int,
    elapsed: float,
    drgn_script: str,
) -> str:
    """The whole RESULTS.md text."""
    scenarios = list(tables)
    lines = [
        "# vmcore-dap benchmarks",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by `make bench` "
        f"(`bench/run.py`), {runs} rounds per sample, medians; {elapsed / 60:.1f} min in all.",
        "",
        f"**Machine:** {machine}. {crash_version}.",
        "",
        "Each round runs every contender once, one after the other, on the same dump, each in a fresh "
        "process (start-up included, page cache warm after the first round). Ratios are of medians "
        "measured in the same run. The adapter is driven over stdio by a single-threaded lock-step DAP "
        "client without logging (`bench/lockstep.py`); crash runs `crash -s vmlinux vmcore` with the "
        "commands on stdin; the plain drgn "
        "script is:",
        "",
        "```python",
        drgn_script.rstrip(),
        "```",
        "",
        "| cost | target | " + " | ".join(f"{s} ({tables[s][0]['tasks']} tasks)" for s in scenarios) + " |",
        "|---|---|" + "---|" * len(scenarios),
    ]
    names = [row.name for row in tables[scenarios[0]][1]]
    for i, name in enumerate(names):
        target = tables[scenarios[0]][1][i].target_text()
        cells = []
        for s in scenarios:
            row = tables[s][1][i]
            mark = {True: " ✓", False: " ✗", None: ""}[row.met]
            cells.append(row.formatted() + mark)
        lines.append(f"| {name} | {target} | " + " | ".join(cells) + " |")
    notes = [f"{s}: {n}" for s in scenarios for n in tables[s][0]["notes"]]
    if notes:
        lines += ["", "Notes:", *[f"- {n}" for n in notes]]
    lines += [
        "",
        "Definitions: *first picture* (adapter) = process start → `initialize` → `launch` → `stopped` "
        "→ `threads` → `stackTrace` (crashed task) → `scopes` → `variables` (top frame). *All stacks* "
        "= start → `stopped` → `threads` → `stackTrace` of every thread. *Per task after start-up* = "
        "the `stackTrace` loop divided by the thread count; for crash, (start + `foreach bt`) − "
        "(start + `bt`) divided by the same count. Expanding and disassembling are single requests "
        "in the first-picture session (cold = first disassembly of the session, warm = the same "
        "request again). Peak RSS is the process's own high-water mark (`VmHWM` / `wait4`).",
        "",
    ]
    return "\n".join(lines)
