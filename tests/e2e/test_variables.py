"""Scopes, variables and evaluate on every sample, checked against crash on the same dump.

One adapter per sample is launched for the whole module and stopped on the panic; the faulting frame
is the one the manifest names. Expected values come from the manifest (what the guest printed before
crashing), from the module's source, and from crash: ``whatis`` for the faulting function's
prototype, ``struct -o task_struct <addr>`` for member addresses, ``struct task_struct.<members>
<addr>`` and ``struct labbug_device <addr>`` for values, ``rd`` to prove a page is excluded, and
``ps`` for parents and per-CPU current tasks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import answers_for
from tests.helpers.crash_batch import run_crash
from tests.helpers.crash_compare import rd_words
from tests.helpers.crash_parse import parse_ps
from tests.helpers.dap_client import DapClient
from tests.helpers.kdump_patch import page_excluded
from tests.helpers.kernel_config import config_value

pytestmark = pytest.mark.timeout(900)


# -- the debuggee ------------------------------------------------------------------------------------


@dataclass
class Debugged:
    """An adapter stopped on a sample's panic, with the faulting frame located."""

    client: DapClient
    sample: Any
    thread_id: int
    frames: list[dict[str, Any]]
    focus: dict[str, Any]
    capabilities: dict[str, Any]
    scopes: dict[str, int] = field(default_factory=dict)

    def variables(self, reference: int, **extra: Any) -> list[dict[str, Any]]:
        return self.client.call("variables", {"variablesReference": reference, **extra})["variables"]

    def scope(self, name: str, **extra: Any) -> dict[str, dict[str, Any]]:
        return {v["name"]: v for v in self.variables(self.scopes[name], **extra)}

    def children(self, variable: dict[str, Any], **extra: Any) -> dict[str, dict[str, Any]]:
        assert variable["variablesReference"] > 0, f"{variable['name']} is not expandable: {variable}"
        return {v["name"]: v for v in self.variables(variable["variablesReference"], **extra)}

    def evaluate(self, expression: str, context: str = "hover", **extra: Any) -> dict[str, Any]:
        args = {"expression": expression, "frameId": self.focus["id"], "context": context, **extra}
        return self.client.call("evaluate", args)

    def task(self) -> dict[str, Any]:
        return self.scope("Kernel")["task"]


@pytest.fixture(scope="module")
def dbg(sample: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Debugged]:
    client = DapClient(tmp_path_factory.mktemp(f"variables-{sample.scenario}"))
    try:
        capabilities = client.initialize()
        launch = client.send_request(
            "launch",
            {
                "type": "vmcore",
                "request": "launch",
                "vmcore": str(sample.vmcore),
                "vmlinux": str(sample.vmlinux),
                "debugInfo": [str(p) for p in sample.debug_info],
            },
        )
        response = client.wait_response(launch, 300)
        assert response["success"], response
        client.wait_event("initialized", timeout=300)
        client.call("configurationDone")
        stopped = client.wait_event("stopped", timeout=300)
        thread_id = stopped["body"]["threadId"]
        frames = client.call("stackTrace", {"threadId": thread_id})["stackFrames"]
        function = sample.expected["function"]
        focus = next((f for f in frames if f["name"].split(" ")[0] == function), None)
        assert focus is not None, f"no frame named {function} in {[f['name'] for f in frames]}"
        debugged = Debugged(client, sample, thread_id, frames, focus, capabilities)
        scopes = client.call("scopes", {"frameId": focus["id"]})["scopes"]
        debugged.scopes = {s["name"]: s["variablesReference"] for s in scopes}
        yield debugged
        assert not client.schema_errors, client.schema_errors
    finally:
        client.close()


# -- crash, for what the stored oracle answers do not cover -------------------------------------------


@dataclass
class Oracle:
    """crash's answers about the addresses this module's tests look at (one crash run per sample:
    crash takes minutes to start on arm64, where it runs under qemu-aarch64)."""

    task_address: int
    #: crash's prototype of the faulting function; None where crash has no module symbols (7.x).
    whatis: str | None
    task_offsets: str
    task_values: str
    #: The first page of the direct map a filtered (kdump-compressed) dump left out, and crash's rd
    #: of it (with crash's own stdout, where it prints the error); None for an ELF dump of all memory.
    excluded_address: int | None
    excluded_rd: str | None
    ps: str
    bt: str
    per_cpu_offset_rd: str
    dev_address: int | None
    dev_values: str | None


