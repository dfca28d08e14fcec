"""A vmlinux kept beside the vmcore is found by build ID, with no launch.json setting at all.

That is how dumps travel (``/var/crash/<date>/`` with ``vmlinux-<release>``, or a folder opened in VS
Code with both files): F5 on such a folder must reach the crashed task.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(300)


def _folder(tmp_path: Path, sample: Any, vmlinux_name: str, vmlinux_target: Path) -> Path:
    folder = tmp_path / "crash-2026-11-26"
    folder.mkdir()
    os.symlink(sample.vmcore, folder / "vmcore")
    os.symlink(vmlinux_target, folder / vmlinux_name)
    return folder


def test_vmlinux_beside_the_vmcore_is_found(sample_oops: Any, tmp_path: Path) -> None:
    folder = _folder(tmp_path, sample_oops, f"vmlinux-{sample_oops.kernel_release}", sample_oops.vmlinux)
    empty = tmp_path / "no-debug-here"
    empty.mkdir()
    config = {
        "vmcore": str(folder / "vmcore"),
        "debugInfoDirectories": [str(empty)],
        "debugInfo": [str(p) for p in sample_oops.debug_info],
    }
    with DapClient(tmp_path) as client:
        stopped = client.launch_and_stop(config)
        assert stopped["body"]["reason"] == "exception"
        frames = client.call("stackTrace", {"threadId": stopped["body"]["threadId"]})["stackFrames"]
        assert frames[0]["name"].startswith(sample_oops.expected["function"])
        assert client.schema_errors == [], client.schema_errors[:3]


def test_a_vmlinux_of_another_build_beside_it_is_passed_over(sample_oops: Any, tmp_path: Path) -> None:
    folder = _folder(tmp_path, sample_oops, "vmlinux", Path("/bin/ls"))
    empty = tmp_path / "no-debug-here"
    empty.mkdir()
    with DapClient(tmp_path) as client:
        client.initialize()
        response = client.request(
            "launch", {"vmcore": str(folder / "vmcore"), "debugInfoDirectories": [str(empty)]}
        )
        assert not response["success"]
        message = response["message"]
        assert str(folder) in message and str(empty) in message, message  # where it looked
        assert "build ID" in message and "vmlinux" in message, message
        assert client.proc.poll() is None
