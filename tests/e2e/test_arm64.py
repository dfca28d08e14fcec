"""The adapter on arm64 dumps (Debian 13's 6.12 cloud-arm64, kdump raw ELF and QEMU dump-guest-memory).

What only arm64 has: the CPU stopped by the crash IPI is offline, the system call in x8, exception
vectors, QEMU's registers, A64 disassembly. Threads = crash's ``ps``, every stack = crash's
``foreach bt``, Registers, Modules, the Kernel view, the console, disassembly and the language
server are tested on arm64's ``make test`` sample by each feature's own tests (``every_kernel``,
tests/conftest.py), with crash for arm64 (under qemu-aarch64) as the oracle. The tests here compare
with:

* the guest's own facts, written before the crash (``sample.expected``, ``manifest["guest"]``: how many
  CPUs QEMU gave it, which task spun on which CPU, which system call each ``lt-*`` thread made);
* plain drgn on the same dump (a task's user registers by the kernel's own ``task_pt_regs()``);
* the arm64 system-call ABI from the host's kernel headers (``asm-generic/unistd.h``, which arm64
  uses; linux-libc-dev).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import drgn
import pytest
from tests.e2e._session import (
    focus_index,
    open_sample_dump,
    parse_thread_name,
    source_line,
    stack_of,
    stopped_session,
)
from tests.helpers import crash_compare as cc
from tests.helpers.syscall_abi import syscall_names

pytestmark = pytest.mark.timeout(1200)

ARM64_KERNEL = "deb13-6.12-arm64"
#: What the guest's libc (busybox, static) calls for a libc function arm64 has no system call of.
LIBC_SYSCALL = {"pause": "ppoll", "poll": "ppoll", "nanosleep": "clock_nanosleep"}


@pytest.fixture(scope="module")
def arm64_oops() -> Any:
    """oops-null on arm64: a NULL dereference in labbug from write(), kdump's raw /proc/vmcore ELF."""
    from samples.sample_store import ensure_sample

    return ensure_sample("oops-null", kernel=ARM64_KERNEL)


@pytest.fixture(scope="module")
def arm64_dump(arm64_oops: Any) -> Iterator[drgn.Program]:
    """Plain drgn's view of the same dump (the adapter's opener, no adapter logic on top)."""
    yield open_sample_dump(arm64_oops).prog


def _task_pt_regs(prog: drgn.Program, pid: int) -> drgn.Object:
    """arm64's ``task_pt_regs(p)``: ``(struct pt_regs *)(task_stack_page(p) + THREAD_SIZE) - 1``
    (arch/arm64/include/asm/processor.h), read with plain drgn; THREAD_SIZE is the init task's stack,
    which the linker script lays out as ``__start_init_stack`` … ``__end_init_stack``
    (include/asm-generic/vmlinux.lds.h, ``INIT_TASK_DATA(THREAD_SIZE)``)."""
    task = prog.thread(pid).object
    thread_size = prog.symbol("__end_init_stack").address - prog.symbol("__start_init_stack").address
    top = task.stack.value_() + thread_size
    return drgn.Object(prog, "struct pt_regs *", top - drgn.sizeof(prog.type("struct pt_regs")))[0]


def test_threads_list_the_idle_task_of_every_cpu_including_the_stopped_one(
    arm64_oops: Any, arm64_dump: drgn.Program, tmp_path: Path
) -> None:
    """arm64's crash IPI takes the stopped CPUs offline: their idle tasks and current tasks are still
    threads (crash: "CPUS: 2 [OFFLINE: 1]", and both swappers in ``ps``)."""
    from drgn.helpers.linux.cpumask import for_each_online_cpu

    cpus = arm64_oops.manifest["guest"]["cpus"]
    expected = arm64_oops.expected
    online = list(for_each_online_cpu(arm64_dump))
    # The situation the test is about: the CPU that spun was stopped and is offline in the dump.
    assert expected["spin_cpu"] not in online and len(online) < cpus, online
    with stopped_session(arm64_oops, tmp_path) as (client, stopped):
        threads = [parse_thread_name(t["name"]) for t in client.call("threads")["threads"]]
        kernel_cpus = client.call("vmcore/cpus")
    idle = [t for t in threads if t["pid"] == 0]
    assert sorted(t["comm"] for t in idle) == [f"swapper/{n}" for n in range(cpus)]
    assert len(threads) >= expected["min_tasks"]
    running = {t["pid"]: t["cpu"] for t in threads if t["cpu"] is not None}
    assert running[expected["spin_pid"]] == expected["spin_cpu"]
    assert running[expected["crashed_pid"]] == expected["crashed_cpu"]
    assert threads[0]["pid"] == expected["crashed_pid"]
    # The Kernel view's CPU table: every CPU, with the task that was on it.
    rows = {row["cpu"]: row for row in kernel_cpus["cpus"]}
    assert sorted(rows) == list(range(cpus))
    assert rows[expected["spin_cpu"]]["pid"] == expected["spin_pid"]
    crashed = rows[expected["crashed_cpu"]]
    assert crashed["pid"] == expected["crashed_pid"] and crashed["crashed"]


