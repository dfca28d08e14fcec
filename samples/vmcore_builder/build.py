"""Build one sample, in order: host packages, kernel, guest, QEMU run, facts, manifest.

A sample is built in ``$CACHE/samples/.<name>.tmp-<pid>/`` and renamed to its
final name only after ``manifest.json`` is written, so a directory with a
manifest is always complete. A failed build is kept as ``<name>.failed/`` with
the guest's serial console log. One build at a time (a lock in the cache).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import BuildError, cache_root, progress, run
from .dumpplan import DumpPlan, dump_plan
from .expected import (
    LineResolver,
    expected_huge,
    expected_irq_oops,
    expected_list_uaf,
    expected_many_tasks,
    expected_no_panic,
    expected_oops_null,
    expected_sysrq_c,
)
from .facts import Frame, dmesg_texts
from .guest import GUEST_DIR, SCENARIO_MODULES, build_module, build_programs
from .hashing import builder_hash
from .hostdeps import check_disk_space, ensure_host_packages
from .initramfs import GuestUserland, build_images
from .kernel import KernelTree, ensure_kernel, kernel_pin
from .manifest import MANIFEST_NAME, write_manifest
from .matrix import check_known
from .pins import KernelPin, pin_hash
from .qemu import (
    HOST_DUMPS,
    GuestConfig,
    capture_cmdline,
    console_kernel_lines,
    crash_cmdline,
    first_boot,
    guest_config,
    run_guest,
)
from .toolchain import guest_root

__all__ = ["build_sample", "sample_dir_for", "samples_root"]

#: What a module's directory keeps in a sample: its source, its Kbuild and the module with DWARF.
_MODULE_KEEP = ("{name}.c", "Kbuild", "{name}.ko")

#: Scenarios whose guest loads labbug.ko (its DWARF goes into the manifest's ``debug_info``).
_LOADS_LABBUG = ("oops-null", "many-tasks", "no-panic", "irq-oops", "huge")


def samples_root() -> Path:
    return cache_root() / "samples"


def _build_variant(variant: str | None) -> str | None:
    """The variant that has a build (and a directory) of its own: ``lossy-d31`` is a file of the
    kdump sample's own directory."""
    return variant if variant == "qemu-dump" else None


def sample_dir_for(
    scenario: str, kernel: str | KernelPin | None = None, variant: str | None = None
) -> Path:
    """Return where a sample lives: ``<scenario>[+<variant>]-<kernel release>-<hash>``.

    :param kernel: a kernel id of the matrix, or its pin; default: the default kernel (6.1).
    """
    pin = kernel if isinstance(kernel, KernelPin) else kernel_pin(kernel)
    check_known(scenario, pin.id, variant)
    own = _build_variant(variant)
    name = scenario + (f"+{own}" if own else "")
    return samples_root() / f"{name}-{pin.release}-{builder_hash(scenario, pin_hash(pin), own)}"


@contextmanager
def _build_lock() -> Iterator[None]:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".make-vmcore.lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("another make-vmcore is building; waiting for it")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _binutil(kernel: KernelTree, name: str) -> str:
    """The binutils program for ``kernel``'s architecture (the host's only know x86-64 well)."""
    if kernel.pin.arch == "arm64":
        return str(kernel.tools_dir / "compiler" / "usr" / "bin" / f"aarch64-linux-gnu-{name}")
    return name


def _addr2line(
    elf: Path, address: int, section: str | None = None, tool: str = "addr2line"
) -> tuple[str, int]:
    argv: list[str | Path] = [tool, "-e", elf]
    if section:
        argv += ["-j", section]
    out = run([*argv, hex(address)], what=f"map {hex(address)} to a line in {elf.name}").strip()
    location = out.splitlines()[0].split(" (discriminator")[0]
    file, _, line = location.rpartition(":")
    if not line.isdigit():
        raise BuildError(f"addr2line found no line for {hex(address)} in {elf}")
    return Path(file).name, int(line)


def _module_resolver(ko: Path, kernel: KernelTree) -> LineResolver:
    """Resolve an exact RIP ``func+off`` inside the relocatable module (section-relative)."""
    table = run([_binutil(kernel, "objdump"), "-t", ko], what=f"read the symbols of {ko.name}")
    symbols = {}
    for line in table.splitlines():
        m = re.match(r"^([0-9a-f]+) .{7} (\S+)\s+[0-9a-f]+ (\S+)$", line)
        if m:
            symbols[m.group(3)] = (m.group(2), int(m.group(1), 16))

    def resolve(frame: Frame) -> tuple[str, int]:
        if frame.function not in symbols:
            raise BuildError(f"{frame.function} is not a symbol of {ko}")
        section, value = symbols[frame.function]
        return _addr2line(ko, value + frame.offset, section, _binutil(kernel, "addr2line"))

    return resolve


