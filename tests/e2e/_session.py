"""Shared pieces of the end-to-end tests: launch a sample, read and normalise stacks, open it in-process.

Not a test module (leading underscore). Everything goes through the real adapter over stdio with
:class:`~tests.helpers.dap_client.DapClient`, which validates every message against the DAP schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers.dap_client import DapClient
from tests.helpers.stack_normalize import CRASH_MACHINERY, Frame, normalize_frames

from vmcore_dap.dump.kernel.locks import BlockedTask, blocked_tasks
from vmcore_dap.dump.kernel.panic import crashed_task
from vmcore_dap.dump.kernel.tasks import list_tasks
from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.opening.opener import Dump, open_dump
from vmcore_dap.dump.stacks.service import StackService
from vmcore_dap.dump.stacks.waits import LockFinder

INLINE_SUFFIX = " [inlined]"
#: Label rows of an interrupt/exception boundary (``vmcore_dap.dump.arch.base.Arch.boundary_name``).
_BOUNDARY_LABEL = re.compile(r"^── (exception: |interrupt: |interrupt or exception ──|NMI ──|interrupted \()")
_THREAD_NAME = re.compile(r"^PID (?P<pid>\d+) (?P<comm>.*) \[(?P<state>.)\](?: CPU(?P<cpu>\d+))?$")


def config_for(sample: Any, **overrides: Any) -> dict[str, Any]:
    """A launch configuration for a sample, as a user would write it in launch.json."""
    config: dict[str, Any] = {
        "type": "vmcore",
        "request": "launch",
        "name": f"vmcore {sample.scenario}",
        "vmcore": str(sample.vmcore),
        "debugInfoDirectories": [str(sample.debug_info_dir)],
        "debugInfo": [str(p) for p in sample.debug_info],
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def open_sample_dump(sample: Any) -> Dump:
    """The adapter's own view of a sample, opened in this process (to check what DAP shows
    against what the target layer reads, e.g. a task's own unwinding)."""
    config = LaunchConfig.from_arguments(
        {
            "vmcore": str(sample.vmcore),
            "vmlinux": str(sample.vmlinux),
            "debugInfo": [str(p) for p in sample.debug_info],
        }
    )
    return open_dump(config)


def grouped_service(sample: Any) -> StackService:
    """The adapter's stack service on ``sample``, in this process, after grouping every task (which
    unwinds one task per chain of return addresses and shares the rest)."""
    dump = open_sample_dump(sample)
    crashed = crashed_task(dump.prog)
    service = StackService(dump.prog, list_tasks(dump.prog, crashed), crashed.value_() if crashed else None)
    service.groups()
    return service


def _blocked_row(task: BlockedTask) -> tuple[object, ...]:
    lock = task.lock
    described = None
    if lock is not None:
        described = (
            lock.kind,
            lock.address,
            lock.symbol,
            lock.owner_address,
            lock.owner_is_reader_hint,
            lock.function,
        )
    return task.info.address, task.waited_ns, described


def blocked_both_ways(
    service: StackService,
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], LockFinder]:
    """The blocked tasks of ``service``'s dump as ``vmcore/blocked`` finds them (each lock read from
    the stack a waiter shares: :class:`~vmcore_dap.dump.stacks.waits.LockFinder`) and as drgn's
    unwinding of every D task gives them: (the finder's rows, the unwinding's rows, the finder)."""
    tasks = list(service.tasks.values())
    finder = LockFinder(service)
    fast = blocked_tasks(service.prog, tasks, finder.lock_of)
    slow = blocked_tasks(service.prog, tasks)
    return [_blocked_row(b) for b in fast], [_blocked_row(b) for b in slow], finder