def test_system_call_row_names_x8_and_its_arguments(
    arm64_oops: Any, arm64_dump: drgn.Program, tmp_path: Path
) -> None:
    """The bottom row of each ``lt-*`` thread: the system call in x8 (``syscallno``), named by arm64's
    table, with its arguments (the first from ``orig_x0``) and the user PC."""
    numbers = syscall_names("arm64")
    with stopped_session(arm64_oops, tmp_path) as (client, _):
        by_pid = {parse_thread_name(t["name"])["pid"]: t["id"] for t in client.call("threads")["threads"]}
        for thread in arm64_oops.expected["threads"]:
            user = _task_pt_regs(arm64_dump, thread["tid"])
            x8 = user.regs[8].value_()
            assert user.syscallno.value_() == x8
            syscall = numbers[x8]
            assert syscall == LIBC_SYSCALL.get(thread["syscall"], thread["syscall"]), (thread, syscall)
            frames = stack_of(client, by_pid[thread["tid"]])
            label = frames[-1]
            assert label["presentationHint"] == "label"
            assert label["name"].startswith(f"{syscall}("), (thread, label["name"])
            assert int(label["instructionPointerReference"], 16) == user.pc.value_()  # the user PC
            first = re.match(r"^\w+\(\w+=(0x[0-9a-f]+|-?\d+)", label["name"])
            assert first, label["name"]
            assert int(first[1], 0) & 0xFFFFFFFF == user.orig_x0.value_() & 0xFFFFFFFF


@pytest.fixture(scope="module")
def arm64_qemu_dump() -> Any:
    """sysrq-c on arm64 dumped by QEMU's dump-guest-memory: registers are QEMU's, per CPU."""
    from samples.sample_store import ensure_sample

    return ensure_sample("sysrq-c", kernel=ARM64_KERNEL, variant="qemu-dump")


def test_values_of_frames_unwound_without_registers_are_unknown_not_optimized_out(
    arm64_qemu_dump: Any, tmp_path: Path
) -> None:
    """Above the exception vector QEMU stopped in, drgn unwinds by frame records alone (plain drgn:
    those frames have ``fp``/``lr`` and no ``sp``): their arguments are unknown, and the adapter
    must not call them "optimized out"; frames drgn unwound with CFI keep drgn's own verdicts."""
    from drgn.helpers.linux.cpumask import for_each_present_cpu
    from drgn.helpers.linux.sched import cpu_curr

    prog = open_sample_dump(arm64_qemu_dump).prog
    # Which CPU QEMU caught in a vector is a race of the build: look at the task of every CPU.
    lost_by_pid: dict[int, set[str]] = {}
    for cpu in for_each_present_cpu(prog):
        task = cpu_curr(prog, cpu)
        trace = prog.stack_trace(task)
        lost = {f.name for f in trace if f.name and "sp" not in f.registers()}
        kept = {f.name for f in trace if f.name and "sp" in f.registers()}
        if lost - kept:
            lost_by_pid[task.pid.value_() or -1 - cpu] = lost - kept
    assert lost_by_pid, "no CPU of this dump has frames unwound without registers"
    seen: dict[str, list[str]] = {}
    with stopped_session(arm64_qemu_dump, tmp_path) as (client, _):
        for thread in client.call("threads")["threads"]:
            parsed = parse_thread_name(thread["name"])
            key = parsed["pid"] or (-1 - parsed["cpu"] if parsed["cpu"] is not None else None)
            if key not in lost_by_pid:
                continue
            for frame in stack_of(client, thread["id"]):
                if frame.get("presentationHint") == "label" or frame["name"] not in lost_by_pid[key]:
                    continue
                for scope in client.call("scopes", {"frameId": frame["id"]})["scopes"]:
                    if scope["name"] in ("Arguments", "Locals"):
                        variables = client.call(
                            "variables", {"variablesReference": scope["variablesReference"]}
                        )
                        seen.setdefault(frame["name"], []).extend(v["value"] for v in variables["variables"])
    values = [value for frame_values in seen.values() for value in frame_values]
    assert values, seen
    assert "<optimized out>" not in values, seen
    assert "<unknown>" in values, seen


