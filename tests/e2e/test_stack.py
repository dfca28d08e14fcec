"""``stackTrace`` against crash's ``bt``: every task's stack, the crashed task, D-state tasks, syscall
and user labels, paging, sources through sourceFileMap/sourceRoot, and a module without debug info.

Tests marked ``every_kernel`` run on each kernel of the matrix (``tests/conftest.py``), with the crash
``samples/crash_choice.py`` picks for the dump; where that table distrusts an answer on a kernel the
test says which oracle replaces it.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import drgn
import pytest
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.sched import idle_task
from tests.e2e._session import (
    focus_index,
    normalized_dap_stack,
    open_sample_dump,
    parse_thread_name,
    source_line,
    stack_of,
    stopped_session,
)
from tests.helpers import crash_compare as cc
from tests.helpers.crash_parse import parse_bt, parse_ps, split_tasks
from tests.helpers.kernel_config import config_value
from tests.helpers.stack_normalize import (
    assert_stacks_match,
    normalize_crash_bt,
    normalize_crash_task,
    stack_differences,
)
from tests.helpers.syscall_abi import syscall_names

from vmcore_dap.dump.arch import arm64, x86_64
from vmcore_dap.dump.stacks.normalize import normalize_drgn_trace

pytestmark = pytest.mark.timeout(900)

_HEX = re.compile(r"^0x[0-9a-f]+$")


def _threads_by_pid(client: Any) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {}
    for t in client.call("threads")["threads"]:
        result.setdefault(parse_thread_name(t["name"])["pid"], []).append(t["id"])
    return result


def test_crashed_task_matches_crash_bt(sample: Any, crash_answers: dict[str, str], tmp_path: Path) -> None:
    with stopped_session(sample, tmp_path) as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
    # DAP shows call sites for callers, crash return-address lines: lines of the first frame only,
    # every frame's pc (the return address) exactly.
    # Without an exception block (sysrq-c) frame #0 after the cut is a caller too: pcs only.
    has_exception = bool(parse_bt(crash_answers["bt-l"])[0].exceptions)
    ours = normalized_dap_stack(frames)
    crash = normalize_crash_bt(crash_answers["bt-l"])
    assert_stacks_match(ours, crash, check_lines="first" if has_exception else "none")


def _task_of(prog: drgn.Program, pid: int, comm: str) -> drgn.Object:
    """The task of a thread row: an idle task by its CPU (``swapper/N``), any other by PID."""
    if pid == 0:
        return idle_task(prog, int(comm.rsplit("/", 1)[1]))
    task = find_task(prog, pid)
    assert task, f"PID {pid} not found by plain drgn"
    return task


@pytest.mark.every_kernel
def test_every_threads_stack_equals_crash_foreach_bt(sample: Any, crash_answers: Any, tmp_path: Path) -> None:
    """Every thread's Call Stack = its task in crash's ``foreach bt`` under the normalisation rule:
    functions and return addresses, crash's side read by the rule the oracle table gives for this
    dump (arm64's crash prints the call instruction, ``pc_bias``, and lists the interrupted function
    after the vector, ``exception_entries``).

    Where the table distrusts part of crash's answer on this kernel, another oracle takes over, per
    task: crash's callers on 7.x (crash 9.0.2 mixes stale return addresses in) are replaced by plain
    drgn's own unwinding of the same task (functions only); panic()'s own frame, which crash 8.0.6
    drops when panic() calls vpanic() (6.12), is not compared; and where crash stops one frame early
    (arm64: ``ret_from_fork``, ``__primary_switched``, ``__secondary_switched``) only those roots of
    the architecture are cut from our side."""
    entries, pc_bias = crash_answers.meta["crash"]["site_rule"]
    crash_tasks = {(bt.pid, bt.comm): bt for bt in parse_bt(crash_answers["foreach-bt"])}
    callers_trusted = crash_answers.trusts("foreach-bt", "callers")
    panic_trusted = crash_answers.trusts("foreach-bt", "panic-frame")
    roots = (arm64.ARCH if sample.arch == "arm64" else x86_64.ARCH).stack_roots
    cut_roots = not crash_answers.trusts("foreach-bt", "outermost")
    prog = None if callers_trusted else open_sample_dump(sample).prog
    with stopped_session(sample, tmp_path) as (client, _):
        threads = client.call("threads")["threads"]
        stacks = {t["id"]: stack_of(client, t["id"]) for t in threads}
    ours_by_id = {t["id"]: parse_thread_name(t["name"]) for t in threads}
    assert set(crash_tasks) == {(t["pid"], t["comm"]) for t in ours_by_id.values()}
    problems: dict[str, Any] = {}
    for thread_id, frames in stacks.items():
        key = (ours_by_id[thread_id]["pid"], ours_by_id[thread_id]["comm"])
        mine = normalized_dap_stack(frames)
        if cut_roots:
            while mine and mine[-1].function in roots:
                mine.pop()
        if callers_trusted:
            theirs = normalize_crash_task(
                crash_tasks[key], pc_bias=pc_bias, exception_entries=frozenset(entries)
            )
        else:  # 7.x: plain drgn's unwinding is the oracle for the callers (functions only)
            assert prog is not None
            trace = prog.stack_trace(_task_of(prog, *key))
            theirs = [replace(f, pc=None) for f in normalize_drgn_trace(trace)]
        if not panic_trusted and "panic" not in [f.function for f in theirs]:
            mine = [f for f in mine if f.function != "panic"]
        found = stack_differences(mine, theirs, check_lines="none")
        if found:
            problems[f"PID {key[0]} {key[1]}"] = (found, [str(f) for f in mine], [str(f) for f in theirs])
    assert not problems, f"{len(problems)} of {len(stacks)} stacks differ: {list(problems.items())[:2]}"


@pytest.mark.every_kernel
def test_registers_of_the_focus_frame_are_plain_drgns(sample: Any, tmp_path: Path) -> None:
    """The Registers scope of the frame a client selects: every register plain drgn knows in that
    frame of the same dump (the frame at the same pc in drgn's own unwinding of the crashed task), by
    the architecture's names (``rip``/``rsp`` on x86-64, ``x0``…``x30``/``sp`` on arm64) and with
    drgn's values."""
    prog = open_sample_dump(sample).prog
    with stopped_session(sample, tmp_path) as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
        focus = frames[focus_index(frames)]
        scopes = {
            s["name"]: s["variablesReference"]
            for s in client.call("scopes", {"frameId": focus["id"]})["scopes"]
        }
        registers = {
            r["name"]: r["value"]
            for r in client.call("variables", {"variablesReference": scopes["Registers"]})["variables"]
        }
    pc = int(focus["instructionPointerReference"], 16)
    task = find_task(prog, sample.expected["crashed_pid"])
    drgn_frame = next(f for f in prog.stack_trace(task) if f.pc == pc and f.name == focus["name"])
    known = drgn_frame.registers()
    names = {"rsp", "rip"} if sample.arch != "arm64" else {"sp", "x29"}
    assert names <= registers.keys(), sorted(registers)
    wrong = {
        name: (registers.get(name), hex(value))
        for name, value in known.items()
        if registers.get(name) is None or int(registers[name], 16) != value
    }
    assert known and not wrong, wrong


@pytest.mark.every_kernel
def test_faulting_frame_source_and_line(sample: Any, tmp_path: Path) -> None:
    expected = sample.expected
    with stopped_session(sample, tmp_path) as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
    focus = frames[focus_index(frames)]
    assert focus["name"] == expected["function"]
    assert Path(focus["source"]["path"]).name == expected["file"] == focus["source"]["name"]
    assert source_line(focus) == expected["line"] and focus["column"] >= 1
    assert _HEX.match(focus["instructionPointerReference"])
    # Frames above the focus are the panic path: subtle, their sources deemphasized.
    for frame in frames[: focus_index(frames)]:
        assert frame.get("presentationHint") in ("subtle", "label")
        if "source" in frame:
            assert frame["source"]["presentationHint"] == "deemphasize"
    # How the task got in: the write() system call, arguments from the user registers (16 bytes
    # lower with FRED, sid's 7.x; x8, x0-x5 and orig_x0 on arm64).
    assert re.match(r"^write\(fd=\d+, buf=0x[0-9a-f]+, count=\d+\)$", frames[-1]["name"])
    assert frames[-1]["presentationHint"] == "label"
    if sample.scenario == "sysrq-c":  # the guest's /init: `echo c > /proc/sysrq-trigger` from sh
        assert re.match(r"^write\(fd=1, buf=0x[0-9a-f]+, count=2\)$", frames[-1]["name"]), frames[-1]


def test_d_state_task_stack_matches_crash(
    sample_oops: Any, crash_oops: dict[str, str], tmp_path: Path
) -> None:
    chunks = {int(c.split()[1]): c for c in split_tasks(crash_oops["foreach-bt"])}
    with stopped_session(sample_oops, tmp_path) as (client, _):
        by_pid = _threads_by_pid(client)
        for pid in sample_oops.expected["d_state_pids"]:
            frames = stack_of(client, by_pid[pid][0])
            names = [f["name"] for f in frames]
            assert "__mutex_lock" in names and "labbug_wait_write" in names, names
            assert names[-1].startswith("write(fd=")
            ours = normalized_dap_stack(frames)
            assert_stacks_match(ours, normalize_crash_bt(chunks[pid]), check_lines="first")


def _user_pt_regs(prog: drgn.Program, task: drgn.Object, arch: str, padding: int) -> drgn.Object:
    """The kernel's ``task_pt_regs(task)``: the user registers at the top of the task's stack, below
    ``TOP_OF_KERNEL_STACK_PADDING`` (x86-64: 16 bytes with FRED, v6.9's "x86/fred: Reserve space for
    the FRED stack frame"; else 0; arm64: none), read by plain drgn."""
    top = task.stack.value_() + prog["THREAD_SIZE"].value_() - padding
    return drgn.Object(prog, "struct pt_regs *", top - drgn.sizeof(prog.type("struct pt_regs")))[0]


@pytest.mark.every_kernel
def test_every_user_tasks_system_call_row_names_its_system_call(sample: Any, tmp_path: Path) -> None:
    """The bottom row of every user task asleep in a system call names that call, by the
    architecture's ABI (the host's kernel headers) and the number the kernel saved in the task's
    user registers (plain drgn: ``orig_ax`` on x86-64, below FRED's 16 bytes where the kernel's
    build config has ``CONFIG_X86_FRED``; ``syscallno`` on arm64). Kernel threads have no such row."""
    names = syscall_names(sample.arch)
    fred = sample.arch == "amd64" and config_value(sample, "X86_FRED") == "y"
    padding = 16 if fred else 0
    field = "syscallno" if sample.arch == "arm64" else "orig_ax"
    prog = open_sample_dump(sample).prog
    with stopped_session(sample, tmp_path) as (client, _):
        threads = [(t["id"], parse_thread_name(t["name"])) for t in client.call("threads")["threads"]]
        checked, wrong = 0, {}
        for thread_id, info in threads:
            if info["pid"] == 0 or info["cpu"] is not None:  # idle, or on a CPU (maybe in user mode)
                continue
            task = find_task(prog, info["pid"])
            bottom = stack_of(client, thread_id)[-1]
            row = bottom["name"] if bottom.get("presentationHint") == "label" else ""
            if not task.mm:
                if re.match(r"^\w+\(", row):
                    wrong[info["pid"]] = f"kernel thread with a system-call row {row!r}"
                continue
            number = _user_pt_regs(prog, task, sample.arch, padding).member_(field).value_()
            number -= 1 << 64 if number >= 1 << 63 else 0
            if number < 0 or number not in names:  # not in a system call (a fault, an interrupt)
                continue
            checked += 1
            if not row.startswith(f"{names[number]}("):
                wrong[info["pid"]] = f"{row!r}, the kernel saved {field} {number} ({names[number]})"
    assert checked >= 10 and not wrong, (checked, list(wrong.items())[:5])


def test_syscall_labels_name_each_threads_system_call(
    sample_oops: Any, crash_oops: dict[str, str], tmp_path: Path
) -> None:
    names = syscall_names("amd64")
    chunks = {int(c.split()[1]): c for c in split_tasks(crash_oops["foreach-bt"])}
    with stopped_session(sample_oops, tmp_path) as (client, _):
        by_pid = _threads_by_pid(client)
        for thread in sample_oops.expected["threads"]:
            # crash prints the user registers; ORIG_RAX is the system call number.
            orig_rax = re.findall(r"ORIG_RAX: ([0-9a-f]+)", chunks[thread["tid"]])[-1]
            syscall = names[int(orig_rax, 16)]
            assert syscall.endswith(thread["syscall"])  # libc's nanosleep() is clock_nanosleep
            frames = stack_of(client, by_pid[thread["tid"]][0])
            label = frames[-1]
            assert label["presentationHint"] == "label"
            assert label["name"].startswith(f"{syscall}("), (thread, label["name"])
            assert _HEX.match(label["instructionPointerReference"])
            assert int(label["instructionPointerReference"], 16) < 1 << 47  # the user RIP


def _user_rips(bt_a: str) -> dict[int, int]:
    """{pid: user RIP} of the tasks crash's ``bt -a`` shows interrupted in user mode: no frame but
    the NMI that stopped the CPU, then the registers it saved (the last ``RIP:``)."""
    functions = cc.bt_functions_by_pid(bt_a)
    found = {}
    for chunk in split_tasks(bt_a):
        task = parse_bt(chunk)[0]
        if not functions[(task.pid, task.task)]:
            found[task.pid] = int(re.findall(r"\bRIP: ([0-9a-f]{16})", chunk)[-1], 16)
    return found


def test_task_running_in_user_mode_shows_its_user_rip(
    sample_oops: Any, crash_oops: dict[str, str], tmp_path: Path
) -> None:
    """A task caught in user mode on a CPU: its stack is one label at crash's user RIP.

    The scenario keeps labspin spinning in user mode on its CPU, but at the instant of the dump a
    kworker may have had that CPU, or an interrupt the spinner: crash's ``bt -a`` of the same dump
    says who was in user mode, and the spinner's stack equals crash's whatever it was doing."""
    expected = sample_oops.expected
    in_user = _user_rips(crash_oops["bt-a"])
    spin_active = [r for r in parse_ps(crash_oops["ps"]) if r.pid == expected["spin_pid"] and r.active]
    with stopped_session(sample_oops, tmp_path) as (client, _):
        threads = {parse_thread_name(t["name"])["pid"]: t for t in client.call("threads")["threads"]}
        spin = threads[expected["spin_pid"]]
        assert parse_thread_name(spin["name"])["cpu"] == (expected["spin_cpu"] if spin_active else None)
        for pid, rip in in_user.items():
            frames = stack_of(client, threads[pid]["id"])
            assert len(frames) == 1 and frames[0]["presentationHint"] == "label", (pid, frames)
            assert frames[0]["name"].startswith("── user mode at 0x")
            assert int(frames[0]["instructionPointerReference"], 16) == rip
        spin_frames = stack_of(client, spin["id"])
    if expected["spin_pid"] not in in_user:  # in the kernel, or preempted: crash's stack of it
        chunks = {int(c.split()[1]): c for c in split_tasks(crash_oops["foreach-bt"])}
        crash_spin = normalize_crash_bt(chunks[expected["spin_pid"]])
        assert_stacks_match(normalized_dap_stack(spin_frames), crash_spin, check_lines="none")


def test_idle_tasks_have_stacks(sample: Any, tmp_path: Path) -> None:
    with stopped_session(sample, tmp_path) as (client, _):
        idle = _threads_by_pid(client)[0]
        for thread_id in idle:
            names = [f["name"] for f in stack_of(client, thread_id)]
            assert "do_idle" in names and names[-1].startswith(("secondary_startup_64", "start_kernel"))


def test_paging_and_stable_frame_ids(sample: Any, tmp_path: Path) -> None:
    with stopped_session(sample, tmp_path) as (client, stopped):
        thread_id = stopped["body"]["threadId"]
        whole = client.call("stackTrace", {"threadId": thread_id})
        total = whole["totalFrames"]
        assert total == len(whole["stackFrames"]) > 4
        pages = []
        for start in range(0, total, 3):
            body = client.call("stackTrace", {"threadId": thread_id, "startFrame": start, "levels": 3})
            assert body["totalFrames"] == total
            pages += body["stackFrames"]
        assert pages == whole["stackFrames"]  # same ids, same content
        beyond = client.call("stackTrace", {"threadId": thread_id, "startFrame": total + 5, "levels": 3})
        assert beyond["stackFrames"] == [] and beyond["totalFrames"] == total
        for bad, message in [
            ({"threadId": 99999}, "unknown threadId 99999"),
            ({"threadId": "1"}, "'threadId' must be an integer"),
            ({"threadId": thread_id, "levels": -1}, "'levels' must be at least 0"),
        ]:
            response = client.request("stackTrace", bad)
            assert not response["success"] and message in response["message"]


def test_source_file_map_and_source_root(sample_oops: Any, tmp_path: Path) -> None:
    with stopped_session(sample_oops, tmp_path / "a") as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
    module_frame = next(f for f in frames if f.get("moduleId") == "labbug")
    dwarf_dir = str(Path(module_frame["source"]["path"]).parent)
    vfs = next(f for f in frames if f["name"] == "vfs_write")
    assert vfs["source"]["path"] == "fs/read_write.c"  # as DWARF names it, still a path and line
    assert vfs["source"]["sourceReference"] > 0 and source_line(vfs) > 0  # opens as a listing
    assert vfs["source"]["origin"].startswith(f"fs/read_write.c:{source_line(vfs)} is not on this machine")
    tree = tmp_path / "linux"
    (tree / "fs").mkdir(parents=True)
    shutil.copy(Path(__file__), tree / "fs/read_write.c")
    with stopped_session(
        sample_oops,
        tmp_path / "b",
        sourceFileMap={dwarf_dir: str(sample_oops.module_source_dir)},
        sourceRoot=str(tree),
    ) as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
    module_frame = next(f for f in frames if f.get("moduleId") == "labbug")
    assert module_frame["source"]["path"] == str(sample_oops.module_source_dir / "labbug.c")
    assert "origin" not in module_frame["source"]  # found on disk
    vfs = next(f for f in frames if f["name"] == "vfs_write")
    assert vfs["source"]["path"] == str(tree / "fs/read_write.c") and "origin" not in vfs["source"]
    assert "sourceReference" not in vfs["source"]  # the file itself opens
    proc = next(f for f in frames if f["name"] == "proc_reg_write")
    assert proc["source"]["path"] == str(tree / "fs/proc/inode.c") and "origin" in proc["source"]


def test_module_without_debug_info_still_shows_symbols(sample_oops: Any, tmp_path: Path) -> None:
    expected = sample_oops.expected
    with stopped_session(sample_oops, tmp_path, debugInfo=[]) as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
        warnings = [e["body"]["output"] for e in client.events if e["event"] == "output"]
    first = frames[0]
    assert first["name"] == f"{expected['function']}+{expected['rip_offset']:#x}"
    assert first["presentationHint"] == "subtle" and first["moduleId"] == "labbug" and "source" not in first
    names = [f["name"] for f in frames]
    assert any(n.startswith("labbug_trigger_write+0x") for n in names) and "vfs_write" in names
    assert any("no debug info for 1 kernel module(s): labbug" in w for w in warnings)