#: Searched in the direct map of x86-64 (``page_offset_base``): the filtered samples are amd64 ones
#: (arm64's makedumpfile cannot write 52-bit VA dumps, so arm64's samples are raw ELF files).
_FIND_EXCLUDED = """
def _vmcore_dap_first_excluded():
    base = prog['page_offset_base'].value_()
    for address in range(base + (16 << 20), base + (1 << 30), 1 << 20):
        try:
            prog.read(address, 8)
        except FaultError:
            return address
    return None
"""


@pytest.fixture(scope="module")
def oracle(dbg: Debugged) -> Oracle:
    task_address = int(dbg.task()["memoryReference"], 16)
    # crash --no_modules (7.x) knows no module symbol or type: the module's functions and types
    # are then checked against the module's source (the tests say so).
    module_types = answers_for(dbg.sample).trusts("struct-o") or dbg.sample.scenario != "oops-null"
    commands = {
        "whatis": f"whatis {dbg.sample.expected['function']}" if module_types else "whatis task_struct",
        "task_offsets": f"struct -o task_struct {task_address:x}",
        "task_values": f"struct task_struct.comm,pid,prio,real_parent {task_address:x}",
        "ps": "ps",
        "bt": "bt",
        "per_cpu_offset_rd": "rd -64 __per_cpu_offset 2",
    }
    excluded = None
    if dbg.sample.dump_format == "kdump-compressed":
        dbg.evaluate(_FIND_EXCLUDED, "repl")
        found = dbg.evaluate("_vmcore_dap_first_excluded()", "repl")["result"]
        assert found != "None", "no unreadable page in the direct map of a -d 31 dump"
        excluded = int(found)
        commands["excluded_rd"] = f"rd -64 {excluded:x} 1"
    dev_address = None
    if dbg.sample.scenario == "oops-null":
        dev = dbg.scope("Arguments")["dev"]
        dev_address = int(dev["memoryReference"], 16)
        if module_types:
            commands["dev_values"] = f"struct labbug_device {dev_address:x}"
    *outputs, log = run_crash(dbg.sample, list(commands.values()))
    answers = dict(zip(commands, outputs, strict=True))
    return Oracle(
        task_address=task_address,
        whatis=answers["whatis"] if module_types else None,
        task_offsets=answers["task_offsets"],
        task_values=answers["task_values"],
        excluded_address=excluded,
        excluded_rd=answers["excluded_rd"] + log if excluded is not None else None,
        ps=answers["ps"],
        bt=answers["bt"],
        per_cpu_offset_rd=answers["per_cpu_offset_rd"],
        dev_address=dev_address,
        dev_values=answers.get("dev_values"),
    )


def _dump_level(sample: Any) -> int:
    """The ``-d`` level of the makedumpfile command that wrote the sample's kdump ``vmcore``."""
    name = Path(sample.vmcore).name
    for command in sample.manifest["guest"]["dump_commands"]:
        m = re.fullmatch(rf"makedumpfile (?:-\S+ )*-d (\d+) \S+ {re.escape(name)}", command)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no makedumpfile command writes {name}: {sample.manifest['guest']}")


def _crash_members(text: str) -> dict[str, int | str]:
    """``name = value`` lines of crash's ``struct`` output (ints parsed, strings unquoted)."""
    result: dict[str, int | str] = {}
    for m in re.finditer(r"^\s+(\w+) = (.*?),?$", text, re.M):
        value = m.group(2)
        string = re.search(r'"((?:[^"\\]|\\.)*)"', value)
        if string:
            # A char array up to its first NUL: crash prints all of it ("sh\000\000set\000…" on 5.10).
            result[m.group(1)] = re.sub(r"\\000.*$", "", string.group(1))
        elif re.fullmatch(r"-?\d+", value):
            result[m.group(1)] = int(value)
        elif re.fullmatch(r"0x[0-9a-f]+", value):
            result[m.group(1)] = int(value, 16)
    return result


# -- tests ------------------------------------------------------------------------------------------


def test_capabilities_advertise_hover_and_formatting(dbg: Debugged) -> None:
    caps = dbg.capabilities
    assert caps.get("supportsEvaluateForHovers") is True
    assert caps.get("supportsValueFormattingOptions") is True
    assert not caps.get("supportsSetVariable")
    assert not caps.get("supportsSetExpression")
    assert list(dbg.scopes) == ["Arguments", "Locals", "Registers", "Kernel"]


