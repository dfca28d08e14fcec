"""Fetch and unpack Debian's ``linux-source-X.Y`` tree that matches a sample's kernel, into the cache.

Why: the debug info of a Debian kernel names its sources relative to the build directory
(``kernel/kthread.c``), and the Debian package that holds exactly that tree is ``linux-source-6.1``
(a ~140 MB ``.tar.xz`` of the patched source; ``linux-source-7.2`` for sid's 7.2 and so on). The
kernels of the sample matrix pin it (``samples/kernels.json``, role ``source``): it is fetched by
its pool path and checked against the pinned SHA-256, whatever the host's apt lists hold; another
version is fetched with ``apt-get download`` from the host's lists. With it unpacked, a launch configuration's
``sourceRoot`` makes every kernel frame open in the editor at the right line.

Layout (idempotent, keyed by the Debian package version, which names the tree exactly)::

    $VMCORE_DAP_CACHE/kernel-source/<version>/linux-source-X.Y/   the unpacked tree
    $VMCORE_DAP_CACHE/kernel-source/<version>/.complete            written last

The version comes from the kernel itself: ``linux_banner`` in the vmlinux ends in
``Debian 6.1.192-2 (2025-…)``, the version of the ``linux`` source package the image was built from.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))  # vmcore_builder (the pins), as samples/ is for sample_store

__all__ = [
    "KernelSourceError",
    "PACKAGE",
    "debian_version_of_vmlinux",
    "ensure_kernel_source",
    "kernel_source_dir",
    "source_package",
]

#: The Debian package holding the default kernel's tree (its tarball unpacks to a directory of the
#: same name); :func:`source_package` names it for any version.
PACKAGE = "linux-source-6.1"


def source_package(version: str) -> str:
    """``linux-source-X.Y`` for Debian version ``X.Y.Z-N`` (``6.1.192-3`` -> ``linux-source-6.1``)."""
    m = re.match(r"(\d+\.\d+)", version)
    if not m:
        raise KernelSourceError(f"'{version}' is not a Debian kernel version (like 6.1.192-3)")
    return f"linux-source-{m.group(1)}"

_BANNER = re.compile(rb"Linux version (\S+) \([^\n]*?Debian (\d[\w.+~-]*) \(")


class KernelSourceError(Exception):
    """The tree cannot be fetched; the message says why and what to do."""


def _cache_root() -> Path:
    env = os.environ.get("VMCORE_DAP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "vmcore-dap"


def kernel_source_dir(version: str) -> Path | None:
    """Return the unpacked tree for Debian package ``version`` if it is complete, else ``None``."""
    base = _cache_root() / "kernel-source" / version
    tree = base / source_package(version)
    return tree if (base / ".complete").exists() and tree.is_dir() else None


def debian_version_of_vmlinux(vmlinux: Path) -> str:
    """Read the Debian package version out of the kernel's ``linux_banner``.

    :raises KernelSourceError: for a vmlinux that is not a Debian build.
    """
    match = None
    try:
        with vmlinux.open("rb") as f:
            tail = b""
            while match is None:
                chunk = f.read(16 << 20)
                if not chunk:
                    break
                window = tail + chunk
                match = _BANNER.search(window)
                tail = window[-512:]  # a banner cut by the chunk boundary is found in the next window
    except OSError as e:
        raise KernelSourceError(f"Cannot read {vmlinux}: {e.strerror} (check the path)") from e
    if match is None:
        raise KernelSourceError(
            f"Cannot tell which Debian kernel {vmlinux} is: its linux_banner has no 'Debian <version>' "
            "(pass the linux-source-6.1 package version explicitly)"
        )
    return match.group(2).decode()


def _run(argv: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise KernelSourceError(f"Cannot {what}: '{argv[0]}' is not installed") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise KernelSourceError(
            f"Cannot {what}: '{' '.join(argv[:3])}' exited with {proc.returncode}\n{tail}"
        )


def _say(message: str) -> None:
    print(f"[fetch-kernel-source] {message}", file=sys.stderr, flush=True)


def _download(version: str, package: str, dest: Path) -> None:
    """Fetch the pinned file when a kernel of the matrix pins this version, else ask apt."""
    from vmcore_builder.apt import download_pinned
    from vmcore_builder.common import BuildError
    from vmcore_builder.pins import REPIN_COMMAND, load_pins

    pinned = [
        p for pin in load_pins()[1].values() for p in pin.packages
        if p.role == "source" and p.version == version and p.name == package
    ]  # fmt: skip
    if not pinned:
        _run(["apt-get", "download", f"{package}={version}"], dest, f"download {package} {version}")
        return
    p = pinned[0]
    try:
        download_pinned(p.archive, p.filename, p.sha256, dest / p.file, f"{package} {version}")
    except BuildError as e:
        raise KernelSourceError(f"{e} (re-pin with '{REPIN_COMMAND}')") from None


def ensure_kernel_source(version: str) -> Path:
    """Return the unpacked ``linux-source-X.Y`` tree of Debian ``version``, fetching it if needed.

    Downloads the pinned file (else ``apt-get download``: the signed Debian index verifies it),
    extracts the ``.deb`` with ``dpkg-deb`` and the inner tarball with ``tar``, in a temporary
    directory next to the final one, then renames it into place: an interrupted run never looks
    complete.
    """
    done = kernel_source_dir(version)
    if done is not None:
        return done
    base = _cache_root() / "kernel-source" / version
    base.parent.mkdir(parents=True, exist_ok=True)
    package = source_package(version)
    import fcntl

    with open(base.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = kernel_source_dir(version)
        if done is not None:
            return done
        with tempfile.TemporaryDirectory(prefix=f".tmp-{version}-", dir=base.parent) as tmp_name:
            tmp = Path(tmp_name)
            _say(f"downloading {package}={version} (~140 MB)")
            _download(version, package, tmp)
            debs = list(tmp.glob(f"{package}_*.deb"))
            if len(debs) != 1:
                raise KernelSourceError(f"Cannot download {package} {version}: no .deb was left")
            _run(["dpkg-deb", "-x", str(debs[0]), "deb"], tmp, f"extract {debs[0].name}")
            tarballs = list((tmp / "deb" / "usr" / "src").glob(f"{package}.tar.*"))
            if len(tarballs) != 1:
                raise KernelSourceError(f"Cannot unpack {debs[0].name}: no usr/src/{package}.tar.* inside")
            _say(f"unpacking {tarballs[0].name}")
            (tmp / "out").mkdir()
            _run(["tar", "-xf", str(tarballs[0]), "-C", "out"], tmp, f"unpack {tarballs[0].name}")
            if not (tmp / "out" / package / "Makefile").exists():
                raise KernelSourceError(f"Cannot unpack {tarballs[0].name}: no {package}/Makefile inside")
            if base.exists():
                shutil.rmtree(base)
            (tmp / "out").rename(base)
            (base / ".complete").write_text(f"{package} {version}\n")
    _say(f"ready: {base / package}")
    return base / package
