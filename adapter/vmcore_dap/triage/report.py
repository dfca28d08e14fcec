"""The triage report of one dump, as JSON: every key is documented in ``docs/triage.md``.

Keys are snake_case and values plain JSON, so a report travels from a worker process (or a Dask
worker on another machine) as it is and is written unchanged. :data:`SCHEMA_VERSION` changes when a
key changes meaning or disappears; new keys may appear without a change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import drgn

from vmcore_dap import __version__
from vmcore_dap.dump.kernel.locks import BlockedTask
from vmcore_dap.dump.kernel.modules import KernelModule
from vmcore_dap.dump.kernel.panic import PanicInfo
from vmcore_dap.dump.kernel.panic_kind import PanicKind
from vmcore_dap.dump.kernel.task_state import task_state_letter
from vmcore_dap.dump.kernel.tasks import TaskInfo
from vmcore_dap.dump.opening.debuginfo import default_debug_dirs
from vmcore_dap.dump.opening.opener import Dump
from vmcore_dap.dump.opening.vmcore_file import VmcoreFile, describe_filtering, excluded_page_kinds
from vmcore_dap.dump.stacks.frames import TaskStack
from vmcore_dap.dump.stacks.groups import StackGroups
from vmcore_dap.dump.stacks.normalize import Frame, base_function_name

__all__ = ["SCHEMA", "SCHEMA_VERSION", "new_report", "iso_time"]

SCHEMA = "vmcore-dap/triage-report"
#: Version 1: the first published form (docs/triage.md).
SCHEMA_VERSION = 1


def iso_time(seconds: float) -> str:
    """``2026-12-04T22:20:02Z`` for a Unix time."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_report(vmcore: Path) -> dict[str, Any]:
    """The report before anything was read: what the file system says about the dump."""
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generator": f"vmcore-dap {__version__}",
        "vmcore": str(vmcore),
        "error": None,
        "signature": None,
        "crashed_task": None,
        "problems": [],
        "file": None,
        "kernel": None,
        "dump_time": None,
        "dump_time_source": None,
    }
    try:
        st = vmcore.stat()
    except OSError:
        return result
    result["file"] = {"size": st.st_size, "mtime": iso_time(st.st_mtime)}
    result["dump_time"] = iso_time(st.st_mtime)
    result["dump_time_source"] = "file mtime"
    return result


def describe_file(result: dict[str, Any], vmfile: VmcoreFile) -> None:
    """What the dump's own headers say: format, filter level, kernel, when it crashed."""
    result["file"].update({"format": vmfile.format, "dump_level": vmfile.dump_level})
    result["kernel"] = {"release": vmfile.release, "build_id": vmfile.build_id}
    crash_time = vmfile.vmcoreinfo.get("CRASHTIME")
    if crash_time and crash_time.isdigit():
        result["dump_time"] = iso_time(int(crash_time))
        result["dump_time_source"] = "VMCOREINFO CRASHTIME"


def describe_dump(result: dict[str, Any], dump: Dump) -> None:
    """The kernel as drgn opened it (a flattened dump's build ID is only known now)."""
    platform = dump.prog.platform
    result["kernel"].update(
        {
            "release": dump.release or result["kernel"].get("release"),
            "build_id": dump.build_id or result["kernel"].get("build_id"),
            "arch": platform.arch.name.lower() if platform is not None else None,
            "vmlinux": str(dump.vmlinux),
        }
    )


def describe_system(result: dict[str, Any], facts: Sequence[tuple[str, str]]) -> None:
    """``sys``'s facts, and the kernel version string among them."""
    result["system"] = [{"name": name, "value": value} for name, value in facts]
    values = dict(facts)
    result["kernel"]["version"] = values.get("VERSION")
    result["kernel"]["machine"] = values.get("MACHINE")
    result["task_count_sys"] = values.get("TASKS")


def describe_panic(result: dict[str, Any], panic: PanicInfo, kind: PanicKind) -> None:
    result["panic"] = {
        "class": kind.name,
        "class_label": kind.label,
        "string": panic.panic,
        "oops": panic.oops,
        "taint": panic.taint,
        "taint_description": panic.taint_description,
        "report": panic.report,
    }


def _frame_json(frame: Frame, modules: dict[str, str | None]) -> dict[str, Any]:
    return {
        "function": frame.function,
        "file": frame.file,
        "line": frame.line,
        "module": modules.get(frame.function),
    }


def _frame_modules(stack: TaskStack) -> dict[str, str | None]:
    """Normalised function name -> module name, from the presented rows (``None``: the kernel)."""
    modules: dict[str, str | None] = {}
    for row in stack.frames:
        if row.kind == "code" and row.function and not row.is_inline:
            module = row.module if row.module and row.module != "kernel" else None
            modules.setdefault(base_function_name(row.function), module)
    return modules