@pytest.mark.every_kernel(extra_crash_run=True)
def test_faulting_frame_arguments_match_crash_whatis(dbg: Debugged, oracle: Oracle) -> None:
    arguments = dbg.variables(dbg.scopes["Arguments"])
    if oracle.whatis is not None:
        m = re.search(r"\w+\((.*)\);", oracle.whatis)
        assert m, oracle.whatis
        crash_types = [t.strip() for t in m.group(1).split(",")] if m.group(1) != "void" else []
        assert [a["type"] for a in arguments] == crash_types
    for argument in arguments:
        assert argument["evaluateName"] == argument["name"]
    if dbg.sample.scenario == "oops-null":
        source = (Path(dbg.sample.module_source_dir) / "labbug.c").read_text()
        signature = re.search(r"int labbug_walk\(([^)]*)\)", source, re.S)
        assert signature
        names = [re.findall(r"\w+", p)[-1] for p in signature.group(1).split(",")]
        assert [a["name"] for a in arguments] == names
        if oracle.whatis is None:  # the types as the source declares them (sparse's __user compiled away)
            types = [
                re.sub(r"\s*\b\w+$", "", p.strip().replace("__user ", ""))
                for p in signature.group(1).split(",")
            ]
            assert [a["type"] for a in arguments] == types


@pytest.mark.every_kernel
def test_guaranteed_locals_have_the_values_the_guest_printed(dbg: Debugged) -> None:
    locals_ = dbg.scope("Locals")
    arguments = dbg.scope("Arguments")
    assert not set(locals_) & set(arguments), "a parameter is listed under Locals too"
    expected = dbg.sample.expected.get("locals", {})
    if dbg.sample.scenario == "oops-null":
        assert expected, "the oops-null manifest guarantees locals"
    for name, value in expected.items():
        assert name in locals_, f"local {name} missing from {sorted(locals_)}"
        shown = locals_[name]
        if isinstance(value, list):
            assert shown["indexedVariables"] == len(value)
            elements = dbg.variables(shown["variablesReference"], filter="indexed", start=0, count=len(value))
            assert [int(e["value"]) for e in elements] == value
            assert [e["evaluateName"] for e in elements] == [f"{name}[{i}]" for i in range(len(value))]
        elif isinstance(value, int):
            assert shown["value"] == str(value)
        else:
            assert shown["value"] in (value, json.dumps(value)), shown
        assert shown["memoryReference"].startswith("0x")


@pytest.mark.every_kernel(extra_crash_run=True)
def test_task_members_and_addresses_match_crash_struct_o(dbg: Debugged, oracle: Oracle) -> None:
    members = dbg.children(dbg.task())
    top = re.findall(r"^  \[([0-9a-f]+)\] (\S.*);$", oracle.task_offsets, re.M)
    assert len(top) > 100, oracle.task_offsets[:2000]
    checked = 0
    for address, declaration in top:
        if "(*" in declaration:  # function pointer declarators: compare the address only
            name = re.search(r"\(\*(\w+)\)", declaration).group(1)  # type: ignore[union-attr]
            crash_type = None
        else:
            m = re.fullmatch(r"(.*?)(\w+)((?:\[\d+\])*)( : \d+)?", declaration)
            assert m, declaration
            name = m.group(2)
            crash_type = (m.group(1).strip() + (" " + m.group(3) if m.group(3) else "")).replace("* ", "*")
            crash_type = crash_type + (m.group(4) or "")
        ours = members.get(name)
        assert ours is not None, f"crash lists task_struct.{name}, we do not"
        if ours["type"].endswith("*") or "(*" in ours["type"]:
            # A pointer's memoryReference is where it points; ask for its own address instead.
            where = dbg.evaluate(f"&{ours['evaluateName']}")["result"].split()[0]
        else:
            where = ours["memoryReference"]
        assert int(where, 16) == int(address, 16), (name, where, address)
        if crash_type is not None:
            assert ours["type"].replace("* ", "*") == crash_type, (name, ours["type"], crash_type)
        assert ours["evaluateName"] == f"current->{name}"
        checked += 1
    assert checked == len(top)
    # rcu_users shares an anonymous union with rcu up to 6.1 (nested in crash's output; ours under
    # "<anonymous union>"); on 6.12 and 7.2 it is a member of its own, compared above.
    crash_rcu = re.search(r"\[([0-9a-f]+)\]( +)refcount_t rcu_users;", oracle.task_offsets)
    assert crash_rcu, "crash's struct -o task_struct has no rcu_users"
    if crash_rcu.group(2) == " ":
        assert "rcu_users" in members
        return
    anonymous = [v for n, v in members.items() if n.startswith("<anonymous")]
    assert anonymous
    nested = dbg.children(anonymous[0])
    assert "rcu_users" in nested and nested["rcu_users"]["evaluateName"] == "current->rcu_users"
    assert int(nested["rcu_users"]["memoryReference"], 16) == int(crash_rcu.group(1), 16)


