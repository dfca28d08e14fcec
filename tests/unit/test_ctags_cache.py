"""The ctags index cache: a reused index is stamped, and building a new one removes idle ones only."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from vmcore_dap.lsp import ctags


def _aged(path: Path, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_building_an_index_prunes_idle_indexes_and_reuse_stamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shutil.which("ctags"), "universal-ctags is installed by make setup"
    monkeypatch.setenv("VMCORE_DAP_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "a.c").write_text("struct lab { int x; };\nint lab_count;\n")
    first = ctags.build_tags(tree)
    index = ctags.TagsFile(first, tree)
    assert [t.name for t in index.lookup("lab_count")] == ["lab_count"]
    index.close()
    _aged(first, ctags.IDLE_DAYS + 1)
    assert ctags.build_tags(tree) == first  # reused, and stamped as used now
    assert time.time() - first.stat().st_mtime < 60

    idle = tmp_path / "cache" / "ctags" / "0000000000000000"
    idle.mkdir()
    (idle / "tags").write_text("")
    _aged(idle / "tags", ctags.IDLE_DAYS + 1)
    recent = tmp_path / "cache" / "ctags" / "1111111111111111"
    recent.mkdir()
    (recent / "tags").write_text("")
    _aged(recent / "tags", ctags.IDLE_DAYS - 1)
    building = tmp_path / "cache" / "ctags" / "2222222222222222"  # another process, no tags yet
    building.mkdir()

    (tree / "b.c").write_text("int lab_other;\n")  # a changed tree: a new index is built
    second = ctags.build_tags(tree)
    assert second != first
    assert not idle.exists()
    assert recent.exists() and building.exists() and first.exists()
