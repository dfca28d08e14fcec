"""The idle-CPU meter that decides whether the stack prefetch starts on its own (``idle_cpus.py``)."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from vmcore_dap.dump.stacks import idle_cpus
from vmcore_dap.dump.stacks.idle_cpus import IdleMeter


def test_spare_cpus_lie_between_none_and_all_but_one() -> None:
    meter = IdleMeter()
    time.sleep(0.2)
    assert 0.0 <= meter.spare_cpus() <= (os.cpu_count() or 1) - 1


def _spin_for(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_cpus_kept_busy_by_other_processes_are_not_spare() -> None:
    """Other processes spinning on every CPU for the whole interval leave (nearly) nothing spare.
    (Threads share the GIL: one process per CPU.)"""
    spinners = [multiprocessing.Process(target=_spin_for, args=(0.6,)) for _ in range(os.cpu_count() or 1)]
    for spinner in spinners:
        spinner.start()
    time.sleep(0.1)
    meter = IdleMeter()
    time.sleep(0.3)
    spare = meter.spare_cpus()
    for spinner in spinners:
        spinner.join()
    assert spare < 0.5, spare


def test_without_proc_stat_nothing_is_idle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(idle_cpus, "_STAT", tmp_path / "no-stat")
    assert IdleMeter().spare_cpus() == 0.0
