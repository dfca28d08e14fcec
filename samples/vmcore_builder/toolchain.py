"""The compiler that builds a kernel's module, and the userland of a guest of another architecture.

A kernel's headers call the gcc its suite built it with (bookworm's 6.1: gcc-12, trixie's 6.12:
gcc-14, sid's 7.x: gcc-16, bullseye's 5.10: gcc-10), and its config records that compiler's
features (flags gcc-12 does not know, e.g. ``-fmin-function-alignment``). So a kernel of
another suite than the host's is built with that suite's own gcc and binutils, and its kbuild
tools (fixdep, modpost, objtool) are that suite's too. They are Debian's prebuilt binaries,
extracted (never installed) under ``<kernel>/tools/compiler/``; as they need the suite's C
library (sid's need glibc ≥ 2.38, the host has 2.36), every executable among them, and the
kbuild tools in the headers, get that tree's ``ld.so`` as interpreter and its library
directories as RPATH (``patchelf``). The host's own kernel (bookworm) uses the host's gcc-12.

arm64: the suite's cross compiler (``gcc-N-aarch64-linux-gnu``, ``libc6-dev-arm64-cross`` for
the static guest programs), and the guest's busybox, kexec and makedumpfile from the suite's
arm64 packages under ``<kernel>/tools/guest/`` (``initramfs.py`` packs them with their
libraries).
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from .common import BuildError, progress, run
from .debs import extract_debs, relink_symlinks
from .kernel import KernelTree

__all__ = ["Toolchain", "ensure_tools", "toolchain"]

_PT_INTERP = 3
_LIB_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64")


def _wants_interpreter(path: Path) -> bool:
    """Whether ``path`` is a dynamically linked x86-64 ELF executable (has PT_INTERP)."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return False
            (phoff,) = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return any(
        struct.unpack_from("<I", table, i * phentsize)[0] == _PT_INTERP
        for i in range(phnum)
        if (i + 1) * phentsize <= len(table)
    )


def _loader(root: Path) -> Path:
    for sub in ("lib64", "usr/lib64", "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"):
        path = root / sub / "ld-linux-x86-64.so.2"
        if path.exists():
            return path
    raise BuildError(f"The extracted toolchain in {root} has no ld-linux-x86-64.so.2 (libc6 is not pinned?)")


def patch_executables(tree: Path, libc_tree: Path, libc_final: Path | None = None) -> int:
    """Give every dynamically linked executable under ``tree`` the C library of ``libc_tree``.

    :param libc_final: where ``libc_tree`` will be once renamed into place (default: where it is).
    """
    final = libc_final or libc_tree
    loader = final / _loader(libc_tree).relative_to(libc_tree)
    rpath = ":".join(str(final / d) for d in _LIB_DIRS)
    count = 0
    for path in sorted(tree.rglob("*")):
        if path.is_symlink() or not path.is_file() or not os.access(path, os.X_OK):
            continue
        if path.suffix == ".so" or ".so." in path.name or not _wants_interpreter(path):
            continue
        run(["patchelf", "--set-interpreter", loader, "--force-rpath", "--set-rpath", rpath, path],
            what=f"point {path.name} at its suite's C library (patchelf)")  # fmt: skip
        count += 1
    return count


@dataclass(frozen=True)
class Toolchain:
    """How to compile for a kernel: ``PATH`` prefix, ``make`` variables, the gcc to call."""

    path_prefix: tuple[Path, ...]
    make_vars: tuple[str, ...]
    #: The compiler of the static guest programs: the host's gcc (with the host's binutils) for
    #: every x86-64 kernel, as a static program runs on any of them; the cross gcc for arm64.
    cc: str
    cross_programs: bool = False

    def env(self) -> dict[str, str]:
        """The environment of the module's build: the suite's tools first on ``PATH``."""
        prefix = [str(p) for p in self.path_prefix]
        return dict(os.environ, PATH=":".join([*prefix, os.environ.get("PATH", "/usr/bin:/bin")]))

    def program_env(self) -> dict[str, str]:
        """The environment of the guest programs' build."""
        return self.env() if self.cross_programs else dict(os.environ)


def _compiler_root(kernel: KernelTree) -> Path:
    return kernel.tools_dir / "compiler"


def guest_root(kernel: KernelTree) -> Path:
    """The extracted guest userland of a kernel of another architecture (arm64)."""
    return kernel.tools_dir / "guest"


def ensure_tools(kernel: KernelTree, debs: dict[str, Path]) -> None:
    """Extract the pinned tools of ``kernel`` and make them runnable here (idempotent)."""
    pin = kernel.pin
    compiler = [debs[p.file] for p in pin.tools if p.role == "compiler"]
    guest = [debs[p.file] for p in pin.tools if p.role == "guest"]
    root = _compiler_root(kernel)
    if compiler:

        def patch(tmp: Path) -> None:
            relink_symlinks(tmp)
            n = patch_executables(tmp, tmp, root)
            progress(f"{pin.id}: {n} compiler executables use the {pin.suite} C library")

        extract_debs(compiler, root, patch)
        stamp = kernel.root / "headers" / ".kbuild-patched"
        if not stamp.exists():
            n = patch_executables(kernel.root / "headers" / "usr" / "lib", root)
            progress(f"{pin.id}: {n} kbuild tools use the {pin.suite} C library")
            stamp.touch()
    if guest:
        extract_debs(guest, guest_root(kernel), relink_symlinks)


def _gcc_version(kernel: KernelTree) -> str:
    """The ``N`` of the gcc-N the kernel was built with (its headers' ``CONFIG_CC_VERSION_TEXT``)."""
    config = kernel.headers_dir / ".config"
    text = config.read_text(errors="replace") if config.exists() else ""
    m = re.search(r'^CONFIG_CC_VERSION_TEXT=".*?gcc-(\d+)', text, re.M) or re.search(
        r"^CONFIG_GCC_VERSION=(\d+?)\d{4}$", text, re.M
    )
    if not m:
        raise BuildError(
            f"Cannot tell which gcc built {kernel.release} (no CONFIG_CC_VERSION_TEXT in {config})"
        )
    return m.group(1)


def toolchain(kernel: KernelTree) -> Toolchain:
    """The compiler for ``kernel``'s module and guest programs."""
    if not kernel.pin.tools or not any(p.role == "compiler" for p in kernel.pin.tools):
        return Toolchain(path_prefix=(), make_vars=(), cc="gcc")
    root = _compiler_root(kernel)
    gcc = _gcc_version(kernel)
    bins = (root / "usr" / "bin",)
    # Kernels since 6.x generate BTF for modules with pahole, which neither the host nor the pin has;
    # drgn reads the module's DWARF, so the module goes without BTF (as with the host's 6.1 build).
    no_btf = "CONFIG_DEBUG_INFO_BTF_MODULES="
    if kernel.pin.arch == "arm64":
        cross = "aarch64-linux-gnu-"
        make_vars = ("ARCH=arm64", f"CROSS_COMPILE={cross}", f"CC={cross}gcc-{gcc}", no_btf)
        return Toolchain(bins, make_vars, f"{cross}gcc-{gcc}", cross_programs=True)
    return Toolchain(bins, (f"CC=x86_64-linux-gnu-gcc-{gcc}", no_btf), "/usr/bin/gcc")