def _vmlinux_resolver(kernel: KernelTree) -> LineResolver:
    """Resolve a call-trace return address ``func+off`` in vmlinux (the call is at off-1)."""

    def resolve(frame: Frame) -> tuple[str, int]:
        table = run([_binutil(kernel, "nm"), kernel.vmlinux], what="read the symbols of vmlinux")
        m = re.search(rf"^([0-9a-f]+) [tT] {re.escape(frame.function)}$", table, re.M)
        if not m:
            raise BuildError(f"{frame.function} is not a symbol of {kernel.vmlinux}")
        address = int(m.group(1), 16) + frame.offset - 1
        return _addr2line(kernel.vmlinux, address, tool=_binutil(kernel, "addr2line"))

    return resolve


def _prune_module_dir(module_dir: Path) -> None:
    keep = {pattern.format(name=module_dir.name) for pattern in _MODULE_KEEP}
    for path in module_dir.iterdir():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _derive_expected(
    scenario: str, dmesg: Path, ko: Path, kernel: KernelTree, modules: tuple[Path, ...]
) -> dict[str, Any]:
    texts = dmesg_texts(dmesg.read_text(errors="replace"))
    if scenario == "list-uaf":
        (labuaf,) = modules
        source = (GUEST_DIR / "labuaf" / "labuaf.c").read_text()
        return expected_list_uaf(texts, source, _module_resolver(labuaf, kernel))
    if scenario == "oops-null":
        source = (GUEST_DIR / "labbug" / "labbug.c").read_text()
        return expected_oops_null(texts, source, _module_resolver(ko, kernel))
    if scenario == "irq-oops":
        source = (GUEST_DIR / "labbug" / "labbug.c").read_text()
        return expected_irq_oops(texts, source, _module_resolver(ko, kernel))
    if scenario == "many-tasks":
        return expected_many_tasks(texts, _vmlinux_resolver(kernel))
    if scenario == "huge":
        return expected_huge(texts, _vmlinux_resolver(kernel))
    if scenario == "no-panic":
        return expected_no_panic(texts)
    return expected_sysrq_c(texts, _vmlinux_resolver(kernel))


def _debug_info(scenario: str, own: tuple[str, ...]) -> list[str]:
    """The manifest's ``debug_info``: the modules the guest loads, each with its DWARF."""
    loaded = ("labbug",) if scenario in _LOADS_LABBUG else ()
    return [f"{name}/{name}.ko" for name in (*loaded, *own)]


def _dump_commands(cfg: GuestConfig, plan: DumpPlan) -> list[str]:
    if cfg.host_dump:
        return [
            *(
                f"(QMP) dump-guest-memory paging=false format={fmt} protocol=file:{name}"
                for fmt, name in HOST_DUMPS.items()
            ),
            "dmesg.txt: the kernel's lines of the serial console",
        ]
    if plan.raw_elf:
        return [
            "makedumpfile -c -d 31 /proc/vmcore vmcore (fails: makedumpfile cannot read this kernel)",
            "cp /proc/vmcore vmcore (kdump-tools' fallback: the raw ELF)",
            "dmesg.txt: the crashed kernel's lines of the serial console",
        ]
    level = plan.dump_level
    commands = [
        f"makedumpfile -c -d {level} /proc/vmcore vmcore",
        f"makedumpfile -E -d {level} /proc/vmcore vmcore.elf",
        "makedumpfile --dump-dmesg /proc/vmcore dmesg.txt",
    ]
    if plan.lossy_d31:
        commands.append("makedumpfile -c -d 31 /proc/vmcore vmcore-d31 (lossy: slab pages dropped)")
    return commands


def _dump_files(cfg: GuestConfig, plan: DumpPlan) -> dict[str, Any]:
    """The manifest's dump keys: ``vmcore``, ``vmcore_elf``, ``dump_format``, ``variants``."""
    if cfg.host_dump:
        # A host dump is one ELF file (see qemu.py): both keys name it.
        return {"vmcore": "vmcore.elf", "vmcore_elf": "vmcore.elf", "dump_format": "qemu-elf", "variants": {}}
    if plan.raw_elf:
        return {"vmcore": "vmcore", "vmcore_elf": "vmcore", "dump_format": "raw-elf", "variants": {}}
    variants = {"lossy-d31": "vmcore-d31"} if plan.lossy_d31 else {}
    return {"vmcore": "vmcore", "vmcore_elf": "vmcore.elf", "dump_format": "kdump-compressed",
            "dump_level": plan.dump_level, "variants": variants}  # fmt: skip


def _dump_settings(cfg: GuestConfig, plan: DumpPlan) -> str:
    """``/etc/lab/dump`` (see guest/init.sh)."""
    return (
        f"level={plan.dump_level} lossy={int(plan.lossy_d31)} raw={int(plan.raw_elf)} "
        f"kdump={int(cfg.arm_kdump)}\n"
    )


def _guest_files(cfg: GuestConfig, plan: DumpPlan) -> tuple[str, ...]:
    """The files the capture kernel leaves on the dump disk."""
    if plan.raw_elf:
        return ("vmcore",)
    return ("vmcore", "vmcore.elf", "dmesg.txt", *(("vmcore-d31",) if plan.lossy_d31 else ()))


