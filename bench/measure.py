"""One run of each thing the benchmark compares: the adapter over DAP, ``crash`` in batch mode, and a
plain drgn script, each in a fresh process (start-up is part of what a user waits for).

Every function returns plain numbers (seconds, KiB); :mod:`bench.run` repeats them side by side and
takes medians.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.lockstep import LockstepClient
from bench.lsp_lockstep import LspLockstepClient

__all__ = [
    "AdapterRun",
    "ConsoleRun",
    "KernelViewRun",
    "LspRun",
    "ProcessRun",
    "adapter_all_stacks",
    "adapter_console_foreach",
    "adapter_first_picture",
    "adapter_kernel_view",
    "crash_run",
    "drgn_first_stack",
    "lsp_first_code_lens",
    "DRGN_SCRIPT",
]

#: What "a plain drgn script" is: open the dump, load vmlinux, print the crashed task's stack.
DRGN_SCRIPT = """\
import sys, drgn
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
print(prog.crashed_thread().stack_trace())
"""

#: A kernel array of 8,192 ``unsigned long`` (NR_CPUS on Debian's kernels): one 4,096-element page.
ARRAY_EXPRESSION = "__per_cpu_offset"
ARRAY_PAGE = 4096
#: A whole ``struct task_struct`` (every member, about 250) to expand.
TASK_EXPRESSION = "init_task"
DISASSEMBLE_COUNT = 200
#: The kernel source file whose code lenses the language server is timed on (``schedule`` and
#: ``__schedule`` are on almost every task's stack).
LENS_FILE = "kernel/sched/core.c"
#: What the Kernel view asks for when it first renders, in its order (vscode-extension/src/kernelView).
KERNEL_VIEW_REQUESTS = ("vmcore/summary", "vmcore/cpus", "vmcore/stackGroups", "vmcore/blocked")
#: The Debug Console command whose first screen is timed, and how many lines a screen is.
CONSOLE_COMMAND = "foreach bt"
#: Requests in flight in the pipelined *all stacks* session (:func:`adapter_all_stacks`).
PIPELINE_WINDOW = 64
SCREEN_LINES = 50


@dataclass
class AdapterRun:
    """Timings of one adapter session, in seconds (``None`` where not measured)."""

    first_picture: float = 0.0
    stopped: float = 0.0
    #: ``threads`` at the stop (a large dump's first answer: the head of the list).
    threads: float = 0.0
    thread_count: int = 0
    #: ``threads`` once the list is whole (what the Call Stack shows for good), and its size.
    whole_threads: float | None = None
    whole_thread_count: int = 0
    #: From the stop to the ``thread`` event of a list finished after the stop (``None``: whole at once).
    listed_after_stop: float | None = None
    task_struct: float | None = None
    array_page: float | None = None
    disassemble_cold: float | None = None
    disassemble_warm: float | None = None
    all_stacks: float | None = None
    stacks_after_startup: float | None = None
    list_first_page: float | None = None
    list_entries: int = 0
    note_per_pointer: float | None = None
    peak_rss_kib: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class KernelViewRun:
    """The Kernel view's first render in a fresh session: each request right after the stop, cold.

    :param requests: request → seconds, for :data:`KERNEL_VIEW_REQUESTS`.
    """

    requests: dict[str, float]
    task_count: int
    groups: int
    blocked: int
    peak_rss_kib: int

    @property
    def render(self) -> float:
        """The whole first render: every request of :data:`KERNEL_VIEW_REQUESTS`, one after another."""
        return sum(self.requests.values())


@dataclass
class ConsoleRun:
    """``foreach bt`` typed in the Debug Console of a fresh session, cancelled after its first screen.

    :param first_screen: from sending ``evaluate`` to the ``output`` event that completes
        :data:`SCREEN_LINES` lines.
    :param cancel: from sending ``cancel`` to the ``evaluate`` response.
    :param cancelled: whether that response says the command was cancelled (not finished).
    """

    first_screen: float
    cancel: float
    cancelled: bool
    lines: int
    peak_rss_kib: int


@dataclass
class LspRun:
    """Timings of one language server session, in seconds."""

    opened: float
    first_code_lens: float
    lenses: int
    peak_rss_kib: int


@dataclass
class ProcessRun:
    """Wall time and peak RSS of one child process."""

    seconds: float
    peak_rss_kib: int
    #: The end of its output (for error messages).
    output: str


def launch_config(sample: Any) -> dict[str, Any]:
    """The sample's own launch.json configuration (``samples/launch/``): vmlinux, debug info, and
    the kernel source tree through ``sourceFileMap``/``sourceRoot``, as a user sets it up."""
    from samples.sample_store import launch_configuration

    config: dict[str, Any] = launch_configuration(sample)["configurations"][0]
    return config


def _client() -> LockstepClient:
    """The adapter over stdio, driven by a single-threaded lock-step client (:mod:`bench.lockstep`)."""
    return LockstepClient()


def _to_stop(client: LockstepClient, sample: Any) -> dict[str, Any]:
    return client.launch_and_stop(launch_config(sample))


def _peak_rss_kib(pid: int) -> int:
    """A live process's peak resident set so far (``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def adapter_first_picture(sample: Any) -> AdapterRun:
    """Start → initialize → launch → stopped → threads → stackTrace → scopes → variables (top frame),
    then, in the same session, the per-request costs of expanding and disassembling."""
    run = AdapterRun()
    t0 = time.perf_counter()
    client = _client()
    try:
        stopped = _to_stop(client, sample)
        run.stopped = time.perf_counter() - t0
        run.threads, body = _timed(client.call, "threads", {})
        run.thread_count = len(body["threads"])
        stack = client.call("stackTrace", {"threadId": stopped["threadId"], "startFrame": 0, "levels": 20})
        top = next(f for f in stack["stackFrames"] if f.get("presentationHint") != "label")
        scopes = client.call("scopes", {"frameId": top["id"]})["scopes"]
        client.call("variables", {"variablesReference": scopes[0]["variablesReference"]})
        run.first_picture = time.perf_counter() - t0

        task = client.call("evaluate", {"expression": TASK_EXPRESSION, "context": "watch"})
        run.task_struct, _ = _timed(
            client.call, "variables", {"variablesReference": task["variablesReference"]}
        )
        array = client.call("evaluate", {"expression": ARRAY_EXPRESSION, "context": "watch"})
        if array.get("indexedVariables", 0) < ARRAY_PAGE:
            run.notes.append(f"{ARRAY_EXPRESSION} has {array.get('indexedVariables')} indexed children")
        run.array_page, page = _timed(
            client.call,
            "variables",
            {"variablesReference": array["variablesReference"], "start": 0, "count": ARRAY_PAGE},
        )
        if len(page["variables"]) != ARRAY_PAGE:
            run.notes.append(f"array page returned {len(page['variables'])} variables")
        _measure_list_page(client, sample, run)
        ip = top.get("instructionPointerReference")
        if ip:
            request = {
                "memoryReference": ip,
                "instructionOffset": -DISASSEMBLE_COUNT // 2,
                "instructionCount": DISASSEMBLE_COUNT,
                "resolveSymbols": True,
            }
            run.disassemble_cold, _ = _timed(client.call, "disassemble", request)
            run.disassemble_warm, _ = _timed(client.call, "disassemble", request)
        run.peak_rss_kib = _peak_rss_kib(client.proc.pid)
    finally:
        client.close()
    return run


