"""Pick, download and extract Debian's cloud kernel and its debug info (never installed).

Layout under ``$CACHE/kernel/<package version>/``:
``debs/`` the .deb files; ``image/`` the image package (vmlinuz, modules, with
modules.dep); ``dbg/usr/lib/debug`` the -dbg package (vmlinux + module DWARF);
``headers/`` linux-headers + -common + linux-kbuild with their absolute paths
rewritten into the tree; ``kernel.json`` says which packages these are.
Every extraction goes to a temporary directory that is renamed when complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .common import BuildError, cache_root, progress, run
from .hostdeps import check_disk_space

__all__ = ["KernelChoice", "KernelTree", "ensure_kernel", "pick_kernel"]

_FLAVOUR = "cloud-amd64"
_DBG_NAME = re.compile(r"linux-image-(6\.1\.0-(\d+)-cloud-amd64)-dbg")
_APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")


@dataclass(frozen=True)
class KernelChoice:
    """The kernel a sample is built from: ``release`` (uname -r) and package ``version``."""

    release: str
    version: str


@dataclass(frozen=True)
class KernelTree:
    """The extracted kernel: everything the guest boots and the debugger reads."""

    choice: KernelChoice
    root: Path

    @property
    def vmlinuz(self) -> Path:
        return self.root / "image" / "boot" / f"vmlinuz-{self.choice.release}"

    @property
    def modules_dir(self) -> Path:
        return self.root / "image" / "lib" / "modules" / self.choice.release

    @property
    def system_map(self) -> Path:
        return self.root / "image" / "boot" / f"System.map-{self.choice.release}"

    @property
    def debug_info_dir(self) -> Path:
        return self.root / "dbg" / "usr" / "lib" / "debug"

    @property
    def vmlinux(self) -> Path:
        return self.debug_info_dir / "boot" / f"vmlinux-{self.choice.release}"

    @property
    def headers_dir(self) -> Path:
        return self.root / "headers" / "usr" / "src" / f"linux-headers-{self.choice.release}"


def _apt_field(package: str, field: str) -> str:
    out = run(
        ["apt-cache", "show", "--no-all-versions", package],
        what=f"look up {package} in apt",
        env=_APT_ENV,
    )
    m = re.search(rf"^{field}: (.*)$", out, re.MULTILINE)
    if not m:
        raise BuildError(f"Cannot read the {field} of {package} from 'apt-cache show'")
    return m.group(1).strip()


def pick_kernel() -> KernelChoice:
    """Choose the newest ``linux-image-6.1.0-N-cloud-amd64`` with a -dbg package apt knows.

    ``VMCORE_DAP_KERNEL_RELEASE`` (e.g. ``6.1.0-56-cloud-amd64``) pins one instead.
    Only the local apt lists are read: no network.
    """
    pinned = os.environ.get("VMCORE_DAP_KERNEL_RELEASE")
    if pinned:
        release = pinned
    else:
        names = run(
            ["apt-cache", "pkgnames", "linux-image-6.1.0-"], what="list kernels", env=_APT_ENV
        ).split()
        found = [(int(m.group(2)), m.group(1)) for n in names if (m := _DBG_NAME.fullmatch(n))]
        if not found:
            raise BuildError(
                f"No linux-image-6.1.0-*-{_FLAVOUR}-dbg package in the apt lists "
                "(run 'apt-get update'; the Debian 12 main and security archives are needed)"
            )
        release = max(found)[1]
    version = _apt_field(f"linux-image-{release}-dbg", "Version")
    return KernelChoice(release=release, version=version)


def _package_names(choice: KernelChoice) -> list[str]:
    """Name the five packages: image (unsigned if available), -dbg, headers, -common, kbuild."""
    rel = choice.release
    image = f"linux-image-{rel}-unsigned"
    try:
        _apt_field(image, "Version")
    except BuildError:
        image = f"linux-image-{rel}"
    depends = _apt_field(f"linux-headers-{rel}", "Depends")
    extra = [
        d.split()[0]
        for d in depends.split(",")
        if d.split()[0].startswith(("linux-headers-", "linux-kbuild-"))
    ]
    return [image, f"linux-image-{rel}-dbg", f"linux-headers-{rel}", *extra]


def _download(choice: KernelChoice, debs: Path) -> list[Path]:
    names = _package_names(choice)
    have = {p.name.split("_")[0]: p for p in debs.glob("*.deb")} if debs.is_dir() else {}
    wanted = [n for n in names if n not in have]
    if wanted:
        check_disk_space(debs, 2 * 2**30, "the kernel packages (≈320 MB, ≈1.5 GB extracted)")
        debs.mkdir(parents=True, exist_ok=True)
        progress(f"downloading {' '.join(wanted)} (≈320 MB)")
        with tempfile.TemporaryDirectory(dir=debs, prefix=".dl-") as tmp:
            run(
                [
                    "apt-get",
                    "download",
                    "-o",
                    "APT::Sandbox::User=root",
                    *[f"{n}={choice.version}" if n.startswith("linux-image") else n for n in wanted],
                ],
                what="download the kernel packages (is the Debian registry reachable?)",
                cwd=Path(tmp),
                env=_APT_ENV,
                timeout=1800,
            )
            for deb in Path(tmp).glob("*.deb"):
                deb.rename(debs / deb.name)
        have = {p.name.split("_")[0]: p for p in debs.glob("*.deb")}
    missing = [n for n in names if n not in have]
    if missing:
        raise BuildError(f"apt-get download did not produce {' '.join(missing)}")
    return [have[n] for n in names]


def _extract(debs: list[Path], dest: Path, fixup: Callable[[Path], None] | None = None) -> None:
    """Extract ``debs`` into ``dest`` atomically (temp dir + rename); skip if done."""
    if dest.is_dir():
        return
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in debs:
        progress(f"extracting {deb.name}")
        run(["dpkg-deb", "-x", deb, tmp], what=f"extract {deb.name}", timeout=1200)
    if fixup is not None:
        fixup(tmp)
    tmp.rename(dest)


def _relink_into(tmp: Path, final: Path) -> None:
    """Point the headers' absolute paths at the extracted tree (which will live at ``final``).

    Debian's headers refer to ``/usr/src/...`` and ``/usr/lib/linux-kbuild-*``:
    absolute symlinks become relative ones inside the tree, and the flavour
    Makefile's ``include /usr/src/...`` names the final location.
    """
    for link in [p for p in tmp.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if target.startswith("/"):
            link.unlink()
            link.symlink_to(os.path.relpath(tmp / target.lstrip("/"), link.parent))
    for makefile in tmp.glob("usr/src/linux-headers-*/Makefile"):
        text = makefile.read_text()
        makefile.write_text(re.sub(r"^include /usr/src/", f"include {final}/usr/src/", text, flags=re.M))


def _fix_headers(final: Path) -> Callable[[Path], None]:
    """Return the fix-up for a headers tree extracted to a temp dir, renamed to ``final``."""
    return lambda tmp: _relink_into(tmp, final)


def _depmod(choice: KernelChoice) -> Callable[[Path], None]:
    def fix(tmp: Path) -> None:
        run(["depmod", "-b", tmp, choice.release], what="compute modules.dep (depmod)")

    return fix


def ensure_kernel(choice: KernelChoice) -> KernelTree:
    """Download and extract ``choice`` into the cache unless already there."""
    root = cache_root() / "kernel" / choice.version
    tree = KernelTree(choice, root)
    if all(p.exists() for p in (tree.vmlinuz, tree.vmlinux, tree.headers_dir, root / "kernel.json")):
        return tree
    debs = _download(choice, root / "debs")
    image, dbg, *headers = debs
    check_disk_space(root, 2 * 2**30, "the extracted kernel debug info")
    _extract([image], root / "image", _depmod(choice))
    _extract([dbg], root / "dbg")
    _extract(headers, root / "headers", _fix_headers(root / "headers"))
    for path, what in ((tree.vmlinuz, "vmlinuz"), (tree.vmlinux, "vmlinux"), (tree.headers_dir, "headers")):
        if not path.exists():
            raise BuildError(f"The kernel packages of {choice.release} have no {what} at {path}")
    meta = {"release": choice.release, "version": choice.version, "packages": [d.name for d in debs]}
    (root / "kernel.json").write_text(json.dumps(meta, indent=2) + "\n")
    return tree
