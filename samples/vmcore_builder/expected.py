"""Derive each scenario's ``expected`` block from the dump's dmesg, cross-checked.

Every value comes from something the guest or the kernel printed (or from the
module source's markers) and is checked against a second source where one
exists: the guest's LABFACT records against the kernel's ``CPU/PID/Comm`` line,
the LABBUG-FAULT marker against the oops RIP mapped through the DWARF line table.
A disagreement is a build error, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .common import BuildError
from .facts import (
    NULL_DEREF_LINES,
    Frame,
    LabFact,
    crash_context,
    enum_names,
    find_line,
    kv_pairs,
    lab_facts,
    panic_caller,
    panic_string,
    rip_frame,
)

__all__ = [
    "LineResolver",
    "expected_huge",
    "expected_irq_oops",
    "expected_list_uaf",
    "expected_many_tasks",
    "expected_no_panic",
    "expected_oops_null",
    "expected_sysrq_c",
]

#: Maps a frame to (source file basename, line), via addr2line on the right ELF.
LineResolver = Callable[[Frame], tuple[str, int]]

_FRAME_LINE = re.compile(r"^([\w.]+)\+0x[0-9a-f]+/0x[0-9a-f]+")

FAULT_MARKER = "/* LABBUG-FAULT */"
IRQ_FAULT_MARKER = "/* LABBUG-IRQ-FAULT */"
UAF_FAULT_MARKER = "/* LABUAF-FAULT */"


def _one(facts: list[LabFact], kind: str) -> LabFact:
    hits = [f for f in facts if f.kind == kind]
    if len(hits) != 1:
        raise BuildError(f"Expected one 'LABFACT {kind}' record in the dump's dmesg, found {len(hits)}")
    return hits[0]


def _index(texts: list[str], needle: str | tuple[str, ...]) -> int:
    needles = (needle,) if isinstance(needle, str) else needle
    for i, line in enumerate(texts):
        if any(n in line for n in needles):
            return i
    raise BuildError(f"The dump's dmesg has no line containing '{' or '.join(needles)}'")


def _agree(what: str, guest: object, kernel: object) -> None:
    if str(guest) != str(kernel):
        raise BuildError(f"Inconsistent {what}: the guest reported {guest}, the kernel log says {kernel}")


def _rip_at_marker(
    rip: Frame, resolve: LineResolver, module_source: str, marker: str, function: str, module: str
) -> tuple[str, int]:
    """The source file and line of the oops RIP, which must be ``function`` in ``module`` at the
    line of ``marker`` in the module's source (addr2line of the RIP against the marker)."""
    line = find_line(module_source, marker)
    rip_file, rip_line = resolve(rip)
    if (rip.function, rip.module, rip_file, rip_line) != (function, module, f"{module}.c", line):
        raise BuildError(
            f"The oops RIP {rip.function}+{rip.offset:#x} [{rip.module}] maps to "
            f"{rip_file}:{rip_line}, not to the {marker} marker at {module}.c:{line}"
        )
    return rip_file, line


def _labbug_lines(texts: list[str], verb: str) -> list[dict[str, str]]:
    prefix = f"labbug: {verb} "
    return [kv_pairs(t.split(prefix, 1)[1]) for t in texts if prefix in t]


def _crashed_task(texts: list[str], facts: list[LabFact], kind: str, start: int) -> tuple[int, int, str, int]:
    """The kernel's ``CPU/PID/Comm`` line of the crash (at or after ``start``), which must name the
    task the guest's ``LABFACT <kind>`` record reported: (cpu, pid, comm, line index)."""
    who = _one(facts, kind).values
    cpu, pid, comm, ctx = crash_context(texts, start)
    _agree("crashed pid", who["pid"], pid)
    _agree("crashed comm", who["comm"], comm)
    _agree("crashed cpu", who["cpu"], cpu)
    return cpu, pid, comm, ctx


def _common(texts: list[str], crash_kind: str, start: int) -> tuple[dict[str, object], int]:
    facts = lab_facts(texts)
    cpu, pid, comm, ctx = _crashed_task(texts, facts, crash_kind, start)
    sleepers = int(_one(facts, "sleepers").values["count"])
    observed = int(_one(facts, "ready").values["tasks"])
    return {
        "panic": panic_string(texts),
        "crashed_pid": pid,
        "crashed_comm": comm,
        "crashed_cpu": cpu,
        "sleepers": sleepers,
        "observed_tasks": observed,
    }, ctx


