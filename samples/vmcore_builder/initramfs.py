"""Assemble the guest's two initramfs images.

``capture.img`` boots the kdump capture kernel: busybox, makedumpfile and its
libraries, the virtio block modules, /init. ``main.img`` boots the crashing
kernel: all of that plus kexec, the kernel and ``capture.img`` to arm kdump
with, the labbug module and the scenario's programs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .common import BuildError, run
from .cpio import Archive

__all__ = ["BLOCK_MODULES", "HOST_DUMP_MODULES", "build_images", "library_closure", "module_load_order"]

#: Modules the capture kernel loads to reach the dump disk (the rest is built in).
BLOCK_MODULES = ("virtio_pci", "virtio_blk")

#: Modules a guest dumped by QEMU loads: qemu_fw_cfg hands the kernel's VMCOREINFO to
#: ``-device vmcoreinfo``, without which drgn cannot read a dump-guest-memory file.
HOST_DUMP_MODULES = ("qemu_fw_cfg",)

_LDD_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")


def module_load_order(modules_dep: str, wanted: tuple[str, ...]) -> list[str]:
    """Return the paths (as in modules.dep) to insmod, dependencies first, each once.

    :param modules_dep: the text of ``modules.dep``.
    :param wanted: module names, e.g. ``virtio_blk``.
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


def _host_tool(name: str) -> Path:
    found = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise BuildError(f"'{name}' is not installed on the host")
    return Path(found)


def _add_binary(archive: Archive, dest: str, binary: Path) -> None:
    archive.add_host_file(dest, binary, 0o755)
    for lib in library_closure(binary):
        if str(lib) not in archive:
            archive.add_host_file(str(lib), lib.resolve(), 0o755)


def _base(modules_dir: Path, init_script: Path, busybox: Path) -> Archive:
    archive = Archive()
    for d in ("dev", "proc", "sys", "tmp", "out", "etc/lab", "boot", "sbin"):
        archive.add_dir(d)
    archive.add_char_device("dev/console", 5, 1)
    archive.add_char_device("dev/null", 1, 3, 0o666)
    archive.add_host_file("init", init_script, 0o755)
    archive.add_host_file("bin/busybox", busybox, 0o755)
    applets = run([busybox, "--list"], what="list busybox applets").split()
    for applet in applets:
        if applet != "busybox":
            archive.add_symlink(f"bin/{applet}", "busybox")
    dep = (modules_dir / "modules.dep").read_text()
    order = module_load_order(dep, BLOCK_MODULES)
    for rel in order:
        archive.add_host_file(f"lib/modules/boot/{Path(rel).name}", modules_dir / rel)
    load_order = "".join(f"{Path(rel).name}\n" for rel in order)
    archive.add_file("lib/modules/boot/load-order", load_order.encode())
    _add_binary(archive, "sbin/makedumpfile", _host_tool("makedumpfile"))
    return archive


def _check_static(busybox: Path) -> None:
    """The guest has no libc of its own for busybox: insist on busybox-static."""
    if not busybox.exists():
        raise BuildError(f"{busybox} not found (install busybox-static)")
    proc = subprocess.run(["ldd", busybox], capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    if "not a dynamic executable" not in out and "statically linked" not in out:
        raise BuildError(f"{busybox} is not statically linked (install busybox-static)")


def build_images(
    *,
    out_dir: Path,
    scenario: str,
    init_script: Path,
    vmlinuz: Path,
    modules_dir: Path,
    capture_cmdline: str,
    labbug_ko: Path,
    programs: dict[str, Path],
) -> tuple[Path, Path]:
    """Write ``capture.img`` and ``main.img`` into ``out_dir``; return their paths."""
    busybox = Path("/bin/busybox")
    _check_static(busybox)
    capture = _base(modules_dir, init_script, busybox)
    capture.add_file("etc/lab/scenario", f"{scenario}\n".encode())
    capture_img = out_dir / "capture.img"
    capture.write(capture_img)

    main = _base(modules_dir, init_script, busybox)
    main.add_file("etc/lab/scenario", f"{scenario}\n".encode())
    _add_binary(main, "sbin/kexec", _host_tool("kexec"))
    main.add_host_file("boot/vmlinuz", vmlinuz, 0o644)
    main.add_host_file("boot/capture.img", capture_img, 0o644)
    main.add_file("boot/capture.cmdline", f"{capture_cmdline}\n".encode())
    main.add_host_file("lib/modules/labbug.ko", labbug_ko, 0o644)
    for name, binary in programs.items():
        main.add_host_file(f"bin/{name}", binary, 0o755)
    # Shipped to every main image, loaded only by scenarios that are dumped from the host.
    order = module_load_order((modules_dir / "modules.dep").read_text(), HOST_DUMP_MODULES)
    for rel in order:
        main.add_host_file(f"lib/modules/host-dump/{Path(rel).name}", modules_dir / rel)
    main.add_file("lib/modules/host-dump/load-order", "".join(f"{Path(r).name}\n" for r in order).encode())
    main_img = out_dir / "main.img"
    main.write(main_img)
    return capture_img, main_img