def test_interrupt_boundary_on_the_stopped_cpu_is_labelled_with_its_saved_registers(
    arm64_qemu_dump: Any, tmp_path: Path
) -> None:
    """The stop IPI interrupted the other CPU's idle loop through ``el1h_64_irq``: the stack shows an
    "interrupt: IRQ" row between the vector and the interrupted function, whose Registers are the
    ``pt_regs`` kernel_entry saved, read where they lie (plain drgn's interrupted frame: pc and sp)."""
    prog = open_sample_dump(arm64_qemu_dump).prog
    from drgn.helpers.linux.cpumask import for_each_present_cpu
    from drgn.helpers.linux.sched import cpu_curr

    stopped_idle = [
        (cpu, task) for cpu in for_each_present_cpu(prog) if (task := cpu_curr(prog, cpu)).pid.value_() == 0
    ]
    assert stopped_idle, "the other CPU was not idle when it was stopped (a race of this build)"
    cpu, task = stopped_idle[0]
    trace = prog.stack_trace(task)
    vector = next(i for i, f in enumerate(trace) if f.name == "el1h_64_irq")
    interrupted = trace[vector + 1]
    assert interrupted.interrupted
    with stopped_session(arm64_qemu_dump, tmp_path) as (client, _):
        threads = client.call("threads")["threads"]
        idle_id = next(t["id"] for t in threads if t["name"] == f"PID 0 swapper/{cpu} [R] CPU{cpu}")
        frames = stack_of(client, idle_id)
        names = [f["name"] for f in frames]
        at = names.index("── interrupt: IRQ ──")
        assert names[at - 1] == "el1h_64_irq" and names[at + 1] == interrupted.name, names
        label = frames[at]
        assert label["presentationHint"] == "label"
        assert int(label["instructionPointerReference"], 16) == interrupted.pc
        scopes = {
            s["name"]: s["variablesReference"]
            for s in client.call("scopes", {"frameId": label["id"]})["scopes"]
        }
        registers = {
            v["name"]: v
            for v in client.call("variables", {"variablesReference": scopes["Registers"]})["variables"]
        }
        assert {f"x{i}" for i in range(31)} <= registers.keys(), sorted(registers)  # arm64's names
        assert int(registers["x29"]["value"], 16) == interrupted.registers()["x29"]
        assert int(registers["pc"]["value"], 16) == interrupted.pc
        assert int(registers["sp"]["value"], 16) == interrupted.registers()["sp"]
        assert int(registers["pstate"]["value"], 16) == interrupted.registers()["pstate"]
        name = registers["pc"]["evaluateName"]
        assert re.fullmatch(r"\(\(struct pt_regs \*\)0x[0-9a-f]+\)->pc", name), name  # read in memory


