"""``make bench``'s triage section: dumps per minute, and the cost of one dump against crash.

Measured on the crashed samples' dumps (kdump-compressed and ELF files of oops-null, sysrq-c,
irq-oops and many-tasks: eight dumps, 360 to 5,070 tasks each), each round in this order:

* *local*: ``vmcore-dap triage --force`` over all eight dumps, one worker per CPU;
* *Dask*: the same command with ``--scheduler`` on a 2-worker ``dask.distributed.LocalCluster``
  (worker processes) started before the round, as a cluster that already runs would be;
* *per dump*: ``vmcore-dap triage --force --jobs 1`` on one kdump file, against ``crash -s vmlinux
  vmcore`` running ``sys; bt; log; ps`` on the same file — what retrace-server-like scripts run
  per dump, and less than triage reports (no stack groups, no lock graph).

Every command runs in a fresh process; times are wall-clock, medians over the rounds.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers.dask_cluster import local_cluster

from bench import measure

SCENARIOS = ("oops-null", "sysrq-c", "irq-oops", "many-tasks")
CRASH_COMMANDS = ["sys", "bt", "log", "ps"]


def _triage(paths: list[Path], debug_dirs: list[Path], output: Path, *extra: str) -> float:
    command = [
        sys.executable,
        "-m",
        "vmcore_dap",
        "triage",
        "--force",
        "--progress",
        "none",
        "-o",
        str(output),
    ]
    for directory in debug_dirs:
        command += ["--debug-info-dir", str(directory)]
    start = time.perf_counter()
    subprocess.run([*command, *extra, *map(str, paths)], check=True, stdout=subprocess.DEVNULL, timeout=1800)
    return time.perf_counter() - start


def _median(values: list[float]) -> float:
    return statistics.median(values)


def measure_triage(runs: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Run the rounds; return medians (seconds) and the dumps' names."""
    from samples.crash_oracle import crash_command
    from samples.sample_store import ensure_sample

    samples = [ensure_sample(s) for s in SCENARIOS]
    crash_argv = {s.scenario: crash_command(s).argv for s in samples}  # the build and flags each dump needs
    dumps = [p for s in samples for p in (s.vmcore, s.vmcore_elf)]
    debug_dirs = sorted(
        {s.debug_info_dir for s in samples} | {p.parent for s in samples for p in s.debug_info}
    )
    local: list[float] = []
    dask: list[float] = []
    per_dump: dict[str, dict[str, list[float]]] = {s.scenario: {"triage": [], "crash": []} for s in samples}
    with tempfile.TemporaryDirectory(prefix="vmcore-dap-bench-") as tmp:
        out = Path(tmp)
        for i in range(runs):
            local.append(_triage(dumps, debug_dirs, out / "local"))
            progress(f"triage round {i + 1}/{runs}: local pool, {len(dumps)} dumps in {local[-1]:.1f} s")
            with local_cluster() as cluster:
                dask.append(
                    _triage(dumps, debug_dirs, out / "dask", "--scheduler", cluster.scheduler_address)
                )
            progress(f"triage round {i + 1}/{runs}: Dask 2 workers, {len(dumps)} dumps in {dask[-1]:.1f} s")
            for sample in samples:
                times = per_dump[sample.scenario]
                times["triage"].append(_triage([sample.vmcore], debug_dirs, out / "one", "--jobs", "1"))
                crash = measure.crash_run(crash_argv[sample.scenario], sample, CRASH_COMMANDS)
                times["crash"].append(crash.seconds)
                progress(
                    f"triage round {i + 1}/{runs}: {sample.scenario} triage {times['triage'][-1]:.1f} s, "
                    f"crash sys;bt;log;ps {times['crash'][-1]:.1f} s"
                )
    return {
        "dumps": len(dumps),
        "runs": runs,
        "local": _median(local),
        "dask": _median(dask),
        "per_dump": {s: {k: _median(v) for k, v in t.items()} for s, t in per_dump.items()},
    }


def render_triage(result: dict[str, Any]) -> str:
    """The RESULTS.md section."""
    n = result["dumps"]
    lines = [
        "## Triage (`vmcore-dap triage`)",
        "",
        f"{result['runs']} rounds, medians; {n} dumps (kdump and ELF files of {', '.join(SCENARIOS)}); "
        "see `bench/triage_bench.py` for what each row runs.",
        "",
        "| cost | value |",
        "|---|---|",
        f"| local (a process per dump, one per CPU at a time): {n} dumps | {result['local']:.1f} s = "
        f"**{n / result['local'] * 60:.1f} dumps/min** |",
        f"| Dask LocalCluster, 2 worker processes: {n} dumps | {result['dask']:.1f} s = "
        f"**{n / result['dask'] * 60:.1f} dumps/min** |",
        "",
        "| one dump (kdump file), fresh process | triage | crash -s `sys; bt; log; ps` | triage / crash |",
        "|---|---|---|---|",
    ]
    for scenario, times in result["per_dump"].items():
        ratio = times["triage"] / times["crash"]
        lines.append(f"| {scenario} | {times['triage']:.2f} s | {times['crash']:.2f} s | {ratio:.3f}× |")
    lines.append("")
    return "\n".join(lines)
