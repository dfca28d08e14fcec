"""Find the debug info a dump needs: the vmlinux by build ID, and kernel module files.

The vmlinux is the one file without which nothing works, so it is found here, by the dump's build ID,
and checked here: a ``vmlinux`` given explicitly whose build ID differs from the dump's is refused
with both IDs instead of being silently ignored (drgn's ``try_file`` would ignore it). When nothing is
found, the error lists every place that was searched and the distribution package that provides it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vmcore_dap.dump.opening.elf import file_build_id, read_elf_header
from vmcore_dap.errors import SettingError

__all__ = [
    "default_debug_dirs",
    "find_vmlinux",
    "check_vmlinux",
    "module_file_index",
    "VmlinuxSearch",
    "module_name_of_file",
    "package_hint",
    "describe_not_found",
]

_MODULE_SUFFIXES = (".ko.debug", ".ko", ".ko.xz", ".ko.zst", ".ko.gz")


def default_debug_dirs(release: str | None) -> list[Path]:
    """The directories searched when ``debugInfoDirectories`` is not set, in order."""
    dirs = [Path("/usr/lib/debug"), Path("/usr/lib/debug/boot")]
    if release:
        dirs += [Path(f"/usr/lib/debug/lib/modules/{release}"), Path(f"/lib/modules/{release}")]
    return dirs


def package_hint(release: str | None) -> str:
    """Name the packages that ship a kernel's debug info on the common distributions."""
    rel = release or "<release>"
    return (
        f"install linux-image-{rel}-dbg (Debian/Ubuntu; Ubuntu calls it linux-image-unsigned-{rel}-dbgsym) "
        f"or kernel-debuginfo-{rel} (Fedora/RHEL), or set 'vmlinux'"
    )


@dataclass
class VmlinuxSearch:
    """The record of one search: where it looked and what it rejected, for the error message."""

    looked: list[str] = field(default_factory=list)
    rejected: list[tuple[Path, str | None]] = field(default_factory=list)


def _candidates(directory: Path, release: str | None, build_id: str | None) -> Iterator[Path]:
    """Yield the places a vmlinux can be in ``directory`` (a debug root, a boot dir, a build tree)."""
    if build_id:
        yield directory / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"
        yield directory / "usr/lib/debug/.build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    if release:
        yield directory / f"vmlinux-{release}"
        yield directory / "boot" / f"vmlinux-{release}"
        yield directory / "lib/modules" / release / "vmlinux"
        yield directory / "usr/lib/debug/boot" / f"vmlinux-{release}"
        yield directory / "usr/lib/debug/lib/modules" / release / "vmlinux"
    yield directory / "vmlinux"
    yield directory / "build" / "vmlinux"


def check_vmlinux(path: Path, build_id: str | None) -> None:
    """Refuse a ``vmlinux`` that is unreadable, not ELF, or built from other sources than the dump.

    :param build_id: the dump's build ID, or ``None`` when the kernel did not record one.
    :raises SettingError: naming both build IDs when they differ.
    """
    if not path.exists():
        raise SettingError(f"Cannot use vmlinux '{path}': no such file (check 'vmlinux')", "vmlinux")
    if path.is_dir():
        raise SettingError(
            f"Cannot use vmlinux '{path}': it is a directory (set 'vmlinux' to the file, or put the "
            "directory in 'debugInfoDirectories' to search it by build ID)",
            "vmlinux",
        )
    try:
        with open(path, "rb") as f:
            is_elf = read_elf_header(f) is not None
        actual = file_build_id(path) if is_elf else None
    except OSError as exc:
        raise SettingError(
            f"Cannot use vmlinux '{path}': {exc.strerror or exc} (check the file's permissions)", "vmlinux"
        ) from None
    if not is_elf:
        raise SettingError(
            f"Cannot use vmlinux '{path}': it is not an ELF file (set 'vmlinux' to the uncompressed vmlinux "
            "with debug info, not a vmlinuz or bzImage)",
            "vmlinux",
        )
    if build_id is None:
        return
    if actual is None:
        raise SettingError(
            f"Cannot use vmlinux '{path}': it has no GNU build ID, so it cannot be checked against the "
            f"dump (build ID {build_id}) (use the vmlinux with debug info of the crashed kernel)",
            "vmlinux",
        )
    if actual != build_id:
        raise SettingError(
            f"Cannot use vmlinux '{path}': its build ID {actual} does not match the dump's kernel "
            f"(build ID {build_id}) (use the vmlinux of the kernel that crashed, from its debug package)",
            "vmlinux",
        )


