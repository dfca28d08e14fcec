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

from .common import SCENARIOS, BuildError, cache_root, progress, run
from .expected import (
    LineResolver,
    expected_irq_oops,
    expected_many_tasks,
    expected_no_panic,
    expected_oops_null,
    expected_sysrq_c,
)
from .facts import Frame, dmesg_texts
from .guest import GUEST_DIR, build_module, build_programs
from .hashing import builder_hash
from .hostdeps import check_disk_space, ensure_host_packages
from .initramfs import build_images
from .kernel import KernelChoice, KernelTree, ensure_kernel, pick_kernel
from .manifest import MANIFEST_NAME, write_manifest
from .qemu import HOST_DUMPS, GuestConfig, capture_cmdline, crash_cmdline, guest_config, run_guest

__all__ = ["build_sample", "sample_dir_for", "samples_root"]

_MODULE_KEEP = ("labbug.c", "Kbuild", "labbug.ko")

#: Scenarios whose guest loads labbug.ko (its DWARF goes into the manifest's ``debug_info``).
_LOADS_LABBUG = ("oops-null", "many-tasks", "no-panic", "irq-oops")


def samples_root() -> Path:
    return cache_root() / "samples"


def sample_dir_for(scenario: str, choice: KernelChoice | None = None) -> Path:
    """Return where ``scenario``'s sample lives: ``<scenario>-<kernel_release>-<hash>``."""
    if scenario not in SCENARIOS:
        raise BuildError(f"Unknown scenario '{scenario}' (known: {', '.join(SCENARIOS)})")
    choice = choice or pick_kernel()
    return samples_root() / f"{scenario}-{choice.release}-{builder_hash(choice.version)}"


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


def _addr2line(elf: Path, address: int, section: str | None = None) -> tuple[str, int]:
    argv: list[str | Path] = ["addr2line", "-e", elf]
    if section:
        argv += ["-j", section]
    out = run([*argv, hex(address)], what=f"map {hex(address)} to a line in {elf.name}").strip()
    location = out.splitlines()[0].split(" (discriminator")[0]
    file, _, line = location.rpartition(":")
    if not line.isdigit():
        raise BuildError(f"addr2line found no line for {hex(address)} in {elf}")
    return Path(file).name, int(line)


def _module_resolver(ko: Path) -> LineResolver:
    """Resolve an exact RIP ``func+off`` inside the relocatable module (section-relative)."""
    table = run(["objdump", "-t", ko], what=f"read the symbols of {ko.name}")
    symbols = {}
    for line in table.splitlines():
        m = re.match(r"^([0-9a-f]+) .{7} (\S+)\s+[0-9a-f]+ (\S+)$", line)
        if m:
            symbols[m.group(3)] = (m.group(2), int(m.group(1), 16))

    def resolve(frame: Frame) -> tuple[str, int]:
        if frame.function not in symbols:
            raise BuildError(f"{frame.function} is not a symbol of {ko}")
        section, value = symbols[frame.function]
        return _addr2line(ko, value + frame.offset, section)

    return resolve


def _vmlinux_resolver(kernel: KernelTree) -> LineResolver:
    """Resolve a call-trace return address ``func+off`` in vmlinux (the call is at off-1)."""

    def resolve(frame: Frame) -> tuple[str, int]:
        table = run(["nm", kernel.vmlinux], what="read the symbols of vmlinux")
        m = re.search(rf"^([0-9a-f]+) [tT] {re.escape(frame.function)}$", table, re.M)
        if not m:
            raise BuildError(f"{frame.function} is not a symbol of {kernel.vmlinux}")
        return _addr2line(kernel.vmlinux, int(m.group(1), 16) + frame.offset - 1)

    return resolve


def _prune_module_dir(module_dir: Path) -> None:
    for path in module_dir.iterdir():
        if path.name not in _MODULE_KEEP:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _derive_expected(scenario: str, dmesg: Path, ko: Path, kernel: KernelTree) -> dict[str, Any]:
    texts = dmesg_texts(dmesg.read_text(errors="replace"))
    if scenario == "oops-null":
        source = (GUEST_DIR / "labbug" / "labbug.c").read_text()
        return expected_oops_null(texts, source, _module_resolver(ko))
    if scenario == "irq-oops":
        source = (GUEST_DIR / "labbug" / "labbug.c").read_text()
        return expected_irq_oops(texts, source, _module_resolver(ko))
    if scenario == "many-tasks":
        return expected_many_tasks(texts, _vmlinux_resolver(kernel))
    if scenario == "no-panic":
        return expected_no_panic(texts)
    return expected_sysrq_c(texts, _vmlinux_resolver(kernel))


