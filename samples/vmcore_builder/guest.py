"""Compile what runs in the guest: the labbug module (with DWARF) and the static programs."""

from __future__ import annotations

import shutil
from pathlib import Path

from .common import SAMPLES_DIR, BuildError, progress, run
from .kernel import KernelTree

__all__ = ["GUEST_DIR", "PROGRAMS", "build_module", "build_programs"]

GUEST_DIR = SAMPLES_DIR / "guest"

#: Guest program -> extra gcc flags.
PROGRAMS: dict[str, list[str]] = {"labthreads": ["-pthread"], "labtool": [], "labmany": ["-pthread"]}


def build_module(kernel: KernelTree, build_dir: Path, final_dir: Path) -> Path:
    """Build labbug.ko in ``build_dir`` (its source is copied there) and return it.

    ``final_dir`` is where ``build_dir`` will live once the sample is complete; the
    DWARF is written with that path so debuggers find the source without a map.
    """
    if not (kernel.headers_dir / "Makefile").exists():
        raise BuildError(f"Kernel headers missing at {kernel.headers_dir} (delete the kernel cache)")
    build_dir.mkdir(parents=True, exist_ok=True)
    for src in (GUEST_DIR / "labbug").iterdir():
        if src.is_file():
            shutil.copy2(src, build_dir / src.name)
    progress("building the labbug module")
    prefix_map = f"-fdebug-prefix-map={build_dir}={final_dir}"
    run(
        ["make", "-C", kernel.headers_dir, f"M={build_dir}", f"KCFLAGS={prefix_map}", "modules"],
        what="build the labbug module against the extracted headers",
        timeout=600,
    )
    ko = build_dir / "labbug.ko"
    if not ko.exists():
        raise BuildError(f"The module build produced no {ko}")
    return ko


def build_programs(out_dir: Path) -> dict[str, Path]:
    """Compile the guest's static programs into ``out_dir``; return name -> binary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for name, flags in PROGRAMS.items():
        progress(f"compiling {name}")
        dest = out_dir / name
        run(
            ["gcc", "-static", "-O2", "-g", "-Wall", *flags, "-o", dest,
             GUEST_DIR / "progs" / f"{name}.c"],
            what=f"compile the guest program {name} (needs gcc and libc6-dev)",
        )  # fmt: skip
        built[name] = dest
    return built