def expected_oops_null(texts: list[str], module_source: str, resolve: LineResolver) -> dict[str, object]:
    """Facts of the NULL dereference in labbug_walk(), reached from labcrash's write()."""
    oops = _index(texts, NULL_DEREF_LINES)
    exp, _ = _common(texts, "crash", oops)
    exp["oops_line"] = texts[oops].strip()

    rip = rip_frame(texts, oops)
    rip_file, line = _rip_at_marker(rip, resolve, module_source, FAULT_MARKER, "labbug_walk", "labbug")
    exp.update(function=rip.function, file=rip_file, line=line, rip_offset=rip.offset, module="labbug")

    walks = _labbug_lines(texts, "walk")
    if len(walks) != 1:
        raise BuildError(f"Expected one 'labbug: walk' line in the dump's dmesg, found {len(walks)}")
    walk = walks[0]
    _agree("crashing pid (module)", walk["pid"], exp["crashed_pid"])
    facts = lab_facts(texts)
    _agree("message written", _one(facts, "crash").values["msg"], walk["msg"])
    modes = enum_names(module_source, "labbug_mode")
    exp["locals"] = {
        "mode": modes[int(walk["mode"])],
        "counter": int(walk["counter"]),
        "msg": walk["msg"],
        "samples": [int(s) for s in walk["samples"].split(",")],
    }

    exp.update(_mutex_facts(texts, facts))
    exp.update(_thread_and_spin_facts(facts))
    # Tasks the guest started and that cannot have exited: init, the threads,
    # the holder, the waiters, the sleepers, the spinner and the crasher.
    d_state = exp["d_state_pids"]
    exp["min_tasks"] = 1 + len(exp["threads"]) + 1 + len(d_state) + int(exp["sleepers"]) + 1 + 1  # type: ignore[arg-type,call-overload]
    return exp


def _mutex_facts(texts: list[str], facts: list[LabFact]) -> dict[str, object]:
    """labbug_mutex's holder and the tasks blocked on it (D state), module lines = LABFACT records."""
    holders = _labbug_lines(texts, "hold")
    if len(holders) != 1:
        raise BuildError(f"Expected one labbug_mutex holder in the dmesg, found {len(holders)}")
    _agree("mutex holder pid", _one(facts, "hold").values["pid"], holders[0]["pid"])
    waits = _labbug_lines(texts, "wait")
    blocked = [int(w["pid"]) for w in waits if "comm" in w]
    acquired = {int(w["pid"]) for w in waits if "comm" not in w}
    d_state = sorted(p for p in blocked if p not in acquired)
    reported = sorted(int(f.values["pid"]) for f in facts if f.kind == "wait")
    _agree("mutex waiter pids", reported, d_state)
    if not d_state:
        raise BuildError("No task is blocked on labbug_mutex in the dump")
    return {"mutex_holder_pid": int(holders[0]["pid"]), "d_state_pids": d_state}


def _thread_and_spin_facts(facts: list[LabFact]) -> dict[str, object]:
    """labthreads' threads (one per blocking system call) and the CPU spinner."""
    threads = [f.values for f in facts if f.kind == "thread"]
    spin = _one(facts, "spin").values
    return {
        "threads": [
            {"pid": int(t["pid"]), "tid": int(t["tid"]), "comm": t["comm"], "syscall": t["syscall"]}
            for t in threads
        ],
        "spin_pid": int(spin["pid"]),
        "spin_cpu": int(spin["cpu"]),
    }


def expected_sysrq_c(texts: list[str], resolve: LineResolver) -> dict[str, object]:
    """Facts of ``echo c > /proc/sysrq-trigger`` run by a shell pinned to CPU 0."""
    trigger = _index(texts, "sysrq: Trigger a crash")
    panic_at = _index(texts, "Kernel panic - not syncing")
    exp, ctx = _common(texts, "sysrq", panic_at)
    exp["oops_line"] = texts[trigger].strip()
    caller = panic_caller(texts, ctx)
    file, line = resolve(caller)
    exp.update(function=caller.function, file=file, line=line, locals={})
    # init, the sleepers and the shell that wrote to sysrq-trigger.
    exp["min_tasks"] = 1 + int(exp["sleepers"]) + 1  # type: ignore[call-overload]
    return exp