def _dump_commands(cfg: GuestConfig) -> list[str]:
    if cfg.host_dump:
        return [
            *(
                f"(QMP) dump-guest-memory paging=false format={fmt} protocol=file:{name}"
                for fmt, name in HOST_DUMPS.items()
            ),
            "dmesg.txt: the kernel's lines of the serial console",
        ]
    return [
        "makedumpfile -c -d 31 /proc/vmcore vmcore",
        "makedumpfile -E -d 31 /proc/vmcore vmcore.elf",
        "makedumpfile --dump-dmesg /proc/vmcore dmesg.txt",
    ]


def _build_into(
    tmp: Path, final: Path, scenario: str, kernel: KernelTree, cfg: GuestConfig
) -> dict[str, Any]:
    started = time.monotonic()
    ko = build_module(kernel, tmp / "labbug", final / "labbug")
    work_root = cache_root() / "tmp"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root, prefix=f"{scenario}-") as work_s:
        work = Path(work_s)
        programs = build_programs(work / "progs")
        progress("packing the initramfs images")
        _, main_img = build_images(
            out_dir=work,
            scenario=scenario,
            init_script=GUEST_DIR / "init.sh",
            vmlinuz=kernel.vmlinuz,
            modules_dir=kernel.modules_dir,
            capture_cmdline=capture_cmdline(),
            labbug_ko=ko,
            programs=programs,
        )
        run_guest(
            work_dir=work,
            vmlinuz=kernel.vmlinuz,
            initrd=main_img,
            cfg=cfg,
            console_log=tmp / "console.log",
            out_dir=tmp,
        )
    _prune_module_dir(tmp / "labbug")
    progress("deriving the expected facts from the dump's dmesg")
    expected = _derive_expected(scenario, tmp / "dmesg.txt", ko, kernel)
    return {
        "format": 1,
        "scenario": scenario,
        "kernel_release": kernel.choice.release,
        "kernel_version": kernel.choice.version,
        "builder_hash": final.name.rsplit("-", 1)[1],
        # A host dump is one ELF file (see qemu.py): both keys name it.
        "vmcore": "vmcore.elf" if cfg.host_dump else "vmcore",
        "vmcore_elf": "vmcore.elf",
        "dmesg": "dmesg.txt",
        "console_log": "console.log",
        "vmlinux": str(kernel.vmlinux),
        "debug_info_dir": str(kernel.debug_info_dir),
        "debug_info": ["labbug/labbug.ko"] if scenario in _LOADS_LABBUG else [],
        "module_source_dir": "labbug",
        "guest": {
            "accel": "tcg",
            "memory_mib": cfg.memory_mib,
            "cpus": cfg.cpus,
            "cmdline": crash_cmdline(cfg),
            "capture_cmdline": capture_cmdline(),
            "host_dump": cfg.host_dump,
            "dump_commands": _dump_commands(cfg),
        },
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.monotonic() - started),
        "expected": expected,
    }


def build_sample(scenario: str, *, force: bool = False, cfg: GuestConfig | None = None) -> Path:
    """Return ``scenario``'s complete sample directory, building it if needed."""
    if scenario not in SCENARIOS:
        raise BuildError(f"Unknown scenario '{scenario}' (known: {', '.join(SCENARIOS)})")
    cfg = cfg or guest_config(scenario)
    ensure_host_packages()
    choice = pick_kernel()
    final = sample_dir_for(scenario, choice)
    with _build_lock():
        if (final / MANIFEST_NAME).exists() and not force:
            progress(f"{scenario}: up to date at {final}")
            return final
        progress(f"{scenario}: building {final.name} (kernel {choice.release} {choice.version})")
        kernel = ensure_kernel(choice)
        check_disk_space(samples_root(), 3 * 2**30, "a sample (≈300 MB; no-panic's QEMU dumps ≈1.3 GB)")
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed build (we hold the lock)
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        tmp.mkdir(parents=True)
        try:
            manifest = _build_into(tmp, final, scenario, kernel, cfg)
        except BuildError as e:
            failed = final.with_name(final.name + ".failed")
            shutil.rmtree(failed, ignore_errors=True)
            tmp.rename(failed)
            message = str(e).replace(str(tmp), str(failed))  # the log moved with the dir
            raise BuildError(f"{scenario}: {message}\n(partial build kept in {failed})") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        write_manifest(tmp, manifest)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        shutil.rmtree(final.with_name(final.name + ".failed"), ignore_errors=True)
        progress(f"{scenario}: done in {manifest['build_seconds']} s: {final}")
        return final
