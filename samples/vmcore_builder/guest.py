"""Compile what runs in the guest: its modules (labbug, labuaf; with DWARF) and the static programs."""

from __future__ import annotations

import shutil
from pathlib import Path

from .common import SAMPLES_DIR, BuildError, progress, run
from .kernel import KernelTree
from .toolchain import toolchain

__all__ = [
    "GUEST_DIR",
    "PROGRAMS",
    "SCENARIO_MODULES",
    "SCENARIO_PROGRAMS",
    "build_module",
    "build_programs",
    "guest_files",
]

GUEST_DIR = SAMPLES_DIR / "guest"

#: Guest program -> extra gcc flags.
PROGRAMS: dict[str, list[str]] = {
    "labthreads": ["-pthread"],
    "labtool": [],
    "labmany": ["-pthread"],
    "labhuge": ["-pthread"],
}

#: Scenario -> the guest programs its /init runs (only these are built, packed and hashed).
SCENARIO_PROGRAMS: dict[str, tuple[str, ...]] = {
    "oops-null": ("labthreads", "labtool"),
    "sysrq-c": (),
    "many-tasks": ("labtool", "labmany"),
    "no-panic": ("labthreads", "labtool"),
    "irq-oops": ("labtool",),
    "huge": ("labhuge",),
    "list-uaf": (),
}

#: Scenario -> the modules its /init loads, beside labbug (which every guest carries): each is a
#: directory of ``guest/`` with the module's source and its Kbuild.
SCENARIO_MODULES: dict[str, tuple[str, ...]] = {"list-uaf": ("labuaf",)}


def guest_files(scenario: str, guest_dir: Path = GUEST_DIR) -> list[Path]:
    """The guest sources a scenario's dump depends on: /init, the modules, its programs."""
    files = [guest_dir / "init.sh", *sorted((guest_dir / "labbug").iterdir())]
    for module in SCENARIO_MODULES.get(scenario, ()):
        files += sorted((guest_dir / module).iterdir())
    programs = SCENARIO_PROGRAMS[scenario]
    if programs:
        files.append(guest_dir / "progs" / "labfact.h")
    files += [guest_dir / "progs" / f"{name}.c" for name in programs]
    return [f for f in files if f.is_file()]


def build_module(kernel: KernelTree, build_dir: Path, final_dir: Path, name: str = "labbug") -> Path:
    """Build ``<name>.ko`` in ``build_dir`` (the source, ``guest/<name>/``, is copied there) and
    return it.

    ``final_dir`` is where ``build_dir`` will live once the sample is complete; the
    DWARF is written with that path so debuggers find the source without a map.
    """
    if not (kernel.headers_dir / "Makefile").exists():
        raise BuildError(f"Kernel headers missing at {kernel.headers_dir} (delete the kernel cache)")
    build_dir.mkdir(parents=True, exist_ok=True)
    for src in (GUEST_DIR / name).iterdir():
        if src.is_file():
            shutil.copy2(src, build_dir / src.name)
    tools = toolchain(kernel)
    progress(f"building the {name} module for {kernel.release}")
    prefix_map = f"-fdebug-prefix-map={build_dir}={final_dir}"
    run(
        ["make", "-C", kernel.headers_dir, f"M={build_dir}", f"KCFLAGS={prefix_map}", *tools.make_vars,
         "modules"],
        what=f"build the {name} module against the extracted {kernel.release} headers",
        env=tools.env(),
        timeout=600,
    )  # fmt: skip
    ko = build_dir / f"{name}.ko"
    if not ko.exists():
        raise BuildError(f"The module build produced no {ko}")
    return ko


def build_programs(kernel: KernelTree, scenario: str, out_dir: Path) -> dict[str, Path]:
    """Compile ``scenario``'s static programs for ``kernel``'s architecture into ``out_dir``."""
    tools = toolchain(kernel)
    out_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for name in SCENARIO_PROGRAMS[scenario]:
        flags = PROGRAMS[name]
        progress(f"compiling {name}")
        dest = out_dir / name
        run(
            [tools.cc, "-static", "-O2", "-g", "-Wall", *flags, "-o", dest,
             GUEST_DIR / "progs" / f"{name}.c"],
            what=f"compile the guest program {name} (needs gcc and libc6-dev)",
            env=tools.program_env(),
        )  # fmt: skip
        built[name] = dest
    return built