def expected_many_tasks(texts: list[str], resolve: LineResolver) -> dict[str, object]:
    """Facts of the scale sample: labmany's thousands of threads, labbug_mutex's waiters, sysrq-c."""
    facts = lab_facts(texts)
    many = _one(facts, "many").values
    limits = _one(facts, "limits").values
    exp = _sysrq_crash_facts(texts, resolve)
    exp.update(
        many_pid=int(many["pid"]),
        many_comm=many["comm"],
        many_threads=int(many["threads"]),
        threads_max=int(limits["threads_max"]),
        pid_max=int(limits["pid_max"]),
        observed_tasks=int(_one(facts, "ready").values["tasks"]),
    )
    exp.update(_mutex_facts(texts, facts))
    d_state = exp["d_state_pids"]
    # init, labmany's main thread and its threads, the holder, the waiters and the shell.
    exp["min_tasks"] = 1 + 1 + int(many["threads"]) + 1 + len(d_state) + 1  # type: ignore[arg-type]
    return exp


def _sysrq_crash_facts(texts: list[str], resolve: LineResolver) -> dict[str, object]:
    """What ``echo c > /proc/sysrq-trigger`` from a shell pinned to CPU 0 left in the log."""
    trigger = _index(texts, "sysrq: Trigger a crash")
    panic_at = _index(texts, "Kernel panic - not syncing")
    cpu, pid, comm, ctx = _crashed_task(texts, lab_facts(texts), "sysrq", panic_at)
    caller = panic_caller(texts, ctx)
    file, line = resolve(caller)
    return {
        "panic": panic_string(texts),
        "oops_line": texts[trigger].strip(),
        "crashed_pid": pid,
        "crashed_comm": comm,
        "crashed_cpu": cpu,
        "function": caller.function,
        "file": file,
        "line": line,
        "locals": {},
    }


def _pids(text: str) -> list[int]:
    return [int(p) for p in text.split(",") if p]


def _lock_facts(texts: list[str], facts: list[LabFact]) -> list[dict[str, object]]:
    """Each lock's holders and blocked tasks from the module's ``labbug: lock`` lines, which must
    agree with the guest's ``LABFACT lock`` counts (a chain's holder also waits for its second lock)."""
    lines = _labbug_lines(texts, "lock")
    found = []
    for fact in (f.values for f in facts if f.kind == "lock"):
        name = fact["name"]
        mine = [line for line in lines if line["lock"] == name]
        holders = sorted(int(line["pid"]) for line in mine if line["op"] == "hold")
        acquired = {int(line["pid"]) for line in mine if line["op"] != "hold" and line["state"] == "acquired"}
        waiting = [line for line in mine if line["state"] == "blocking" and int(line["pid"]) not in acquired]
        waiters = {
            int(line["pid"]): {key: line[key] for key in ("comm", "mode", "op")} for line in waiting
        }
        _agree(f"holders of {name}", fact["holders"], len(holders))
        _agree(f"tasks blocked on {name}", fact["waiters"], len(waiters))
        if not holders or not waiters:
            raise BuildError(
                f"{name} has {len(holders)} holders and {len(waiters)} blocked tasks in the dump's log"
            )
        found.append({
            "name": name,
            "kind": fact["kind"],
            "holder_mode": fact["holder_mode"],
            "holder_comm": fact["holder_comm"],
            "holder_pids": holders,
            "waiters": [{"pid": pid, **w} for pid, w in sorted(waiters.items())],
        })  # fmt: skip
    if len(found) < 2:
        raise BuildError(f"Expected the huge guest's 'LABFACT lock' records, found {len(found)}")
    return found