@pytest.mark.every_kernel(extra_crash_run=True)
def test_struct_values_match_crash(dbg: Debugged, oracle: Oracle) -> None:
    members = dbg.children(dbg.task())
    crash = _crash_members(oracle.task_values)
    assert members["comm"]["value"] == f'"{crash["comm"]}"' == f'"{dbg.sample.expected["crashed_comm"]}"'
    assert int(members["pid"]["value"]) == crash["pid"] == dbg.sample.expected["crashed_pid"]
    assert int(members["prio"]["value"]) == crash["prio"]
    assert int(members["real_parent"]["value"].split()[0], 16) == crash["real_parent"]
    if dbg.sample.scenario == "oops-null" and oracle.dev_values is None:
        # No module types in crash (7.x): the values labbug.c gives the device.
        dev = dbg.children(dbg.scope("Arguments")["dev"])
        source = (Path(dbg.sample.module_source_dir) / "labbug.c").read_text()
        name = re.search(r'labbug_dev->name = "([^"]*)"', source).group(1)  # type: ignore[union-attr]
        magic = int(re.search(r"labbug_dev->magic = (0x[0-9a-f]+)", source).group(1), 16)  # type: ignore[union-attr]
        assert dev["name"]["value"].endswith(f'"{name}"') and int(dev["magic"]["value"]) == magic
        assert int(dev["head"]["value"], 16) == 0
    if oracle.dev_values is not None:
        dev = dbg.children(dbg.scope("Arguments")["dev"])
        crash_dev = _crash_members(oracle.dev_values)
        assert set(dev) == {"name", "magic", "writes", "head"}
        assert dev["name"]["value"].endswith(f'"{crash_dev["name"]}"')
        assert int(dev["magic"]["value"]) == crash_dev["magic"]
        assert int(dev["writes"]["value"]) == crash_dev["writes"]
        assert int(dev["head"]["value"], 16) == crash_dev["head"] == 0
        assert dev["head"]["variablesReference"] == 0  # NULL does not expand


@pytest.mark.every_kernel(extra_crash_run=True)
def test_pointer_chain_two_levels_follows_crash_ps(dbg: Debugged, oracle: Oracle) -> None:
    table = parse_ps(oracle.ps)
    # Every CPU's idle task has PID 0; the parent of PID 1 and of kthreadd is CPU 0's (init_task).
    rows = {row.pid: row for row in table if row.pid} | {
        0: next(r for r in table if r.pid == 0 and r.cpu == 0)
    }
    me = rows[dbg.sample.expected["crashed_pid"]]
    parent = rows[me.ppid]
    grandparent = rows[parent.ppid]
    level1 = dbg.children(dbg.task())["real_parent"]
    level2 = dbg.children(level1)["real_parent"]
    assert level2["evaluateName"] == "current->real_parent->real_parent"
    assert int(level2["value"].split()[0], 16) == grandparent.task
    grand = dbg.children(level2)
    assert grand["comm"]["value"].strip('"') == grandparent.comm.strip("[]")
    assert int(grand["pid"]["value"]) == grandparent.pid


@pytest.mark.every_kernel
def test_array_page_with_start_and_count(dbg: Debugged) -> None:
    comm = dbg.children(dbg.task())["comm"]
    name = dbg.sample.expected["crashed_comm"]
    assert comm["type"] == "char [16]" and comm["indexedVariables"] == 16
    page = dbg.variables(comm["variablesReference"], filter="indexed", start=1, count=3)
    assert [v["name"] for v in page] == ["[1]", "[2]", "[3]"]
    padded = (name + "\0" * 16)[1:4]  # comm is NUL-padded; "sh" leaves NULs in the page
    assert [v["value"] for v in page] == [f"{ord(c)} '{c if c != chr(0) else chr(92) + '0'}'" for c in padded]
    assert [v["evaluateName"] for v in page] == ["current->comm[1]", "current->comm[2]", "current->comm[3]"]
    assert dbg.variables(comm["variablesReference"], filter="named") == []
    beyond = dbg.variables(comm["variablesReference"], filter="indexed", start=15, count=10)
    assert [v["name"] for v in beyond] == ["[15]"]


