"""The sample manifest: written last and atomically, so its presence means "complete"."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .common import BuildError

__all__ = ["MANIFEST_NAME", "PATH_KEYS", "load_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.json"

#: Manifest keys holding a path (relative to the manifest's directory, or absolute).
PATH_KEYS = (
    "vmcore", "vmcore_elf", "dmesg", "console_log", "vmlinux", "debug_info_dir", "module_source_dir",
)  # fmt: skip


def write_manifest(sample_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` via a temporary file and rename (never half-written)."""
    dest = sample_dir / MANIFEST_NAME
    tmp = sample_dir / f".{MANIFEST_NAME}.tmp-{os.getpid()}"
    with tmp.open("w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.rename(dest)
    return dest


def load_manifest(sample_dir: Path) -> dict[str, Any]:
    """Read and sanity-check a manifest; a missing key is an error naming the file."""
    path = sample_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BuildError(f"No sample manifest at {path}") from None
    except json.JSONDecodeError as e:
        raise BuildError(f"Corrupt sample manifest {path}: {e} (delete the directory)") from None
    required = (*PATH_KEYS, "debug_info", "kernel_release", "scenario", "expected")
    missing = [k for k in required if k not in manifest]
    if missing:
        raise BuildError(f"Sample manifest {path} lacks {', '.join(missing)} (delete the directory)")
    return manifest
