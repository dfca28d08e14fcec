"""The kernel differences issue 14 found on the x86-64 kernels of the matrix, each on its real sample.

- Linux >= 6.4 splits a module's memory (``struct module.mem[]``): the Modules view, the language
  server and triage must not stop at drgn's "module has multiple address ranges" (Debian 13's 6.12,
  sid's 7.2).
- 7.x's ``struct taint_flag`` has no ``module`` member (sid's 7.2).
- 5.10 has no kallsyms in VMCOREINFO: no traceback, no warning (Debian 11's 5.10).
- ``CONFIG_X86_FRED`` (sid's 7.2): the user registers sit 16 bytes lower; the write() row stays.
- and the sysrq-c sample of every x86-64 kernel of the run, end to end (first screen, Threads, the
  crashed stack to its write() row, Registers, Modules, disassembly, the console).

crash's answers for these kernels are not trusted for modules (crash 9.0 reads 7.2 only with
``--no_modules``), so the oracles here are the guest's own log (dmesg.txt, written by the crashed
kernel: "Modules linked in: labbug(OE)") and plain drgn on the same dump (makedumpfile -d 31's
lossy 7.2 dump: test_lossy_dump.py).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import drgn
import pytest
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.pid import find_task, for_each_task
from drgn.helpers.linux.sched import idle_task
from samples.sample_store import (
    MatrixSample,
    Sample,
    ensure_sample,
    samples_under_test,
)
from tests.conftest import get_crash_answers
from tests.e2e._session import (
    focus_index,
    normalized_dap_stack,
    open_sample_dump,
    parse_thread_name,
    source_line,
    stack_of,
    stopped_session,
)
from tests.helpers.crash_parse import CRASH_STATE_TO_LETTER, parse_ps, split_tasks
from tests.helpers.stack_normalize import normalize_crash_bt

from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.stacks.normalize import normalize_drgn_trace
from vmcore_dap.lsp.dump_session import DumpSession

pytestmark = pytest.mark.timeout(900)

#: x86-64 kernels of the matrix whose modules have split memory (Linux >= 6.4).
SPLIT_MODULE_KERNELS = ("deb13-6.12-amd64", "sid-7-amd64")

_samples: dict[tuple[str, str, str | None], Sample] = {}


def _sample(scenario: str, kernel: str, variant: str | None = None) -> Sample:
    key = (scenario, kernel, variant)
    if key not in _samples:
        _samples[key] = ensure_sample(scenario, kernel=kernel, variant=variant)
    return _samples[key]


@pytest.fixture(scope="module", params=SPLIT_MODULE_KERNELS)
def split_oops(request: pytest.FixtureRequest) -> Sample:
    """The oops-null sample (labbug loaded) of a kernel with split module memory."""
    return _sample("oops-null", request.param)


def _modules_linked_in(sample: Sample) -> dict[str, str]:
    text = Path(sample.dmesg).read_text(errors="replace")
    lines = re.findall(r"Modules linked in: (.*)", text)
    assert lines, "the guest's log has no 'Modules linked in' line"
    return dict(re.findall(r"(\S+?)\((\w+)\)", lines[-1]))


def _stderr(client: Any) -> str:
    return b"".join(client._stderr).decode(errors="replace")


def test_modules_view_on_split_module_memory(split_oops: Sample, tmp_path: Path) -> None:
    linked = _modules_linked_in(split_oops)
    with stopped_session(split_oops, tmp_path) as (client, _):
        body = client.call("modules", {})
        ours = {m["name"]: m for m in body["modules"]}
        assert "module has multiple address ranges" not in _stderr(client)
    # The kernel's own log says which modules were loaded and their taints (7.2: no taint_flag.module).
    assert set(ours) == set(linked) | {"kernel"}, (ours.keys(), linked)
    for name, letters in linked.items():
        assert sorted(ours[name]["taints"]) == sorted(letters), ours[name]
    # Base, size and struct module address from plain drgn: mem[MOD_TEXT] (v6.4's struct module).
    prog = open_sample_dump(split_oops).prog
    for mod in list_for_each_entry("struct module", prog["modules"].address_of_(), "list"):
        name = mod.name.string_().decode()
        text = mod.mem[prog.constant("MOD_TEXT")]
        module = ours[name]
        assert int(module["structModule"], 16) == mod.value_()
        assert int(module["base"], 16) == text.base.value_()
        assert module["size"] == text.size.value_()
        low, high = (int(x, 16) for x in module["addressRange"].split("-"))
        assert (low, high) == (text.base.value_(), text.base.value_() + text.size.value_())


def test_language_server_indexes_module_sources_on_split_module_memory(split_oops: Sample) -> None:
    config = LaunchConfig.from_arguments(
        {
            "vmcore": str(split_oops.vmcore),
            "vmlinux": str(split_oops.vmlinux),
            "debugInfo": [str(p) for p in split_oops.debug_info],
        }
    )
    roots = DumpSession(config).index_roots()
    # labbug's DWARF names its source file, which is in the sample (the module was built there).
    assert Path(split_oops.dir, split_oops.manifest["module_source_dir"]).resolve() in roots, roots


def test_write_row_at_the_bottom_with_fred(tmp_path: Path) -> None:
    """sid's 7.2 has CONFIG_X86_FRED: the crashed task's user registers (16 bytes lower) still give
    the write() system call the guest made, with the fd the guest's shell wrote to."""
    sample = _sample("oops-null", "sid-7-amd64")
    prog = open_sample_dump(sample).prog
    assert prog.symbol("asm_fred_entrypoint_user"), "the sid kernel is no longer built with FRED"
    with stopped_session(sample, tmp_path) as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
    assert re.match(r"^write\(fd=\d+, buf=0x[0-9a-f]+, count=\d+\)$", frames[-1]["name"]), frames[-1]
    assert frames[-1]["presentationHint"] == "label"


