"""Every bad launch input gets one clear error response (shown to the user), and the adapter keeps
serving: after all of them, the same process opens the real dump and shows the right stack."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import config_for, focus_index, stack_of
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(900)

_COPY_HINT = "copy the vmcore again"


def _readelf_build_id(path: Path) -> str:
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if "Build ID" in line)


def _launch_error(client: DapClient, config: dict[str, Any]) -> str:
    response = client.request("launch", config, timeout=300)
    assert not response["success"], f"launch unexpectedly succeeded for {config}"
    error = response["body"]["error"]
    assert error["showUser"] is True and error["format"] == response["message"]
    message: str = response["message"]
    assert "\n" not in message and "Traceback" not in message and "Internal adapter error" not in message
    assert "unknown compression method" not in message
    return message


def _truncated_copy(source: Path, target: Path, size: int) -> Path:
    with open(source, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read(size))
    return target


def test_bad_inputs_then_the_real_dump(sample_oops: Any, tmp_path: Path) -> None:
    sample = sample_oops
    release = sample.kernel_release
    dump_id = _readelf_build_id(sample.vmlinux)
    logs = tmp_path / "logs"
    logs.mkdir()
    with DapClient(logs) as client:
        client.initialize()

        missing = tmp_path / "nowhere" / "vmcore"
        m = _launch_error(client, config_for(sample, vmcore=str(missing)))
        assert m.startswith(f"Cannot open vmcore '{missing}': no such file (check 'vmcore' in launch.json;")

        m = _launch_error(client, config_for(sample, vmcore=str(tmp_path)))
        assert m.startswith(f"Cannot open vmcore '{tmp_path}': it is a directory (")

        if os.geteuid() == 0:  # root reads any mode: make the path itself unreadable
            unreadable = Path("/etc/passwd/vmcore")
            m = _launch_error(client, config_for(sample, vmcore=str(unreadable)))
            assert m.startswith(f"Cannot open vmcore '{unreadable}': Not a directory (")
        else:
            unreadable = tmp_path / "secret"
            shutil.copy(sample.vmcore, unreadable)
            unreadable.chmod(0)
            m = _launch_error(client, config_for(sample, vmcore=str(unreadable)))
            assert m.startswith(f"Cannot open vmcore '{unreadable}': Permission denied (")

        m = _launch_error(client, config_for(sample, vmcore="/etc/passwd"))
        assert m == (
            "Cannot open vmcore '/etc/passwd': not a kdump or ELF core file (check 'vmcore' in launch.json; "
            "vmcores are usually under /var/crash, and a 'vmcore-dmesg.txt' next to it is only the log)"
        )

        m = _launch_error(client, config_for(sample, vmcore=str(sample.vmlinux)))
        assert "it is an executable, not a core dump (is this the vmlinux?" in m

        # Truncated inside the kdump headers and page descriptors: refused from the headers alone.
        for size, what in [(3000, "ends inside the kdump sub-header"), (200_000, "page descriptors end at")]:
            cut = _truncated_copy(sample.vmcore, tmp_path / f"cut-{size}", size)
            m = _launch_error(client, config_for(sample, vmcore=str(cut)))
            assert m.startswith(f"Cannot open vmcore '{cut}': the file is truncated: it is {size} bytes")
            assert what in m and _COPY_HINT in m

        # No debug info where we were told to look: where, and which package.
        empty = tmp_path / "empty"
        empty.mkdir()
        m = _launch_error(client, config_for(sample, debugInfoDirectories=[str(empty)]))
        assert m.startswith(f"No debug info found for the dump's kernel {release}, build ID {dump_id}")
        assert str(empty) in m
        assert f"linux-image-{release}-dbg" in m and f"kernel-debuginfo-{release}" in m

        # A vmlinux whose build ID differs: refused with both IDs (an ordinary ELF, a kernel module).
        for other in (Path(shutil.which("ls") or "/bin/ls"), sample.debug_info[0]):
            other_id = _readelf_build_id(other)
            m = _launch_error(client, config_for(sample, vmlinux=str(other)))
            assert m.startswith(f"Cannot use vmlinux '{other}': its build ID {other_id} does not match")
            assert f"(build ID {dump_id})" in m

        m = _launch_error(client, config_for(sample, debugInfo=[str(tmp_path / "no-such.ko")]))
        assert "no such file or directory (check 'debugInfo' in launch.json)" in m
        m = _launch_error(client, config_for(sample, debugInfo=["/etc/passwd"]))
        assert "is not a kernel module" in m and "'debugInfo' in launch.json takes .ko" in m

        # Still serving: the real dump opens in the same process, with settings clients add ignored.
        good = config_for(
            sample,
            vmlinux=str(sample.vmlinux),
            python="/usr/bin/python3",
            adapterPath="/opt/vmcore-dap",
            logFile="/tmp/x.log",
            __sessionId="f00",
        )
        response = client.request("launch", good, timeout=300)
        assert response["success"], response
        client.wait_event("initialized")
        client.call("configurationDone")
        stopped = client.wait_event("stopped")["body"]
        frames = stack_of(client, stopped["threadId"])
        assert frames[focus_index(frames)]["name"] == sample.expected["function"]
        second = client.request("launch", good)
        assert not second["success"] and "is already open in this session" in second["message"]
        assert client.schema_errors == []


@pytest.mark.parametrize("kind", ["kdump", "elf"])
def test_truncated_in_the_page_data(sample_oops: Any, tmp_path: Path, kind: str) -> None:
    """Cut in the middle of the memory: said plainly, opened only if what is left can be read."""
    source = sample_oops.vmcore if kind == "kdump" else sample_oops.vmcore_elf
    size = source.stat().st_size
    cut = _truncated_copy(source, tmp_path / "vmcore", size // 2)
    logs = tmp_path / "logs"
    logs.mkdir()
    with DapClient(logs) as client:
        client.initialize()
        response = client.request("launch", config_for(sample_oops, vmcore=str(cut)), timeout=300)
        if not response["success"]:
            message = response["message"]
            assert message.startswith(
                f"Cannot open vmcore '{cut}': the vmcore is truncated: it is {size // 2} bytes"
            )
            assert "unknown compression method" not in message and _COPY_HINT in message
        else:
            client.wait_event("initialized")
            client.call("configurationDone")
            client.wait_event("stopped")
            important = [
                e["body"]["output"]
                for e in client.events
                if e["event"] == "output" and e["body"].get("category") == "important"
            ]
            assert any(f"the vmcore is truncated: it is {size // 2} bytes" in text for text in important)
        assert client.schema_errors == []
