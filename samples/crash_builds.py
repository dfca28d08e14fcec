#!/usr/bin/env python3
"""The ``crash`` programs the oracle runs: Debian's own prebuilt packages, fetched, never installed.

Why prebuilt: building crash with its bundled gdb takes 5–9 minutes on 2 cores (16 for a second
target), while Debian's binary packages of crash and the libraries they link against are ≈10 MB
per build. A binary of another suite (trixie's crash 8.0.6, sid's 9.0.x) runs on this Debian 12
host with that suite's own dynamic loader and libraries, extracted side by side::

    <root>/usr/lib64/ld-linux-x86-64.so.2 --library-path <root>/usr/lib/x86_64-linux-gnu <root>/usr/bin/crash

and Debian's **arm64** crash (the one that reads aarch64 dumps) runs the same way under
``qemu-aarch64`` (Debian's ``qemu-user``), its arm64 loader being an ordinary static program for
qemu — no sysroot redirection, no binfmt registration. Neither touches the system's apt sources
nor its installed packages (``qemu-user`` aside, a package of the host's own suite).

Every build is pinned in ``samples/crash-builds.json`` (crash and each library package: pool path,
SHA-256), so every machine runs the very same binaries; ``python3 samples/crash_builds.py --repin
[BUILD…]`` picks the newest crash of each build's suite and rewrites the pins. Layout in the cache::

    $VMCORE_DAP_CACHE/crash/<build>-<pin hash>/root/     the extracted packages (downloads are
                                                         checked against the pins, then deleted)
    $VMCORE_DAP_CACHE/crash/<build>-<pin hash>/build.json  written last: the pin and the check

After a re-pin, the directories of a build's older pins are removed once unused for a week.

Which build reads which dump is decided in ``crash_choice.py``, not here.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from sample_cache import IDLE_DAYS, USED_STAMP, mark_used  # noqa: E402
from vmcore_builder.apt import download_pinned, private_apt  # noqa: E402
from vmcore_builder.common import BuildError, cache_root  # noqa: E402
from vmcore_builder.debs import extract_debs  # noqa: E402
from vmcore_builder.hostdeps import apt_get_install  # noqa: E402
from vmcore_builder.pins import PinnedPackage  # noqa: E402
from vmcore_builder.repin import _pinned as pinned  # noqa: E402
from vmcore_builder.repin import dependency_closure, first_alternatives  # noqa: E402

__all__ = [
    "PIN_FILE",
    "REPIN_COMMAND",
    "CrashBuild",
    "CrashError",
    "CrashProgram",
    "ensure_crash",
    "load_builds",
    "repin",
]

#: The pin file, in the repository.
PIN_FILE = _HERE / "crash-builds.json"
#: The one command that re-pins (named in every "no longer served" error).
REPIN_COMMAND = "python3 samples/crash_builds.py --repin"

#: The builds there are: id -> (Debian suite, Debian architecture). Which dump each one reads,
#: and why, is ``crash_choice.CRASH_TABLE``.
BUILD_LINES: dict[str, tuple[str, str]] = {
    "trixie-amd64": ("trixie", "amd64"),
    "sid-amd64": ("sid", "amd64"),
    "sid-arm64": ("sid", "arm64"),
}

#: Packages crash depends on that it does not need here: binutils gives it ``nm`` and ``strings``,
#: which it runs by absolute path (/usr/bin/nm), so the host's serve (make-vmcore installs binutils).
_NOT_NEEDED = frozenset({"binutils"})

#: Debian architecture -> how its binaries run: the loader inside the extracted tree, its multiarch
#: library directory, and the machine name (``uname -m``; on another host, ``qemu-<machine>`` runs it).
_LOADERS: dict[str, tuple[str, str, str]] = {
    "amd64": ("usr/lib64/ld-linux-x86-64.so.2", "x86_64-linux-gnu", "x86_64"),
    "arm64": ("usr/lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu", "aarch64"),
}
#: The Debian package (of the host's own suite) that provides the ``qemu-<machine>`` emulators.
_EMULATOR_PACKAGE = "qemu-user"


class CrashError(BuildError):
    """A crash build cannot be fetched, extracted or run; the message says what to do."""


@dataclass(frozen=True)
class CrashBuild:
    """One pinned build: Debian's ``crash`` of one suite and architecture, with its libraries.

    :param id: e.g. ``sid-arm64`` (a key of :data:`BUILD_LINES`).
    :param version: crash's upstream version (``9.0.2``), as ``crash --version`` prints it.
    :param packages: ``crash`` (role ``crash``) and the libraries it loads (role ``library``).
    """

    id: str
    suite: str
    arch: str
    version: str
    packages: tuple[PinnedPackage, ...]

    @property
    def crash_package(self) -> PinnedPackage:
        return next(p for p in self.packages if p.role == "crash")

    def pin_hash(self, length: int = 12) -> str:
        """Hash what the build is made of (every package file's SHA-256): its cache key."""
        h = hashlib.sha256(f"{self.id}\0{self.suite}\0{self.arch}\0".encode())
        for p in sorted(self.packages, key=lambda p: p.name):
            h.update(f"{p.role}\0{p.name}\0{p.version}\0{p.sha256}\0".encode())
        return h.hexdigest()[:length]

    def to_json(self) -> dict[str, object]:
        return {
            "suite": self.suite,
            "arch": self.arch,
            "version": self.version,
            "packages": [asdict(p) for p in self.packages],
        }


@dataclass(frozen=True)
class CrashProgram:
    """An extracted build, ready to run: ``argv`` is the command line up to crash's own arguments."""

    build: CrashBuild
    root: Path
    argv: tuple[str, ...]

    @property
    def version(self) -> str:
        return self.build.version

    def describe(self) -> str:
        """``crash 9.0.2 (Debian sid arm64 9.0.2+~16.3-1, under qemu-aarch64)``."""
        deb = self.build.crash_package
        how = f", under {Path(self.argv[0]).name}" if self.argv[0].startswith("qemu") else ""
        return f"crash {self.version} (Debian {self.build.suite} {self.build.arch} {deb.version}{how})"


def _say(message: str) -> None:
    print(f"[crash] {message}", file=sys.stderr, flush=True)


def _builds_root() -> Path:
    return cache_root() / "crash"


def load_builds(path: Path = PIN_FILE) -> dict[str, CrashBuild]:
    """Return build id -> pinned build, as the pin file says."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CrashError(f"No crash pin file at {path} (restore it from git)") from None
    except json.JSONDecodeError as e:
        raise CrashError(f"Corrupt crash pin file {path}: {e} (restore it from git)") from None
    builds = {}
    for build_id, b in data["builds"].items():
        try:
            builds[build_id] = CrashBuild(
                id=build_id,
                suite=b["suite"],
                arch=b["arch"],
                version=b["version"],
                packages=tuple(PinnedPackage(**p) for p in b["packages"]),
            )
        except (KeyError, TypeError) as e:
            raise CrashError(
                f"{path}: build '{build_id}' is malformed ({e}); re-pin: {REPIN_COMMAND} {build_id}"
            ) from None
    return builds


def _save_builds(builds: dict[str, CrashBuild], path: Path = PIN_FILE) -> None:
    data = {
        "comment": f"The crash packages the oracle runs (samples/crash_builds.py); re-pin: {REPIN_COMMAND}",
        "builds": {b.id: b.to_json() for b in builds.values()},
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.rename(path)


def _upstream_version(debian_version: str) -> str:
    """``9.0.2+~16.3-1`` -> ``9.0.2`` (sid's crash names its bundled gdb after the ``+~``)."""
    m = re.match(r"(?:\d+:)?(\d+(?:\.\d+)+)", debian_version)
    if m is None:
        raise CrashError(f"Cannot read an upstream version out of crash's Debian version '{debian_version}'")
    return m.group(1)


def repin(build_ids: list[str] | None = None) -> dict[str, CrashBuild]:
    """Pin the newest crash of each build's suite (all builds when ``build_ids`` is empty)."""
    try:
        builds = load_builds()
    except CrashError:
        builds = {}
    refreshed: set[str] = set()
    for build_id in build_ids or list(BUILD_LINES):
        if build_id not in BUILD_LINES:
            raise CrashError(f"Unknown crash build '{build_id}' (known: {', '.join(BUILD_LINES)})")
        suite, arch = BUILD_LINES[build_id]
        apt = private_apt(suite)
        if suite not in refreshed:
            apt.update(force=True)
            refreshed.add(suite)
        crash = apt.show("crash", arch)
        roots = [name for name, _ in first_alternatives(crash.depends) if name not in _NOT_NEEDED]
        libraries = dependency_closure(apt, roots, arch, "library")
        builds[build_id] = CrashBuild(
            id=build_id,
            suite=suite,
            arch=arch,
            version=_upstream_version(crash.version),
            packages=(pinned("crash", crash), *libraries),
        )
        _say(f"{build_id}: crash {crash.version} with {len(libraries)} library packages")
    ordered = {b: builds[b] for b in BUILD_LINES if b in builds}
    _save_builds(ordered)
    return ordered


def _emulator(arch: str) -> str | None:
    """The emulator that runs ``arch``'s binaries here (None: natively); checked to be installed."""
    machine = _LOADERS[arch][2]
    if machine == platform.machine():
        return None
    emulator = f"qemu-{machine}"
    if shutil.which(emulator):
        return emulator
    package = _EMULATOR_PACKAGE
    if os.geteuid() != 0:
        raise CrashError(
            f"crash for {arch} dumps runs under {emulator}, which is not installed "
            f"(run: sudo apt-get install -y --no-install-recommends {package})"
        )
    _say(f"installing {package} (provides {emulator}, which runs Debian's {arch} crash)")
    proc = apt_get_install([package])
    if proc.returncode != 0 or not shutil.which(emulator):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise CrashError(
            f"Cannot install {package} for {emulator} (is the Debian registry reachable?)\n{tail}"
        )
    return emulator


def _argv(build: CrashBuild, root: Path) -> tuple[str, ...]:
    loader, triplet, _ = _LOADERS[build.arch]
    emulator = _emulator(build.arch)
    libs = f"{root}/usr/lib/{triplet}:{root}/lib/{triplet}"
    prefix = (shutil.which(emulator) or emulator,) if emulator else ()
    return (*prefix, str(root / loader), "--library-path", libs, str(root / "usr" / "bin" / "crash"))


def _check(build: CrashBuild, root: Path, argv: tuple[str, ...]) -> dict[str, object]:
    """Check that every library crash needs is in the tree and that it reports the pinned version."""
    loader_list = [*argv[:-1], "--list", argv[-1]]
    listed = subprocess.run(loader_list, capture_output=True, text=True, check=False, timeout=120)
    missing = re.findall(r"^\s*(\S+) => not found", listed.stdout, re.MULTILINE)
    if listed.returncode != 0 or missing:
        raise CrashError(
            f"crash of build {build.id} lacks libraries {', '.join(missing) or '(see below)'}: its pinned "
            f"library closure is incomplete (re-pin: {REPIN_COMMAND} {build.id})\n"
            f"{listed.stdout}{listed.stderr}"
        )
    started = time.monotonic()
    out = subprocess.run([*argv, "--version"], capture_output=True, text=True, check=False, timeout=120)
    m = re.search(r"^crash (\S+)", out.stdout, re.MULTILINE)
    if m is None or m.group(1) != build.version:
        raise CrashError(
            f"crash of build {build.id} does not run here: '{' '.join(argv)} --version' printed "
            f"{(m and m.group(1))!r}, expected {build.version}\n{out.stdout[-1000:]}{out.stderr[-1000:]}"
        )
    return {
        "libraries": len(listed.stdout.splitlines()),
        "version_seconds": round(time.monotonic() - started, 2),
    }


def _download(build: CrashBuild, debs: Path) -> list[Path]:
    paths = []
    for p in build.packages:
        dest = debs / p.file
        if not dest.is_file():
            _say(f"downloading {p.file}")
            try:
                download_pinned(p.archive, p.filename, p.sha256, dest, f"{p.name} {p.version} ({p.arch})")
            except BuildError as e:
                raise CrashError(f"{e} (re-pin crash build {build.id}: {REPIN_COMMAND} {build.id})") from None
        paths.append(dest)
    return paths


def ensure_crash(build_id: str) -> CrashProgram:
    """Fetch and extract build ``build_id`` if the cache lacks it, check it runs, return how to run it.

    :raises CrashError: unknown build, the archive no longer serves a pinned file (the message
        names the re-pin command), or the binary does not run on this host.
    """
    builds = load_builds()
    if build_id not in builds:
        raise CrashError(f"No crash build '{build_id}' in {PIN_FILE} (known: {', '.join(builds)})")
    build = builds[build_id]
    home = _builds_root() / f"{build.id}-{build.pin_hash()}"
    root = home / "root"
    done = home / "build.json"
    if done.is_file():
        mark_used(home)
        return CrashProgram(build=build, root=root, argv=_argv(build, root))
    _builds_root().mkdir(parents=True, exist_ok=True)
    with open(_builds_root() / f".lock-{build.id}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be extracting the same build
        if done.is_file():
            return CrashProgram(build=build, root=root, argv=_argv(build, root))
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=_builds_root(), prefix=".debs-") as tmp:
            debs = _download(build, Path(tmp))
            downloaded = time.monotonic()
            extract_debs(debs, root)
        argv = _argv(build, root)
        try:
            check = _check(build, root, argv)
        except CrashError:
            shutil.rmtree(home, ignore_errors=True)
            raise
        meta = {
            **build.to_json(),
            "id": build.id,
            "pin_hash": build.pin_hash(),
            "argv": list(argv),
            "download_seconds": round(downloaded - started, 1),
            "extract_seconds": round(time.monotonic() - downloaded, 1),
            "check": check,
        }
        (home / "build.json.tmp").write_text(json.dumps(meta, indent=2) + "\n")
        (home / "build.json.tmp").rename(done)
        _say(f"{build.id}: crash {build.version} ready in {time.monotonic() - started:.1f} s ({home})")
        mark_used(home)
        _prune_other_pins(build)
    return CrashProgram(build=build, root=root, argv=argv)


def _prune_other_pins(build: CrashBuild) -> None:
    """Remove this build's directories of other pins unused for ``IDLE_DAYS`` (an older clone
    sharing the cache keeps its crash meanwhile), as ``sample_cache`` does for samples."""
    current = f"{build.id}-{build.pin_hash()}"
    for path in _builds_root().glob(f"{build.id}-*"):
        if path.name == current or not re.fullmatch(rf"{re.escape(build.id)}-[0-9a-f]{{12}}", path.name):
            continue
        stamp = path / USED_STAMP
        used = (stamp if stamp.exists() else path).stat().st_mtime
        if time.time() - used >= IDLE_DAYS * 86400:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="crash_builds.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("builds", nargs="*", help=f"build ids (default: all of {', '.join(BUILD_LINES)})")
    parser.add_argument("--repin", action="store_true", help="pin the newest crash of each build's suite")
    args = parser.parse_args(argv)
    try:
        if args.repin:
            repin(args.builds)
            return 0
        for build_id in args.builds or list(load_builds()):
            program = ensure_crash(build_id)
            print(" ".join(program.argv))
    except BuildError as e:
        print(f"crash_builds: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