def describe_crashed(
    result: dict[str, Any], info: TaskInfo, stack: TaskStack, normalised: list[Frame]
) -> None:
    """The crashed task and its stack: normalised (for people and signatures) and as presented."""
    modules = _frame_modules(stack)
    result["crashed_task"] = {
        "pid": info.pid,
        "comm": info.comm,
        "cpu": info.cpu,
        "state": info.state,
        "stack": [_frame_json(f, modules) for f in normalised],
        "unwind_error": stack.error,
    }


def describe_groups(result: dict[str, Any], groups: StackGroups, top: int) -> None:
    result["task_count"] = groups.task_count
    result["stack_groups"] = {
        "count": len(groups.groups),
        "top": [
            {
                "count": g.count,
                "states": dict(g.states.most_common()),
                "functions": list(g.functions),
                "pids": g.pids[:10],
            }
            for g in groups.groups[:top]
        ],
    }


def _owner(lock_owner: drgn.Object | None, blocked_pids: set[int]) -> dict[str, Any] | None:
    if lock_owner is None:
        return None
    try:
        pid = lock_owner.pid.value_()
        return {
            "pid": pid,
            "comm": lock_owner.comm.string_().decode("utf-8", "replace"),
            "state": task_state_letter(lock_owner),
            "blocked": pid in blocked_pids,
        }
    except (drgn.FaultError, LookupError):
        return {
            "pid": None,
            "comm": None,
            "state": None,
            "blocked": False,
            "task": f"{lock_owner.value_():#x}",
        }


def describe_blocked(result: dict[str, Any], blocked: list[BlockedTask]) -> None:
    """The lock graph in brief: each lock D-state tasks wait for, its waiters and its owner (and whether
    that owner is itself blocked, which makes a chain)."""
    blocked_pids = {b.info.pid for b in blocked}
    locks: dict[str, dict[str, Any]] = {}
    unknown: list[int] = []
    for b in blocked:
        if b.lock is None:
            unknown.append(b.info.pid)
            continue
        entry = locks.get(b.lock.description)
        if entry is None:
            entry = locks[b.lock.description] = {
                "lock": b.lock.description,
                "kind": b.lock.kind,
                "symbol": b.lock.symbol,
                "function": b.lock.function,
                "owner": _owner(b.lock.owner, blocked_pids),
                "waiters": [],
                "longest_wait_ns": None,
            }
        entry["waiters"].append(b.info.pid)
        if b.waited_ns is not None:
            entry["longest_wait_ns"] = max(entry["longest_wait_ns"] or 0, b.waited_ns)
    result["blocked"] = {
        "count": len(blocked),
        "locks": sorted(locks.values(), key=lambda e: (-len(e["waiters"]), e["lock"])),
        "waiting_on_unknown": unknown,
    }


def describe_modules(
    result: dict[str, Any], modules: list[KernelModule], stack: TaskStack | None, dump: Dump
) -> None:
    """Modules on the crashed stack, modules that taint the kernel, modules without debug info."""
    on_stack: list[str] = []
    if stack is not None:
        for module in _frame_modules(stack).values():
            if module is not None and module not in on_stack:
                on_stack.append(module)
    result["modules"] = {
        "loaded": sum(1 for m in modules if not m.is_kernel),
        "on_crashed_stack": on_stack,
        "tainting": [{"name": m.name, "taints": m.taints} for m in modules if not m.is_kernel and m.taints],
        "without_debug_info": list(dump.modules_without_debug_info),
    }


def describe_quality(result: dict[str, Any], vmfile: VmcoreFile, warnings: list[str]) -> None:
    """How much of the machine the dump holds, and what went wrong reading it."""
    excluded = excluded_page_kinds(vmfile.dump_level) if vmfile.dump_level is not None else []
    result["quality"] = {
        "description": describe_filtering(vmfile),
        "partial": bool(excluded) or vmfile.zero_filled_pages > 0,
        "dump_level": vmfile.dump_level,
        "excluded_pages": excluded,
        "zero_filled_pages": vmfile.zero_filled_pages,
        "truncated": vmfile.truncated,
        "missing_bytes": vmfile.missing_bytes,
        "missing_pages": vmfile.missing_pages,
        "warnings": list(warnings),
    }


def launch_configuration(dump: Dump, debug_info_dirs: Sequence[Path]) -> dict[str, Any]:
    """The launch.json configuration that opens this dump in VS Code with the debug info triage used."""
    config: dict[str, Any] = {
        "type": "vmcore",
        "request": "launch",
        "name": f"vmcore {dump.config.vmcore.name} ({dump.release or 'unknown kernel'})",
        "vmcore": str(dump.config.vmcore),
        "vmlinux": str(dump.vmlinux),
    }
    if debug_info_dirs:
        config["debugInfo"] = [str(d) for d in debug_info_dirs]
        config["debugInfoDirectories"] = [
            str(d) for d in (*default_debug_dirs(dump.release), *debug_info_dirs)
        ]
    return config
