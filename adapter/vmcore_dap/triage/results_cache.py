"""Reports already written are the cache: a re-run reads only the dumps that are new or changed.

Each report records the key it was made under (``cache_key``): the dump's absolute path, size,
modification time and kernel build ID (from its headers: a file replaced in place by another dump
of the same size and time still differs there), plus what else decides the result — the triage
schema version, the vmcore-dap version and the debug-info directories. A report in the output
directory whose key equals the dump's key now is reused as it is; any difference means the dump
is read again. The report's file name is derived from the dump's path, so two dumps with the same
name in different directories never share a file. Failed reports are never reused.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from vmcore_dap import __version__
from vmcore_dap.dump.opening.vmcore_file import inspect_vmcore
from vmcore_dap.errors import UserError
from vmcore_dap.triage.report import SCHEMA_VERSION

__all__ = ["cache_key", "cached_report", "report_stem"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def report_stem(vmcore: Path) -> str:
    """``<directory>_<file>-<8 hex of the path's hash>``: readable, and unique per dump path."""
    digest = hashlib.sha256(str(vmcore).encode()).hexdigest()[:8]
    readable = _UNSAFE.sub("-", f"{vmcore.parent.name}_{vmcore.name}").strip("-")[:80]
    return f"{readable}-{digest}"


def cache_key(vmcore: Path, debug_info_dirs: tuple[Path, ...]) -> dict[str, Any]:
    """The key a report of ``vmcore`` is valid for (cheap: a ``stat`` and the dump's headers)."""
    try:
        st = vmcore.stat()
        size, mtime_ns = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime_ns = None, None
    try:
        build_id = inspect_vmcore(vmcore).build_id
    except UserError:
        build_id = None
    return {
        "path": str(vmcore),
        "size": size,
        "mtime_ns": mtime_ns,
        "build_id": build_id,
        "schema_version": SCHEMA_VERSION,
        "generator": __version__,
        "debug_info_dirs": [str(d) for d in debug_info_dirs],
    }


def cached_report(output: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The report in ``output`` made under ``key``, or ``None`` when there is none or it is stale."""
    path = output / f"{report_stem(Path(key['path']))}.json"
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(previous, dict) or previous.get("cache_key") != key or previous.get("error"):
        return None  # a failure is cheap to repeat, and its cause (permissions, a copy) may be gone
    return previous
