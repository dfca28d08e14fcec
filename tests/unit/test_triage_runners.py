"""The local runner's process handling on files that are not dumps (no vmcore needed).

Each file is read in a real spawned process by the real :func:`triage_dump`, which answers quickly
with an ``unreadable`` report: what is checked here is the runner's side, one report per path and
no process left behind, whatever the caller does. Deaths of processes reading real dumps, at birth,
mid-dump and on their own, are tested end to end in tests/e2e/test_triage.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from vmcore_dap.triage.analysis import TriageOptions
from vmcore_dap.triage.runners import run_local

pytestmark = pytest.mark.timeout(120)


def _children() -> list[int]:
    """This process's child processes (a spawned worker, or multiprocessing's resource tracker)."""
    me = os.getpid()
    return [int(c) for c in Path(f"/proc/{me}/task/{me}/children").read_text().split()]


def _workers() -> list[int]:
    """The spawned workers among this process's children (not the resource tracker)."""
    workers = []
    for child in _children():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            continue
    return workers


def _not_dumps(directory: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = directory / f"notes-{i}.txt"
        path.write_text(f"not a vmcore {i}\n")
        paths.append(path)
    return paths


def test_every_path_gets_one_report_and_no_process_stays(tmp_path: Path) -> None:
    paths = _not_dumps(tmp_path, 5)
    reports: list[dict[str, Any]] = []
    run_local(paths, TriageOptions(), 2, reports.append)
    assert sorted(r["vmcore"] for r in reports) == sorted(map(str, paths))
    for report in reports:
        assert report["error"]["kind"] == "unreadable", report["error"]
        assert "not a kdump or ELF core file" in report["error"]["message"]
    assert _workers() == []


def test_a_caller_that_fails_ends_the_run_and_its_processes(tmp_path: Path) -> None:
    """``on_result`` raising (a full disk, Ctrl-C) ends the run there; the processes still reading
    are ended, not left behind."""
    paths = _not_dumps(tmp_path, 4)

    def full_disk(report: dict[str, Any]) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        run_local(paths, TriageOptions(), 2, full_disk)
    assert _workers() == []