def test_disassembly_is_aarch64_with_branch_targets_named(
    arm64_oops: Any, arm64_dump: drgn.Program, tmp_path: Path
) -> None:
    """The faulting instruction is an AArch64 load at offset 8 from a register (the oops says the NULL
    dereference was at virtual address 8: the guest's fact); branch targets are named as plain drgn's
    symbol table names them."""
    oops_address = int(arm64_oops.expected["oops_line"].rsplit(" ", 1)[1], 16)
    with stopped_session(arm64_oops, tmp_path) as (client, stopped):
        top = stack_of(client, stopped["body"]["threadId"])[0]
        pc = int(top["instructionPointerReference"], 16)
        body = client.call(
            "disassemble",
            {
                "memoryReference": top["instructionPointerReference"],
                "instructionOffset": -16,
                "instructionCount": 48,
                "resolveSymbols": True,
            },
        )
    instructions = {int(i["address"], 16): i for i in body["instructions"]}
    assert all(address % 4 == 0 for address in instructions)  # fixed-width A64, not x86
    faulting = instructions[pc]["instruction"]
    assert re.fullmatch(rf"ldr\w* \w+, \[x\d+, #{oops_address:#x}\]", faulting) or re.fullmatch(
        rf"ldr\w* \w+, \[x\d+, #{oops_address}\]", faulting
    ), faulting
    branches = [
        m
        for i in instructions.values()
        if (m := re.fullmatch(r"b\w* (0x[0-9a-f]+) <([\w.]+)(\+0x[0-9a-f]+)?>", i["instruction"]))
    ]
    assert branches, [i["instruction"] for i in instructions.values()]
    for m in branches:
        symbol = arm64_dump.symbol(int(m[1], 16))
        assert symbol.name == m[2] and (int(m[3] or "0x0", 16) == int(m[1], 16) - symbol.address), m[0]


@pytest.fixture(scope="module")
def arm64_sysrq() -> Any:
    """sysrq-c on arm64 (kdump): ``make test``'s arm64 sample."""
    from samples.sample_store import ensure_sample

    return ensure_sample("sysrq-c", kernel=ARM64_KERNEL)


#: Functions whose every instruction our disassembly must name as binutils does: the MTE users of
#: arch/arm64/lib/mte.S (STGM, LDGM, STZ2G, DC GZVA), and users of the unprivileged loads LDTR,
#: LDTRB and LDTRH (uaccess), which capstone 5.0 decoded as ``(bad)``.
BINUTILS_CHECKED = (
    "mte_clear_page_tags",
    "mte_copy_page_tags",
    "mte_zero_clear_page_tags",
    "mte_save_page_tags",
    "mte_restore_page_tags",
    "copy_iovec_from_user",
    "fault_in_readable",
    "restore_sve_fpsimd_context",
)
_OBJDUMP = "aarch64-linux-gnu-objdump"
_OBJDUMP_ROW = re.compile(r"^\s*([0-9a-f]+):\t[0-9a-f]{8} \t(\S+)")


