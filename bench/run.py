"""``make bench``: vmcore-dap against ``crash`` and a plain drgn script, side by side, on the samples.

    .venv/bin/python bench/run.py [--runs 5] [--samples sysrq-c,many-tasks] [--output bench/RESULTS.md]

Each round runs, one after the other on the same sample: the adapter's first picture (and, in the
same session, expanding a ``task_struct``, a 4,096-element array page, disassembling 200
instructions cold and warm, and the Kernel view's grouping of every stack), the adapter listing every
thread's stack, ``crash`` to the end of its first ``bt``, ``crash`` with ``foreach bt``, the plain drgn
script, and the language server's first code lens on ``kernel/sched/core.c`` (which reads every task's
stack from the same stack service as the grouping, so it must cost no more). Rounds alternate, so a busy
machine slows every contender alike; the medians of all rounds are compared as ratios and checked
against the targets of issue 8. The table goes to stdout and, with the machine's description, to
``bench/RESULTS.md``. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import measure  # noqa: E402
from bench.report import ANALYSIS_HEADING, Row, load_average, machine_description, render  # noqa: E402

DEFAULT_SAMPLES = ("sysrq-c", "many-tasks")


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _bench_sample(scenario: str, runs: int, crash: Path) -> dict[str, Any]:
    from samples.sample_store import ensure_sample

    sample = ensure_sample(scenario)
    rounds: dict[str, list[Any]] = {
        "first": [],
        "all": [],
        "crash_bt": [],
        "crash_foreach": [],
        "drgn": [],
        "lsp": [],
    }
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("first", lambda: measure.adapter_first_picture(sample)),
        ("all", lambda: measure.adapter_all_stacks(sample)),
        ("crash_bt", lambda: measure.crash_run(crash, sample, ["bt"])),
        ("crash_foreach", lambda: measure.crash_run(crash, sample, ["foreach bt"])),
        ("drgn", lambda: measure.drgn_first_stack(sample)),
        ("lsp", lambda: measure.lsp_first_code_lens(sample)),
    ]
    for i in range(runs):
        for name, step in steps:
            t0 = time.perf_counter()
            rounds[name].append(step())
            _progress(f"{scenario} round {i + 1}/{runs}: {name} {time.perf_counter() - t0:.2f} s")
    first, every = rounds["first"], rounds["all"]
    tasks = every[0].thread_count
    crash_bt = _median([r.seconds for r in rounds["crash_bt"]])
    crash_foreach = _median([r.seconds for r in rounds["crash_foreach"]])
    assert crash_bt is not None and crash_foreach is not None
    notes = sorted({n for r in first for n in r.notes})
    if min(r.lenses for r in rounds["lsp"]) == 0:
        notes.append(f"the language server put no code lens on {measure.LENS_FILE}")
    return {
        "scenario": scenario,
        "tasks": tasks,
        "runs": runs,
        "first_picture": _median([r.first_picture for r in first]),
        "stopped": _median([r.stopped for r in first]),
        "threads": _median([r.threads for r in first + every]),
        "task_struct": _median([r.task_struct for r in first]),
        "array_page": _median([r.array_page for r in first]),
        "disassemble_cold": _median([r.disassemble_cold for r in first]),
        "disassemble_warm": _median([r.disassemble_warm for r in first]),
        "all_stacks": _median([r.all_stacks for r in every]),
        "stack_groups": _median([r.stack_groups for r in first]),
        "first_code_lens": _median([r.first_code_lens for r in rounds["lsp"]]),
        "lenses": min(r.lenses for r in rounds["lsp"]),
        "stacks_after_startup": _median([r.stacks_after_startup for r in every]),
        "adapter_rss_kib": max(r.peak_rss_kib for r in first + every),
        "crash_bt": crash_bt,
        "crash_foreach": crash_foreach,
        # crash's cost of 'foreach bt' beyond starting up and one bt.
        "crash_foreach_incremental": max(crash_foreach - crash_bt, 0.0),
        "crash_rss_kib": max(r.peak_rss_kib for r in rounds["crash_bt"] + rounds["crash_foreach"]),
        "drgn": _median([r.seconds for r in rounds["drgn"]]),
        "drgn_rss_kib": max(r.peak_rss_kib for r in rounds["drgn"]),
        "notes": notes,
    }


def _rows(result: dict[str, Any]) -> list[Row]:
    """The measured numbers of one sample as table rows, with their targets."""
    r = result
    tasks = r["tasks"]
    per_task_adapter = r["stacks_after_startup"] / tasks
    per_task_crash = r["crash_foreach_incremental"] / tasks
    return [
        Row("first picture: adapter (start → variables of the top frame)", r["first_picture"], "s"),
        Row("first picture: crash (start → end of first bt)", r["crash_bt"], "s"),
        Row("first picture: plain drgn script", r["drgn"], "s"),
        Row("first picture: adapter / crash", r["first_picture"] / r["crash_bt"], "×", 0.15),
        Row("first picture: adapter / plain drgn", r["first_picture"] / r["drgn"], "×", 2.0),
        Row("threads request", r["threads"] * 1000, "ms", 200.0),
        Row("all stacks incl. start-up: adapter", r["all_stacks"], "s"),
        Row("all stacks incl. start-up: crash start + foreach bt", r["crash_foreach"], "s"),
        Row("all stacks incl. start-up: adapter / crash", r["all_stacks"] / r["crash_foreach"], "×", 0.3),
        Row("per task after start-up: adapter", per_task_adapter * 1000, "ms"),
        Row("per task after start-up: crash (foreach bt − bt)", per_task_crash * 1000, "ms"),
        Row(
            "per task after start-up: adapter / crash",
            per_task_adapter / per_task_crash if per_task_crash else None,
            "×",
        ),
        Row("Kernel view: group every task's stack (vmcore/stackGroups, cold)", r["stack_groups"], "s"),
        Row(
            f"language server: first code lens on {measure.LENS_FILE}",
            r["first_code_lens"],
            "s",
        ),
        Row(
            "first code lens / Kernel view grouping",
            r["first_code_lens"] / r["stack_groups"] if r["stack_groups"] else None,
            "×",
            1.0,
        ),
        Row("expand a whole task_struct (init_task)", _ms(r["task_struct"]), "ms", 50.0),
        Row("expand a 4,096-element array page", _ms(r["array_page"]), "ms", 50.0),
        Row("disassemble 200 instructions, cold", _ms(r["disassemble_cold"]), "ms", 150.0),
        Row("disassemble 200 instructions, warm", _ms(r["disassemble_warm"]), "ms", 50.0),
        Row("peak RSS: adapter", r["adapter_rss_kib"] / 1024, "MiB"),
        Row("peak RSS: crash", r["crash_rss_kib"] / 1024, "MiB"),
        Row("peak RSS: plain drgn script", r["drgn_rss_kib"] / 1024, "MiB"),
        Row("peak RSS: adapter / crash", r["adapter_rss_kib"] / r["crash_rss_kib"], "×"),
    ]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _kept_analysis(path: Path) -> str:
    """The hand-written analysis section of an existing RESULTS.md, to keep under the new table."""
    try:
        previous = path.read_text()
    except OSError:
        return ""
    at = previous.find("\n" + ANALYSIS_HEADING)
    return "\n" + previous[at:].lstrip("\n") if at >= 0 else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds per sample (medians; at least 5)")
    parser.add_argument("--samples", default=",".join(DEFAULT_SAMPLES), help="comma-separated scenarios")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    from samples.crash_oracle import crash_binary, crash_version

    crash = crash_binary()
    started = time.monotonic()
    load_at_start = load_average()
    results = []
    for scenario in [s for s in args.samples.split(",") if s]:
        _progress(f"{scenario}: {args.runs} rounds")
        results.append(_bench_sample(scenario, args.runs, crash))
    tables = {r["scenario"]: (r, _rows(r)) for r in results}
    text = render(
        tables,
        machine=machine_description(load_at_start),
        crash_version=crash_version(crash),
        runs=args.runs,
        elapsed=time.monotonic() - started,
        drgn_script=measure.DRGN_SCRIPT,
    )
    print(text)
    args.output.write_text(text + _kept_analysis(args.output))
    _progress(f"written to {args.output}")
    missed = [(s, row) for s, (_r, rows) in tables.items() for row in rows if row.met is False]
    for scenario, row in missed:
        _progress(f"target missed on {scenario}: {row.name} = {row.formatted()} (target {row.target_text()})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
