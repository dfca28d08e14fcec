"""Measure what a second ``Program`` on the same dump costs: ``python -m vmcore_dap.lsp.measure CONFIG``.

``CONFIG`` is a launch.json (its first configuration is used) or a bare launch configuration. Prints
one JSON object: seconds and resident memory (MiB) after opening the dump, after unwinding every
task, and after a ctags lookup; the numbers behind ``docs/lsp.md``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from vmcore_dap.lsp.dump_session import DumpSession
from vmcore_dap.lsp.settings import launch_config_from

__all__ = ["main"]


def _rss_mib(field: str = "VmRSS") -> float:
    """Resident memory from ``/proc/self/status``: ``VmRSS``, or ``RssAnon`` (private to the process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    """Open the dump as the language server does and report time and memory per step."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vmcore_dap.lsp.measure LAUNCH_JSON", file=sys.stderr)
        return 2
    raw = json.loads(Path(args[0]).read_text())
    options = raw["configurations"][0] if "configurations" in raw else raw
    config = launch_config_from(options)
    if config is None:
        print(f"{args[0]}: no 'vmcore' setting found", file=sys.stderr)
        return 2
    report: dict[str, float] = {"rss_start_mib": _rss_mib()}
    start = time.monotonic()
    session = DumpSession(config)
    report["open_s"] = time.monotonic() - start
    report["rss_after_open_mib"] = _rss_mib()
    report["anon_after_open_mib"] = _rss_mib("RssAnon")
    start = time.monotonic()
    stacks = session.stacks
    stacks.function_index()
    report["unwind_all_s"] = time.monotonic() - start
    report["tasks"] = len(stacks.tasks)
    report["unwound"] = stacks.unwound
    report["rss_after_stacks_mib"] = _rss_mib()
    report["anon_after_stacks_mib"] = _rss_mib("RssAnon")
    start = time.monotonic()
    session.fault()
    report["fault_s"] = time.monotonic() - start
    print(json.dumps({k: round(v, 3) for k, v in report.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
