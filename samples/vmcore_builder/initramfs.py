"""Assemble the guest's two initramfs images.

``capture.img`` boots the kdump capture kernel: busybox, makedumpfile and its
libraries, the virtio block modules, /init. ``main.img`` boots the crashing
kernel: all of that plus kexec, the kernel and ``capture.img`` to arm kdump
with, the labbug module, the scenario's own modules and its programs.
"""

from __future__ import annotations

import lzma
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .common import BuildError, run
from .cpio import Archive

__all__ = [
    "BLOCK_MODULES",
    "HOST_DUMP_MODULES",
    "GuestUserland",
    "build_images",
    "builtin_modules",
    "library_closure",
    "module_load_order",
]

#: Modules the capture kernel loads to reach the dump disk (the rest is built in).
BLOCK_MODULES = ("virtio_pci", "virtio_blk")

#: Modules a guest dumped by QEMU loads: qemu_fw_cfg hands the kernel's VMCOREINFO to
#: ``-device vmcoreinfo``, without which drgn cannot read a dump-guest-memory file.
HOST_DUMP_MODULES = ("qemu_fw_cfg",)

_LDD_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")


#: The config option of each module the guests load: sid's 7.x packages ship no modules.builtin,
#: so the kernel's .config says which of them are built in (``=y``).
MODULE_CONFIG = {"virtio_pci": "VIRTIO_PCI", "virtio_blk": "VIRTIO_BLK", "qemu_fw_cfg": "FW_CFG_SYSFS"}


def builtin_modules(modules_builtin: str) -> set[str]:
    """Names of the modules built into the kernel (``modules.builtin``: one path a line)."""
    return {Path(p).name.split(".ko")[0].replace("-", "_") for p in modules_builtin.split()}


def builtin_from_config(config: str) -> set[str]:
    """The modules of :data:`MODULE_CONFIG` that the kernel's ``.config`` builds in."""
    return {mod for mod, option in MODULE_CONFIG.items() if f"\nCONFIG_{option}=y\n" in f"\n{config}\n"}


def module_load_order(
    modules_dep: str, wanted: tuple[str, ...], builtin: set[str] = frozenset()
) -> list[str]:  # type: ignore[assignment]
    """Return the paths (as in modules.dep) to insmod, dependencies first, each once.

    :param modules_dep: the text of ``modules.dep``.
    :param wanted: module names, e.g. ``virtio_blk``.
    :param builtin: modules built into this kernel (arm64's cloud kernel has virtio_pci and
        virtio_blk built in): nothing to load for them.
    """
    deps: dict[str, list[str]] = {}
    for line in modules_dep.splitlines():
        if ":" in line:
            mod, rest = line.split(":", 1)
            deps[mod.strip()] = rest.split()
    by_name = {Path(p).name.split(".ko")[0].replace("-", "_"): p for p in deps}
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, []):
            visit(dep)
        order.append(path)

    for name in wanted:
        key = name.replace("-", "_")
        if key in builtin and key not in by_name:
            continue
        if key not in by_name:
            raise BuildError(f"Module {name} is not in modules.dep (is it built in?)")
        visit(by_name[key])
    return order


def library_closure(binary: Path) -> list[Path]:
    """List the shared libraries (and the loader) ``binary`` needs, per ldd."""
    out = run(["ldd", binary], what=f"list the libraries of {binary}")
    libs = []
    for line in out.splitlines():
        m = _LDD_LINE.match(line)
        if m:
            libs.append(Path(m.group(1)))
    return libs


def _needed(binary: Path) -> tuple[str, list[str]]:
    """The ELF interpreter and the NEEDED sonames of ``binary`` (``readelf``: any architecture)."""
    out = run(["readelf", "-d", "-l", binary], what=f"read the dynamic section of {binary}")
    interp = re.search(r"Requesting program interpreter: (\S+)\]", out)
    return (interp.group(1) if interp else ""), re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", out)


