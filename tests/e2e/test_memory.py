"""readMemory against drgn reading the same dump directly, on every sample.

The crashed task's ``task_struct`` (address from crash's ``ps``) must come back byte for byte; a page
that makedumpfile excluded must come back as ``unreadableBytes`` after the readable prefix.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import drgn
import pytest
from samples.sample_store import launch_configuration
from tests.conftest import answers_for
from tests.helpers.crash_parse import parse_ps
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def client(sample: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DapClient]:
    dap = DapClient(tmp_path_factory.mktemp(f"memory-{sample.scenario}"))
    try:
        dap.launch_and_stop(launch_configuration(sample)["configurations"][0])
        yield dap
        assert not dap.schema_errors, dap.schema_errors
    finally:
        dap.close()


@pytest.fixture(scope="module")
def prog(sample: Any) -> drgn.Program:
    """drgn on the same dump, independently of the adapter."""
    p = drgn.Program()
    p.set_core_dump(str(sample.vmcore))
    p.set_enabled_debug_info_finders([])
    main, _ = next(p.loaded_modules())
    main.try_file(str(sample.vmlinux))
    return p


def _read(client: DapClient, address: int, count: int) -> tuple[bytes, int]:
    body = client.call("readMemory", {"memoryReference": f"{address:#x}", "count": count})
    assert int(body["address"], 16) == address
    return base64.b64decode(body.get("data", "")), body.get("unreadableBytes", 0)


def test_task_struct_equals_drgn(client: DapClient, prog: drgn.Program, sample: Any) -> None:
    rows = parse_ps(answers_for(sample)["ps"])
    task = next(r.task for r in rows if r.pid == sample.expected["crashed_pid"])
    size = drgn.sizeof(prog.type("struct task_struct"))
    data, unreadable = _read(client, task, size)
    assert unreadable == 0
    assert data == prog.read(task, size)


def test_offset_argument(client: DapClient, prog: drgn.Program) -> None:
    address = prog.symbol("linux_banner").address
    body = client.call("readMemory", {"memoryReference": f"{address - 8:#x}", "offset": 8, "count": 14})
    assert base64.b64decode(body["data"]) == b"Linux version "


def _excluded_page(prog: drgn.Program) -> int:
    """The first direct-map page of RAM that the dump does not contain (makedumpfile -d 31 drops free
    and zero pages, so a 1 GiB guest has plenty)."""
    from drgn.helpers.linux.mm import pfn_to_virt

    max_pfn = int(prog["max_pfn"])
    for pfn in range(0x1000, max_pfn):
        address = int(pfn_to_virt(prog, pfn))
        try:
            prog.read(address, 1)
        except drgn.FaultError:
            return address
    raise AssertionError("no excluded page in the dump: was it written with makedumpfile -d 31?")


def test_excluded_page_returns_readable_prefix_and_unreadable_bytes(
    client: DapClient, prog: drgn.Program
) -> None:
    page = _excluded_page(prog)
    data, unreadable = _read(client, page - 16, 48)
    assert data == prog.read(page - 16, 16)
    assert unreadable == 32
    data, unreadable = _read(client, page, 64)
    assert data == b"" and unreadable == 64


def test_zero_count_probe_succeeds(client: DapClient) -> None:
    body = client.call("readMemory", {"memoryReference": "0x0", "count": 0})
    assert body["address"] == "0x0" and base64.b64decode(body.get("data", "")) == b""


def test_unmapped_address(client: DapClient) -> None:
    data, unreadable = _read(client, 0x10, 32)
    assert data == b"" and unreadable == 32


def test_write_memory_is_refused_and_not_advertised(client: DapClient) -> None:
    response = client.request("writeMemory", {"memoryReference": "0x1000", "data": "AA=="})
    assert not response["success"]
    assert "read-only" in response["message"]


def test_capabilities(tmp_path: Any) -> None:
    with DapClient(tmp_path) as dap:
        capabilities = dap.initialize()
        assert capabilities.get("supportsReadMemoryRequest") is True
        assert capabilities.get("supportsDisassembleRequest") is True
        assert not capabilities.get("supportsWriteMemoryRequest")
        assert not capabilities.get("supportsInstructionBreakpoints")
