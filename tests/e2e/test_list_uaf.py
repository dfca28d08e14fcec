"""The list-uaf sample (issue 17): a driver's request list with a use-after-free, through the real
adapter, against crash on the same dump.

labuaf keeps its requests on a list, an rbtree and an xarray, and counts them per CPU; one request
was freed while still linked, another unlinked half-way and freed, and the walk of the list
faulted on the freed one. What is checked, in Variables (watch, hover) and in the Debug Console:
every entry of the list, the tree and the map with its members (crash's ``list -s``, ``tree -t
rbtree -l``, ``tree -t xarray``), the freed request flagged ``⚠ FREED`` in its pointer note where
crash's ``kmem -s`` shows it free, the ``⚠ corrupted`` row at the node whose ``prev`` still points
at the half-unlinked request, each CPU's counter (crash's ``p labuaf_hits:a``), the long list of
replies window by window (crash's ``list``), and the crashed frame at ``/* LABUAF-FAULT */`` with
its locals. crash's answers are the oracle's (``samples/crash_oracle.py``, ``SCENARIO_COMMANDS``);
the addresses it was asked about are the guest's own (the manifest's ``expected``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.e2e._session import config_for
from tests.helpers.crash_parse import parse_bt, parse_dis
from tests.helpers.crash_structures import entries, kmem_object, member_value, per_cpu_values
from tests.helpers.dap_client import DapClient
from tests.helpers.ko_lines import ko_function, ko_line, overlaid_lines

if TYPE_CHECKING:
    from samples.crash_oracle import CrashAnswers

pytestmark = pytest.mark.timeout(1800)

#: Entries fetched per ``variables`` request, as VS Code pages them.
PAGE = 100
#: The request's members crash's ``list -s`` prints (the oracle's ``list-reqs``).
MEMBERS = ("id", "cpu", "data", "value", "tag")


def _list_uaf_samples() -> list[Any]:
    from samples.sample_store import samples_under_test

    return [spec for spec in samples_under_test() if spec.scenario == "list-uaf"]


@dataclass
class Dump:
    """The sample, what its guest printed (``expected``) and crash's answers about it (with what the
    oracle table says of them)."""

    sample: Any
    crash: CrashAnswers
    commands: dict[str, str]

    @property
    def expected(self) -> dict[str, Any]:
        return self.sample.expected  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=_list_uaf_samples(), ids=lambda spec: spec.label)
def dump(request: pytest.FixtureRequest) -> Dump:
    import json

    from samples.crash_oracle import answers_dir, ensure_crash_answers
    from samples.sample_store import ensure_sample

    spec = request.param
    sample = ensure_sample(spec.scenario, spec.kernel, spec.variant)
    answers = ensure_crash_answers(sample)
    commands = json.loads((answers_dir(sample) / "done.json").read_text())["commands"]
    return Dump(sample, answers, commands)


@dataclass
class Session:
    client: DapClient
    frame_id: int
    thread_id: int

    def evaluate(self, expression: str, context: str = "watch") -> dict[str, Any]:
        args = {"expression": expression, "frameId": self.frame_id, "context": context}
        return self.client.call("evaluate", args, timeout=300)

    def console(self, line: str) -> str:
        """A Debug Console line's output (streamed as ``output`` events) and result."""
        start = len(self.client.events)
        body = self.evaluate(line, "repl")
        text = "".join(
            e["body"]["output"]
            for e in self.client.events[start:]
            if e["event"] == "output" and e["body"].get("category", "console") in ("console", "stdout")
        )
        return text + body["result"]

    def named(self, reference: int) -> dict[str, dict[str, Any]]:
        args = {"variablesReference": reference, "filter": "named"}
        return {v["name"]: v for v in self.client.call("variables", args)["variables"]}

    def page(self, reference: int, start: int, count: int) -> list[dict[str, Any]]:
        args = {"variablesReference": reference, "filter": "indexed", "start": start, "count": count}
        return self.client.call("variables", args)["variables"]  # type: ignore[no-any-return]

    def indexed(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every indexed child of a value, page by page as VS Code asks for them."""
        total = body.get("indexedVariables", 0)
        rows: list[dict[str, Any]] = []
        for start in range(0, total, PAGE):
            rows += self.page(body["variablesReference"], start, min(PAGE, total - start))
        return rows

    def choose(self, expression: str, type_name: str, member: str) -> dict[str, Any]:
        """ "View entries as…" ``type_name`` through ``member`` for the structure ``expression``; the
        structure evaluated again once the adapter says its values changed."""
        reference = self.evaluate(expression)["variablesReference"]
        start = len(self.client.events)
        args = {"variablesReference": reference, "type": type_name, "member": member}
        self.client.call("vmcore/setEntryType", args)
        self.client.wait_event("invalidated", timeout=30, start=start)
        return self.evaluate(expression)


@pytest.fixture(scope="module")
def session(dump: Dump, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    log_dir: Path = tmp_path_factory.mktemp(f"list-uaf-{dump.sample.kernel}")
    with DapClient(log_dir) as client:
        stopped = client.launch_and_stop(config_for(dump.sample))
        thread_id = stopped["body"]["threadId"]
        frames = client.call("stackTrace", {"threadId": thread_id})["stackFrames"]
        frame = next(f for f in frames if f.get("presentationHint", "normal") == "normal")
        yield Session(client, frame["id"], thread_id)
        assert client.schema_errors == [], client.schema_errors


def _address(row: dict[str, Any]) -> int:
    return int(row["value"].split()[0], 16)


def _members(session: Session, row: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """An entry's members as crash prints them (``member_value`` of each rendered value)."""
    shown = session.named(row["variablesReference"])
    return {name: member_value(shown[name]["value"].split(" → ")[0]) for name in names}


def _offset(session: Session, type_name: str, member: str) -> int:
    return int(session.evaluate(f"&(({type_name} *)0)->{member}")["result"].split()[0], 16)


def _freed_cache(dump: Dump) -> str:
    """The cache crash's ``kmem -s`` finds the freed request in; crash must show it free."""
    cache, address, allocated = kmem_object(dump.crash["kmem-s-freed"])
    assert address == dump.expected["freed_linked"]["address"] and not allocated, dump.crash["kmem-s-freed"]
    return cache


# -- the crashed frame ------------------------------------------------------------------------------


def _crash_line(dump: Dump) -> int:
    """The line of the faulting instruction by crash's ``dis -l``, or by binutils where the oracle
    table distrusts crash's lines of module code (6.12: crash's gdb lays labuaf's ``.text.unlikely``
    and ``.init.text`` line tables over ``.text``, ``samples/crash_choice.py``).

    There ``dis -l`` gives labuaf.c 202, the ``.text.unlikely`` row (the inlined labuaf_bugs of
    labuaf_bug_write.cold) at the fault's offset; the 6.1 and 5.10 samples' answers name 184. Only
    that exact mistake is accepted, proved with binutils on the same module, and the ``.text`` row
    at crash's function + offset is returned (the line the guest's marker gives must still equal it).
    """
    (insn,) = parse_dis(dump.crash["dis-l"])
    assert insn.file is not None and insn.line is not None, dump.crash["dis-l"]
    if dump.crash.trusts("dis-l", "module-lines"):
        assert Path(insn.file).name == dump.expected["file"], dump.crash["dis-l"]
        return insn.line
    function = ko_function(dump.sample.debug_info, insn.symbol)
    assert function is not None, f"{insn.symbol} is not a function of {dump.sample.debug_info}"
    if (Path(insn.file).name, insn.line) != (dump.expected["file"], dump.expected["line"]):
        assert overlaid_lines(dump.sample.debug_info, [insn]), dump.crash["dis-l"]
    where = ko_line(function.ko, function.section, function.offset + insn.offset)
    assert where is not None and where[0] == dump.expected["file"], where
    return where[1]


def test_stopped_at_the_fault_in_labuaf_walk_with_its_locals(session: Session, dump: Dump) -> None:
    exp = dump.expected
    (crashed,) = parse_bt(dump.crash["bt"])
    assert (crashed.pid, crashed.comm) == (exp["crashed_pid"], exp["crashed_comm"])
    frames = session.client.call("stackTrace", {"threadId": session.thread_id})["stackFrames"]
    top = next(f for f in frames if f.get("presentationHint", "normal") == "normal")
    assert top["name"] == exp["function"] == "labuaf_walk"
    assert top["source"]["path"] == str(Path(dump.sample.module_source_dir) / exp["file"])
    assert top["line"] == exp["line"]
    assert _crash_line(dump) == exp["line"]
    scopes = {
        s["name"]: s["variablesReference"]
        for s in session.client.call("scopes", {"frameId": top["id"]})["scopes"]
    }
    shown = {
        v["name"]: v
        for v in session.client.call("variables", {"variablesReference": scopes["Locals"]})["variables"]
    }
    shown = {name: v["value"] for name, v in shown.items()}
    assert int(shown["seen"]) == exp["locals"]["seen"]
    assert int(shown["total"]) == exp["locals"]["total"]
    # The request being read is the one freed while linked, and says so.
    freed = exp["freed_linked"]["address"]
    assert exp["locals"]["cur"] == freed
    assert shown["cur"] == f"{freed:#x} → ⚠ FREED {_freed_cache(dump)} object"
    # The device it walks is its argument, a module global; through it, the list (as in a watch).
    (dev,) = session.client.call("variables", {"variablesReference": scopes["Arguments"]})["variables"]
    address = exp["device"]["dev"]
    assert dev["name"] == "dev" and dev["value"].startswith(f"{address:#x} → labuaf_dev (module labuaf, ")
    reqs = session.named(dev["variablesReference"])["reqs"]
    assert reqs["value"] == session.evaluate("labuaf_dev.reqs")["result"]
    assert reqs["evaluateName"] == "dev->reqs"


# -- the request list ------------------------------------------------------------------------------


def test_the_request_list_offers_the_two_structs_that_fit(session: Session) -> None:
    """Requests and replies are both 96-byte kmalloc objects linked at offset 8: the slab object
    cannot tell them apart, and the kernel's structs of that shape are not offered."""
    body = session.evaluate("labuaf_dev.reqs")
    offered = session.client.call("vmcore/entryTypes", {"variablesReference": body["variablesReference"]})
    assert offered["key"] == "struct labuaf_dev.reqs"
    labels = {c["label"] for c in offered["candidates"]}
    if offered["current"] is None:
        assert labels == {"struct labuaf_req.node", "struct labuaf_reply.link"}, offered
        assert body["result"].startswith(f"{body['indexedVariables']} nodes (View entries as…: 2 types fit)")
    else:  # a choice made earlier in this session
        assert labels >= {"struct labuaf_req.node", "struct labuaf_reply.link"}, offered


def test_request_list_entries_and_members_are_crashs_up_to_the_corruption(
    session: Session, dump: Dump
) -> None:
    exp = dump.expected
    crash = entries(dump.crash["list-reqs"])
    half = exp["half_unlinked"]
    freed = exp["freed_linked"]["address"]
    # crash walks next pointers only: past the half-unlinked request, to the end.
    crash_addresses = [address for address, _ in crash]
    assert half["address"] not in crash_addresses and freed in crash_addresses
    successor = crash_addresses.index(half["next"])
    assert len(crash) == len(exp["requests"]) - 1, dump.crash["list-reqs"]

    body = session.choose("labuaf_dev.reqs", "struct labuaf_req", "node")
    shown = crash[: successor + 1]  # up to the node whose prev does not point back
    node = _offset(session, "struct labuaf_req", "node")
    cache = _freed_cache(dump)
    assert body["indexedVariables"] == len(shown)
    assert body["result"].startswith(
        f"{len(shown)} entries (struct labuaf_req.node), then ⚠ entry [{successor}]"
    )
    rows = session.indexed(body)
    assert [r["name"] for r in rows] == [f"[{i}]" for i in range(len(shown))]
    for row, (address, members) in zip(rows, shown, strict=True):
        assert row["type"] == "struct labuaf_req *"
        assert _address(row) == address
        assert _members(session, row, MEMBERS) == {m: members[m] for m in MEMBERS}, row
        if address == freed:
            assert row["value"] == f"{address:#x} → ⚠ FREED {cache} object"
        else:
            assert re.fullmatch(rf"{address:#x} → \S+ object \(allocated\)", row["value"]), row
    # The warning row: the successor's prev still points at the half-unlinked (and freed) request.
    warning = session.named(body["variablesReference"])["⚠ corrupted"]
    problem = (
        f"entry [{successor}] at {half['next'] + node:#x}: prev is {half['address'] + node:#x}, "
        f"not {shown[successor - 1][0] + node:#x} (the node before it); "
        f"{half['address'] + node:#x} → ⚠ FREED "
    )
    assert warning["value"].startswith(problem), warning
    half_cache, _, half_allocated = kmem_object(dump.crash["kmem-s-half"])
    assert not half_allocated and warning["value"] == f"{problem}{half_cache} object +{node:#x}"
    assert body["result"].endswith(f"then ⚠ {warning['value']}")


def test_console_list_matches_crash(session: Session, dump: Dump) -> None:
    line = dump.commands["list-reqs"]
    expected = entries(dump.crash["list-reqs"])
    assert expected
    assert entries(session.console(line)) == expected


# -- the rbtree and the xarray ---------------------------------------------------------------------


def test_rbtree_entries_in_order_are_crashs_tree_l(session: Session, dump: Dump) -> None:
    """One struct has an rb_node where the first node lies in its slab object: the entries are
    ``struct labuaf_req``, in order, as crash's ``tree -l`` lists them; destroyed requests are gone."""
    expected = entries(dump.crash["tree-by-id-l"])
    ids = [int(members["id"]) for _, members in expected]
    gone = {dump.expected["freed_linked"]["id"], dump.expected["half_unlinked"]["id"]}
    assert ids == sorted(ids) and not gone & set(ids) and len(ids) == len(dump.expected["requests"]) - 2
    body = session.evaluate("labuaf_dev.by_id")
    assert body["result"] == f"{len(expected)} entries (struct labuaf_req.rb)"
    rows = session.indexed(body)
    assert [(r["name"], r["type"]) for r in rows] == [
        (f"[{i}]", "struct labuaf_req *") for i in range(len(rows))
    ]
    assert [(_address(r), _members(session, r, ("id", "cpu"))) for r in rows] == expected


def test_xarray_entries_by_index_are_crashs(session: Session, dump: Dump) -> None:
    expected = entries(dump.crash["tree-xa"])
    assert len(expected) == len(dump.expected["requests"]) - 2
    body = session.evaluate("labuaf_dev.xa")
    reference = body["variablesReference"]
    offered = {
        c["label"]
        for c in session.client.call("vmcore/entryTypes", {"variablesReference": reference})["candidates"]
    }
    assert {"struct labuaf_req", "struct labuaf_reply"} <= offered
    body = session.choose("labuaf_dev.xa", "struct labuaf_req", "")
    assert body["result"] == f"{len(expected)} entries (struct labuaf_req)"
    rows = session.indexed(body)
    assert [(r["name"], _address(r), _members(session, r, ("id", "cpu"))) for r in rows] == [
        (f"[{members['id']}]", address, members) for address, members in expected
    ]


def test_console_trees_match_crash(session: Session, dump: Dump) -> None:
    for name in ("tree-by-id", "tree-by-id-l", "tree-xa"):
        expected = entries(dump.crash[name])
        assert expected, name
        assert entries(session.console(dump.commands[name])) == expected, name


# -- slab objects and the per-CPU counter ----------------------------------------------------------


def test_pointer_notes_and_kmem_s_say_what_crashs_kmem_s_says(session: Session, dump: Dump) -> None:
    for name in ("kmem-s-freed", "kmem-s-half", "kmem-s-live"):
        cache, address, allocated = kmem_object(dump.crash[name])
        note = session.evaluate(f"(void *){address:#x}")["result"]
        state = f"{cache} object (allocated)" if allocated else f"⚠ FREED {cache} object"
        assert note == f"{address:#x} → {state}", name
        assert kmem_object(session.console(dump.commands[name])) == (cache, address, allocated), name
    assert not kmem_object(dump.crash["kmem-s-freed"])[2] and kmem_object(dump.crash["kmem-s-live"])[2]


def test_each_cpus_counter_is_crashs_p_a(session: Session, dump: Dump) -> None:
    crash = per_cpu_values(dump.crash["p-hits"])
    assert [(cpu, int(value)) for _, cpu, value in crash] == sorted(
        (int(cpu), hits) for cpu, hits in dump.expected["hits"].items()
    )
    assert per_cpu_values(session.console(dump.commands["p-hits"])) == crash
    inline = "per-CPU {" + ", ".join(f"cpu{cpu}: {value}" for _, cpu, value in crash) + "}"
    hover = session.evaluate("labuaf_hits", "hover")
    assert hover["result"] == inline
    rows = session.page(hover["variablesReference"], 0, hover["indexedVariables"])
    assert [(r["name"], r["value"]) for r in rows] == [(f"[cpu{cpu}]", value) for _, cpu, value in crash]
    assert session.evaluate("labuaf_hits")["result"] == inline


def test_the_device_names_its_module_and_section(session: Session, dump: Dump) -> None:
    m = re.match(r"^([0-9a-f]+) \((\w)\) labuaf_dev \[labuaf\]", dump.crash["sym-dev"].strip())
    assert m and int(m[1], 16) == dump.expected["device"]["dev"], dump.crash["sym-dev"]
    section = {"b": ".bss", "d": ".data", "B": ".bss", "D": ".data"}[m[2]]
    assert (
        session.evaluate("&labuaf_dev")["result"]
        == f"{int(m[1], 16):#x} → labuaf_dev (module labuaf, {section})"
    )


# -- the long list ---------------------------------------------------------------------------------


def test_the_long_list_of_replies_is_crashs_window_by_window(session: Session, dump: Dump) -> None:
    """5,000 replies: a window of 1,000 nodes at a time, "[1000…]" rows walking on; all windows
    together are crash's ``list``, in order."""
    from vmcore_dap.dump.structures.collections_view import CHUNK

    expected = [address for address, _ in entries(dump.crash["list-replies"])]
    replies = dump.expected["replies"]
    assert (
        len(expected) == replies["count"]
        and expected[0] == replies["first"]
        and expected[-1] == replies["last"]
    )
    body = session.choose("labuaf_dev.replies", "struct labuaf_reply", "link")
    assert body["result"] == f"{CHUNK}+ entries (struct labuaf_reply.link)"
    seen: list[int] = []
    window = body
    while True:
        rows = session.page(window["variablesReference"], 0, window["indexedVariables"])
        assert [r["name"] for r in rows] == [f"[{len(seen) + i}]" for i in range(len(rows))]
        seen += [_address(r) for r in rows]
        more = [v for name, v in session.named(window["variablesReference"]).items() if name.endswith("…]")]
        if not more:
            break
        assert more[0]["name"] == f"[{len(seen)}…]"
        window = more[0]
    assert seen == expected
    last = session.named(rows[-1]["variablesReference"])
    assert member_value(last["id"]["value"]) == str(replies["count"] - 1)
    assert member_value(last["text"]["value"]) == f"reply-{replies['count'] - 1}"