def foreign_library_closure(binary: Path, root: Path, lib_dirs: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(path in the guest, file in ``root``) of the loader and every library ``binary`` needs,
    resolved by soname in ``root``'s ``lib_dirs`` (another architecture's packages: no ldd)."""
    found: dict[str, Path] = {}
    interp, todo = _needed(binary)
    if interp:
        found[interp] = _in_root(root, interp)
    while todo:
        soname = todo.pop()
        if any(Path(g).name == soname for g in found):
            continue
        for d in lib_dirs:
            candidate = root / d / soname
            if candidate.exists():
                found[f"/{d}/{soname}"] = candidate
                todo += _needed(candidate)[1]
                break
        else:
            raise BuildError(f"{binary.name} needs {soname}, which no pinned package in {root} provides")
    return [(guest, path) for guest, path in found.items()]


def _in_root(root: Path, guest_path: str) -> Path:
    path = root / guest_path.lstrip("/")
    for alt in (path, root / "usr" / guest_path.lstrip("/")):
        if alt.exists():
            return alt
    raise BuildError(f"The guest's loader {guest_path} is not in {root}")


@dataclass(frozen=True)
class GuestUserland:
    """The guest's busybox, kexec and makedumpfile: the host's, or another architecture's.

    :param root: an extracted tree of the guest architecture's packages; ``None`` for the host's.
    :param lib_dirs: where that tree's libraries are (relative to it, as in the guest).
    """

    root: Path | None = None
    lib_dirs: tuple[str, ...] = ()

    def tool(self, name: str) -> Path:
        if self.root is None:
            return Path("/bin/busybox") if name == "busybox" else _host_tool(name)
        for sub in ("bin", "sbin", "usr/bin", "usr/sbin"):
            path = self.root / sub / name
            if path.exists():
                return path
        raise BuildError(f"No {name} in the guest's packages at {self.root}")

    def libraries(self, binary: Path) -> list[tuple[str, Path]]:
        if self.root is None:
            return [(str(lib), lib.resolve()) for lib in library_closure(binary)]
        return foreign_library_closure(binary, self.root, self.lib_dirs)


def _host_tool(name: str) -> Path:
    found = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise BuildError(f"'{name}' is not installed on the host")
    return Path(found)


def _add_binary(archive: Archive, dest: str, binary: Path, userland: GuestUserland) -> None:
    archive.add_host_file(dest, binary, 0o755)
    for guest_path, lib in userland.libraries(binary):
        if guest_path not in archive:
            archive.add_host_file(guest_path, lib.resolve(), 0o755)


def _add_module(archive: Archive, dest: str, path: Path) -> None:
    """Add a module uncompressed (Debian's 6.12 and 7.x ship ``.ko.xz``; busybox's insmod hands
    the bytes to init_module as they are)."""
    if path.name.endswith(".ko.xz"):
        archive.add_file(dest, lzma.decompress(path.read_bytes()), 0o644)
    elif path.name.endswith(".ko"):
        archive.add_host_file(dest, path, 0o644)
    else:
        raise BuildError(f"{path.name}: a compressed module this builder cannot unpack (only .ko.xz)")


def _ko_name(rel: str) -> str:
    return Path(rel).name.split(".ko")[0] + ".ko"


def _load_order(modules_dir: Path, kernel_config: Path, wanted: tuple[str, ...]) -> list[str]:
    builtin_file = modules_dir / "modules.builtin"
    builtin = builtin_modules(builtin_file.read_text()) if builtin_file.exists() else set()
    builtin |= builtin_from_config(kernel_config.read_text())
    return module_load_order((modules_dir / "modules.dep").read_text(), wanted, builtin)


def _add_modules(
    archive: Archive, modules_dir: Path, kernel_config: Path, sub: str, wanted: tuple[str, ...]
) -> None:
    order = _load_order(modules_dir, kernel_config, wanted)
    for rel in order:
        _add_module(archive, f"lib/modules/{sub}/{_ko_name(rel)}", modules_dir / rel)
    archive.add_file(f"lib/modules/{sub}/load-order", "".join(f"{_ko_name(r)}\n" for r in order).encode())


def _base(
    modules_dir: Path, kernel_config: Path, init_script: Path, userland: GuestUserland, dump_settings: str
) -> Archive:
    archive = Archive()
    for d in ("dev", "proc", "sys", "tmp", "out", "etc/lab", "boot", "sbin"):
        archive.add_dir(d)
    archive.add_char_device("dev/console", 5, 1)
    archive.add_char_device("dev/null", 1, 3, 0o666)
    archive.add_host_file("init", init_script, 0o755)
    archive.add_file("etc/lab/dump", dump_settings.encode())
    busybox = userland.tool("busybox")
    _check_static(busybox)
    archive.add_host_file("bin/busybox", busybox, 0o755)
    # Another architecture's busybox cannot list its applets here: /init installs them itself
    # (busybox --install -s), so only the shell is linked in advance.
    applets = (
        run([busybox, "--list"], what="list busybox applets").split() if userland.root is None else ["sh"]
    )
    for applet in applets:
        if applet != "busybox":
            archive.add_symlink(f"bin/{applet}", "busybox")
    _add_modules(archive, modules_dir, kernel_config, "boot", BLOCK_MODULES)
    _add_binary(archive, "sbin/makedumpfile", userland.tool("makedumpfile"), userland)
    return archive


def _check_static(busybox: Path) -> None:
    """The guest has no libc of its own for busybox: insist on busybox-static."""
    if not busybox.exists():
        raise BuildError(f"{busybox} not found (install busybox-static)")
    out = run(["readelf", "-l", busybox], what=f"read the program headers of {busybox}")
    if "Requesting program interpreter" in out:
        raise BuildError(f"{busybox} is not statically linked (install busybox-static)")


def build_images(
    *,
    out_dir: Path,
    scenario: str,
    init_script: Path,
    vmlinuz: Path,
    modules_dir: Path,
    kernel_config: Path,
    capture_cmdline: str,
    labbug_ko: Path,
    programs: dict[str, Path],
    modules: tuple[Path, ...] = (),
    userland: GuestUserland,
    dump_settings: str,
) -> tuple[Path, Path]:
    """Write ``capture.img`` and ``main.img`` into ``out_dir``; return their paths.

    :param kernel_config: the kernel's ``.config`` (which guest modules are built in).
    :param dump_settings: ``/etc/lab/dump``, shell assignments the capture reads (``level=31`` …).
    :param modules: the scenario's own modules (``labuaf.ko``), beside labbug in ``/lib/modules``.
    """
    capture = _base(modules_dir, kernel_config, init_script, userland, dump_settings)
    capture.add_file("etc/lab/scenario", f"{scenario}\n".encode())
    capture_img = out_dir / "capture.img"
    capture.write(capture_img)

    main = _base(modules_dir, kernel_config, init_script, userland, dump_settings)
    main.add_file("etc/lab/scenario", f"{scenario}\n".encode())
    _add_binary(main, "sbin/kexec", userland.tool("kexec"), userland)
    main.add_host_file("boot/vmlinuz", vmlinuz, 0o644)
    main.add_host_file("boot/capture.img", capture_img, 0o644)
    main.add_file("boot/capture.cmdline", f"{capture_cmdline}\n".encode())
    main.add_host_file("lib/modules/labbug.ko", labbug_ko, 0o644)
    for ko in modules:
        main.add_host_file(f"lib/modules/{ko.name}", ko, 0o644)
    for name, binary in programs.items():
        main.add_host_file(f"bin/{name}", binary, 0o755)
    # Shipped to every main image, loaded only by scenarios that are dumped from the host.
    _add_modules(main, modules_dir, kernel_config, "host-dump", HOST_DUMP_MODULES)
    main_img = out_dir / "main.img"
    main.write(main_img)
    return capture_img, main_img
