"""Unpack Debian packages into the cache without installing them (``dpkg-deb``), atomically."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from .common import BuildError, progress, run

__all__ = ["extract_debs", "relink_symlinks"]


def extract_debs(debs: list[Path], dest: Path, fixup: Callable[[Path], None] | None = None,
             members: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Extract ``debs`` (only ``members``, shell patterns, when given) into ``dest`` atomically."""
    if dest.is_dir():
        return
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in debs:
        progress(f"extracting {deb.name}" + (" (vmlinux and the guest's modules)" if members else ""))
        if not members:
            run(["dpkg-deb", "-x", deb, tmp], what=f"extract {deb.name}", timeout=1200)
            continue
        # A pattern may match nothing (a module built into this kernel): only other errors count.
        with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as src:
            tar = subprocess.run(["tar", "-x", "-C", str(tmp), "--wildcards", *members], stdin=src.stdout,
                                 capture_output=True, text=True, timeout=1200, check=False)  # fmt: skip
        errors = [
            line for line in tar.stderr.splitlines()
            if "Not found in archive" not in line and "previous errors" not in line
        ]  # fmt: skip
        if src.returncode != 0 or errors or tar.returncode not in (0, 2):
            raise BuildError(
                f"Cannot extract {deb.name}: tar exited with {tar.returncode}: {' '.join(errors)[-500:]}"
            )
    if fixup is not None:
        fixup(tmp)
    tmp.rename(dest)


def relink_symlinks(tmp: Path) -> None:
    """Make the absolute symlinks of an extracted package point inside it (they name the host)."""
    for link in [p for p in tmp.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if target.startswith("/"):
            link.unlink()
            link.symlink_to(os.path.relpath(tmp / target.lstrip("/"), link.parent))
