"""Download and extract a pinned Debian kernel and its debug info (never installed).

Which kernel: ``samples/kernels.json`` (``pins.py``) names the exact package files; they are
fetched by pool path and checked against their pinned SHA-256 (``apt.py``), so two machines, or
two runs, always build on the same kernel.

Layout under ``$CACHE/kernel/<release>/<pin hash>/``:
``debs/`` the .deb files; ``image/`` the image (and sid's split modules) package, with
modules.dep; ``dbg/usr/lib/debug`` the vmlinux and the debug files of the modules a guest loads
(a whole -dbg package is 1.5–5 GB extracted); ``headers/`` linux-headers + -common +
linux-kbuild with their absolute paths rewritten into the tree; ``tools/`` the suite's compiler
and arm64's guest userland (``toolchain.py``); ``kernel.json`` written last.
Every extraction goes to a temporary directory that is renamed when complete.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .apt import PinnedFileGone, download_pinned
from .common import BuildError, cache_root, progress, run
from .debs import extract_debs, relink_symlinks
from .hostdeps import check_disk_space
from .matrix import DEFAULT_KERNEL, KERNEL_LINES
from .pins import REPIN_COMMAND, KernelPin, PinnedPackage, load_pins, pin_hash

__all__ = ["DEBUG_MODULES", "KernelTree", "ensure_kernel", "kernel_pin", "kernel_root"]

#: Modules whose debug files are extracted from the -dbg package besides vmlinux: those a
#: guest loads (the capture kernel's virtio block stack, a host-dumped guest's qemu_fw_cfg).
DEBUG_MODULES = ("virtio", "virtio_ring", "virtio_pci", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                 "virtio_blk", "virtio_mmio", "qemu_fw_cfg")  # fmt: skip


def kernel_pin(kernel_id: str | None = None) -> KernelPin:
    """Return the pin of ``kernel_id`` (default: the default kernel, today's 6.1)."""
    default, pins = load_pins()
    kid = kernel_id or default
    if kid not in KERNEL_LINES:
        raise BuildError(f"Unknown kernel '{kid}' (known: {', '.join(KERNEL_LINES)})")
    if kid not in pins:
        raise BuildError(
            f"Kernel {kid} is not pinned yet (run '{REPIN_COMMAND} {kid}' and commit kernels.json)"
        )
    return pins[kid]


def kernel_root(pin: KernelPin) -> Path:
    return cache_root() / "kernel" / pin.release / pin_hash(pin)


@dataclass(frozen=True)
class KernelTree:
    """The extracted kernel: everything the guest boots and the debugger reads."""

    pin: KernelPin
    root: Path

    @property
    def release(self) -> str:
        return self.pin.release

    @property
    def is_default(self) -> bool:
        return self.pin.id == DEFAULT_KERNEL

    @property
    def modules_dir(self) -> Path:
        # Since trixie, Debian's packages ship /usr/lib/modules (merged /usr).
        for base in ("lib", "usr/lib"):
            path = self.root / "image" / base / "modules" / self.release
            if (path / "modules.dep").exists() or (path / "kernel").is_dir():
                return path
        return self.root / "image" / "lib" / "modules" / self.release

    @property
    def vmlinuz(self) -> Path:
        """The bootable image (arm64: the uncompressed ``Image`` QEMU's ``-kernel`` takes)."""
        if self.pin.arch == "arm64":
            return self.root / "image" / "Image"
        return self._packaged_vmlinuz()

    def _packaged_vmlinuz(self) -> Path:
        # 7.x's linux-binary-unsigned package keeps it beside the modules, as vmlinuz.unsigned.
        for path in (
            self.root / "image" / "boot" / f"vmlinuz-{self.release}",
            self.modules_dir / "vmlinuz",
            self.modules_dir / "vmlinuz.unsigned",
        ):
            if path.exists():
                return path
        return self.root / "image" / "boot" / f"vmlinuz-{self.release}"

    @property
    def debug_info_dir(self) -> Path:
        return self.root / "dbg" / "usr" / "lib" / "debug"

    @property
    def vmlinux(self) -> Path:
        return self.debug_info_dir / "boot" / f"vmlinux-{self.release}"

    @property
    def headers_dir(self) -> Path:
        return self.root / "headers" / "usr" / "src" / f"linux-headers-{self.release}"

    @property
    def tools_dir(self) -> Path:
        return self.root / "tools"


def _download(pin: KernelPin, debs: Path, packages: tuple[PinnedPackage, ...]) -> dict[str, Path]:
    """Fetch every pinned file not yet in ``debs``; return .deb file name -> path (by file, not by
    package: arm64's libc6 and amd64's are two)."""
    got: dict[str, Path] = {}
    missing = [p for p in packages if not (debs / p.file).exists()]
    if missing:
        size = sum(p.size for p in missing) / 2**20
        check_disk_space(
            debs, int(sum(p.size for p in missing) * 4), f"the {pin.id} packages ({size:,.0f} MB)"
        )
        progress(f"{pin.id}: downloading {len(missing)} pinned packages ({size:,.0f} MB)")
    for p in packages:
        dest = debs / p.file
        if not dest.exists():
            what = f"{p.name} {p.version} ({p.arch}) of {pin.id}"
            try:
                download_pinned(p.archive, p.filename, p.sha256, dest, what)
            except PinnedFileGone as e:
                raise BuildError(
                    f"{e}: kernel {pin.id} is pinned to {pin.release} {pin.version}, which Debian "
                    f"has replaced. Re-pin it with '{REPIN_COMMAND} {pin.id}' and commit samples/kernels.json"
                ) from None
        got[p.file] = dest
    return got


def _relink_into(tmp: Path, final: Path) -> None:
    """Point the headers' absolute paths at the extracted tree (which will live at ``final``).

    Debian's headers refer to ``/usr/src/...`` and ``/usr/lib/linux-kbuild-*``:
    absolute symlinks become relative ones inside the tree, and the flavour
    Makefile's ``include /usr/src/...`` (and since 6.12 ``KBUILD_OUTPUT=/usr/src/...``)
    names the final location.
    """
    relink_symlinks(tmp)
    for makefile in tmp.glob("usr/src/linux-headers-*/Makefile"):
        text = makefile.read_text()
        # 6.1: "include /usr/src/…-common/Makefile"; 6.12+: also "KBUILD_OUTPUT=/usr/src/…".
        makefile.write_text(re.sub(r"(?<=[\s=])/usr/src/", f"{final}/usr/src/", text))


def _image_fixup(pin: KernelPin) -> Callable[[Path], None]:
    """depmod on the extracted modules; for arm64, the uncompressed Image QEMU boots."""

    def fix(tmp: Path) -> None:
        # depmod -b BASE reads BASE/lib/modules/<release>: BASE is the tree or its usr/.
        base = tmp if (tmp / "lib" / "modules" / pin.release).is_dir() else tmp / "usr"
        run(["depmod", "-b", base, pin.release], what="compute modules.dep (depmod)")
        if pin.arch == "arm64":
            _write_arm64_image(tmp, pin.release)

    return fix


def _write_arm64_image(tmp: Path, release: str) -> None:
    """Debian's arm64 ``vmlinuz`` is a gzip-compressed ``Image``; QEMU's ``-kernel`` wants it raw."""
    candidates = (
        tmp / "boot" / f"vmlinuz-{release}",
        tmp / "usr/lib/modules" / release / "vmlinuz",
        tmp / "usr/lib/modules" / release / "vmlinuz.unsigned",
    )
    vmlinuz = next((p for p in candidates if p.exists()), None)
    if vmlinuz is None:
        raise BuildError(f"The arm64 image package of {release} has no vmlinuz")
    data = vmlinuz.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[0x38:0x3C] != b"ARM\x64":
        raise BuildError(f"{vmlinuz.name} is not an arm64 Image (no ARM\\x64 magic): an EFI zboot image?")
    (tmp / "Image").write_bytes(data)


def ensure_kernel(pin: KernelPin) -> KernelTree:
    """Download and extract ``pin``'s kernel into the cache unless already there."""
    from .toolchain import ensure_tools  # toolchain imports KernelTree

    root = kernel_root(pin)
    tree = KernelTree(pin, root)
    if (root / "kernel.json").exists():
        return tree
    debs = _download(pin, root / "debs", pin.dump_packages)
    by_role = {role: [debs[p.file] for p in pin.package(role)] for role in ("image", "modules", "dbg")}
    headers = [debs[p.file] for p in pin.packages if p.role in ("headers", "headers-common", "kbuild")]
    check_disk_space(root, 3 * 2**30, f"the extracted kernel {pin.release}")
    extract_debs(by_role["image"] + by_role["modules"], root / "image", _image_fixup(pin))
    extract_debs(by_role["dbg"], root / "dbg", relink_symlinks,
             members=("*/vmlinux*", *(f"*/{m}.ko*" for m in DEBUG_MODULES)))  # fmt: skip
    extract_debs(headers, root / "headers", lambda tmp: _relink_into(tmp, root / "headers"))
    ensure_tools(tree, _download(pin, root / "debs", pin.tools))
    for path, what in ((tree.vmlinuz, "vmlinuz"), (tree.vmlinux, "vmlinux"), (tree.headers_dir, "headers")):
        if not path.exists():
            raise BuildError(f"The kernel packages of {pin.release} have no {what} at {path}")
    meta = {"id": pin.id, "release": pin.release, "version": pin.version, "pin_hash": pin_hash(pin),
            "packages": [p.file for p in (*pin.dump_packages, *pin.tools)]}  # fmt: skip
    (root / "kernel.json").write_text(json.dumps(meta, indent=2) + "\n")
    return tree
