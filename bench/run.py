"""``make bench``: vmcore-dap against ``crash`` and a plain drgn script, side by side, at three sizes.

    .venv/bin/python bench/run.py [--runs 5] [--samples sysrq-c,many-tasks,huge] [--output bench/RESULTS.md]

The samples are three sizes of the same kind of crash (``echo c > /proc/sysrq-trigger``): ``sysrq-c``
(≈350 tasks, 2 CPUs), ``many-tasks`` (≈5,000) and ``huge`` (≈50,000 tasks, 8 CPUs, 6 GiB; built on
first use, 3–10 minutes). Each round runs, one after the other on the same sample: the
adapter's first picture (and, in the same session, expanding a ``task_struct``, a 4,096-element
array page, the first page of the longest list and what its pointer notes cost, disassembling 200
instructions cold and warm), the adapter listing every thread's stack,
the Kernel view's first render in a fresh session, ``foreach bt`` in the Debug Console (first screen,
then cancelled), ``crash`` to the end of its first ``bt``, ``crash`` with ``foreach bt``, the plain
drgn script, and the language server's first code lens on ``kernel/sched/core.c`` (which reads every
task's stack from the same stack service as the Kernel view, so it must cost no more). Rounds
alternate, so a busy machine slows every contender alike; the medians of all rounds are compared as
ratios, each size with the next (the growth), and checked against the targets of issues 8, 16 (the
code lens), 17 (lists) and 18 (the sizes). The table goes to stdout and, with the machine's
description, to ``bench/RESULTS.md``. Exit status 1 when a target is missed. Then, unless
``--no-triage``, triage's dumps per minute (bench/triage_bench.py).
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

DEFAULT_SAMPLES = ("sysrq-c", "many-tasks", "huge")

#: The size at which issue 18's targets for 50,000 tasks are checked.
LARGEST = "huge"


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _mib(path: Path | None) -> float | None:
    return path.stat().st_size / 2**20 if path is not None and path.exists() else None


def _bench_sample(scenario: str, runs: int) -> dict[str, Any]:
    from samples.crash_oracle import crash_command
    from samples.sample_store import ensure_sample

    sample = ensure_sample(scenario)
    crash = crash_command(sample)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("first", lambda: measure.adapter_first_picture(sample)),
        ("all", lambda: measure.adapter_all_stacks(sample)),
        # A separate session, so neither finds the other's stacks read.
        ("all_pipelined", lambda: measure.adapter_all_stacks(sample, measure.PIPELINE_WINDOW)),
        ("kernel_view", lambda: measure.adapter_kernel_view(sample)),
        ("console", lambda: measure.adapter_console_foreach(sample)),
        ("crash_bt", lambda: measure.crash_run(crash.argv, sample, ["bt"])),
        ("crash_foreach", lambda: measure.crash_run(crash.argv, sample, ["foreach bt"])),
        ("drgn", lambda: measure.drgn_first_stack(sample)),
        ("lsp", lambda: measure.lsp_first_code_lens(sample)),
    ]
    rounds: dict[str, list[Any]] = {name: [] for name, _ in steps}
    for i in range(runs):
        for name, step in steps:
            t0 = time.perf_counter()
            rounds[name].append(step())
            _progress(f"{scenario} round {i + 1}/{runs}: {name} {time.perf_counter() - t0:.2f} s")
    first, every, view, console = rounds["first"], rounds["all"], rounds["kernel_view"], rounds["console"]
    piped = rounds["all_pipelined"]
    tasks = every[0].whole_thread_count
    crash_bt = _median([r.seconds for r in rounds["crash_bt"]])
    crash_foreach = _median([r.seconds for r in rounds["crash_foreach"]])
    assert crash_bt is not None and crash_foreach is not None
    notes = sorted({n for r in first for n in r.notes})
    if min(r.lenses for r in rounds["lsp"]) == 0:
        notes.append(f"the language server put no code lens on {measure.LENS_FILE}")
    if any(r.task_count != tasks for r in view):
        notes.append(f"vmcore/stackGroups grouped {sorted({r.task_count for r in view})} of {tasks} tasks")
    if not all(r.cancelled for r in console):
        notes.append(f"'{measure.CONSOLE_COMMAND}' was not cancelled in every round (it finished first)")
    adapter_sessions = first + every + piped + view + console
    return {
        "scenario": scenario,
        "crash": crash.describe,
        "tasks": tasks,
        "runs": runs,
        "vmcore_mib": _mib(sample.vmcore),
        "vmcore_elf_mib": _mib(sample.vmcore_elf) if sample.vmcore_elf != sample.vmcore else None,
        "first_picture": _median([r.first_picture for r in first]),
        "stopped": _median([r.stopped for r in first]),
        "threads_at_stop": _median([r.threads for r in first]),
        "threads": _median([r.whole_threads for r in every]),
        "threads_at_stop_count": min(r.thread_count for r in first),
        "listed_after_stop": _median([r.listed_after_stop for r in every]),
        "task_struct": _median([r.task_struct for r in first]),
        "array_page": _median([r.array_page for r in first]),
        "disassemble_cold": _median([r.disassemble_cold for r in first]),
        "disassemble_warm": _median([r.disassemble_warm for r in first]),
        "list_first_page": _median([r.list_first_page for r in first]),
        "list_entries": max(r.list_entries for r in first),
        "note_per_pointer": _median([r.note_per_pointer for r in first]),
        "all_stacks": _median([r.all_stacks for r in every]),
        "stacks_after_startup": _median([r.stacks_after_startup for r in every]),
        "all_stacks_pipelined": _median([r.all_stacks for r in piped]),
        "stacks_pipelined_after_startup": _median([r.stacks_after_startup for r in piped]),
        "kernel_view": _median([r.render for r in view]),
        **{
            f"kernel_view:{command}": _median([r.requests[command] for r in view])
            for command in measure.KERNEL_VIEW_REQUESTS
        },
        "stack_groups": _median([r.requests["vmcore/stackGroups"] for r in view]),
        "console_first_screen": _median([r.first_screen for r in console]),
        "console_cancel": _median([r.cancel for r in console]),
        "console_cancelled": all(r.cancelled for r in console),
        "first_code_lens": _median([r.first_code_lens for r in rounds["lsp"]]),
        "lenses": min(r.lenses for r in rounds["lsp"]),
        "adapter_rss_kib": max(r.peak_rss_kib for r in adapter_sessions),
        "lsp_rss_kib": max(r.peak_rss_kib for r in rounds["lsp"]),
        "crash_bt": crash_bt,
        "crash_foreach": crash_foreach,
        # crash's cost of 'foreach bt' beyond starting up and one bt.
        "crash_foreach_incremental": max(crash_foreach - crash_bt, 0.0),
        "crash_rss_kib": max(r.peak_rss_kib for r in rounds["crash_bt"] + rounds["crash_foreach"]),
        "drgn": _median([r.seconds for r in rounds["drgn"]]),
        "drgn_rss_kib": max(r.peak_rss_kib for r in rounds["drgn"]),
        "notes": notes,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _rows(r: dict[str, Any]) -> list[Row]:
    """The measured numbers of one sample as table rows, with their targets (issue 8's for every
    size; issue 18's at every size or at :data:`LARGEST`, as the issue says) and, for costs that
    must not grow with the task count, a growth target."""
    tasks = r["tasks"]
    per_task_adapter = r["stacks_after_startup"] / tasks
    per_task_crash = r["crash_foreach_incremental"] / tasks
    at_largest = (LARGEST,)
    return [
        Row("vmcore size: kdump-compressed (makedumpfile -c -d 31)", r["vmcore_mib"], "MiB", growth=True),
        Row("vmcore size: ELF (makedumpfile -E -d 31)", r["vmcore_elf_mib"], "MiB", growth=True),
        Row("first picture: adapter (start → variables of the top frame)", r["first_picture"], "s",
            growth=True, growth_target=1.2),
        Row("first picture: crash (start → end of first bt)", r["crash_bt"], "s", growth=True),
        Row("first picture: plain drgn script (open + crashed stack)", r["drgn"], "s", growth=True),
        Row("first picture: adapter / crash", r["first_picture"] / r["crash_bt"], "×", 0.15),
        Row("first picture: adapter / plain drgn", r["first_picture"] / r["drgn"], "×", 1.2),
        Row("threads at the stop: how many (a large dump: the head)", r["threads_at_stop_count"],
            "tasks"),
        Row("threads at the stop", r["threads_at_stop"] * 1000, "ms", growth=True),
        Row("stop → whole thread list (listed after the stop)", r["listed_after_stop"], "s", growth=True),
        Row("threads request, whole list", r["threads"] * 1000, "ms", 100.0, growth=True),
        Row("all stacks incl. start-up: adapter", r["all_stacks"], "s", growth=True),
        Row("all stacks incl. start-up: crash start + foreach bt", r["crash_foreach"], "s", growth=True),
        Row("all stacks incl. start-up: adapter / crash", r["all_stacks"] / r["crash_foreach"], "×", 0.15,
            target_at=at_largest),
        Row("per task after start-up: adapter", per_task_adapter * 1000, "ms", growth=True),
        Row("per task after start-up: crash (foreach bt − bt)", per_task_crash * 1000, "ms", growth=True),
        Row("per task after start-up: adapter / crash", _ratio(per_task_adapter, per_task_crash), "×"),
        Row(f"all stacks, {measure.PIPELINE_WINDOW} requests in flight, incl. start-up: adapter",
            r["all_stacks_pipelined"], "s", growth=True),
        Row(f"all stacks, {measure.PIPELINE_WINDOW} requests in flight: adapter / crash",
            _ratio(r["all_stacks_pipelined"], r["crash_foreach"]), "×"),
        Row(f"per task after start-up, {measure.PIPELINE_WINDOW} requests in flight: adapter",
            _ms(_ratio(r["stacks_pipelined_after_startup"], tasks)), "ms", growth=True),
        Row("Kernel view first render (summary + cpus + stackGroups + blocked)", r["kernel_view"], "s", 2.0,
            target_at=at_largest, growth=True),
        *(
            Row(f"Kernel view: {command}", _ms(r[f"kernel_view:{command}"]), "ms", growth=True)
            for command in measure.KERNEL_VIEW_REQUESTS
        ),
        Row(f"language server: first code lens on {measure.LENS_FILE}", r["first_code_lens"], "s", 2.0,
            target_at=at_largest, growth=True),
        Row("first code lens / Kernel view first render", _ratio(r["first_code_lens"], r["kernel_view"]), "×",
            1.0),
        Row(f"Debug Console '{measure.CONSOLE_COMMAND}': first screen ({measure.SCREEN_LINES} lines)",
            _ms(r["console_first_screen"]), "ms", 500.0, target_at=at_largest, growth=True),
        Row(f"Debug Console '{measure.CONSOLE_COMMAND}': cancel → response", _ms(r["console_cancel"]), "ms",
            500.0, failed=None if r["console_cancelled"] else "not cancelled: the command finished first"),
        Row("expand a whole task_struct (init_task)", _ms(r["task_struct"]), "ms", 50.0),
        Row("expand a 4,096-element array page", _ms(r["array_page"]), "ms", 50.0),
        Row("disassemble 200 instructions, cold", _ms(r["disassemble_cold"]), "ms", 150.0),
        Row("disassemble 200 instructions, warm", _ms(r["disassemble_warm"]), "ms", 50.0),
        Row("the longest list: how many entries", r["list_entries"], "entries"),
        Row("first page (100 entries) of the longest list", _ms(r["list_first_page"]), "ms", 50.0),
        Row("a pointer's note, per pointer of a list page", _ms(r["note_per_pointer"]), "ms", 0.2),
        Row("peak RSS: adapter", r["adapter_rss_kib"] / 1024, "MiB", growth=True, per_task=True),
        Row("peak RSS: crash", r["crash_rss_kib"] / 1024, "MiB", growth=True, per_task=True),
        Row("peak RSS: plain drgn script", r["drgn_rss_kib"] / 1024, "MiB", growth=True),
        Row("peak RSS: language server", r["lsp_rss_kib"] / 1024, "MiB", growth=True, per_task=True),
        Row("peak RSS: adapter / crash", r["adapter_rss_kib"] / r["crash_rss_kib"], "×", 0.8),
    ]  # fmt: skip


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
    parser.add_argument("--no-triage", action="store_true", help="skip bench/triage_bench.py")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    started = time.monotonic()
    load_at_start = load_average()
    results = []
    for scenario in [s for s in args.samples.split(",") if s]:
        _progress(f"{scenario}: {args.runs} rounds")
        results.append(_bench_sample(scenario, args.runs))
    tables = {r["scenario"]: (r, _rows(r)) for r in results}
    text = render(
        tables,
        machine=machine_description(load_at_start),
        crash_version="; ".join(sorted({r["crash"] for r in results})),
        runs=args.runs,
        elapsed=time.monotonic() - started,
        drgn_script=measure.DRGN_SCRIPT,
    )
    if not args.no_triage:
        from bench.triage_bench import measure_triage, render_triage

        text += "\n" + render_triage(measure_triage(args.runs, _progress))
    print(text)
    args.output.write_text(text + _kept_analysis(args.output))
    _progress(f"written to {args.output}")
    missed = [(s, row) for s, (_r, rows) in tables.items() for row in rows if row.met_at(s) is False]
    missed_growth = [row for row in _growth_misses(tables)]
    for scenario, row in missed:
        _progress(f"target missed on {scenario}: {row.name} = {row.formatted()} (target {row.target_text()})")
    for message in missed_growth:
        _progress(f"growth target missed: {message}")
    return 1 if missed or missed_growth else 0


def _growth_misses(tables: dict[str, tuple[dict[str, Any], list[Row]]]) -> list[str]:
    """Each cost with a growth target that grew more than it from one size to the next."""
    from bench.report import growth_steps

    return [
        f"{step.row_name}: ×{step.growth:.2f} from {step.before} to {step.after} (target ≤ ×{step.target:g})"
        for step in growth_steps(tables)
        if step.target is not None and step.growth is not None and step.growth > step.target
    ]


if __name__ == "__main__":
    sys.exit(main())
