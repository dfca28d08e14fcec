"""``vmcore-dap --check-launch``: the checks a client runs before starting a session, on real samples.

The same checks the ``launch`` request makes, without opening the dump: a sample's own configuration
has no problem; a vmlinux of another build (the sample's module), a module path that does not exist
and a source root that is a file are each named with their setting, worded for launch.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import REPO_ROOT
from tests.e2e._session import config_for

pytestmark = pytest.mark.timeout(600)


def _check(config: dict[str, Any]) -> list[dict[str, str]]:
    proc = subprocess.run(
        [sys.executable, "-m", "vmcore_dap", "--check-launch"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO_ROOT / "adapter"), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    problems: list[dict[str, str]] = json.loads(proc.stdout)["problems"]
    return problems


def test_a_samples_configuration_has_no_problem(sample: Any) -> None:
    assert _check(config_for(sample, vmlinux=str(sample.vmlinux))) == []


def test_problems_name_the_setting_in_launch_json(sample_oops: Any, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    config = config_for(
        sample_oops,
        vmlinux=str(sample_oops.debug_info[0]),  # the module: an ELF file with another build ID
        debugInfo=[str(tmp_path / "gone.ko")],
        sourceRoot=str(not_a_dir),
    )
    problems = {p["setting"]: p for p in _check(config)}
    assert set(problems) == {"vmlinux", "debugInfo", "sourceRoot"}, problems
    assert "does not match the dump's kernel" in problems["vmlinux"]["message"]
    assert "(check 'debugInfo' in launch.json)" in problems["debugInfo"]["message"]
    assert problems["sourceRoot"]["severity"] == "warning"
    assert "'sourceRoot' in launch.json" in problems["sourceRoot"]["message"]
