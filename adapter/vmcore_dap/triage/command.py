"""``vmcore-dap triage [--output DIR] [--debug-info-dir DIR]… [--scheduler ADDRESS] PATH…``.

Writes, in ``DIR``: ``<dump>.json`` and ``<dump>.md`` per dump (:mod:`.report`; the Markdown is the
adapter's "Copy crash report"), ``summary.json`` and ``summary.md`` (:mod:`.clusters`), and prints
the clusters as a table on stdout. Progress goes to stderr: a bar on a terminal, a line per dump
otherwise, or JSON lines (``--progress json``, what the VS Code extension reads). Exit status: 0
when every dump was triaged (a dump that cannot be read still gets its report), 1 when no vmcore
was found, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from vmcore_dap.errors import UserError
from vmcore_dap.triage.analysis import TriageOptions
from vmcore_dap.triage.clusters import summarize_reports, summary_markdown, summary_table
from vmcore_dap.triage.discovery import find_vmcores
from vmcore_dap.triage.report import SCHEMA_VERSION
from vmcore_dap.triage.results_cache import cache_key, cached_report, report_stem
from vmcore_dap.triage.runners import default_jobs, run_dask, run_local

__all__ = ["main"]

DEFAULT_OUTPUT = "vmcore-triage"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="vmcore-dap triage",
        description=(
            "Triage many kernel crash dumps: a JSON and a Markdown report per dump, a crash signature "
            "that stays the same across kernel builds, and the dumps clustered by signature."
        ),
        epilog=f"Report format (schema version {SCHEMA_VERSION}): docs/triage.md.",
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="vmcore files, or directories to search"
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        default=Path(DEFAULT_OUTPUT),
        metavar="DIR",
        help=f"where the reports and the summary go (default: ./{DEFAULT_OUTPUT}); it also caches them",
    )
    parser.add_argument(
        "--debug-info-dir",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        dest="debug_info_dirs",
        help="also look here for debug info by build ID: the vmlinux and module .ko files (repeatable)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on this Dask distributed scheduler (e.g. tcp://10.0.0.5:8786) instead of local processes",
    )
    parser.add_argument(
        "--jobs", "-j", type=int, metavar="N", help="local worker processes (default: one per CPU)"
    )
    parser.add_argument(
        "--force", action="store_true", help="read every dump again, even if its report is current"
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "json", "none"),
        default="auto",
        help="how progress is shown on stderr (default: a bar on a terminal, else a line per dump)",
    )
    return parser.parse_args(argv)


class _Progress:
    """Progress on stderr, one of: a redrawn bar, a line per dump, JSON lines, nothing."""

    def __init__(self, style: str, total: int, stream: TextIO = sys.stderr) -> None:
        if style == "auto":
            style = "bar" if stream.isatty() else "lines"
        self.style, self.total, self.stream, self.done = style, total, stream, 0
        self.start = time.monotonic()

    def event(self, kind: str, **fields: Any) -> None:
        if self.style == "json":
            print(json.dumps({"event": kind, **fields}), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.style == "json":
            self.event("message", text=text)
        elif self.style != "none":
            print(text, file=self.stream, flush=True)

    def advance(self, report: dict[str, Any], cached: bool) -> None:
        self.done += 1
        signature = report.get("signature") or {}
        what = "unreadable" if report.get("error") else signature.get("title", "?")
        how = "cached" if cached else f"{(report.get('timings') or {}).get('total', 0):.1f} s"
        if self.style == "json":
            self.event(
                "dump",
                done=self.done,
                total=self.total,
                vmcore=report["vmcore"],
                cached=cached,
                signature=signature.get("id"),
                title=what,
            )
        elif self.style == "lines":
            print(
                f"[{self.done}/{self.total}] {report['vmcore']}: {what} ({how})", file=self.stream, flush=True
            )
        elif self.style == "bar":
            width = 30
            filled = width * self.done // max(self.total, 1)
            rate = self.done / max(time.monotonic() - self.start, 1e-6) * 60
            line = (
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} dumps, {rate:.1f}/min"
            )
            print(line, end="\n" if self.done == self.total else "", file=self.stream, flush=True)


def _write(path: Path, text: str) -> None:
    """Write ``text`` so a reader (or a crash) never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def _store(output: Path, report: dict[str, Any], key: dict[str, Any]) -> dict[str, Any]:
    """Write a fresh report and its Markdown; return it as written (with its file names)."""
    stem = report_stem(Path(report["vmcore"]))
    markdown = report.pop("markdown", None)
    report["cache_key"] = key
    report["report_file"] = f"{stem}.json"
    report["markdown_file"] = f"{stem}.md"
    if markdown is None:
        error = (report.get("error") or {}).get("message", "no report")
        markdown = f"## Kernel crash dump `{report['vmcore']}` could not be read\n\n{error}\n"
    _write(output / report["markdown_file"], markdown)
    _write(output / report["report_file"], json.dumps(report, indent=1) + "\n")
    return report


def run(options: argparse.Namespace) -> int:
    for directory in options.debug_info_dirs:
        if not directory.is_dir():
            raise UserError(f"--debug-info-dir '{directory}': no such directory")
    output: Path = options.output.absolute()
    output.mkdir(parents=True, exist_ok=True)
    debug_dirs = tuple(d.absolute() for d in options.debug_info_dirs)
    triage = TriageOptions(debug_info_dirs=debug_dirs)
    vmcores = find_vmcores(options.paths)
    progress = _Progress(options.progress, len(vmcores))
    reports: dict[str, dict[str, Any]] = {}
    keys = {str(v): cache_key(v, debug_dirs) for v in vmcores}
    todo = []
    for vmcore in vmcores:
        previous = None if options.force else cached_report(output, keys[str(vmcore)])
        if previous is None:
            todo.append(vmcore)
        else:
            reports[str(vmcore)] = previous
            progress.advance(previous, cached=True)
    progress.event("start", total=len(vmcores), cached=len(reports), output=str(output))

    def on_result(report: dict[str, Any]) -> None:
        stored = _store(output, report, keys[report["vmcore"]])
        reports[stored["vmcore"]] = stored
        progress.advance(stored, cached=False)

    if todo:
        if options.scheduler:
            run_dask(todo, triage, options.scheduler, on_result, announce=progress.message)
        else:
            run_local(todo, triage, options.jobs or default_jobs(), on_result)
    summary = summarize_reports(reports[str(v)] for v in vmcores)
    _write(output / "summary.json", json.dumps(summary, indent=1) + "\n")
    _write(output / "summary.md", summary_markdown(summary))
    progress.event("done", summary=str(output / "summary.json"), clusters=len(summary["clusters"]))
    if not vmcores:
        print(f"vmcore-dap triage: no vmcore found in {', '.join(map(str, options.paths))}", file=sys.stderr)
        return 1
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    sys.stdout.write(summary_table(summary, width))
    return 0


def main(argv: list[str]) -> int:
    """Run ``vmcore-dap triage`` with ``argv`` (the arguments after ``triage``); returns the exit status."""
    options = _parse(argv)
    try:
        return run(options)
    except UserError as exc:
        print(f"vmcore-dap triage: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
