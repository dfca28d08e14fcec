"""Kernel data structures through the real adapter, against crash on the same dump.

Lists expand into their entries (``init_task.tasks`` → every thread-group leader crash's ``ps -G``
lists but the idle tasks; ``init_task.children`` → the tasks whose PPID is 0; ``modules`` → crash's
``mod``), per-CPU variables into ``[cpuN]`` (``runqueues`` → crash's ``runq`` run queues and their
current tasks), and pointers say what they point at (crash's ``kmem ADDR`` and ``sym``).
Expectations come from crash, never from our own code; addresses to ask crash about come from the
dump (read through drgn in this process).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import config_for, open_sample_dump
from tests.helpers.crash_batch import run_crash
from tests.helpers.crash_parse import PsRow, parse_mod, parse_ps
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(1800)

#: Entries fetched per ``variables`` request, as VS Code pages them.
PAGE = 100


@dataclass
class Oracle:
    """What crash says about the sample, and the addresses it was asked about."""

    ps: list[PsRow]
    runq: str
    mod: str
    mm: int  # init's mm (a slab object)
    mm_kmem: str
    stack: int  # an address inside PID 1's kernel stack
    stack_kmem: str
    module_symbol: str | None  # crash's ``sym labbug_dev`` when the module is loaded
    module_symbol_address: int | None


@pytest.fixture(scope="module")
def oracle(sample: Any) -> Oracle:
    dump = open_sample_dump(sample)
    prog = dump.prog
    init = prog["init_task"].tasks.next
    from drgn import container_of

    task = container_of(init, "struct task_struct", "tasks")
    assert task.pid.value_() == 1
    mm = task.mm.value_()
    stack = task.stack.value_() + 0x100
    try:
        module_symbol_address: int | None = prog.symbol("labbug_dev").address
    except LookupError:
        module_symbol_address = None
    commands = ["ps -G", "runq", "mod", f"kmem {mm:x}", f"kmem {stack:x}"]
    if module_symbol_address is not None:
        commands.append("sym labbug_dev")
    out = run_crash(sample, commands)
    return Oracle(
        parse_ps(out[0]),
        out[1],
        out[2],
        mm,
        out[3],
        stack,
        out[4],
        out[5] if module_symbol_address is not None else None,
        module_symbol_address,
    )


@dataclass
class Session:
    client: DapClient
    frame_id: int

    def watch(self, expression: str) -> dict[str, Any]:
        return self.client.call(
            "evaluate", {"expression": expression, "frameId": self.frame_id, "context": "watch"}
        )

    def page(self, reference: int, start: int, count: int) -> list[dict[str, Any]]:
        args = {"variablesReference": reference, "filter": "indexed", "start": start, "count": count}
        return self.client.call("variables", args)["variables"]

    def named(self, reference: int) -> dict[str, dict[str, Any]]:
        args = {"variablesReference": reference, "filter": "named"}
        return {v["name"]: v for v in self.client.call("variables", args)["variables"]}

    def entries(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every indexed child of an evaluate result, page by page as a client asks for them."""
        total = body.get("indexedVariables", 0)
        rows: list[dict[str, Any]] = []
        for start in range(0, total, PAGE):
            rows += self.page(body["variablesReference"], start, min(PAGE, total - start))
        assert [r["name"] for r in rows] == [f"[{i}]" for i in range(total)]
        return rows