def test_5_10_without_kallsyms_logs_no_traceback(tmp_path: Path) -> None:
    sample = _sample("sysrq-c", "deb11-5.10-amd64")
    with stopped_session(sample, tmp_path) as (client, stopped):
        for thread in client.call("threads")["threads"]:
            stack_of(client, thread["id"])
        stderr = _stderr(client)
    log = (tmp_path / "adapter.log").read_text(errors="replace")
    assert "Traceback" not in stderr and "kallsyms" not in stderr, stderr
    assert "Traceback" not in log
    # Frames are named from the vmlinux's ELF symbols (memory.symbol_index), so the missing
    # VMCOREINFO kallsyms is never asked for: no warning about it at all.
    assert "cannot load the kernel's kallsyms" not in log and "cannot load module kallsyms" not in log


def _console(client: Any, line: str) -> str:
    """A console line's whole text (its output events); the line must succeed."""
    start = len(client.events)
    response = client.request("evaluate", {"expression": line, "context": "repl"}, timeout=300)
    assert response["success"], response
    return "".join(e["body"]["output"] for e in client.events[start:] if e["event"] == "output")


#: The x86-64 samples of this run (``make test``: sysrq-c on every kernel; ``make test-matrix``: all).
X86_SAMPLES = [
    spec
    for spec in samples_under_test()
    if spec.kernel.endswith("-amd64") and spec.scenario == "sysrq-c" and spec.variant is None
]