@pytest.mark.every_kernel
def test_optimized_out_values(dbg: Debugged) -> None:
    absent = []
    for frame in dbg.frames:
        if frame.get("presentationHint") == "label":
            continue
        for scope in dbg.client.call("scopes", {"frameId": frame["id"]})["scopes"]:
            if scope["name"] in ("Arguments", "Locals"):
                absent += [
                    (frame, v)
                    for v in dbg.variables(scope["variablesReference"])
                    if v["value"] == "<optimized out>"
                ]
    assert absent, "an -O2 kernel stack with no optimized-out variable at all"
    frame, variable = absent[0]
    assert variable["variablesReference"] == 0 and "memoryReference" not in variable
    result = dbg.client.call(
        "evaluate", {"expression": variable["evaluateName"], "frameId": frame["id"], "context": "hover"}
    )
    assert result["result"] == "<optimized out>"


@pytest.mark.every_kernel(extra_crash_run=True)
def test_unreadable_memory_is_a_value_not_a_failure(dbg: Debugged, oracle: Oracle) -> None:
    assert dbg.evaluate("*(int *)0")["result"] == "<error: cannot read 0x0: NULL pointer>"
    if oracle.excluded_address is not None:
        # The reason names the filter the dump was written with (the sample's own makedumpfile
        # command) and the physical page (a direct-map address: virtual - page_offset_base); an
        # excluded page is of a kind that level drops (makedumpfile(8)'s -d bits), never a slab page.
        level = _dump_level(dbg.sample)
        base = int(dbg.evaluate("prog['page_offset_base'].value_()", "repl")["result"])
        phys = oracle.excluded_address - base
        # The dump file's own bitmaps say the page is RAM left out; crash's rd says so too, except
        # crash 9.0.2 on 7.2.13, which prints nothing at all for it (measured).
        assert page_excluded(Path(dbg.sample.vmcore), phys >> 12)
        if not dbg.sample.kernel_release.startswith("7."):
            assert oracle.excluded_rd is not None and "page excluded" in oracle.excluded_rd, (
                oracle.excluded_rd
            )
        dropped = [(8, "user"), (2 | 4, "cache"), (16, "free")]
        kinds = "/".join(name for bits, name in dropped if level & bits)
        pages = [
            (8, r"user \(anonymous\) page"),
            (2 | 4, "page-cache page"),
            (16, "free page"),
            (1, "page of zeros, presumably"),
        ]
        kind = "|".join(pattern for bits, pattern in pages if level & bits)
        result = dbg.evaluate(f"*(unsigned long *){oracle.excluded_address:#x}")
        assert re.fullmatch(
            rf"<error: cannot read {oracle.excluded_address:#x}: excluded from the dump by makedumpfile "
            rf"-d {level} \({kinds} pages\); physical page {phys:#x} is a ({kind})>",
            result["result"],
        ), result["result"]
    # A user pointer in task_struct cannot be followed; the other members still load.
    members = dbg.children(dbg.task())
    broken = [v for v in members.values() if "<error: cannot read" in v["value"]]
    assert broken, "expected user-space pointers (set_child_tid, clear_child_tid) to be unreadable"
    # Besides user pointers and excluded pages: a pointer into the NULL page, as task_struct.objcg
    # is when it holds only its update flag, 0x1 (v6.7's CURRENT_OBJCG_UPDATE_FLAG; 6.12, 7.2).
    reasons = ("user-space address", "excluded", ": NULL pointer>")
    assert all(any(reason in v["value"] for reason in reasons) for v in broken), broken
    assert members["pid"]["value"] == str(dbg.sample.expected["crashed_pid"])


@pytest.mark.every_kernel
def test_hex_formatting(dbg: Debugged) -> None:
    pid = dbg.sample.expected["crashed_pid"]
    members = dbg.children(dbg.task(), format={"hex": True})
    assert members["pid"]["value"] == hex(pid)
    assert dbg.evaluate("current->pid", format={"hex": True})["result"] == hex(pid)
    assert dbg.evaluate("current->pid")["result"] == str(pid)
    assert dbg.evaluate("-1", format={"hex": True})["result"] == "0xffffffff"
    # Hex is per request: the handle does not change with the format.
    assert dbg.children(dbg.task())["pid"]["value"] == str(pid)
    registers = dbg.variables(dbg.scopes["Registers"])
    assert registers and all(r["value"].startswith("0x") for r in registers)


