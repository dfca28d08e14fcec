"""The builder's content hash: the part of a sample's cache key that says "rebuild me"."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .common import SAMPLES_DIR

__all__ = ["builder_hash", "builder_inputs"]

# What decides a sample's content: the CLI, the builder package and the guest
# sources. The loader (sample_store.py), the docs and the demo do not.
_INPUT_ROOTS = ("make-vmcore", "vmcore_builder", "guest")
_IGNORED_PARTS = {"__pycache__"}


def builder_inputs(samples_dir: Path = SAMPLES_DIR) -> list[Path]:
    """Return the files whose content is hashed, sorted by their path under ``samples_dir``."""
    files: list[Path] = []
    for root in _INPUT_ROOTS:
        path = samples_dir / root
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not _IGNORED_PARTS.intersection(p.relative_to(samples_dir).parts)
                and p.suffix != ".pyc"
            )
    return sorted(files, key=lambda p: p.relative_to(samples_dir).as_posix())


def builder_hash(kernel_version: str, samples_dir: Path = SAMPLES_DIR, length: int = 12) -> str:
    """Hash the builder's inputs together with the kernel package version.

    Names and contents are both hashed (a rename is a change); the result is a
    hex prefix short enough for a directory name.
    """
    h = hashlib.sha256()
    h.update(f"kernel-version\0{kernel_version}\0".encode())
    for path in builder_inputs(samples_dir):
        h.update(path.relative_to(samples_dir).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:length]