@pytest.mark.parametrize("spec", X86_SAMPLES, ids=lambda spec: spec.label)
def test_sysrq_c_on_every_x86_kernel(spec: MatrixSample, tmp_path: Path) -> None:
    """The first screen, Threads, the crashed stack down to its write() row, its registers, Modules,
    the console and disassembly, on each x86-64 kernel: against the guest's own facts (what the
    guest's /init ran: ``echo c > /proc/sysrq-trigger`` from sh, PID in its LABFACT line) and plain
    drgn's task count (crash's answers per kernel come with crash-oracles)."""
    sample = _sample(spec.scenario, spec.kernel, spec.variant)
    expected = sample.expected
    prog = open_sample_dump(sample).prog
    drgn_tasks = sum(1 for _ in for_each_task(prog, idle=True))
    with stopped_session(sample, tmp_path) as (client, stopped):
        threads = client.call("threads")["threads"]
        crashed = next(t for t in threads if t["id"] == stopped["body"]["threadId"])
        frames = stack_of(client, crashed["id"])
        focus = frames[focus_index(frames)]
        scopes = {
            s["name"]: s["variablesReference"]
            for s in client.call("scopes", {"frameId": focus["id"]})["scopes"]
        }
        registers = client.call("variables", {"variablesReference": scopes["Registers"]})["variables"]
        modules = client.call("modules", {})["modules"]
        listing = client.call(
            "disassemble",
            {"memoryReference": focus["instructionPointerReference"], "instructionCount": 8},
        )["instructions"]
        bt = _console(client, "bt")
        sys_text = _console(client, "sys")
        stderr = _stderr(client)
    assert len(threads) == drgn_tasks
    info = parse_thread_name(crashed["name"])
    assert (info["pid"], info["comm"]) == (expected["crashed_pid"], expected["crashed_comm"])
    assert focus["name"] == expected["function"]
    assert Path(focus["source"]["path"]).name == expected["file"]
    assert source_line(focus) == expected["line"]
    # sh's `echo c > /proc/sysrq-trigger`: fd 1, two bytes ("c\n"), from the user registers
    # (16 bytes lower with FRED, sid's 7.x).
    assert re.match(r"^write\(fd=1, buf=0x[0-9a-f]+, count=2\)$", frames[-1]["name"]), frames[-1]
    assert {"rip", "rsp"} <= {r["name"] for r in registers} and all(
        r["value"].startswith("0x") for r in registers
    )
    assert modules[0]["name"] == "kernel" and modules[0]["version"].startswith(sample.kernel_release)
    assert listing and listing[0]["address"] == focus["instructionPointerReference"]
    assert expected["function"] in bt
    assert re.search(rf"^\s+TASKS: {drgn_tasks}$", sys_text, re.M), sys_text
    assert re.search(rf"^\s+RELEASE: {re.escape(sample.kernel_release)}$", sys_text, re.M), sys_text
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize("spec", X86_SAMPLES, ids=lambda spec: spec.label)
def test_threads_and_every_stack_equal_crash_on_every_x86_kernel(spec: MatrixSample, tmp_path: Path) -> None:
    """Threads = crash's ``ps`` and every task's stack = crash's ``foreach bt`` (the normalisation
    rule), with the crash the oracle table picks for the kernel (samples/crash_choice.py). Where the
    table distrusts crash's callers (9.0.2 on 7.x mixes stale return addresses into stacks), the
    callers are plain drgn's own unwinding of the same task instead, and the test says so."""
    sample = _sample(spec.scenario, spec.kernel, spec.variant)
    answers = get_crash_answers(spec.scenario, spec.kernel, spec.variant)
    ps = parse_ps(answers["ps"])
    with stopped_session(sample, tmp_path) as (client, _):
        threads = client.call("threads")["threads"]
        stacks = {t["id"]: stack_of(client, t["id"]) for t in threads}
    ours = {t["id"]: parse_thread_name(t["name"]) for t in threads}
    assert Counter((t["pid"], t["state"], t["comm"]) for t in ours.values()) == Counter(
        (row.pid, CRASH_STATE_TO_LETTER[row.state], row.name) for row in ps
    )
    crash_by_task = {_crash_key(chunk): chunk for chunk in split_tasks(answers["foreach-bt"])}
    callers_trusted = answers.trusts("foreach-bt", "callers")
    prog = None if callers_trusted else open_sample_dump(sample).prog
    problems: dict[str, list[str]] = {}
    for thread_id, frames in stacks.items():
        key = (ours[thread_id]["pid"], ours[thread_id]["comm"])
        if callers_trusted:
            functions = [f.function for f in normalize_crash_bt(crash_by_task[key])]
        else:  # 7.x: crash 9.0.2's callers are distrusted, plain drgn's unwinding is the oracle
            assert prog is not None
            functions = [f.function for f in normalize_drgn_trace(prog.stack_trace(_task_of(prog, *key)))]
        mine = [f.function for f in normalized_dap_stack(frames)]
        if not answers.trusts("foreach-bt", "panic-frame") and "panic" not in functions and "panic" in mine:
            mine.remove("panic")  # crash 8.0.6 drops panic()'s frame when panic() calls vpanic() (6.12)
        if mine != functions:
            problems[f"PID {key[0]} {key[1]}"] = [*mine, "≠", *functions]
    assert not problems, f"{len(problems)} of {len(stacks)} stacks differ: {list(problems.items())[:3]}"


def _crash_key(chunk: str) -> tuple[int, str]:
    """(PID, COMMAND) of one task of crash's ``foreach bt``."""
    header = re.match(r'PID:\s*(\d+)\s+TASK:.*COMMAND:\s*"(.*)"', chunk)
    assert header, chunk[:200]
    return int(header[1]), header[2]


def _task_of(prog: drgn.Program, pid: int, comm: str) -> drgn.Object:
    """The task of a thread row: an idle task by its CPU (``swapper/N``), any other by PID."""
    if pid == 0:
        return idle_task(prog, int(comm.split("/")[1]))
    task = find_task(prog, pid)
    assert task, f"PID {pid} not found by plain drgn"
    return task
