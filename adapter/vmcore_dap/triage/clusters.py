"""Dumps grouped by signature: which are the same bug, how often, on which kernels, since when.

The summary (``summary.json``, documented in ``docs/triage.md``) lists clusters biggest first, each
with its first and last dump time, its kernels and one representative dump: the most complete one
(not truncated, fewest warnings), the newest among equals. Dumps that could not be read are listed
apart, with the reason. The same summary is rendered as Markdown and as a terminal table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from vmcore_dap import __version__

__all__ = [
    "SUMMARY_SCHEMA",
    "SUMMARY_SCHEMA_VERSION",
    "summarize_reports",
    "summary_markdown",
    "summary_table",
]

SUMMARY_SCHEMA = "vmcore-dap/triage-summary"
SUMMARY_SCHEMA_VERSION = 1


def _representative(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The most complete dump (not truncated, fewest warnings); the newest among equals."""

    def flaws(report: dict[str, Any]) -> tuple[bool, int]:
        quality = report.get("quality") or {}
        return bool(quality.get("truncated")), len(quality.get("warnings") or [])

    newest_first = sorted(members, key=lambda r: (r.get("dump_time") or "", r["vmcore"]), reverse=True)
    return min(newest_first, key=flaws)  # min() keeps the first of equals


def _stack_lines(report: dict[str, Any]) -> list[str]:
    crashed = report.get("crashed_task") or {}
    lines = []
    for frame in crashed.get("stack") or []:
        where = f" ({frame['file'].rsplit('/', 1)[-1]}:{frame['line']})" if frame.get("file") else ""
        module = f" [{frame['module']}]" if frame.get("module") else ""
        lines.append(f"{frame['function']}{module}{where}")
    return lines


def _dump_entry(report: dict[str, Any]) -> dict[str, Any]:
    kernel = report.get("kernel") or {}
    crashed = report.get("crashed_task") or {}
    return {
        "vmcore": report["vmcore"],
        "report": report.get("report_file"),
        "markdown": report.get("markdown_file"),
        "dump_time": report.get("dump_time"),
        "kernel": kernel.get("release"),
        "crashed_pid": crashed.get("pid"),
        "crashed_comm": crashed.get("comm"),
        "launch": report.get("launch"),
    }


def summarize_reports(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Cluster ``reports`` (as written, with ``report_file``) by signature into the summary."""
    by_signature: dict[str, list[dict[str, Any]]] = {}
    failed = []
    count = 0
    for report in reports:
        count += 1
        signature = report.get("signature")
        if report.get("error") or not signature:
            failed.append(
                {"vmcore": report["vmcore"], "report": report.get("report_file"), "error": report["error"]}
            )
            continue
        by_signature.setdefault(signature["id"], []).append(report)
    clusters = []
    for members in by_signature.values():
        members.sort(key=lambda r: (r.get("dump_time") or "", r["vmcore"]))
        signature = members[0]["signature"]
        representative = _representative(members)
        times = [r["dump_time"] for r in members if r.get("dump_time")]
        clusters.append(
            {
                "signature": signature["id"],
                "title": signature["title"],
                "class": signature["class"],
                "frames": signature["frames"],
                "count": len(members),
                "first_dump_time": min(times, default=None),
                "last_dump_time": max(times, default=None),
                "kernels": sorted({(r.get("kernel") or {}).get("release") or "unknown" for r in members}),
                "representative": _dump_entry(representative),
                "representative_stack": _stack_lines(representative),
                "dumps": [_dump_entry(r) for r in members],
            }
        )
    clusters.sort(key=lambda c: (-c["count"], c["title"], c["signature"]))
    return {
        "schema": SUMMARY_SCHEMA,
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "generator": f"vmcore-dap {__version__}",
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dump_count": count,
        "failed_count": len(failed),
        "clusters": clusters,
        "failed": failed,
    }


def _short_time(iso: str | None) -> str:
    return iso.replace("T", " ").removesuffix("Z") if iso else "?"


def summary_markdown(summary: dict[str, Any]) -> str:
    """The summary for a bug tracker or a wiki page."""
    clusters = summary["clusters"]
    out = [
        f"## Triage of {summary['dump_count']} dumps: {len(clusters)} signatures"
        + (f", {summary['failed_count']} unreadable" if summary["failed_count"] else ""),
        "",
        "| dumps | signature | what | kernels | first | last | representative |",
        "|---:|---|---|---|---|---|---|",
    ]
    for c in clusters:
        rep = c["representative"]
        out.append(
            f"| {c['count']} | `{c['signature']}` | {c['title']} | {', '.join(c['kernels'])} | "
            f"{_short_time(c['first_dump_time'])} | {_short_time(c['last_dump_time'])} | "
            f"`{rep['vmcore']}`" + (f" ([report]({rep['markdown']}))" if rep.get("markdown") else "") + " |"
        )
    out.append("")
    for c in clusters:
        out += [f"### `{c['signature']}` {c['title']} (×{c['count']})", "", "```"]
        out += [line.replace("```", "ʼʼʼ") for line in c["representative_stack"] or ["(no crashed task)"]]
        out += ["```", ""]
    if summary["failed"]:
        out += ["### Dumps that could not be read", ""]
        out += [f"- `{f['vmcore']}`: {f['error']['message']}" for f in summary["failed"]]
        out.append("")
    return "\n".join(out)


def summary_table(summary: dict[str, Any], width: int | None = None) -> str:
    """The clusters as a plain-text table for the terminal, biggest first (lines cut at ``width``)."""
    header = ("DUMPS", "SIGNATURE", "WHAT", "FIRST", "LAST", "KERNELS")
    rows = [
        (
            str(c["count"]),
            c["signature"],
            c["title"],
            _short_time(c["first_dump_time"])[:16],
            _short_time(c["last_dump_time"])[:16],
            ",".join(c["kernels"]),
        )
        for c in summary["clusters"]
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [row[i].rjust(widths[i]) if i == 0 else row[i].ljust(widths[i]) for i in range(len(widths))]
        lines.append(("  ".join([*cells, row[-1]]))[:width].rstrip())  # [:None] keeps it whole
    lines += [f"unreadable: {f['vmcore']}: {f['error']['message']}"[:width] for f in summary["failed"]]
    return "\n".join(lines) + "\n"
