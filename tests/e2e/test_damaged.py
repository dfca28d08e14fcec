"""Damaged and hostile dumps: the adapter says what is broken, shows what it can, and never hangs.

Each damaged dump is a copy of a real sample's ELF vmcore (``makedumpfile -E``) in ``tmp_path``,
patched at addresses found with drgn on the intact dump: a page-table page zeroed, a list made to
cycle, a task's name overwritten with control characters and invalid UTF-8, the file cut short.
Every test has a timeout, and every request a shorter one, so a hang is a failure, not a stuck run.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import drgn
import pytest
from drgn.helpers.linux.pid import find_task, for_each_task
from tests.e2e._session import config_for, parse_thread_name, stack_of
from tests.helpers.dap_client import REPO, DapClient
from tests.helpers.elf_patch import copy_elf, elf_loads, open_elf, patch_phys, phys_of

pytestmark = pytest.mark.timeout(300)

#: Longest any single request may take on a damaged dump (a hang fails well before the test timeout).
REQUEST_TIMEOUT = 90


@contextmanager
def _session(
    sample: Any, vmcore: Path, tmp_path: Path
) -> Iterator[tuple[DapClient, dict[str, Any] | None, str]]:
    """Launch on ``vmcore``; yield the client, the ``stopped`` body (``None`` if launch was refused)
    and the launch error message (``""`` if it succeeded)."""
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    with DapClient(logs) as client:
        client.initialize()
        response = client.request("launch", config_for(sample, vmcore=str(vmcore)), timeout=REQUEST_TIMEOUT)
        if not response["success"]:
            message = response["message"]
            assert "Internal adapter error" not in message and "Traceback" not in message, message
            yield client, None, message
        else:
            client.wait_event("initialized", timeout=REQUEST_TIMEOUT)
            client.call("configurationDone", timeout=REQUEST_TIMEOUT)
            stopped = client.wait_event("stopped", timeout=REQUEST_TIMEOUT)["body"]
            yield client, stopped, ""
        assert client.schema_errors == [], client.schema_errors


def _outputs(client: DapClient) -> str:
    return "".join(e["body"]["output"] for e in client.events if e["event"] == "output")


def _threads(client: DapClient) -> list[dict[str, Any]]:
    threads: list[dict[str, Any]] = client.call("threads", timeout=REQUEST_TIMEOUT)["threads"]
    return threads


def _thread_of_pid(client: DapClient, pid: int) -> int:
    for thread in _threads(client):
        if parse_thread_name(thread["name"])["pid"] == pid:
            return int(thread["id"])
    raise AssertionError(f"no thread for PID {pid}")


# -- truncation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cut",
    ["elf-header", "program-headers", "notes", "10%", "60%", "99%"],
)
def test_truncated_elf_at_several_points(sample_oops: Any, tmp_path: Path, cut: str) -> None:
    """Cut anywhere: either refused with 'truncated' and the hint, or opened with the warning; the
    crashed task's stack or a clear error, never a hang."""
    source = sample_oops.vmcore_elf
    size = source.stat().st_size
    loads = elf_loads(source)
    first_data = min(offset for _p, offset, _s in loads)
    at = {
        "elf-header": 40,
        "program-headers": 64 + 56 + 20,
        "notes": (64 + first_data) // 2,
        "10%": size // 10,
        "60%": size * 6 // 10,
        "99%": size * 99 // 100,
    }[cut]
    vmcore = tmp_path / "vmcore.elf"
    with open(source, "rb") as src, open(vmcore, "wb") as dst:
        dst.write(src.read(at))
    with _session(sample_oops, vmcore, tmp_path) as (client, stopped, error):
        if stopped is None:
            assert error.startswith(f"Cannot open vmcore '{vmcore}': "), error
            assert "truncated" in error or "not a kdump or ELF core file" in error, error
            return
        assert f"the vmcore is truncated: it is {at} bytes" in _outputs(client)
        body = client.request("stackTrace", {"threadId": stopped["threadId"]}, timeout=REQUEST_TIMEOUT)
        if body["success"]:
            assert body["body"]["stackFrames"], "an empty stack says nothing"
        else:
            assert "cannot read memory at 0x" in body["message"], body["message"]
        assert len(_threads(client)) >= 1


# -- page tables -------------------------------------------------------------------------------------


