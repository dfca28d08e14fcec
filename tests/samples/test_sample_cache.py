"""The sample cache prunes directories of older builders, never today's, and only idle ones after a build."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
if str(SAMPLES) not in sys.path:
    sys.path.insert(0, str(SAMPLES))

import sample_cache  # noqa: E402


def _make(path: Path, size: int, idle_days: float | None) -> Path:
    path.mkdir(parents=True)
    (path / "vmcore").write_bytes(b"\0" * size)
    if idle_days is not None:
        sample_cache.mark_used(path)
        then = time.time() - idle_days * 86400
        os.utime(path / sample_cache.USED_STAMP, (then, then))
    return path


def test_prune_keeps_todays_samples_and_recently_used_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VMCORE_DAP_CACHE", str(tmp_path))
    current = sample_cache.current_samples()
    today = _make(current["oops-null@deb12-6.1-amd64"], 1000, idle_days=30)  # old stamp, but today's builder
    arm = _make(current["sysrq-c@deb13-6.12-arm64+qemu-dump"], 10, idle_days=30)  # a matrix sample
    release = today.name.removeprefix("oops-null-").rsplit("-", 1)[0]
    old = _make(today.with_name(f"oops-null-{release}-000000000000"), 3000, idle_days=30)
    recent = _make(today.with_name(f"sysrq-c-{release}-111111111111"), 2000, idle_days=1)
    failed = _make(today.with_name(f"many-tasks-{release}-222222222222.failed"), 10, idle_days=None)
    os.utime(failed, (time.time() - 9 * 86400,) * 2)
    unrelated = tmp_path / "samples" / "notes"
    unrelated.mkdir()

    listed = {s.path: s for s in sample_cache.cached_samples(current)}
    assert set(listed) == {today, old, recent, failed, arm}
    assert listed[today].current and listed[arm].current and not listed[old].current
    assert listed[arm].scenario == "sysrq-c"
    assert listed[old].idle_days == pytest.approx(30, abs=0.1) and listed[old].size == 3000

    assert sample_cache.prune(7, dry_run=True, current=current) == [(failed, 10), (old, 3000)]
    assert old.exists() and failed.exists()
    assert sample_cache.prune(7, current=current) == [(failed, 10), (old, 3000)]
    assert not old.exists() and not failed.exists() and recent.exists() and today.exists()
    assert sample_cache.prune(None, current=current) == [(recent, 2000)]
    assert today.exists() and arm.exists() and unrelated.exists()