def find_vmlinux(
    directories: Sequence[Path], release: str | None, build_id: str | None
) -> tuple[Path | None, VmlinuxSearch]:
    """Search ``directories`` for the dump's vmlinux; return it (or ``None``) and the search record.

    A candidate is accepted only if its build ID equals ``build_id``; without a build ID in the dump
    the first candidate named for ``release`` is taken.
    """
    search = VmlinuxSearch()
    seen: set[Path] = set()
    for directory in directories:
        search.looked.append(str(directory))
        for candidate in _candidates(directory, release, build_id):
            if candidate in seen or not candidate.is_file():
                continue
            seen.add(candidate)
            try:
                actual = file_build_id(candidate)
            except OSError:
                search.rejected.append((candidate, None))
                continue
            if build_id is None or actual == build_id:
                return candidate, search
            search.rejected.append((candidate, actual))
    return None, search


def describe_not_found(search: VmlinuxSearch, release: str | None, build_id: str | None) -> SettingError:
    """Build the "no debuginfo" error: what was wanted, where it looked, what to install."""
    wanted = f"kernel {release or '(unknown release)'}" + (f", build ID {build_id}" if build_id else "")
    rejected = ""
    if search.rejected:
        parts = [f"{path} (build ID {bid or 'unreadable'})" for path, bid in search.rejected[:3]]
        rejected = "; rejected because the build ID differs: " + ", ".join(parts)
    return SettingError(
        f"No debug info found for the dump's {wanted}: no matching vmlinux in "
        f"{', '.join(search.looked) or '(no directories)'}{rejected} ({package_hint(release)})",
        "vmlinux",
    )


def module_name_of_file(path: Path) -> str | None:
    """Return the kernel module name a file provides (``snd-hda.ko.debug`` → ``snd_hda``) or ``None``."""
    name = path.name
    for suffix in _MODULE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("-", "_")
    return None


def module_file_index(paths: Iterable[Path]) -> dict[str, list[Path]]:
    """Index module debug files by module name, walking directories recursively.

    :param paths: files (``.ko``, ``.ko.debug``) and directories from ``debugInfo``.
    :raises SettingError: for a path that does not exist or a file that is not a module's.
    """
    index: dict[str, list[Path]] = {}

    def add(file: Path) -> None:
        module = module_name_of_file(file)
        if module is not None:
            index.setdefault(module, []).append(file)

    for path in paths:
        if path.is_dir():
            for root, _dirs, files in os.walk(path, followlinks=False):
                for name in sorted(files):
                    add(Path(root) / name)
        elif path.is_file():
            if module_name_of_file(path) is None:
                raise SettingError(
                    f"Cannot use debug info file '{path}': it is not a kernel module (the vmlinux goes "
                    "in 'vmlinux'; 'debugInfo' takes .ko and .ko.debug files or directories of them)",
                    "debugInfo",
                )
            add(path)
        else:
            raise SettingError(
                f"Cannot use debug info path '{path}': no such file or directory (check 'debugInfo')",
                "debugInfo",
            )
    # Prefer separate debug files (.ko.debug) over stripped-or-not modules.
    for module_files in index.values():
        module_files.sort(key=lambda p: (not p.name.endswith(".debug"), str(p)))
    return index