def expected_huge(texts: list[str], resolve: LineResolver) -> dict[str, object]:
    """Facts of the ten-times-larger sample: ≈50,000 tasks asleep in a few dozen kinds of system call,
    lock pile-ups with owners, a busy task on every CPU, memory in use, then sysrq-c on CPU 0."""
    facts = lab_facts(texts)
    exp = _sysrq_crash_facts(texts, resolve)
    limits = _one(facts, "limits").values
    kinds = [
        {
            "name": k["name"],
            "comm": k["comm"],
            "syscall": k["syscall"],
            "processes": int(k["processes"]),
            "threads": int(k["threads"]),
            "pids": _pids(k["pids"]),
        }
        for k in (f.values for f in facts if f.kind == "kind")
    ]
    for kind in kinds:
        if len(kind["pids"]) != kind["processes"]:  # type: ignore[arg-type]
            raise BuildError(
                f"LABFACT kind {kind['name']}: {kind['processes']} processes but pids {kind['pids']}"
            )
    locks = _lock_facts(texts, facts)
    stopped = _one(facts, "stopped").values
    zombies = _one(facts, "zombies").values
    spinners = [
        {"pid": int(s["pid"]), "comm": s["comm"], "cpu": int(s["cpu"]), "mode": s["mode"]}
        for s in (f.values for f in facts if f.kind == "spin")
    ]
    memory = _one(facts, "memory").values
    meminfo = _one(facts, "meminfo").values
    blocked = sorted({w["pid"] for lock in locks for w in lock["waiters"]})  # type: ignore[attr-defined]
    holders = {p for lock in locks for p in lock["holder_pids"]}  # type: ignore[attr-defined]
    exp.update(
        threads_max=int(limits["threads_max"]),
        pid_max=int(limits["pid_max"]),
        kinds=kinds,
        locks=locks,
        locks_pid=int(_one(facts, "locks").values["pid"]),
        d_state_pids=blocked,
        stopped={"pid": int(stopped["pid"]), "comm": stopped["comm"], "threads": int(stopped["threads"])},
        zombies={"pid": int(zombies["pid"]), "comm": zombies["comm"], "count": int(zombies["count"])},
        spinners=spinners,
        memory={k: int(v) for k, v in memory.items()},
        meminfo_kib={k.removesuffix("_kib"): int(v) for k, v in meminfo.items()},
        observed_tasks=int(_one(facts, "ready").values["tasks"]),
    )
    # Tasks that cannot have exited: init; each kind's processes and threads (and wait4's child);
    # the stopped process and its threads; the zombies and their parent; lab-locks, its holders and
    # waiters; lab-anon; a spinner per CPU; the shell that crashed the machine.
    exp["min_tasks"] = (
        1
        + sum(int(k["processes"]) + int(k["threads"]) for k in kinds)  # type: ignore[call-overload]
        + sum(1 for k in kinds if k["name"] == "wait4")
        + 1 + int(stopped["threads"])
        + 1 + int(zombies["count"])
        + 1 + len(holders | set(blocked))
        + 1
        + len(spinners)
        + 1
    )  # fmt: skip
    return exp


def expected_no_panic(texts: list[str]) -> dict[str, object]:
    """Facts of the guest QEMU dumped without a crash: no panic at all, the oops-null tasks."""
    for pattern in ("Kernel panic", "Oops: ", "sysrq: Trigger a crash", "BUG: "):
        hit = next((t for t in texts if pattern in t), None)
        if hit is not None:
            raise BuildError(f"The no-panic guest's log has a crash in it: {hit.strip()!r}")
    facts = lab_facts(texts)
    exp: dict[str, object] = {
        "panic": None,
        "oops_line": None,
        "crashed_pid": None,
        "crashed_comm": None,
        "crashed_cpu": None,
        "function": None,
        "file": None,
        "line": None,
        "locals": {},
        "stop_reason": "pause",
        "sleepers": int(_one(facts, "sleepers").values["count"]),
        "observed_tasks": int(_one(facts, "ready").values["tasks"]),
    }
    exp.update(_mutex_facts(texts, facts))
    exp.update(_thread_and_spin_facts(facts))
    d_state = exp["d_state_pids"]
    # init, the threads, the holder, the waiters, the sleepers and the spinner.
    exp["min_tasks"] = 1 + len(exp["threads"]) + 1 + len(d_state) + int(exp["sleepers"]) + 1  # type: ignore[arg-type,call-overload]
    return exp


def _call_trace_irq(texts: list[str], start: int) -> tuple[list[str], str]:
    """The functions of the oops's ``<IRQ>`` … ``</IRQ>`` part, innermost first, and the entry stub
    of the interrupt (the first frame after ``</IRQ>``, e.g. ``asm_sysvec_apic_timer_interrupt``)."""
    inside: list[str] | None = None
    for i in range(start, len(texts)):
        stripped = texts[i].strip()
        if stripped == "<IRQ>":
            inside = []
        elif stripped == "</IRQ>" and inside is not None:
            for after in texts[i + 1 : i + 6]:
                m = _FRAME_LINE.match(after.strip())
                if m:
                    return inside, m.group(1)
            break
        elif inside is not None and not stripped.startswith("?"):
            m = _FRAME_LINE.match(stripped)
            if m:
                inside.append(m.group(1))
    raise BuildError("The oops's call trace has no '<IRQ>' … '</IRQ>' part followed by an entry stub")