#: Entries in the first page of a list a client asks for (VS Code pages by 100).
LIST_PAGE = 100
#: Pages after the first whose pointer notes are timed (each cold, then warm).
NOTE_PAGES = 5


def _longest_list(client: LockstepClient, sample: Any) -> str:
    """A watch expression for the longest list of the sample: the 5,000 threads of ``labmany``
    (``signal->thread_head``) on many-tasks, every thread-group leader elsewhere."""
    pid = sample.expected.get("many_pid")
    if pid is None:
        return "init_task.tasks"
    body = client.call(
        "evaluate", {"expression": f"%py find_task(prog, {pid}).signal.value_()", "context": "repl"}
    )
    return f"((struct signal_struct *){int(body['result'], 0):#x})->thread_head"


def _measure_list_page(client: LockstepClient, sample: Any, run: AdapterRun) -> None:
    """The first page of the longest list as a client shows it: ``evaluate`` (which walks the first
    window of nodes, 1,000 at most) then ``variables`` of its first 100 entries. Then what a note
    costs: each of the next :data:`NOTE_PAGES` pages is asked for twice, the first time its entries'
    pointer notes are computed, the second time they are cached; the difference per entry bounds
    what a note costs, and the median over the pages is kept (one page's difference is a few ms,
    which a busy machine's scheduling alone can add or take away)."""
    expression = _longest_list(client, sample)
    t0 = time.perf_counter()
    head = client.call("evaluate", {"expression": expression, "context": "watch"})
    page = {
        "variablesReference": head["variablesReference"],
        "filter": "indexed",
        "start": 0,
        "count": LIST_PAGE,
    }
    first = client.call("variables", page)
    run.list_first_page = time.perf_counter() - t0
    # A long list shows a window of its first 1,000 nodes (indexedVariables); its length is the
    # guest's thread count (the leader and its threads) where the sample says it.
    threads = sample.expected.get("many_threads")
    run.list_entries = threads + 1 if threads else head.get("indexedVariables", 0)
    if len(first["variables"]) != min(LIST_PAGE, run.list_entries):
        run.notes.append(f"{expression}: first page returned {len(first['variables'])} variables")
    shown = head.get("indexedVariables", 0)
    per_pointer = []
    for start in range(LIST_PAGE, min(shown, LIST_PAGE * (NOTE_PAGES + 1)), LIST_PAGE):
        count = min(LIST_PAGE, shown - start)
        if count < LIST_PAGE // 2:
            break
        again = {**page, "start": start, "count": count}
        cold, _ = _timed(client.call, "variables", again)
        warm, _ = _timed(client.call, "variables", again)
        per_pointer.append(max(cold - warm, 0.0) / count)
    run.note_per_pointer = statistics.median(per_pointer) if per_pointer else None
    if not per_pointer:
        run.notes.append(f"{expression}: no second page to time the pointer notes on")