def _pte_table_phys(prog: drgn.Program, address: int) -> int | None:
    """Physical address of the last-level page table (PTE page) mapping ``address`` (x86-64, 4-level),
    or ``None`` if a huge page maps it (the kernel image, the direct map)."""
    table = phys_of(prog, prog["init_mm"].pgd.value_())
    for shift in (39, 30, 21):
        entry = int.from_bytes(prog.read(table + ((address >> shift) & 511) * 8, 8, True), "little")
        assert entry & 1, f"level {shift} entry for {address:#x} not present"
        if entry & 0x80:
            return None
        table = entry & 0x000F_FFFF_FFFF_F000
    return table


def test_zeroed_page_table_region(sample_oops: Any, tmp_path: Path) -> None:
    """A zeroed page-table page: the tasks whose (vmalloc'ed) stacks it mapped show why they cannot be
    unwound; the crashed task and the rest of the dump still work."""
    expected = sample_oops.expected
    prog = open_elf(sample_oops)
    crashed_stack = find_task(prog, expected["crashed_pid"]).stack.value_()
    # Where vmalloc put each stack is the allocator's choice (stacks are cached and reused): the
    # scenario's blocked tasks first, else any other task whose stack a different PTE page maps.
    scenario_pids = expected["d_state_pids"] + [expected["mutex_holder_pid"]]
    others = sorted(t.pid.value_() for t in for_each_task(prog) if t.pid.value_() not in scenario_pids)
    victim_pid = victim_table = None
    for pid in scenario_pids + others:
        stack = find_task(prog, pid).stack.value_()
        table = _pte_table_phys(prog, stack)  # None: in the kernel image (init_task), huge pages
        if stack >> 21 != crashed_stack >> 21 and table is not None:
            victim_pid, victim_table, victim_stack = pid, table, stack
            break
    assert victim_pid is not None, "every task's stack shares the crashed task's page table"
    vmcore = copy_elf(sample_oops, tmp_path)
    patch_phys(vmcore, victim_table, bytes(4096))

    with _session(sample_oops, vmcore, tmp_path) as (client, stopped, error):
        assert stopped is not None, error
        crashed = stack_of(client, stopped["threadId"])
        assert any(f["name"] == expected["function"] for f in crashed)
        frames = stack_of(client, _thread_of_pid(client, victim_pid))
        assert frames and frames[0].get("presentationHint") == "label"
        assert "cannot read memory at 0x" in frames[0]["name"] or "cannot unwind" in frames[0]["name"]
        # The address that failed is the victim's own stack, whose page table was cleared.
        failed = [int(a, 16) for a in re.findall(r"0x[0-9a-f]+", frames[0]["name"])]
        assert any(victim_stack <= a < victim_stack + (1 << 21) for a in failed), (
            frames[0]["name"],
            hex(victim_stack),
        )
        # Reading the stack directly says which address failed.
        memory = client.request(
            "readMemory", {"memoryReference": f"{victim_stack:#x}", "count": 64}, timeout=REQUEST_TIMEOUT
        )
        if memory["success"]:
            assert memory["body"].get("unreadableBytes", 0) == 64
        else:
            assert "cannot read memory at" in memory["message"]


# -- corrupted lists ---------------------------------------------------------------------------------


def test_task_list_cycle(sample_oops: Any, tmp_path: Path) -> None:
    """``init_task.tasks`` made to cycle without returning to its head: the thread list (built from the
    PID table) is complete and the console's task commands finish."""
    prog = open_elf(sample_oops)
    init_task = prog["init_task"]
    first = init_task.tasks.next.value_()
    # The first task on the list points back to itself: a walk from init_task never returns.
    vmcore = copy_elf(sample_oops, tmp_path)
    patch_phys(vmcore, phys_of(prog, first), first.to_bytes(8, "little"))
    with _session(sample_oops, vmcore, tmp_path) as (client, stopped, error):
        assert stopped is not None, error
        pids = {parse_thread_name(t["name"])["pid"] for t in _threads(client)}
        assert len(pids) >= sample_oops.expected["min_tasks"] - 1
        for line in ("ps", "foreach bt"):
            t0 = time.monotonic()
            response = client.request(
                "evaluate", {"expression": line, "context": "repl", "frameId": None}, timeout=REQUEST_TIMEOUT
            )
            assert time.monotonic() - t0 < REQUEST_TIMEOUT
            assert "Internal adapter error" not in response.get("message", "")


