"""Kernel data structures through the real adapter, against crash on the same dump.

Lists expand into their entries (``init_task.tasks`` → every thread-group leader crash's ``ps -G``
lists but the idle tasks; ``init_task.children`` → the tasks whose PPID is 0; ``modules`` → crash's
``mod``), per-CPU variables into ``[cpuN]`` (``runqueues`` → crash's ``runq`` run queues and their
current tasks), and pointers say what they point at (crash's ``kmem ADDR`` and ``sym``).
Expectations come from crash, never from our own code; addresses to ask crash about come from the
dump (read through drgn in this process).

Every test runs on every kernel of the matrix (``every_kernel(extra_crash_run=True)``: one crash batch
per sample). Where the oracle table (``samples/crash_choice.py``) says crash cannot answer on a
kernel, plain drgn in this process is the oracle and the test says so: 7.x's crash runs with
``--no_modules`` (no module list, no module symbol) and its ``kmem ADDR`` of a slab object fails
(``kmem-addr``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import answers_for
from tests.e2e._session import config_for, open_sample_dump
from tests.helpers.crash_batch import run_crash
from tests.helpers.crash_parse import PsRow, parse_mod, parse_ps
from tests.helpers.dap_client import DapClient

pytestmark = [pytest.mark.timeout(1800), pytest.mark.every_kernel(extra_crash_run=True)]

#: A per-CPU scalar every kernel of the matrix has (``kernel/fork.c``), on every CPU a count of its
#: own. Not ``cpu_number``: Debian's 6.12 has no such symbol on amd64 (x86 keeps it in ``struct
#: pcpu_hot`` from v6.2, "x86/percpu: Move cpu_number next to current_task") nor on arm64.
PER_CPU_SCALAR = "process_counts"

#: Entries fetched per ``variables`` request, as VS Code pages them.
PAGE = 100


@dataclass
class Oracle:
    """What crash (or, where the oracle table says crash cannot answer, plain drgn) says about the
    sample, and the addresses it was asked about."""

    ps: list[PsRow]
    runq: str
    #: (``struct module`` address, name) of every loaded module: crash's ``mod``, or drgn's
    #: ``modules`` list where crash runs with ``--no_modules`` (7.x).
    modules: set[tuple[int, str]]
    mm: int  # init's mm (a slab object)
    #: Its cache and whether it is allocated: crash's ``kmem ADDR``, or drgn's ``slab_object_info``
    #: where that fails (``kmem-addr`` distrusted: 7.x).
    mm_slab: tuple[str, bool]
    stack: int  # an address inside PID 1's kernel stack
    stack_pid: int  # the task whose stack holds it, as crash's ``kmem ADDR`` names it
    #: ``labbug_dev``'s address and section (crash's ``sym``, or drgn and the ``.ko``'s symbol
    #: table where crash has no module symbol) when the module is loaded.
    module_symbol: tuple[int, str] | None
    per_cpu_scalar: str  # crash's ``p process_counts:a``


def _oracle_source(sample: Any, name: str) -> str:
    """``crash`` when the oracle table trusts crash's answer ``name`` on this dump, else ``drgn``."""
    return "crash" if answers_for(sample).trusts(name) else "drgn"


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
    commands = ["ps -G", "runq", "mod", f"kmem {mm:x}", f"kmem {stack:x}", f"p {PER_CPU_SCALAR}:a"]
    if module_symbol_address is not None:
        commands.append("sym labbug_dev")
    out = run_crash(sample, commands)
    # crash --no_modules (7.x) lists no module and knows no module symbol: both come from drgn.
    modules_from = _oracle_source(sample, "mod")
    if modules_from == "crash":
        modules = {(row.module, row.name) for row in parse_mod(out[2])}
    else:
        modules = _drgn_modules(prog)
    module_symbol = None
    if module_symbol_address is not None:
        if modules_from == "crash":
            module_symbol = _crash_sym(out[6], module_symbol_address)
        else:
            module_symbol = (module_symbol_address, _ko_section(sample, "labbug", "labbug_dev"))
    if _oracle_source(sample, "kmem-addr") == "crash":
        mm_slab = _kmem_cache_and_state(out[3], mm)
    else:  # distrusted for failing: it must fail (a fixed crash is to be trusted again)
        assert "CACHE" not in out[3] and "invalid structure member offset" in out[3], out[3]
        mm_slab = _drgn_cache_and_state(prog, mm)
    pid = re.search(r"^\s+PID: (\d+)", out[4], re.M)  # a stack is vmalloc'd: kmem reads it on 7.x too
    assert pid, out[4]
    return Oracle(
        ps=parse_ps(out[0]),
        runq=out[1],
        modules=modules,
        mm=mm,
        mm_slab=mm_slab,
        stack=stack,
        stack_pid=int(pid[1]),
        module_symbol=module_symbol,
        per_cpu_scalar=out[5],
    )


