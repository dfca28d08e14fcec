"""A dump in makedumpfile's flattened format (``makedumpfile -F``, what kdump writes to a pipe or over
ssh) opens like the kdump-compressed one, and its vmlinux is still checked by build ID.

The flattened dump is made here from the ``sysrq-c`` sample's ELF vmcore by the host's makedumpfile,
with the filter level and compression kdump-tools uses (``-d 31``, lzo).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import config_for, stack_of, stopped_session
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def flattened(sample_sysrq: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    makedumpfile = shutil.which("makedumpfile")
    assert makedumpfile, "makedumpfile is not installed (make setup installs it)"
    target = tmp_path_factory.mktemp("flattened") / "vmcore"
    with open(target, "wb") as out:
        subprocess.run(
            [
                makedumpfile,
                "-F",
                "-l",
                "-d",
                "31",
                "-x",
                str(sample_sysrq.vmlinux),
                str(sample_sysrq.vmcore_elf),
            ],
            stdout=out,
            stderr=subprocess.PIPE,
            check=True,
            timeout=600,
        )
    assert target.read_bytes()[:16] == b"makedumpfile\0\0\0\0"  # the flattened format's signature
    return target


def _picture(client: DapClient, stopped: dict[str, Any]) -> dict[str, Any]:
    threads = client.call("threads")["threads"]
    frames = stack_of(client, stopped["body"]["threadId"])
    return {
        "stopped": {k: stopped["body"].get(k) for k in ("reason", "description", "text")},
        "threads": [t["name"] for t in threads],
        "stack": [(f["name"], f.get("line"), f.get("instructionPointerReference")) for f in frames],
    }


def test_flattened_dump_shows_what_the_compressed_one_shows(
    sample_sysrq: Any, flattened: Path, tmp_path: Path
) -> None:
    with stopped_session(sample_sysrq, tmp_path / "kdump") as (client, stopped):
        expected = _picture(client, stopped)
    with stopped_session(sample_sysrq, tmp_path / "flat", vmcore=str(flattened)) as (client, stopped):
        ours = _picture(client, stopped)
        summary = {f["name"]: f["value"] for f in client.call("vmcore/summary")["facts"]}
    assert ours == expected
    assert len(ours["threads"]) >= sample_sysrq.expected["min_tasks"]
    assert ours["stopped"]["description"].startswith("Kernel panic - not syncing: sysrq triggered crash")
    assert str(flattened) in summary["DUMPFILE"]


def test_flattened_dump_refuses_a_vmlinux_of_another_build(
    sample_sysrq: Any, flattened: Path, tmp_path: Path
) -> None:
    other = Path(shutil.which("ls") or "/bin/ls")  # an ELF file with another build ID
    with DapClient(tmp_path) as client:
        client.initialize()
        response = client.request(
            "launch", config_for(sample_sysrq, vmcore=str(flattened), vmlinux=str(other)), timeout=300
        )
        assert not response["success"]
        assert response["message"].startswith(f"Cannot use vmlinux '{other}': its build ID")
        assert "does not match" in response["message"]
        assert client.schema_errors == []