def _xa_node_with_free_slot(prog: drgn.Program) -> tuple[int, int]:
    """A node of the PID table's XArray and the address of one of its empty slots."""
    xa = prog["init_pid_ns"].idr.idr_rt
    head = xa.xa_head.value_()
    assert head & 3 == 2, "the PID table has a single entry, no node to corrupt"
    node = drgn.Object(prog, "struct xa_node *", head - 2)
    for i in range(len(node.slots)):
        if not node.slots[i].value_():
            return node.value_(), node.slots[i].address_
    raise AssertionError("the PID table's root node has no empty slot")


def test_pid_table_cycle(sample_oops: Any, tmp_path: Path) -> None:
    """An empty slot of the PID table's root node made to point at the root node itself: the walk is
    bounded, the adapter says the table is corrupt, and lists each task once."""
    prog = open_elf(sample_oops)
    node, slot = _xa_node_with_free_slot(prog)
    vmcore = copy_elf(sample_oops, tmp_path)
    patch_phys(vmcore, phys_of(prog, slot), (node | 2).to_bytes(8, "little"))
    with _session(sample_oops, vmcore, tmp_path) as (client, stopped, error):
        assert stopped is not None, error
        threads = _threads(client)
        pids = [parse_thread_name(t["name"])["pid"] for t in threads]
        assert len(threads) >= sample_oops.expected["min_tasks"]
        assert len([p for p in pids if p != 0]) == len({p for p in pids if p != 0}), "a task listed twice"
        assert re.search(r"PID table .*(corrupt|cycle)", _outputs(client)), _outputs(client)


def test_module_list_cycle(sample_oops: Any, tmp_path: Path) -> None:
    """The labbug module's ``list.next`` pointing at itself: the module walk is bounded, the adapter
    says the module list is corrupt, and tasks and stacks still load."""
    prog = open_elf(sample_oops)
    from drgn.helpers.linux.module import find_module

    module = find_module(prog, "labbug")
    assert module, "labbug is not loaded in the oops-null sample"
    own = module.list.address_of_().value_()
    vmcore = copy_elf(sample_oops, tmp_path)
    patch_phys(vmcore, phys_of(prog, module.list.next.address_of_().value_()), own.to_bytes(8, "little"))
    with _session(sample_oops, vmcore, tmp_path) as (client, stopped, error):
        if stopped is None:
            assert "module list" in error, error
            return
        assert re.search(r"module list .*(corrupt|cycle)", _outputs(client)), _outputs(client)
        frames = stack_of(client, stopped["threadId"])
        assert frames
        client.request("modules", {}, timeout=REQUEST_TIMEOUT)


# -- hostile strings ---------------------------------------------------------------------------------


def test_task_names_are_escaped(sample_oops: Any, tmp_path: Path) -> None:
    """A comm with an escape sequence, a newline, a NUL-free invalid UTF-8 byte: shown escaped, once."""
    prog = open_elf(sample_oops)
    pid = sample_oops.expected["mutex_holder_pid"]
    task = find_task(prog, pid)
    hostile = b"\x1b[31mev\nil\xff\x01"
    assert len(hostile) < 16
    vmcore = copy_elf(sample_oops, tmp_path)
    patch_phys(vmcore, phys_of(prog, task.comm.address_), hostile.ljust(16, b"\0"))
    with _session(sample_oops, vmcore, tmp_path) as (client, stopped, error):
        assert stopped is not None, error
        names = [t["name"] for t in _threads(client) if t["name"].startswith(f"PID {pid} ")]
        assert len(names) == 1, names
        name = names[0]
        assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in name), repr(name)
        assert "\ufffd" not in name
        assert "\\x1b[31mev\\nil\\xff\\x01" in name, name


# -- the network ---------------------------------------------------------------------------------------


def test_port_binds_loopback_only(tmp_path: Path) -> None:
    """``--port`` listens on 127.0.0.1 only: not on the machine's other addresses."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PYTHONPATH": str(REPO / "adapter"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vmcore_dap", "--port", str(port), "--log-file", str(tmp_path / "a.log")],
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert f"listening on 127.0.0.1:{port}" in line, line
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        local = [row.split()[1] for row in listening if row.split()[3] == "0A"]  # state LISTEN
        ours = [addr for addr in local if int(addr.split(":")[1], 16) == port]
        assert ours == ["0100007F:" + f"{port:04X}"], ours
        others = _non_loopback_addresses()
        for address in others:
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((address, port))
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _non_loopback_addresses() -> list[str]:
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout
    return [a for a in out.split() if "." in a and not a.startswith("127.")]