@contextmanager
def stopped_session(
    sample: Any, log_dir: Path, **overrides: Any
) -> Iterator[tuple[DapClient, dict[str, Any]]]:
    """An adapter launched on ``sample`` and stopped; yields the client and the ``stopped`` event."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with DapClient(log_dir) as client:
        stopped = client.launch_and_stop(config_for(sample, **overrides))
        yield client, stopped
        assert client.schema_errors == [], client.schema_errors


def parse_thread_name(name: str) -> dict[str, Any]:
    """Split ``PID 123 comm [S] CPU1`` into its parts."""
    m = _THREAD_NAME.match(name)
    assert m, f"thread name {name!r} is not 'PID <pid> <comm> [<state>][ CPU<n>]'"
    return {
        "pid": int(m["pid"]),
        "comm": m["comm"],
        "state": m["state"],
        "cpu": int(m["cpu"]) if m["cpu"] is not None else None,
    }


def stack_of(client: DapClient, thread_id: int) -> list[dict[str, Any]]:
    """All frames of a thread."""
    body = client.call("stackTrace", {"threadId": thread_id})
    assert body["totalFrames"] == len(body["stackFrames"])
    return body["stackFrames"]


def focus_index(frames: list[dict[str, Any]]) -> int:
    """The frame a client selects: the first that is neither a label nor subtle."""
    return next(i for i, f in enumerate(frames) if f.get("presentationHint", "normal") == "normal")


def source_line(frame: dict[str, Any]) -> int:
    """The frame's line in its source file, as the debug info names it.

    A frame whose file is not on disk points at its own line in a disassembly listing (its
    ``source.sourceReference``); the adapter then keeps the file's line in ``source.adapterData``.
    """
    source = frame.get("source") or {}
    if source.get("sourceReference"):
        data = source.get("adapterData")
        assert isinstance(data, dict) and isinstance(data.get("line"), int), (
            f"frame with a listing reference does not name its DWARF line: {frame}"
        )
        return int(data["line"])
    return int(frame["line"])


def _function_name(row_name: str) -> str:
    """A Call Stack row's function: without the inline mark and an offset (``f+0x12``)."""
    return row_name.removesuffix(INLINE_SUFFIX).split("+0x")[0]


def normalized_dap_stack(frames: list[dict[str, Any]]) -> list[Frame]:
    """Our frames by the shared rule: labels (user space, boundaries) out, inline frames merged,
    return addresses as ``pc``, the kdump machinery cut from the top (``CRASH_MACHINERY``).

    Rule 1 on DAP rows: when a boundary label (exception, interrupt, NMI) is in the stack, it starts
    at the frame below the first one, as crash starts at its first ``[exception RIP: …]``. (drgn
    starts *at* the faulting frame when kdump ran with the exception's registers, as oops-null's
    ``oops_end`` → ``crash_kexec(regs)`` does; after ``panic()`` — SysRq-c, or an oops in interrupt
    context with ``crash_kexec_post_notifiers`` — it starts in the panic path above the boundary.)
    Only then: a task another CPU was running when the NMI stopped it starts at the interrupted
    code (kdump saved the NMI's registers), as crash's first ``[exception RIP: …]`` (the NMI's)
    does, so an interrupt it was handling stays (seen: labspin in a serial IRQ on a rebuilt oops-null).
    """
    first = next((i for i, f in enumerate(frames) if _BOUNDARY_LABEL.match(f["name"])), None)
    if (
        first is not None
        and frames[first].get("presentationHint") == "label"
        and any(_function_name(f["name"]) in CRASH_MACHINERY for f in frames[:first])
    ):
        frames = frames[first + 1 :]
    rows = []
    for frame in frames:
        if frame.get("presentationHint") == "label":
            continue
        name = _function_name(frame["name"])
        inline = frame["name"].endswith(INLINE_SUFFIX)
        source = frame.get("source")
        pc = int(frame["instructionPointerReference"], 16) if "instructionPointerReference" in frame else None
        rows.append((name, source["path"] if source else None, source_line(frame) or None, inline, pc))
    normalized = normalize_frames(rows)
    while normalized and normalized[0].function in CRASH_MACHINERY:
        normalized = normalized[1:]
    return normalized