def expected_irq_oops(texts: list[str], module_source: str, resolve: LineResolver) -> dict[str, object]:
    """Facts of the NULL dereference in labbug_tick(), run by an hrtimer in hard interrupt context
    while labirq spun in labbug_irq_wait() on the same CPU (the interrupted task is the crashed one)."""
    oops = _index(texts, NULL_DEREF_LINES)
    panic_at = _index(texts, "Kernel panic - not syncing: Fatal exception in interrupt")
    if panic_at < oops:
        raise BuildError("The dump's dmesg has 'Fatal exception in interrupt' before the oops")
    exp, ctx = _common(texts, "irq", oops)
    exp["oops_line"] = texts[oops].strip()

    rip = rip_frame(texts, oops)
    rip_file, line = _rip_at_marker(rip, resolve, module_source, IRQ_FAULT_MARKER, "labbug_tick", "labbug")
    exp.update(function=rip.function, file=rip_file, line=line, rip_offset=rip.offset, module="labbug")

    # The call trace: the timer callback inside <IRQ>, then the interrupted task's registers.
    irq_functions, entry = _call_trace_irq(texts, ctx)
    if "labbug_timer_fn" not in irq_functions:
        raise BuildError(f"labbug_timer_fn is not in the oops's <IRQ> call trace: {irq_functions}")
    if not entry.startswith("asm_sysvec_"):
        raise BuildError(f"The interrupt's entry stub is {entry}, not a system vector (asm_sysvec_*)")
    first_rip = next(i for i in range(oops, len(texts)) if "RIP: " in texts[i])
    interrupted = rip_frame(texts, first_rip + 1)
    if (interrupted.function, interrupted.module) != ("labbug_irq_wait", "labbug"):
        raise BuildError(
            f"The interrupted registers' RIP is {interrupted.function} [{interrupted.module}], "
            "not labbug_irq_wait [labbug]"
        )
    exp.update(
        interrupt_entry=entry,
        irq_functions=irq_functions,
        interrupted_function=interrupted.function,
        interrupted_offset=interrupted.offset,
    )

    facts = lab_facts(texts)
    who = _one(facts, "irq").values
    ticks = _labbug_lines(texts, "tick")
    arms = _labbug_lines(texts, "irq")
    if len(ticks) != 1 or len(arms) != 1:
        raise BuildError(
            f"Expected one 'labbug: irq' and one 'labbug: tick' line, found {len(arms)} and {len(ticks)}"
        )
    tick, arm = ticks[0], arms[0]
    _agree("interrupted pid (module)", tick["pid"], exp["crashed_pid"])
    _agree("arming pid (module)", arm["pid"], exp["crashed_pid"])
    _agree("interrupt cpu (module)", tick["irq_cpu"], exp["crashed_cpu"])
    _agree("count written", who["msg"], f"irq {arm['count']}")
    _agree("count seen by the timer", tick["ticks"], arm["count"])
    _agree("hard interrupt context", tick["hardirq"], 1)
    exp["locals"] = {"ticks": int(tick["ticks"]), "irq_cpu": int(tick["irq_cpu"])}
    spin = _one(facts, "spin").values
    exp.update(spin_pid=int(spin["pid"]), spin_cpu=int(spin["cpu"]), irq_delay_ms=int(arm["delay_ms"]))
    # init, the sleepers, the spinner and labirq.
    exp["min_tasks"] = 1 + int(exp["sleepers"]) + 1 + 1  # type: ignore[call-overload]
    return exp


def _labuaf_lines(texts: list[str], verb: str) -> list[dict[str, str]]:
    prefix = f"labuaf: {verb} "
    return [kv_pairs(t.split(prefix, 1)[1]) for t in texts if prefix in t]


def _one_line(texts: list[str], verb: str) -> dict[str, str]:
    lines = _labuaf_lines(texts, verb)
    if len(lines) != 1:
        raise BuildError(f"Expected one 'labuaf: {verb}' line in the dump's dmesg, found {len(lines)}")
    return lines[0]


