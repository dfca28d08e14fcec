"""crash's data-structure commands in the Debug Console against crash itself, on every sample.

``list`` (``-h``, ``-H``, ``-o``, ``-s``), ``tree -t rbtree|xarray|radix|maple``, ``kmem -s``,
``kmem ADDR``, ``kmem -s ADDR``, ``p var:a`` and ``struct -o`` run through the real adapter's
console (``evaluate`` with context ``repl``); crash runs the same lines on the same dump
(:func:`tests.helpers.crash_batch.run_crash`). What is compared is what the commands say — entry
addresses in order, member values, caches and their sizes, each CPU's value — not drgn's and gdb's
different ways of printing a value (``pid = (pid_t)1`` against ``pid = 1,``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import drgn
import pytest
from tests.e2e._session import config_for, open_sample_dump
from tests.helpers.crash_batch import run_crash
from tests.helpers.crash_structures import entries, kmem_object, member_value, per_cpu_values
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(1800)


def commands_for(prog: drgn.Program) -> dict[str, str]:
    """The console lines to compare, by name; addresses are read from the dump."""
    from drgn.helpers.linux.pid import find_task

    mm = find_task(prog, 1).mm.value_()
    idr = prog["init_pid_ns"].idr.address_
    return {
        "list-h": f"list task_struct.tasks -s task_struct.pid,comm -h {prog['init_task'].address_:x}",
        "list-H": "list -H modules -o module.list -s module.name",
        "tree-rb": "tree -t rbtree -o vmap_area.rb_node vmap_area_root",
        "tree-rb-l": "tree -t rbtree -l -o vmap_area.rb_node -s vmap_area.va_start vmap_area_root",
        "tree-xarray": f"tree -t xarray -r idr.idr_rt -s pid.level {idr:x}",
        "tree-radix": f"tree -t radix -r idr.idr_rt {idr:x}",
        "tree-maple": f"tree -t maple -r mm_struct.mm_mt -s vm_area_struct.vm_start {mm:x}",
        "kmem-s": "kmem -s",
        "kmem-addr": f"kmem {mm:x}",
        "kmem-s-addr": f"kmem -s {mm + 0x10:x}",
        "p-percpu": "p cpu_number:a",
        "p-global": "p jiffies_64:a",
        "p-struct": "p -x runqueues:a",
        "struct-o": "struct -o list_head",
    }


#: crash's answer to ``p -x runqueues:a`` is long: only the lines compared are kept.
_CRASH_FILTER = {"p-struct": " | grep -E '^per_cpu|^  cpu = |^  nr_running = |^  curr = '"}


@pytest.fixture(scope="module")
def lines(sample: Any) -> dict[str, tuple[str, str]]:
    """``{name: (line, crash's output)}``."""
    commands = commands_for(open_sample_dump(sample).prog)
    names = list(commands)
    outputs = run_crash(sample, [commands[n] + _CRASH_FILTER.get(n, "") for n in names])
    return {name: (commands[name], outputs[i]) for i, name in enumerate(names)}


class Console:
    def __init__(self, client: DapClient, frame_id: int) -> None:
        self.client = client
        self.frame_id = frame_id

    def run(self, line: str) -> str:
        start = len(self.client.events)
        args = {"expression": line, "context": "repl", "frameId": self.frame_id}
        response = self.client.request("evaluate", args, timeout=300)
        text = "".join(
            e["body"]["output"]
            for e in self.client.events[start:]
            if e["event"] == "output" and e["body"].get("category", "console") in ("console", "stdout")
        )
        assert response["success"], f"{line!r} failed: {response.get('message')}\n{text}"
        return text + response["body"]["result"]


@pytest.fixture(scope="module")
def console(sample: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    log_dir: Path = tmp_path_factory.mktemp(f"structure-commands-{sample.scenario}")
    with DapClient(log_dir) as client:
        stopped = client.launch_and_stop(config_for(sample))
        frames = client.call("stackTrace", {"threadId": stopped["body"]["threadId"]})["stackFrames"]
        yield Console(client, frames[0]["id"])
        assert client.schema_errors == [], client.schema_errors


def test_list_entries_and_members_match_crash(console: Console, lines: dict[str, tuple[str, str]]) -> None:
    for name in ("list-h", "list-H"):
        line, crash = lines[name]
        expected = entries(crash)
        assert expected or name == "list-H", crash  # sysrq-c loads no module: both list nothing
        assert entries(console.run(line)) == expected, line


def test_tree_entries_match_crash(console: Console, lines: dict[str, tuple[str, str]]) -> None:
    for name in ("tree-rb", "tree-rb-l", "tree-xarray", "tree-maple"):
        line, crash = lines[name]
        expected = entries(crash)
        assert expected, f"{line}: crash listed nothing:\n{crash}"
        assert entries(console.run(line)) == expected, line


_KMEM_S_ROW = re.compile(r"^([0-9a-f]{16})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+k)\s+(\S+)$")


def _kmem_s(output: str) -> dict[int, tuple[str, int, int, int]]:
    """``kmem -s`` rows: {cache: (name, objsize, total, slabs)}."""
    rows = {}
    for line in output.splitlines():
        m = _KMEM_S_ROW.match(line.strip())
        if m:
            rows[int(m[1], 16)] = (m[7], int(m[2]), int(m[4]), int(m[5]))
    return rows


def test_tree_radix_is_the_xarray_crash_no_longer_reads_as_one(
    console: Console, lines: dict[str, tuple[str, str]]
) -> None:
    """A radix tree is an xarray since v4.20: crash 8.0.6 refuses ``-t radix`` on this kernel ("radix
    trees do not exist or have changed their format"); drgn walks it as the xarray it is."""
    line, crash = lines["tree-radix"]
    assert "radix trees do not exist or have changed their format" in crash
    expected = [address for address, _ in entries(lines["tree-xarray"][1])]
    assert [address for address, _ in entries(console.run(line))] == expected


def test_kmem_s_lists_crashs_caches(console: Console, lines: dict[str, tuple[str, str]]) -> None:
    """Every cache with its name, object size, total objects and slabs. (ALLOCATED is left out:
    crash subtracts the objects on per-CPU freelists as it finds them and drgn as it finds them;
    the two differ by a few objects on caches in use at the instant of the dump.)"""
    line, crash = lines["kmem-s"]
    expected = _kmem_s(crash)
    assert len(expected) > 50, crash[:2000]
    assert _kmem_s(console.run(line)) == expected


def test_kmem_address_finds_crashs_object(console: Console, lines: dict[str, tuple[str, str]]) -> None:
    for name in ("kmem-addr", "kmem-s-addr"):
        line, crash = lines[name]
        assert kmem_object(console.run(line)) == kmem_object(crash), line


_PER_CPU = re.compile(r"^per_cpu\((\w+), (\d+)\) = (?:\$\d+ = |\([^)]*\))?(.*)$", re.M)


def test_p_cpuspec_prints_each_cpus_value(console: Console, lines: dict[str, tuple[str, str]]) -> None:
    line, crash = lines["p-percpu"]
    expected = per_cpu_values(crash)
    assert len(expected) >= 2, crash
    assert per_cpu_values(console.run(line)) == expected
    line, crash = lines["p-global"]
    ours = console.run(line)
    assert (
        ours.splitlines()[0] == crash.splitlines()[0] == "WARNING: jiffies_64 is not percpu; cpuspec ignored."
    )
    assert member_value(ours.splitlines()[1].split(" = ")[-1]) == member_value(
        crash.splitlines()[1].split(" = ")[-1]
    )


_STRUCT_MEMBER = re.compile(r"^\s+\.?(nr_running|curr|cpu) = (?:\([^)]*\))?(0x[0-9a-f]+)", re.M)


def _per_cpu_members(output: str) -> list[tuple[int, str, int]]:
    result = []
    cpu = -1
    for line in output.splitlines():
        header = _PER_CPU.match(line)
        if header:
            cpu = int(header[2])
            continue
        member = _STRUCT_MEMBER.match(line)
        if member and line.startswith(("  ", "\t")) and not line.startswith(("   ", "\t\t")):
            result.append((cpu, member[1], int(member[2], 16)))
    return result


def test_p_struct_per_cpu_matches_crash(console: Console, lines: dict[str, tuple[str, str]]) -> None:
    line, crash = lines["p-struct"]
    expected = sorted(_per_cpu_members(crash))
    assert len(expected) >= 6, crash
    assert sorted(_per_cpu_members(console.run(line))) == expected


def test_struct_o_matches_crash(console: Console, lines: dict[str, tuple[str, str]]) -> None:
    line, crash = lines["struct-o"]
    assert console.run(line).strip() == crash.strip()