@pytest.fixture(scope="module")
def session(sample: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    log_dir: Path = tmp_path_factory.mktemp(f"structures-{sample.scenario}")
    with DapClient(log_dir) as client:
        stopped = client.launch_and_stop(config_for(sample))
        frames = client.call("stackTrace", {"threadId": stopped["body"]["threadId"]})["stackFrames"]
        frame = next(f for f in frames if f.get("presentationHint", "normal") == "normal")
        yield Session(client, frame["id"])
        assert client.schema_errors == [], client.schema_errors


_TASK_NOTE = re.compile(r"^(0x[0-9a-f]+) → task_struct of PID (\d+) (.*)$")


def _comm(row: PsRow) -> str:
    return row.comm[1:-1] if row.comm.startswith("[") and row.comm.endswith("]") else row.comm


def test_init_task_tasks_are_the_thread_group_leaders_of_ps(session: Session, oracle: Oracle) -> None:
    body = session.watch("init_task.tasks")
    leaders = {(r.task, r.pid, _comm(r)) for r in oracle.ps if r.pid != 0}  # idle tasks are not on it
    assert body["result"] == f"{len(leaders)} entries (struct task_struct.tasks)"
    assert body["indexedVariables"] == len(leaders)
    seen = set()
    for row in session.entries(body):
        m = _TASK_NOTE.match(row["value"])
        assert m, row
        assert row["type"] == "struct task_struct *"
        assert row["evaluateName"] == f"(struct task_struct *){m[1]}"
        seen.add((int(m[1], 16), int(m[2]), m[3]))
    assert seen == leaders
    # The raw links are still there, and say where they point.
    raw = session.named(body["variablesReference"])
    assert set(raw) == {"next", "prev"}
    first = min((r for r in oracle.ps if r.pid == 1), key=lambda r: r.task)
    assert raw["next"]["value"].endswith(
        f"→ task_struct of PID 1 {_comm(first)} +0x{_tasks_offset(session):x}"
    )


def _tasks_offset(session: Session) -> int:
    return int(session.watch("&((struct task_struct *)0)->tasks")["result"].split()[0], 16)


def test_init_task_children_are_the_tasks_whose_parent_is_0(session: Session, oracle: Oracle) -> None:
    body = session.watch("init_task.children")
    children = {r.task for r in oracle.ps if r.ppid == 0 and r.pid != 0}
    assert body["result"] == f"{len(children)} entries (struct task_struct.sibling)"
    assert {int(row["value"].split()[0], 16) for row in session.entries(body)} == children
    # sibling is a node of its parent's children list: not expanded as a list of its own.
    sibling = session.watch("init_task.sibling")
    assert "indexedVariables" not in sibling
    assert sibling["result"] == "{...}"


def test_modules_are_the_modules_of_mod(session: Session, oracle: Oracle) -> None:
    expected = {(row.module, row.name) for row in parse_mod(oracle.mod)}
    body = session.watch("modules")
    if not expected:
        assert body["result"] == "empty"
        return
    assert body["result"].endswith("(struct module.list)")
    shown = set()
    for row in session.entries(body):
        address = int(row["value"].split()[0], 16)
        name = session.named(row["variablesReference"])["name"]["value"]
        shown.add((address, name.strip('"')))
        assert "(module " in row["value"], row  # a struct module lives in its own module's memory
    assert shown == expected


_RUNQ = re.compile(r"^CPU (\d+) RUNQUEUE: ([0-9a-f]+)\n\s+CURRENT: PID: (\d+)\s+TASK: ([0-9a-f]+)", re.M)


def test_runqueues_per_cpu_are_crashs_run_queues(session: Session, oracle: Oracle) -> None:
    expected = {int(cpu): (int(rq, 16), int(task, 16)) for cpu, rq, _pid, task in _RUNQ.findall(oracle.runq)}
    assert expected, oracle.runq
    body = session.watch("runqueues")
    assert body["result"] == f"per-CPU ({len(expected)} CPUs)"
    rows = session.page(body["variablesReference"], 0, body["indexedVariables"])
    assert [r["name"] for r in rows] == [f"[cpu{cpu}]" for cpu in sorted(expected)]
    for row, cpu in zip(rows, sorted(expected), strict=True):
        assert row["evaluateName"] == f"per_cpu(runqueues, {cpu})"
        assert int(row["memoryReference"], 16) == expected[cpu][0]
        members = session.named(row["variablesReference"])
        assert int(members["curr"]["value"].split()[0], 16) == expected[cpu][1]
        assert "→ task_struct of PID" in members["curr"]["value"]


def _kmem_cache_and_state(kmem: str, address: int) -> tuple[str, bool]:
    """Cache name and whether crash shows ``address`` allocated (``[addr]``) in ``kmem ADDR``."""
    name = re.search(r"^CACHE\s.*NAME\n[0-9a-f]+\s+\d+\s+\d+\s+\d+\s+\d+\s+\S+\s+(\S+)", kmem, re.M)
    assert name, kmem
    objects = kmem.split("FREE / [ALLOCATED]", 1)[1]
    found = re.search(r"^\s+(\[?)([0-9a-f]+)\]?", objects, re.M)
    assert found, kmem
    start = int(found[2], 16)
    assert start <= address
    return name[1], found[1] == "["


def test_pointer_notes_say_what_kmem_says(session: Session, oracle: Oracle) -> None:
    cache, allocated = _kmem_cache_and_state(oracle.mm_kmem, oracle.mm)
    assert allocated
    mm = session.watch(f"(struct mm_struct *){oracle.mm:#x}")
    assert mm["result"] == f"{oracle.mm:#x} → {cache} object (allocated)"
    inside = session.watch(f"(void *){oracle.mm + 0x10:#x}")
    assert inside["result"] == f"{oracle.mm + 0x10:#x} → {cache} object +0x10 (allocated)"
    # crash's kmem names the task whose stack holds the address.
    pid = re.search(r"^\s+PID: (\d+)", oracle.stack_kmem, re.M)
    assert pid, oracle.stack_kmem
    stack = session.watch(f"(void *){oracle.stack:#x}")
    assert re.fullmatch(rf"{oracle.stack:#x} → stack of PID {pid[1]} \S+ \+0x100", stack["result"]), stack


def test_a_module_global_names_its_module_and_section(session: Session, oracle: Oracle) -> None:
    if oracle.module_symbol is None or oracle.module_symbol_address is None:  # sysrq-c loads no module
        response = session.client.send_request(
            "evaluate", {"expression": "&labbug_dev", "frameId": session.frame_id, "context": "watch"}
        )
        assert not session.client.wait_response(response, 60)["success"]
        return
    m = re.match(r"^([0-9a-f]+) \((\w)\) labbug_dev \[labbug\]", oracle.module_symbol.strip())
    assert m, oracle.module_symbol
    assert int(m[1], 16) == oracle.module_symbol_address
    section = {"b": ".bss", "d": ".data", "B": ".bss", "D": ".data"}[m[2]]
    body = session.watch("&labbug_dev")
    assert body["result"] == f"{oracle.module_symbol_address:#x} → labbug_dev (module labbug, {section})"


def test_user_and_unmapped_addresses(session: Session) -> None:
    assert session.watch("(void *)0x7ffd12345678")["result"] == "0x7ffd12345678 → user address"
    unmapped = session.watch("(void *)0xffffc7ffffff0000")["result"]
    assert unmapped.startswith("0xffffc7ffffff0000 → not mapped"), unmapped


def test_view_entries_as_another_type_and_back(session: Session) -> None:
    """The extension's "View entries as…": the adapter offers the types that fit and shows the
    entries as the one chosen, for every head that lives where this one does."""
    body = session.watch("init_task.children")
    reference = body["variablesReference"]
    offered = session.client.call("vmcore/entryTypes", {"variablesReference": reference})
    assert offered["key"] == "struct task_struct.children"
    assert offered["current"]["label"] == "struct task_struct.sibling"
    assert offered["current"]["source"] == "table"
    assert {c["label"] for c in offered["candidates"]} >= {"struct task_struct.sibling"}
    sibling = [int(r["value"].split()[0], 16) for r in session.entries(body)]
    offsets = {
        m: int(session.watch(f"&((struct task_struct *)0)->{m}")["result"].split()[0], 16)
        for m in ("sibling", "ptrace_entry")
    }
    start = len(session.client.events)
    args = {"variablesReference": reference, "type": "struct task_struct", "member": "ptrace_entry"}
    assert session.client.call("vmcore/setEntryType", args)["label"] == "struct task_struct.ptrace_entry"
    session.client.wait_event("invalidated", timeout=30, start=start)
    again = session.watch("init_task.children")
    assert again["result"].endswith("(struct task_struct.ptrace_entry)")
    moved = [int(r["value"].split()[0], 16) for r in session.entries(again)]
    assert moved == [a + offsets["sibling"] - offsets["ptrace_entry"] for a in sibling]
    # By key, as the extension sends a remembered choice to a new session.
    key_args = {"key": "struct task_struct.children", "type": "struct task_struct", "member": "sibling"}
    session.client.call("vmcore/setEntryType", key_args)
    assert session.watch("init_task.children")["result"].endswith("(struct task_struct.sibling)")
    # Bad choices and non-lists are refused with a message, and the session goes on.
    for bad in (
        (
            "vmcore/setEntryType",
            {"variablesReference": reference, "type": "struct task_struct", "member": "nope"},
        ),
        ("vmcore/entryTypes", {"variablesReference": session.watch("init_task")["variablesReference"]}),
    ):
        response = session.client.wait_response(session.client.send_request(*bad), 60)
        assert not response["success"] and response["message"], response


def test_the_table_of_links_holds_for_this_kernel(sample: Any) -> None:
    """Every link the table applies to this dump names a head of a list or tree kind and an entry
    member of the matching node kind, in the dump's own debug info; at least fifty apply."""
    from drgn import offsetof

    from vmcore_dap.dump.structures.chains import chain_kind
    from vmcore_dap.dump.structures.known_links import KNOWN_LINKS, _index, head_type
    from vmcore_dap.dump.structures.trees import tree_kind

    prog = open_sample_dump(sample).prog
    applied = _index(prog)
    assert len(KNOWN_LINKS) >= 50 and len(applied) >= 50, len(applied)
    node_types = {
        "list": "list_head",
        "plist": "plist_node",
        "hlist": "hlist_node",
        "hlist_nulls": "hlist_nulls_node",
        "llist": "llist_node",
        "rbtree": "rb_node",
    }
    for link in applied.values():
        assert link.until is None or link.since < link.until, link
        head = head_type(prog, link)
        kind = chain_kind(head) or tree_kind(head)
        assert kind is not None, f"{link.head} is a {head.type_name()}"
        if link.member:
            offsetof(prog.type(link.entry), link.member)
            member = prog.type(link.entry).member(link.member.split(".")[0]).type
            for part in link.member.split(".")[1:]:
                member = member.member(part).type
            assert member.unaliased().tag in (node_types[kind], "list_head"), (link, member)
        else:
            assert kind in ("xarray", "idr", "maple"), link  # maps store the entry pointer itself


@pytest.fixture(scope="module")
def many(sample_many: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    with DapClient(tmp_path_factory.mktemp("structures-many")) as client:
        stopped = client.launch_and_stop(config_for(sample_many))
        frames = client.call("stackTrace", {"threadId": stopped["body"]["threadId"]})["stackFrames"]
        frame = next(f for f in frames if f.get("presentationHint", "normal") == "normal")
        yield Session(client, frame["id"])
        assert client.schema_errors == [], client.schema_errors


def test_a_list_of_thousands_opens_a_window_at_a_time(many: Session, sample_many: Any) -> None:
    """labmany's 5,000 threads (its signal_struct's thread_head): the first window reads 1,000
    nodes, not 5,001; "[1000…]" rows walk on; all windows together are crash's ``ps -g``."""
    from vmcore_dap.dump.structures.collections_view import CHUNK

    pid = sample_many.expected["many_pid"]
    (ps_g, _log) = run_crash(sample_many, [f"ps -g {pid}"])
    threads = {int(m[1]) for m in re.finditer(r"^\s+PID: (\d+)\s+TASK:", ps_g, re.M)}
    threads.add(int(re.search(r"^PID: (\d+)\s+TASK:", ps_g, re.M)[1]))  # type: ignore[index]
    assert len(threads) == sample_many.expected["many_threads"] + 1, ps_g[:500]
    leader = many.client.call(
        "evaluate", {"expression": f"%py find_task(prog, {pid}).signal.value_()", "context": "repl"}
    )
    body = many.watch(f"((struct signal_struct *){int(leader['result'], 0):#x})->thread_head")
    assert body["result"] == f"{CHUNK}+ entries (struct task_struct.thread_node)"
    assert body["indexedVariables"] == CHUNK
    seen: list[int] = []
    window = body
    while True:
        rows = many.page(window["variablesReference"], 0, window["indexedVariables"])
        for row in rows:
            m = _TASK_NOTE.match(row["value"])
            assert m and row["name"] == f"[{len(seen)}]", row
            seen.append(int(m[2]))
        more = [v for name, v in many.named(window["variablesReference"]).items() if name.endswith("…]")]
        if not more:
            break
        assert more[0]["name"] == f"[{len(seen)}…]"
        window = more[0]
        assert window["value"].startswith(f"entries [{len(seen)}]…[")
    assert len(seen) == len(set(seen)) == len(threads)
    assert set(seen) == threads


def test_hover_of_a_per_cpu_scalar_shows_every_cpu_as_crash_p_a(session: Session, sample: Any) -> None:
    crash = run_crash(sample, ["p cpu_number:a"])[0]
    values = re.findall(r"^per_cpu\(cpu_number, (\d+)\) = \$\d+ = (.+)$", crash, re.M)
    assert len(values) >= 2, crash
    expected = "per-CPU {" + ", ".join(f"cpu{cpu}: {value.strip()}" for cpu, value in values) + "}"
    args = {"expression": "cpu_number", "frameId": session.frame_id, "context": "hover"}
    body = session.client.call("evaluate", args)
    assert body["result"] == expected
    rows = session.page(body["variablesReference"], 0, body["indexedVariables"])
    assert [(r["name"], r["value"]) for r in rows] == [(f"[cpu{c}]", v.strip()) for c, v in values]
