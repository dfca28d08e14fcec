"""Render benchmark results as Markdown: the machine, how it was measured, one table row per cost with
a column per sample and a column per step from one size to the next (the growth), so how a cost grows
from ~350 to ~5,000 to ~50,000 tasks reads across a line."""

from __future__ import annotations

import itertools
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ANALYSIS_HEADING",
    "GrowthStep",
    "Row",
    "growth_steps",
    "load_average",
    "machine_description",
    "render",
]

#: Hand-written text after this heading in RESULTS.md survives a new run (bench/run.py keeps it).
ANALYSIS_HEADING = "## Analysis"


@dataclass(frozen=True)
class Row:
    """One measured quantity of one sample.

    :param target: an upper bound (``None``: reported only).
    :param target_at: the samples the target applies to (``None``: every sample), for targets an
        issue sets at one size ("at 50,000 tasks").
    :param growth: show how it grows from one sample to the next (the ratio of the two values).
    :param growth_target: an upper bound for that ratio ("flat in the task count").
    :param per_task: also show the growth per added task (``value`` difference / task difference).
    :param failed: why the row fails whatever its value (e.g. a command that was not cancelled).
    """

    name: str
    value: float | None
    unit: str
    target: float | None = None
    target_at: tuple[str, ...] | None = None
    growth: bool = False
    growth_target: float | None = None
    per_task: bool = False
    failed: str | None = None

    @property
    def met(self) -> bool | None:
        if self.failed is not None:
            return False
        if self.target is None or self.value is None:
            return None
        return self.value <= self.target

    def met_at(self, scenario: str) -> bool | None:
        """Whether the target is met on ``scenario`` (``None`` when it has none there)."""
        if self.target_at is not None and scenario not in self.target_at and self.failed is None:
            return None
        return self.met

    def formatted(self) -> str:
        if self.value is None:
            return "—"
        if self.unit == "×":
            return f"{self.value:.3f}×"
        if self.unit == "s":
            return f"{self.value:.2f} s"
        if self.unit == "MiB":
            return f"{self.value:.0f} MiB"
        if self.unit in ("tasks", "entries"):
            return f"{self.value:,.0f}"
        if self.unit == "ms" and self.value < 1:  # a pointer's note: 0.04 ms, not "0.0 ms"
            return f"{self.value:.2g} {self.unit}"
        return f"{self.value:.1f} {self.unit}"

    def target_text(self) -> str:
        parts = []
        if self.target is not None:
            where = f" at {', '.join(self.target_at)}" if self.target_at else ""
            parts.append(f"≤ {self.target:g}{'×' if self.unit == '×' else ' ' + self.unit}{where}")
        if self.growth_target is not None:
            parts.append(f"growth ≤ ×{self.growth_target:g} a step")
        return "; ".join(parts)


@dataclass(frozen=True)
class GrowthStep:
    """How one row's value grew from one sample to the next."""

    row_name: str
    before: str
    after: str
    growth: float | None
    per_task: float | None  # value units per added task (KiB per task for MiB rows)
    target: float | None

    def formatted(self) -> str:
        if self.growth is None:
            return "—"
        text = f"×{self.growth:.2f}"
        if self.per_task is not None:
            text += f" ({self.per_task:+.1f} KiB/task)"
        if self.target is not None:
            text += " ✓" if self.growth <= self.target else " ✗"
        return text


def growth_steps(tables: dict[str, tuple[dict[str, Any], list[Row]]]) -> list[GrowthStep]:
    """Every (row with ``growth``, consecutive pair of samples) step, in table order."""
    scenarios = list(tables)
    steps = []
    for before, after in itertools.pairwise(scenarios):
        (r0, rows0), (r1, rows1) = tables[before], tables[after]
        added = r1["tasks"] - r0["tasks"]
        for a, b in zip(rows0, rows1, strict=True):
            if not a.growth:
                continue
            growth = b.value / a.value if a.value and b.value is not None else None
            per_task = None
            if a.per_task and a.value is not None and b.value is not None and added:
                per_task = (b.value - a.value) * 1024 / added  # MiB → KiB per task
            steps.append(GrowthStep(a.name, before, after, growth, per_task, a.growth_target))
    return steps


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
    pairs = list(itertools.pairwise(scenarios))
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
        "| cost | target | "
        + " | ".join(f"{s} ({tables[s][0]['tasks']:,} tasks)" for s in scenarios)
        + "".join(
            f" | growth {a} → {b} (×{tables[b][0]['tasks'] / tables[a][0]['tasks']:.1f} tasks)"
            for a, b in pairs
        )
        + " |",
        "|---|---|" + "---|" * (len(scenarios) + len(pairs)),
    ]
    steps = {(g.row_name, g.before): g for g in growth_steps(tables)}
    names = [row.name for row in tables[scenarios[0]][1]]
    for i, name in enumerate(names):
        target = tables[scenarios[0]][1][i].target_text()
        cells = []
        for s in scenarios:
            row = tables[s][1][i]
            mark = {True: " ✓", False: " ✗", None: ""}[row.met_at(s)]
            cells.append(row.formatted() + mark + (f" ({row.failed})" if row.failed else ""))
        for a, _b in pairs:
            step = steps.get((name, a))
            cells.append(step.formatted() if step is not None else "")
        lines.append(f"| {name} | {target} | " + " | ".join(cells) + " |")
    notes = [f"{s}: {n}" for s in scenarios for n in tables[s][0]["notes"]]
    if notes:
        lines += ["", "Notes:", *[f"- {n}" for n in notes]]
    lines += [
        "",
        "Definitions: *first picture* (adapter) = process start → `initialize` → `launch` → `stopped` "
        "→ `threads` → `stackTrace` (crashed task) → `scopes` → `variables` (top frame). *All stacks* "
        "= start → `stopped` → `threads` → `stackTrace` of every thread, one request at a time "
        "(lock-step: the next sent when the last is answered); its ≤ 0.15× target is issue 18's and "
        "applies to this row. *All stacks, 64 requests in flight* = the same in a separate session "
        "with up to 64 `stackTrace` requests sent ahead of their answers (DAP allows it, VS Code "
        "sends requests concurrently): reading, answering and the client's work overlap; no target, "
        "it shows what a client that does not wait gets. *Per task after start-up* = "
        "the `stackTrace` loop divided by the thread count; for crash, (start + `foreach bt`) − "
        "(start + `bt`) divided by the same count. Expanding and disassembling are single requests "
        "in the first-picture session (cold = first disassembly of the session, warm = the same "
        "request again). *Kernel view first render* = `vmcore/summary`, `vmcore/cpus`, "
        "`vmcore/stackGroups` and `vmcore/blocked` one after another in a fresh session right after "
        "the stop. *Debug Console* = `evaluate` of `foreach bt` (context `repl`) in a fresh session: "
        "time to the `output` event completing the first screen, then `cancel` and the time to the "
        "command's response. *First page of a list* = `evaluate` of the sample's longest list, then "
        "`variables` of its first 100 entries; *a pointer's note* = for each of the next five pages, "
        "(first `variables` − the same request again, its notes then cached) ÷ entries, median over "
        "the pages. *Growth* = the value on the larger sample divided by the value on the "
        "smaller; for peak RSS also the difference per added task. Peak RSS is the process's own "
        "high-water mark (`VmHWM` / `wait4`).",
        "",
    ]
    return "\n".join(lines)