def _int_array(source: str, name: str) -> list[int]:
    """The values of ``static const int <name>[N] = { … };`` in the module source."""
    m = re.search(rf"\b{re.escape(name)}\[\d*\]\s*=\s*{{([^}}]*)}}", source)
    if not m:
        raise BuildError(f"No array '{name}' in the module source")
    return [int(v, 0) for v in m.group(1).split(",") if v.strip()]


def expected_list_uaf(texts: list[str], module_source: str, resolve: LineResolver) -> dict[str, object]:
    """Facts of labuaf's corrupted request list: every request (id, CPU, address, in list order),
    the one freed while still linked, the one unlinked half-way, each CPU's counter, the long list
    of replies, and the NULL dereference of the freed request's data in labuaf_walk()."""
    oops = _index(texts, NULL_DEREF_LINES)
    facts = lab_facts(texts)
    cpu, pid, comm, _ = _crashed_task(texts, facts, "uaf", oops)
    walk = _one_line(texts, "walk")
    _agree("walking pid (module)", walk["pid"], pid)
    _agree("walking cpu (module)", walk["cpu"], cpu)

    rip = rip_frame(texts, oops)
    rip_file, line = _rip_at_marker(rip, resolve, module_source, UAF_FAULT_MARKER, "labuaf_walk", "labuaf")

    loaded = _one_line(texts, "loaded")
    device = {key: int(loaded[key], 16) for key in ("dev", "reqs", "by_id", "xa", "replies")}
    requests = [
        {"id": int(r["id"]), "cpu": int(r["cpu"]), "address": int(r["addr"], 16)}
        for r in _labuaf_lines(texts, "req")
    ]
    if [r["id"] for r in requests] != list(range(len(requests))):
        raise BuildError(f"labuaf's requests are not numbered 0…N-1 in submission order: {requests}")
    by_id = {r["id"]: r for r in requests}
    freed_line, half_line = _one_line(texts, "freed-linked"), _one_line(texts, "half-unlinked")
    freed = {"id": int(freed_line["id"]), "address": int(freed_line["addr"], 16)}
    half = {
        "id": int(half_line["id"]),
        "address": int(half_line["addr"], 16),
        "next": int(half_line["next"], 16),
    }
    for what, bad in (("freed-linked", freed), ("half-unlinked", half)):
        _agree(f"{what} request's address", by_id[bad["id"]]["address"], bad["address"])  # type: ignore[index]
    following = by_id.get(half["id"] + 1)
    _agree("half-unlinked request's successor", following["address"] if following else None, half["next"])

    # Each CPU's counter (printed after each submission from that CPU) is the requests made there.
    hits: dict[str, int] = {}
    for h in _labuaf_lines(texts, "hits"):
        hits[h["cpu"]] = int(h["total"])
    made = {str(c): sum(1 for r in requests if r["cpu"] == c) for c in {r["cpu"] for r in requests}}
    _agree("per-CPU request counts (labuaf_hits)", sorted(hits.items()), sorted(made.items()))

    replies_line = _one_line(texts, "replies")
    replies = {
        "count": int(replies_line["total"]),
        "first": int(replies_line["first"], 16),
        "last": int(replies_line["last"], 16),
    }

    # The walk follows next pointers: the half-unlinked request is skipped, the freed one is not;
    # it faults reading the freed request's data (NULL), having counted it (seen), made it cur and
    # added the values of those before it (total: labuaf_values[id % 4]).
    walked = [r["id"] for r in requests if r["id"] != half["id"]]
    before = walked[: walked.index(freed["id"])]
    values = _int_array(module_source, "labuaf_values")
    return {
        "panic": panic_string(texts),
        "oops_line": texts[oops].strip(),
        "crashed_pid": pid,
        "crashed_comm": comm,
        "crashed_cpu": cpu,
        "function": rip.function,
        "file": rip_file,
        "line": line,
        "rip_offset": rip.offset,
        "module": "labuaf",
        "module_struct": "labuaf_req",
        "locals": {
            "seen": len(before) + 1,
            "total": sum(values[i % len(values)] for i in before),
            "cur": freed["address"],
        },
        "device": device,
        "requests": requests,
        "freed_linked": freed,
        "half_unlinked": half,
        "hits": hits,
        "replies": replies,
        "observed_tasks": int(_one(facts, "ready").values["tasks"]),
        # init and the shell that wrote to /proc/labuaf/bug.
        "min_tasks": 2,
    }