def adapter_all_stacks(sample: Any, window: int = 1) -> AdapterRun:
    """Start → stopped → (the whole thread list) → threads → ``stackTrace`` of every thread, as a
    client listing all stacks.

    :param window: requests in flight: 1 is lock-step (the next sent when the last is answered);
        more is a client that does not wait for each answer before asking the next
        (:meth:`~bench.lockstep.LockstepClient.pipelined`).
    """
    run = AdapterRun()
    t0 = time.perf_counter()
    client = _client()
    try:
        _to_stop(client, sample)
        run.stopped = time.perf_counter() - t0
        if client.wait_whole_thread_list():
            run.listed_after_stop = time.perf_counter() - t0 - run.stopped
        run.whole_threads, body = _timed(client.call, "threads", {})
        ids = [t["id"] for t in body["threads"]]
        run.thread_count = run.whole_thread_count = len(ids)
        t1 = time.perf_counter()
        if window == 1:
            for thread_id in ids:
                client.call("stackTrace", {"threadId": thread_id})
        else:
            answered = client.pipelined("stackTrace", [{"threadId": thread_id} for thread_id in ids], window)
            assert answered == len(ids), (answered, len(ids))
        end = time.perf_counter()
        run.stacks_after_startup = end - t1
        run.all_stacks = end - t0
        run.peak_rss_kib = _peak_rss_kib(client.proc.pid)
    finally:
        client.close()
    return run


def adapter_kernel_view(sample: Any) -> KernelViewRun:
    """Start → stopped → ``stackTrace`` of the crashed thread (what VS Code asks at the stop), then
    the Kernel view's first render: :data:`KERNEL_VIEW_REQUESTS` one after another, each timed (the
    grouping reads every task's stack: the cost that grows with tasks). A session of its own: nothing
    else has warmed the program's caches, as for the language server's first code lens."""
    client = _client()
    try:
        stopped = _to_stop(client, sample)
        client.call("stackTrace", {"threadId": stopped["threadId"]})
        times: dict[str, float] = {}
        bodies: dict[str, dict[str, Any]] = {}
        for command in KERNEL_VIEW_REQUESTS:
            times[command], bodies[command] = _timed(client.call, command, {})
        return KernelViewRun(
            times,
            bodies["vmcore/stackGroups"]["taskCount"],
            bodies["vmcore/stackGroups"]["groupCount"],
            len(bodies["vmcore/blocked"]["tasks"]),
            _peak_rss_kib(client.proc.pid),
        )
    finally:
        client.close()


def adapter_console_foreach(sample: Any) -> ConsoleRun:
    """Start → stopped, then :data:`CONSOLE_COMMAND` in the Debug Console: the time to its first
    screen of output (:data:`SCREEN_LINES` lines, as ``output`` events stream them), then ``cancel``
    and the time until the command's response."""
    client = _client()
    try:
        _to_stop(client, sample)
        client.events.clear()
        t0 = time.perf_counter()
        seq = client.send("evaluate", {"expression": CONSOLE_COMMAND, "context": "repl"})
        lines = 0
        response = None
        while lines < SCREEN_LINES:
            message = client.read()
            if message.get("type") == "event" and message.get("event") == "output":
                lines += message["body"].get("output", "").count("\n")
            elif message.get("type") == "response" and message.get("request_seq") == seq:
                response = message
                break
        first_screen = time.perf_counter() - t0
        t1 = time.perf_counter()
        if response is None:
            client.send("cancel", {"requestId": seq})
            response = client.response(seq)
        cancel = time.perf_counter() - t1
        cancelled = not response.get("success") and "cancel" in str(response.get("message", "")).lower()
        return ConsoleRun(first_screen, cancel, cancelled, lines, _peak_rss_kib(client.proc.pid))
    finally:
        client.close()