@pytest.mark.every_kernel(extra_crash_run=True)
def test_hover_expressions_in_c(dbg: Debugged, oracle: Oracle) -> None:
    task = dbg.task()
    address = task["memoryReference"]
    cast = dbg.evaluate(f"(struct task_struct *){address}")
    assert cast["result"] == task["value"] and cast["type"] == "struct task_struct *"
    assert cast["namedVariables"] == task["namedVariables"]
    assert dbg.evaluate("container_of(&current->tasks, struct task_struct, tasks)")["result"] == task["value"]
    cpu = dbg.sample.expected["crashed_cpu"]
    active = [r for r in parse_ps(oracle.ps) if r.active and r.cpu == cpu]
    assert len(active) == 1
    curr = dbg.evaluate(f"per_cpu(runqueues, {cpu}).curr")
    assert int(curr["result"].split()[0], 16) == active[0].task
    handler = dbg.evaluate("sysrq_crash_op.handler")
    assert handler["result"].endswith("<sysrq_handle_crash>"), handler
    assert dbg.evaluate("sizeof(struct list_head)")["result"] == "16"
    assert dbg.evaluate("current->pid == " + str(dbg.sample.expected["crashed_pid"]))["result"] == "1"
    uts = dbg.evaluate("init_uts_ns.name.release")
    assert uts["result"] == f'"{dbg.sample.kernel_release}"'


@pytest.mark.every_kernel(extra_crash_run=True)
def test_extern_globals_in_a_frame_are_the_kernels(dbg: Debugged, oracle: Oracle) -> None:
    # A frame's compilation unit may declare __per_cpu_offset (extern, via the percpu headers):
    # drgn's frame scope finds that declaration without a location. Hovering it in the editor must
    # show the kernel's array in every frame, not "<optimized out>".
    expected = list(rd_words(oracle.per_cpu_offset_rd).values())
    assert len(expected) == 2, oracle.per_cpu_offset_rd
    for frame in dbg.frames:
        if frame.get("presentationHint") == "label":
            continue
        args = {"expression": "__per_cpu_offset", "frameId": frame["id"], "context": "hover"}
        array = dbg.client.call("evaluate", args)
        assert array.get("indexedVariables", 0) > 1, (frame["name"], array)
        first = dbg.variables(array["variablesReference"], start=0, count=2)
        assert [int(v["value"]) for v in first] == expected, (frame["name"], first)