def _binutils_mnemonics(code: bytes, tmp_path: Path) -> dict[int, str]:
    """binutils' mnemonic at each offset of ``code`` (objdump of binutils-aarch64-linux-gnu)."""
    import shutil
    import subprocess

    assert shutil.which(_OBJDUMP), f"{_OBJDUMP} is missing (make setup installs binutils-aarch64-linux-gnu)"
    path = tmp_path / "code.bin"
    path.write_bytes(code)
    out = subprocess.run(
        [_OBJDUMP, "-D", "-b", "binary", "-m", "aarch64", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {int(m[1], 16): m[2] for row in out.splitlines() if (m := _OBJDUMP_ROW.match(row))}


def _ours_and_bytes(client: Any, address: int, size: int) -> tuple[dict[int, str], bytes]:
    """Our mnemonic at each offset of ``[address, address + size)`` (DAP ``disassemble``), and the bytes
    there (DAP ``readMemory``)."""
    body = client.call(
        "disassemble",
        {"memoryReference": f"{address:#x}", "instructionOffset": 0, "instructionCount": size // 4},
    )
    ours = {int(i["address"], 16) - address: i["instruction"].split()[0] for i in body["instructions"]}
    memory = client.call("readMemory", {"memoryReference": f"{address:#x}", "count": size})
    code = base64.b64decode(memory["data"])
    assert len(code) == size, (hex(address), memory)
    return ours, code


def test_disassembly_names_every_instruction_as_binutils_does(arm64_sysrq: Any, tmp_path: Path) -> None:
    """Every instruction of :data:`BINUTILS_CHECKED` has the mnemonic objdump gives the same bytes of
    the dump, and so do the words after sysrq_handle_crash's ``bl panic`` (where the crashed frame's pc
    points). The dump's bytes, not the vmlinux's: ftrace patches each function's first NOP at boot.

    Those words are no code: they hold the ftrace ops pointer of the next function, written at boot
    (CONFIG_DYNAMIC_FTRACE_WITH_CALL_OPS, v6.4, commit baaf553d3bc3). With KASLR they change on every
    boot; on some they read as an instruction (``stgp x0, x30, [x3], #96`` on one fresh sample, which
    capstone 5.0 could not decode while crash's gdb could), on others as none (``.inst``)."""
    dump = open_sample_dump(arm64_sysrq).prog
    regions = {name: (dump.symbol(name).address, dump.symbol(name).size) for name in BINUTILS_CHECKED}
    crash_fn = dump.symbol("sysrq_handle_crash")
    slot = crash_fn.address + crash_fn.size
    following = next(address for address in range(slot + 4, slot + 64, 4) if dump.symbols(address))
    regions["after sysrq_handle_crash"] = (slot, following - slot)
    with stopped_session(arm64_sysrq, tmp_path) as (client, _):
        listed = {name: _ours_and_bytes(client, *region) for name, region in regions.items()}
    wrong = {}
    for name, (ours, code) in listed.items():
        theirs = _binutils_mnemonics(code, tmp_path)
        assert sorted(ours) == sorted(theirs), (name, ours, theirs)
        differ = [
            (offset, ours[offset], mnemonic)
            for offset, mnemonic in theirs.items()
            if cc.canonical_mnemonic(ours[offset]) != cc.canonical_mnemonic(mnemonic)
        ]
        if differ:
            wrong[name] = differ
    assert not wrong, f"(offset, ours, binutils') where they differ: {wrong}"


def test_console_ps_lists_the_stopped_cpus_idle_task(arm64_oops: Any, tmp_path: Path) -> None:
    """The console's ``ps`` (drgn's, which walks online CPUs) lists every CPU's idle task, as the
    thread list does; the stopped CPU's current task keeps its ``>`` (the guest's facts)."""
    cpus = arm64_oops.manifest["guest"]["cpus"]
    expected = arm64_oops.expected
    with stopped_session(arm64_oops, tmp_path) as (client, _):
        threads = [parse_thread_name(t["name"]) for t in client.call("threads")["threads"]]
        start = len(client.events)
        client.call("evaluate", {"expression": "ps", "context": "repl"})
        text = "".join(e["body"]["output"] for e in client.events[start:] if e["event"] == "output")
    row = re.compile(
        r"^(?P<marker>>?)\s*(?P<pid>\d+)\s+\d+\s+(?P<cpu>\d+)\s+[0-9a-f]+\s+\S+\s.*\s(?P<comm>\S+)$"
    )
    rows = [m for line in text.splitlines() if (m := row.match(line))]
    idle = sorted((int(m["cpu"]), m["comm"]) for m in rows if m["pid"] == "0")
    assert idle == [(cpu, f"[swapper/{cpu}]") for cpu in range(cpus)], idle
    assert len(rows) == len(threads)
    active = {(int(m["pid"]), int(m["cpu"])) for m in rows if m["marker"]}
    assert (expected["spin_pid"], expected["spin_cpu"]) in active, active
    assert (expected["crashed_pid"], expected["crashed_cpu"]) in active, active


def test_qemu_dump_focuses_the_caller_of_panic_not_the_vector_it_was_caught_in(
    arm64_qemu_dump: Any, tmp_path: Path
) -> None:
    """QEMU caught the panicking CPU in panic()'s delay loop taking an interrupt (``vectors``,
    ``__const_udelay``): those frames are the dying kernel's, de-emphasised, and the selected frame is
    where SysRq-c called panic (the guest's facts: function and line)."""
    expected = arm64_qemu_dump.expected
    with stopped_session(arm64_qemu_dump, tmp_path) as (client, stopped):
        frames = stack_of(client, stopped["body"]["threadId"])
    focus = frames[focus_index(frames)]
    assert focus["name"] == expected["function"], [f["name"] for f in frames]
    assert source_line(focus) == expected["line"]
    for frame in frames[: focus_index(frames)]:
        assert frame.get("presentationHint") in ("subtle", "label"), frame