def _drgn_modules(prog: Any) -> set[tuple[int, str]]:
    """(address, name) of every ``struct module`` on the kernel's ``modules`` list, by plain drgn."""
    from drgn.helpers.linux.list import list_for_each_entry

    return {
        (mod.value_(), mod.name.string_().decode())
        for mod in list_for_each_entry("struct module", prog["modules"].address_of_(), "list")
    }


def _crash_sym(sym: str, address: int) -> tuple[int, str]:
    """Address and section of ``labbug_dev`` from crash's ``sym labbug_dev``."""
    m = re.match(r"^([0-9a-f]+) \((\w)\) labbug_dev \[labbug\]", sym.strip())
    assert m, sym
    assert int(m[1], 16) == address
    return address, {"b": ".bss", "d": ".data", "B": ".bss", "D": ".data"}[m[2]]


def _ko_section(sample: Any, module: str, symbol: str) -> str:
    """The section of ``symbol`` in ``module``'s ``.ko``, by its symbol table (``objdump -t``)."""
    import subprocess

    ko = next(Path(path) for path in sample.debug_info if Path(path).name == f"{module}.ko")
    table = subprocess.run(["objdump", "-t", str(ko)], capture_output=True, text=True, check=True).stdout
    for row in table.splitlines():
        words = row.split()
        if words and words[-1] == symbol:
            return words[-3]
    raise AssertionError(f"{symbol} is not in the symbol table of {ko}")


def _drgn_cache_and_state(prog: Any, address: int) -> tuple[str, bool]:
    """Cache name and allocation state of the slab object at ``address``, by plain drgn."""
    from drgn.helpers.linux.slab import slab_object_info

    info = slab_object_info(prog, address)
    assert info is not None, f"{address:#x} is not a slab object"
    return info.slab_cache.name.string_().decode(), bool(info.allocated)


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

    def member(self, reference: int, name: str) -> dict[str, Any]:
        """The member ``name`` of a struct, looked for in its anonymous structs and unions too, as C
        names it (``rq.curr`` is in an anonymous union with ``donor`` since v6.13's af0c8b2bf67b,
        "sched: Split scheduler and execution contexts", which Debian's 6.12.118 has too)."""
        children = self.named(reference)
        if name in children:
            return children[name]
        for child_name, child in children.items():
            if child_name.startswith("<anonymous ") and child.get("variablesReference"):
                try:
                    return self.member(child["variablesReference"], name)
                except KeyError:
                    continue
        raise KeyError(f"no member {name} in {sorted(children)}")

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
    expected = oracle.modules
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
        curr = session.member(row["variablesReference"], "curr")
        assert int(curr["value"].split()[0], 16) == expected[cpu][1]
        assert "→ task_struct of PID" in curr["value"]


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
    cache, allocated = oracle.mm_slab
    assert allocated
    mm = session.watch(f"(struct mm_struct *){oracle.mm:#x}")
    assert mm["result"] == f"{oracle.mm:#x} → {cache} object (allocated)"
    inside = session.watch(f"(void *){oracle.mm + 0x10:#x}")
    assert inside["result"] == f"{oracle.mm + 0x10:#x} → {cache} object +0x10 (allocated)"
    # crash's kmem names the task whose stack holds the address.
    stack = session.watch(f"(void *){oracle.stack:#x}")
    assert re.fullmatch(
        rf"{oracle.stack:#x} → stack of PID {oracle.stack_pid} \S+ \+0x100", stack["result"]
    ), stack


def test_a_module_global_names_its_module_and_section(session: Session, oracle: Oracle) -> None:
    if oracle.module_symbol is None:  # sysrq-c loads no module
        response = session.client.send_request(
            "evaluate", {"expression": "&labbug_dev", "frameId": session.frame_id, "context": "watch"}
        )
        assert not session.client.wait_response(response, 60)["success"]
        return
    address, section = oracle.module_symbol
    body = session.watch("&labbug_dev")
    assert body["result"] == f"{address:#x} → labbug_dev (module labbug, {section})"


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


def test_hover_of_a_per_cpu_scalar_shows_every_cpu_as_crash_p_a(session: Session, oracle: Oracle) -> None:
    crash = oracle.per_cpu_scalar
    values = re.findall(rf"^per_cpu\({PER_CPU_SCALAR}, (\d+)\) = \$\d+ = (.+)$", crash, re.M)
    assert len(values) >= 2, crash
    expected = "per-CPU {" + ", ".join(f"cpu{cpu}: {value.strip()}" for cpu, value in values) + "}"
    args = {"expression": PER_CPU_SCALAR, "frameId": session.frame_id, "context": "hover"}
    body = session.client.call("evaluate", args)
    assert body["result"] == expected
    rows = session.page(body["variablesReference"], 0, body["indexedVariables"])
    assert [(r["name"], r["value"]) for r in rows] == [(f"[cpu{c}]", v.strip()) for c, v in values]