def lsp_first_code_lens(sample: Any) -> LspRun:
    """The language server: start → ``initialize`` (it opens the dump and lists the tasks, as the
    adapter's ``launch`` does) → ``didOpen`` of :data:`LENS_FILE` (answered by its diagnostics: the
    fault and the blocked tasks), then the first ``codeLens`` of it, timed — the request that reads
    every task's stack, as :func:`adapter_kernel_view` times the Kernel view's grouping."""
    config = launch_config(sample)
    path = Path(config["sourceRoot"]) / LENS_FILE
    text = path.read_text(errors="replace")
    t0 = time.perf_counter()
    client = LspLockstepClient()
    try:
        client.initialize(config)
        opened = time.perf_counter() - t0
        document = {"uri": path.as_uri(), "languageId": "c", "version": 1, "text": text}
        client.notify("textDocument/didOpen", {"textDocument": document})
        client.wait_notification("textDocument/publishDiagnostics", path.as_uri())
        first, answer = _timed(client.call, "textDocument/codeLens", {"textDocument": {"uri": path.as_uri()}})
        lenses = answer or []
        return LspRun(opened, first, len(lenses), _peak_rss_kib(client.proc.pid))
    finally:
        client.close()


#: Runs ``argv[2:]`` with this process's standard streams and environment, reaps it with ``wait4`` and
#: writes "<seconds> <ru_maxrss KiB> <exit code>" to the file descriptor ``argv[1]``. A small process of
#: its own, so that what the child reports as its peak is its own (:func:`_popen_with_peak`).
_LAUNCHER = """
import os, sys, time
report = int(sys.argv[1])
os.set_inheritable(report, False)
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
os.write(report, f"{seconds} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}".encode())
"""
#: How much of a child's output is kept for an error message.
_OUTPUT_TAIL = 4000


def _popen_with_peak(argv: list[str], stdin: str, env: dict[str, str] | None = None) -> ProcessRun:
    """Run ``argv`` with ``stdin``; return its wall time and its own peak RSS.

    Linux records at ``exec`` the high-water mark of the memory a process leaves, which after
    ``vfork`` (Python's ``subprocess``, ``posix_spawn``) is the parent's: started from this process
    once it had held 905 MiB (6 Dec 07:54: the pipelined row's bodies, at huge), crash and plain drgn
    both "peaked" at 905 MiB. So the child is started by a small launcher process (:data:`_LAUNCHER`),
    which times it from its start to ``wait4`` (its own interpreter's start is not counted) and
    reports the ``ru_maxrss`` that ``wait4`` gives for that child alone. Only the tail of the output
    is kept (crash's ``foreach bt`` at huge prints tens of MB).
    """
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(write_end), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(write_end,),
        )
    finally:
        os.close(write_end)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(stdin.encode())
    proc.stdin.close()
    tail = b""
    while chunk := proc.stdout.read(1 << 16):
        tail = (tail + chunk)[-_OUTPUT_TAIL:]
    proc.stdout.close()
    with os.fdopen(read_end, "rb") as report:
        fields = report.read().split()
    launcher_status = proc.wait()
    out = tail.decode(errors="replace")
    if launcher_status != 0 or len(fields) != 3:
        raise RuntimeError(f"cannot run {argv[0]} (launcher exit {launcher_status}):\n{out}")
    seconds, peak_kib, code = float(fields[0]), int(fields[1]), int(fields[2])
    if code != 0:
        raise RuntimeError(f"{argv[0]} exited with {code}:\n{out}")
    return ProcessRun(seconds, peak_kib, out)


def crash_run(crash: Sequence[str], sample: Any, commands: list[str]) -> ProcessRun:
    """``crash -s vmlinux vmcore`` running ``commands`` then ``exit``, output discarded.

    :param crash: the command line up to crash's arguments (``samples.crash_oracle.crash_command``).
    """
    script = "".join(f"{c}\n" for c in ["set scroll off", *commands, "exit"])
    env = {**os.environ, "PAGER": "cat"}
    return _popen_with_peak([*crash, "-s", str(sample.vmlinux), str(sample.vmcore)], script, env)


def drgn_first_stack(sample: Any) -> ProcessRun:
    """The plain drgn script (:data:`DRGN_SCRIPT`) in a fresh interpreter."""
    return _popen_with_peak([sys.executable, "-c", DRGN_SCRIPT, str(sample.vmcore), str(sample.vmlinux)], "")