@pytest.mark.every_kernel(extra_crash_run=True)
def test_a_page_of_up_to_4096_elements_matches_crash_and_each_element_alone(dbg: Debugged) -> None:
    # A page this long is formatted from one read, in columns; each element must still carry what it
    # carries alone: its value (crash's rd), type, evaluateName for "Add to Watch", memoryReference
    # for "View Binary Data", and readOnly (without it VS Code opens an editor on double-click).
    # __per_cpu_offset has CONFIG_NR_CPUS elements (Debian: 8192 on amd64, 512 on arm64); the page
    # leaves room for the tail's two elements past it.
    count = min(4096, int(config_value(dbg.sample, "NR_CPUS") or 0) // 2)
    assert count >= 256, f"CONFIG_NR_CPUS of {dbg.sample.kernel_release}: {count * 2}"
    (crash_rd, _errors) = run_crash(dbg.sample, [f"rd -64 __per_cpu_offset {count}"])
    words = rd_words(crash_rd)
    assert len(words) == count, crash_rd[-500:]
    array = dbg.evaluate("__per_cpu_offset", "watch")
    assert array["indexedVariables"] >= count
    page = dbg.variables(array["variablesReference"], start=0, count=count)
    assert [v["name"] for v in page] == [f"[{i}]" for i in range(count)]
    assert [(int(v["memoryReference"], 16), int(v["value"])) for v in page] == list(words.items())
    assert [v["evaluateName"] for v in page] == [f"__per_cpu_offset[{i}]" for i in range(count)]
    assert {v["type"] for v in page} == {"unsigned long"}
    assert all(v["variablesReference"] == 0 for v in page)
    assert all(v["presentationHint"] == {"attributes": ["readOnly"]} for v in page)
    assert {len(v) for v in page} == {7}, "a field more or less than an element has alone"
    for element in page[:2] + page[1000:1001] + page[-1:]:
        alone = dbg.evaluate(element["evaluateName"], "watch")
        assert (alone["result"], alone["type"], alone["memoryReference"]) == (
            element["value"],
            element["type"],
            element["memoryReference"],
        )
    tail = dbg.variables(array["variablesReference"], start=count - 2, count=4, format={"hex": True})
    assert [v["name"] for v in tail] == [f"[{i}]" for i in range(count - 2, count + 2)]
    assert [int(v["value"], 16) for v in tail[:2]] == list(words.values())[-2:]
    assert all(v["value"].startswith("0x") for v in tail)


@pytest.mark.every_kernel
def test_hover_in_the_module_function(dbg: Debugged) -> None:
    if dbg.sample.scenario == "sysrq-c":
        # The same C evaluator serves every frame: hover an argument of the sysrq path instead.
        key = dbg.evaluate("key")
        assert key["result"] in ("<optimized out>",) or key["result"].lstrip("-").isdigit()
        return
    if dbg.sample.scenario == "irq-oops":
        # labbug_tick(dev, count), in hard interrupt context: the same device, the same NULL head.
        assert dbg.evaluate("dev->head")["result"] == "0x0"
        assert dbg.evaluate("dev->head->value")["result"] == "<error: cannot read 0x8: NULL pointer>"
        assert dbg.evaluate("labbug_dev")["result"] == dbg.evaluate("dev")["result"]
        assert dbg.evaluate("ticks * 2")["result"] == str(2 * dbg.sample.expected["locals"]["ticks"])
        return
    source = (Path(dbg.sample.module_source_dir) / "labbug.c").read_text()
    name = re.search(r'labbug_dev->name = "([^"]*)"', source).group(1)  # type: ignore[union-attr]
    magic = int(re.search(r"labbug_dev->magic = (0x[0-9a-f]+)", source).group(1), 16)  # type: ignore[union-attr]
    assert dbg.evaluate("dev->name")["result"].endswith(f'"{name}"')
    assert dbg.evaluate("dev->magic")["result"] == str(magic)
    assert dbg.evaluate("dev->magic", format={"hex": True})["result"] == hex(magic)
    assert dbg.evaluate("dev->head")["result"] == "0x0"
    assert dbg.evaluate("dev->head->value")["result"] == "<error: cannot read 0x8: NULL pointer>"
    # The symbol, its module and section (checked against crash's sym in test_structures.py).
    assert re.search(r" → labbug_dev \(module labbug, \.(bss|data)\)$", dbg.evaluate("&labbug_dev")["result"])
    assert dbg.evaluate("labbug_dev")["result"] == dbg.scope("Arguments")["dev"]["value"]
    assert dbg.evaluate("samples[3] / counter")["result"] == "16"
    assert dbg.evaluate("mode == LABBUG_MODE_WALK")["result"] == "1"
    assert dbg.evaluate("(unsigned long)dev->magic")["type"] == "unsigned long"
    response = dbg.client.request(
        "evaluate", {"expression": "dev->bar", "frameId": dbg.focus["id"], "context": "hover"}
    )
    assert not response["success"]
    assert response["message"] == "'struct labbug_device' has no member 'bar' (column 6)"
    response = dbg.client.request(
        "evaluate", {"expression": "nosuch + 1", "frameId": dbg.focus["id"], "context": "watch"}
    )
    assert response["message"] == "no symbol 'nosuch' in this frame or the kernel (column 1)"


@pytest.mark.every_kernel
def test_evaluate_names_round_trip(dbg: Debugged) -> None:
    task = dbg.task()
    children = list(dbg.children(task).values())[:60]
    children += list(dbg.scope("Locals").values()) + list(dbg.scope("Arguments").values())
    for child in children:
        if "evaluateName" not in child:
            continue
        again = dbg.evaluate(child["evaluateName"], "watch")
        assert again["result"] == child["value"], child["evaluateName"]
        assert again.get("memoryReference") == child.get("memoryReference"), child["evaluateName"]
        assert again["type"] == child["type"], child["evaluateName"]


@pytest.mark.every_kernel
def test_repl_runs_drgn_python(dbg: Debugged) -> None:
    comm = dbg.sample.expected["crashed_comm"]
    pid = dbg.sample.expected["crashed_pid"]
    assert dbg.evaluate("task.comm.string_().decode()", "repl")["result"] == repr(comm)
    release = dbg.evaluate("prog['init_uts_ns'].name.release.string_().decode()", "repl")
    assert release["result"] == repr(dbg.sample.kernel_release)
    assert dbg.evaluate(f"t = find_task(prog, {pid})", "repl")["result"] == ""
    found = dbg.evaluate("t", "repl")
    assert found["type"] == "struct task_struct *" and found["variablesReference"] > 0
    assert dbg.children(found)["comm"]["value"] == f'"{comm}"'
    assert dbg.evaluate("%py 6 * 7", "repl")["result"] == "42"
    failure = dbg.client.request(
        "evaluate", {"expression": "1/0", "frameId": dbg.focus["id"], "context": "repl"}
    )
    assert not failure["success"] and "ZeroDivisionError" in failure["message"]


def test_stale_and_forged_references_are_refused(dbg: Debugged) -> None:
    for forged in (2**30, 0, -1):
        response = dbg.client.request("variables", {"variablesReference": forged})
        assert not response["success"]
        assert "unknown variablesReference" in response["message"]
    response = dbg.client.request("variables", {"variablesReference": "7"})
    assert not response["success"] and "must be an integer" in response["message"]
    response = dbg.client.request("scopes", {"frameId": 10**6})
    assert not response["success"] and "frameId" in response["message"]
    response = dbg.client.request("evaluate", {"expression": "jiffies", "frameId": 10**6, "context": "hover"})
    assert not response["success"]


def test_handles_are_stable(dbg: Debugged) -> None:
    scopes = {
        s["name"]: s["variablesReference"]
        for s in dbg.client.call("scopes", {"frameId": dbg.focus["id"]})["scopes"]
    }
    assert scopes == dbg.scopes
    first = {n: v["variablesReference"] for n, v in dbg.children(dbg.task()).items()}
    second = {n: v["variablesReference"] for n, v in dbg.children(dbg.task()).items()}
    assert first == second and sum(1 for ref in first.values() if ref > 0) >= 10, first
    current = dbg.evaluate("current")["variablesReference"]
    assert current > 0 and dbg.evaluate("current")["variablesReference"] == current


def test_variables_are_read_only(dbg: Debugged) -> None:
    for command, args in (
        ("setVariable", {"variablesReference": dbg.scopes["Locals"], "name": "x", "value": "1"}),
        ("setExpression", {"expression": "jiffies", "value": "0", "frameId": dbg.focus["id"]}),
    ):
        response = dbg.client.request(command, args)
        assert not response["success"]
        assert "read-only" in response["message"]


#: The user registers crash's ``bt`` prints under a system call's entry frame: where the block
#: starts, and crash's name of each register by the name the label's Registers give it (the
#: architecture's ``pt_regs``: x86-64's ``ip``, arm64's ``regs[N]`` as ``xN``).
_USER_REGISTER_BLOCK = {
    "amd64": (
        "RIP:",
        {"ip": "RIP", "sp": "RSP", "ax": "RAX", "bx": "RBX", "di": "RDI", "si": "RSI", "orig_ax": "ORIG_RAX"},
    ),
    "arm64": (
        " PC:",
        {
            "pc": "PC",
            "sp": "SP",
            "x0": "X0",
            "x1": "X1",
            "x2": "X2",
            "x8": "X8",
            "x29": "X29",
            "orig_x0": "ORIG_X0",
        },
    ),
}


@pytest.mark.every_kernel
def test_syscall_boundary_registers_match_crash_bt(dbg: Debugged) -> None:
    """The label frame of the system call shows the user registers saved in its ``pt_regs``, as
    crash's ``bt`` of the crashed task prints them (FRED's 16 bytes lower on 7.x, arm64's
    ``pt_regs``)."""
    label = dbg.frames[-1]
    assert label.get("presentationHint") == "label", label
    scopes = {
        s["name"]: s["variablesReference"]
        for s in dbg.client.call("scopes", {"frameId": label["id"]})["scopes"]
    }
    assert list(scopes) == ["Registers", "Kernel"]
    registers = {v["name"]: v for v in dbg.variables(scopes["Registers"])}
    start, pairs = _USER_REGISTER_BLOCK[dbg.sample.arch]
    bt = answers_for(dbg.sample)["bt"]
    user = bt[bt.rindex(start) :]
    crash = {k: int(v, 16) for k, v in re.findall(r"\b([A-Z0-9_]+): ([0-9a-f]{4,})", user)}
    for ours, theirs in pairs.items():
        assert int(registers[ours]["value"], 16) == crash[theirs], (ours, registers[ours], crash[theirs])
        member = f"regs[{ours[1:]}]" if re.fullmatch(r"x\d+", ours) else ours  # arm64's xN: regs[N]
        assert registers[ours]["evaluateName"].endswith(f")->{member}"), registers[ours]
        assert (
            dbg.evaluate(registers[ours]["evaluateName"], format={"hex": True})["result"]
            == registers[ours]["value"]
        )
