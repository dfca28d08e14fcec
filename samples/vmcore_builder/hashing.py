"""A sample's content hash: the part of its cache key that says "rebuild me".

Per sample, not global: the builder's code (``make-vmcore``, ``vmcore_builder/`` but for the
pinning plumbing, ``repin.py`` and ``apt.py``, and the matrix's lists, ``matrix.py``), the guest
files its scenario uses (``guest.guest_files``: /init, the module, only its own programs), the
pin of its kernel (every package file's SHA-256, ``pins.pin_hash``) and the variant. So a
re-pin of sid rebuilds sid's samples only, and editing labmany.c rebuilds many-tasks only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .common import SAMPLES_DIR

__all__ = ["builder_hash", "builder_inputs"]

_IGNORED_PARTS = {"__pycache__"}

#: Builder modules that decide which package files are fetched or which samples exist, not what
#: is built: the kernel's pin hash (every file's SHA-256) stands for their effect. Re-pinning code
#: and the APT plumbing (crash_builds.py shares them) and the matrix's lists can change without
#: rebuilding every sample.
_NOT_DUMP_INPUTS = {"vmcore_builder/repin.py", "vmcore_builder/apt.py", "vmcore_builder/matrix.py"}


def builder_inputs(scenario: str, samples_dir: Path = SAMPLES_DIR) -> list[Path]:
    """Return the files whose content is hashed for ``scenario``, sorted by path under ``samples_dir``."""
    from .guest import guest_files

    files: list[Path] = [samples_dir / "make-vmcore"]
    files += [
        p
        for p in (samples_dir / "vmcore_builder").rglob("*")
        if p.is_file()
        and not _IGNORED_PARTS.intersection(p.parts)
        and p.suffix != ".pyc"
        and p.relative_to(samples_dir).as_posix() not in _NOT_DUMP_INPUTS
    ]
    files += guest_files(scenario, samples_dir / "guest")
    return sorted((f for f in files if f.is_file()), key=lambda p: p.relative_to(samples_dir).as_posix())


def builder_hash(
    scenario: str, kernel_pin_hash: str, variant: str | None = None, samples_dir: Path = SAMPLES_DIR,
    length: int = 12,
) -> str:  # fmt: skip
    """Hash ``scenario``'s inputs with its kernel's pin hash and the variant.

    Names and contents are both hashed (a rename is a change); the result is a
    hex prefix short enough for a directory name.
    """
    h = hashlib.sha256()
    h.update(f"scenario\0{scenario}\0variant\0{variant or ''}\0pin\0{kernel_pin_hash}\0".encode())
    for path in builder_inputs(scenario, samples_dir):
        h.update(path.relative_to(samples_dir).as_posix().encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:length]