def _userland(kernel: KernelTree) -> GuestUserland:
    if kernel.pin.arch == "amd64":
        return GuestUserland()
    root = guest_root(kernel)
    return GuestUserland(root, ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib"))


def _build_into(
    tmp: Path, final: Path, scenario: str, variant: str | None, kernel: KernelTree, cfg: GuestConfig
) -> dict[str, Any]:
    started = time.monotonic()
    plan = dump_plan(kernel.pin.id)
    ko = build_module(kernel, tmp / "labbug", final / "labbug")
    own = SCENARIO_MODULES.get(scenario, ())
    modules = tuple(build_module(kernel, tmp / name, final / name, name) for name in own)
    work_root = cache_root() / "tmp"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root, prefix=f"{scenario}-") as work_s:
        work = Path(work_s)
        programs = build_programs(kernel, scenario, work / "progs")
        progress("packing the initramfs images")
        _, main_img = build_images(
            out_dir=work,
            scenario=scenario,
            init_script=GUEST_DIR / "init.sh",
            vmlinuz=kernel.vmlinuz,
            modules_dir=kernel.modules_dir,
            kernel_config=kernel.headers_dir / ".config",
            capture_cmdline=capture_cmdline(cfg.arch),
            labbug_ko=ko,
            programs=programs,
            modules=modules,
            userland=_userland(kernel),
            dump_settings=_dump_settings(cfg, plan),
        )
        run_guest(
            work_dir=work,
            vmlinuz=kernel.vmlinuz,
            initrd=main_img,
            cfg=cfg,
            console_log=tmp / "console.log",
            out_dir=tmp,
            dump_files=_guest_files(cfg, plan),
        )
    if plan.raw_elf and not cfg.host_dump:
        # makedumpfile cannot read the dump, so the log is the crashed kernel's console lines.
        console = (tmp / "console.log").read_text(errors="replace")
        (tmp / "dmesg.txt").write_text(console_kernel_lines(first_boot(console)))
    for name in ("labbug", *own):
        _prune_module_dir(tmp / name)
    progress("deriving the expected facts from the dump's dmesg")
    expected = _derive_expected(scenario, tmp / "dmesg.txt", ko, kernel, modules)
    return {
        "format": 2,
        "scenario": scenario,
        "variant": variant,
        "kernel": kernel.pin.id,
        "arch": kernel.pin.arch,
        "kernel_release": kernel.pin.release,
        "kernel_version": kernel.pin.version,
        "kernel_pin": pin_hash(kernel.pin),
        "builder_hash": final.name.rsplit("-", 1)[1],
        **_dump_files(cfg, plan),
        "dmesg": "dmesg.txt",
        "console_log": "console.log",
        "vmlinux": str(kernel.vmlinux),
        "debug_info_dir": str(kernel.debug_info_dir),
        "debug_info": _debug_info(scenario, own),
        "module_source_dir": own[0] if own else "labbug",
        "guest": {
            "accel": "tcg",
            "memory_mib": cfg.memory_mib,
            "cpus": cfg.cpus,
            "machine": cfg.arch,
            "cmdline": crash_cmdline(cfg),
            "capture_cmdline": capture_cmdline(cfg.arch),
            "host_dump": cfg.host_dump,
            "dump_commands": _dump_commands(cfg, plan),
        },
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.monotonic() - started),
        "expected": expected,
    }


def build_sample(
    scenario: str,
    kernel_id: str | None = None,
    variant: str | None = None,
    *,
    force: bool = False,
    cfg: GuestConfig | None = None,
) -> Path:
    """Return a complete sample directory, building it if needed.

    :param kernel_id: a kernel of the matrix (``matrix.KERNEL_LINES``); default: 6.1.
    :param variant: ``qemu-dump`` (its own build) or ``lossy-d31`` (a file of the kdump sample).
    """
    pin = kernel_pin(kernel_id)
    final = sample_dir_for(scenario, pin, variant)
    variant = _build_variant(variant)
    cfg = cfg or guest_config(scenario, pin.arch, variant)
    ensure_host_packages(arch=pin.arch)
    label = f"{scenario}{'+' + variant if variant else ''}@{pin.id}"
    with _build_lock():
        if (final / MANIFEST_NAME).exists() and not force:
            progress(f"{label}: up to date at {final}")
            return final
        progress(f"{label}: building {final.name} (kernel {pin.release} {pin.version})")
        kernel = ensure_kernel(pin)
        check_disk_space(
            samples_root(),
            max(3, cfg.disk_gib) * 2**30,
            f"a sample (its dump disk of up to {cfg.disk_gib} GiB, then the dump files copied out)",
        )
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed build (we hold the lock)
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        tmp.mkdir(parents=True)
        try:
            manifest = _build_into(tmp, final, scenario, variant, kernel, cfg)
        except BuildError as e:
            failed = final.with_name(final.name + ".failed")
            shutil.rmtree(failed, ignore_errors=True)
            tmp.rename(failed)
            message = str(e).replace(str(tmp), str(failed))  # the log moved with the dir
            raise BuildError(f"{label}: {message}\n(partial build kept in {failed})") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        write_manifest(tmp, manifest)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        shutil.rmtree(final.with_name(final.name + ".failed"), ignore_errors=True)
        progress(f"{label}: done in {manifest['build_seconds']} s: {final}")
        return final
