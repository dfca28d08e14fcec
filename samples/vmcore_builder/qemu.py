"""Boot the guest in QEMU (TCG), let it crash and kdump itself, and read the dump back.

The capture kernel writes onto ``disk.img``, an ext4 file system made on the host;
debugfs reads the files back without mounting (no root, no loop devices).

A guest that is not crashed (``GuestConfig.host_dump``) is dumped by QEMU itself instead: once
its console says ``LABDUMP status=host-dump``, the machine is stopped over QMP and written out by
``dump-guest-memory`` in ELF format, with ``-device vmcoreinfo`` so the file carries the guest's
VMCOREINFO note. QEMU 7.2's kdump-zlib output is makedumpfile's flattened format without the
architecture (drgn refuses it even reassembled) and makedumpfile 1.7.2 cannot read QEMU's ELF
(no virtual addresses), so the dump is the ELF file alone and ``dmesg.txt`` is the kernel's
own lines of the serial console (``[ seconds.micro] text``, the same text the log buffer holds).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .common import BuildError, progress, run
from .qmp import QmpClient

__all__ = [
    "DUMP_FILES",
    "HOST_DUMPS",
    "GuestConfig",
    "capture_cmdline",
    "console_kernel_lines",
    "crash_cmdline",
    "guest_config",
    "run_guest",
]

#: Files the capture kernel writes onto the disk -> names in the sample directory.
DUMP_FILES = {"vmcore": "vmcore", "vmcore.elf": "vmcore.elf", "dmesg.txt": "dmesg.txt"}

#: ``dump-guest-memory`` format -> file name in the sample directory, for host dumps.
HOST_DUMPS = {"elf": "vmcore.elf"}

_KERNEL_LINE = re.compile(r"\[\s*\d+\.\d+\] ")

#: What the guest prints when it is ready for the host to dump it (``no-panic``).
HOST_DUMP_MARKER = "LABDUMP status=host-dump"


@dataclass(frozen=True)
class GuestConfig:
    """How the guest machine is shaped (TCG: /dev/kvm may exist but be unusable)."""

    memory_mib: int = 1024
    cpus: int = 2
    crashkernel: str = "256M"
    timeout_s: float = float(os.environ.get("VMCORE_DAP_QEMU_TIMEOUT", "600"))
    #: Dump the running guest from the host (QMP ``dump-guest-memory``) instead of kdump.
    host_dump: bool = False
    #: Extra parameters of the crashing kernel's command line.
    extra_cmdline: str = ""
    #: The guest's architecture (Debian's name): amd64 (``-machine pc``) or arm64 (``-M virt``).
    arch: str = "amd64"
    #: With ``host_dump``: what on the console says the guest is ready to be dumped.
    dump_marker: str = "LABDUMP status=host-dump"
    #: Arm kdump (``kexec -p``); off for a guest QEMU dumps after its panic.
    arm_kdump: bool = True
    #: The dump disk (a sparse file): the dumps of a 1 GiB guest at -d 31 take ~100 MB.
    disk_gib: int = 4


def guest_config(scenario: str, arch: str = "amd64", variant: str | None = None) -> GuestConfig:
    """The machine a scenario needs: many-tasks' 5,000 threads want 2 GiB (~30 KiB each plus the
    kdump reservation); no-panic is dumped by QEMU rather than by a crash.

    irq-oops boots with ``crash_kexec_post_notifiers``: without it ``oops_end()`` starts kdump
    itself for an oops in interrupt context (``kexec_should_crash``), before ``panic("Fatal
    exception in interrupt")``; with it the dump is taken from ``panic()``, as on the machines that
    set it (Hyper-V guests, pstore users), and the log holds the "Kernel panic" line people search."""
    if variant == "qemu-dump":
        # The panicked guest waits (panic=0) until QEMU has dumped it.
        return GuestConfig(host_dump=True, arch=arch, extra_cmdline="panic=0", arm_kdump=False,
                           dump_marker="---[ end Kernel panic - not syncing")  # fmt: skip
    if scenario == "irq-oops":
        return GuestConfig(extra_cmdline="crash_kexec_post_notifiers", arch=arch)
    if scenario == "many-tasks":
        return GuestConfig(memory_mib=2048, arch=arch)
    if scenario == "huge":
        # ≈50,000 tasks (≈1.5 GiB of slab and kernel stacks) plus ≈1.8 GiB of anonymous memory and
        # tmpfs page cache; an 8 MiB log keeps every LABFACT record whatever
        # the 8 starved vCPUs print (RCU stalls, hung tasks); the capture kernel's 384 MiB hold
        # makedumpfile's buffers for 6 GiB; half an hour of TCG on 2 busy host cores.
        return GuestConfig(
            memory_mib=6144,
            cpus=8,
            crashkernel="384M",
            arch=arch,
            extra_cmdline="log_buf_len=8M",
            disk_gib=16,
            timeout_s=float(os.environ.get("VMCORE_DAP_QEMU_TIMEOUT", "3600")),
        )
    if scenario == "no-panic":
        return GuestConfig(host_dump=True, arch=arch)
    return GuestConfig(arch=arch)


#: The serial console of each architecture's QEMU machine (pc: 16550; virt: PL011).
_CONSOLE = {"amd64": "ttyS0", "arm64": "ttyAMA0"}

#: QEMU program, machine and CPU for each guest architecture. arm64 runs under TCG on this
#: x86-64 host; cortex-a57 (no pointer authentication to emulate) boots Debian's kernel fastest.
_MACHINE = {
    "amd64": ("qemu-system-x86_64", ["-machine", "pc", "-cpu", "max,la57=off"], "qemu-system-x86"),
    "arm64": ("qemu-system-aarch64", ["-machine", "virt", "-cpu", "cortex-a57"], "qemu-system-arm"),
}


def crash_cmdline(cfg: GuestConfig) -> str:
    """Kernel command line of the crashing kernel (KASLR stays on)."""
    base = f"console={_CONSOLE[cfg.arch]} crashkernel={cfg.crashkernel} panic=5 printk.devkmsg=on"
    return f"{base} {cfg.extra_cmdline}" if cfg.extra_cmdline else base


def capture_cmdline(arch: str = "amd64") -> str:
    """Kernel command line of the kdump capture kernel, as kdump-tools would pass."""
    return f"console={_CONSOLE[arch]} reset_devices irqpoll nr_cpus=1 panic=5 printk.devkmsg=on"


def _make_disk(path: Path, size_gib: int) -> None:
    with path.open("wb") as f:
        f.truncate(size_gib * 2**30)
    run(["mkfs.ext4", "-q", "-F", "-L", "labdump", path], what="create the dump disk (mkfs.ext4)")


def _debugfs_read(disk: Path, name: str, dest: Path) -> bool:
    run(["debugfs", "-R", f"dump -p /{name} {dest}", disk], what=f"read /{name} from the dump disk")
    return dest.exists() and dest.stat().st_size > 0


def _qemu_argv(qemu: str, vmlinuz: Path, initrd: Path, cfg: GuestConfig, console_log: Path) -> list[str]:
    return [
        qemu, "-nodefaults", *_MACHINE[cfg.arch][1], "-accel", "tcg",
        "-smp", str(cfg.cpus), "-m", str(cfg.memory_mib),
        "-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", crash_cmdline(cfg),
        "-display", "none", "-serial", f"file:{console_log}", "-no-reboot",
    ]  # fmt: skip


def _disk_argv(disk: Path, arch: str) -> list[str]:
    """The dump disk: ``if=virtio`` on pc; on arm64's virt that would be virtio-mmio (a module in
    Debian's cloud-arm64 kernel), so a virtio-blk-pci device (virtio_pci is built in)."""
    if arch == "arm64":
        return ["-drive", f"file={disk},format=raw,if=none,id=dump", "-device", "virtio-blk-pci,drive=dump"]
    return ["-drive", f"file={disk},format=raw,if=virtio"]


def qemu_program(arch: str) -> str:
    """The QEMU of ``arch``'s guests, or a BuildError naming the Debian package."""
    name, _, package = _MACHINE[arch]
    qemu = shutil.which(name)
    if qemu is None:
        raise BuildError(f"{name} is not installed (apt-get install {package})")
    return qemu


def _qemu_failed(proc: subprocess.Popen[bytes], work_dir: Path, qemu: str) -> BuildError:
    stderr = (work_dir / "qemu.stderr").read_text().strip()
    return BuildError(f"{Path(qemu).name} exited with {proc.returncode}: {stderr[-500:]}")


def run_guest(
    *,
    work_dir: Path,
    vmlinuz: Path,
    initrd: Path,
    cfg: GuestConfig,
    console_log: Path,
    out_dir: Path,
    dump_files: tuple[str, ...] = tuple(DUMP_FILES),
) -> None:
    """Boot, crash, capture; copy ``dump_files`` into ``out_dir`` (host dumps: write them there).

    Raises BuildError pointing at ``console_log`` when the guest times out or
    writes no dump.
    """
    qemu = qemu_program(cfg.arch)
    if cfg.host_dump:
        _run_and_dump_from_host(qemu, work_dir, vmlinuz, initrd, cfg, console_log, out_dir)
        return
    disk = work_dir / "disk.img"
    _make_disk(disk, cfg.disk_gib)
    argv = [*_qemu_argv(qemu, vmlinuz, initrd, cfg, console_log), *_disk_argv(disk, cfg.arch)]
    (work_dir / "qemu.cmdline").write_text(" ".join(argv) + "\n")
    progress(f"booting the guest under TCG (crash + kdump, ~1 min; log {console_log})")
    start = time.monotonic()
    with (work_dir / "qemu.stderr").open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        try:
            proc.wait(timeout=cfg.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise BuildError(
                f"The guest did not finish within {cfg.timeout_s:.0f} s "
                f"(see its serial console: {console_log})"
            ) from None
    progress(f"guest finished in {time.monotonic() - start:.0f} s")
    if proc.returncode != 0:
        raise _qemu_failed(proc, work_dir, qemu)
    console = console_log.read_text(errors="replace") if console_log.exists() else ""
    status = work_dir / "status"
    if "LABDUMP status=ok" not in console or not _debugfs_read(disk, "status", status):
        reason = next(
            (line for line in console.splitlines() if "LABDUMP status=" in line),
            "no LABDUMP line: the capture kernel never ran (kdump not armed, or it crashed)",
        )
        raise BuildError(f"The guest wrote no dump ({reason.strip()}); see {console_log}")
    for name in dump_files:
        if not _debugfs_read(disk, name, out_dir / name):
            raise BuildError(f"The dump disk has no /{name}; see {console_log}")
        (out_dir / name).chmod(0o644)  # makedumpfile writes 0600; the files are for everyone
    disk.unlink()


def _wait_for_marker(proc: subprocess.Popen[bytes], console_log: Path, cfg: GuestConfig) -> None:
    """Wait until the guest's console shows HOST_DUMP_MARKER (or a failure, an exit, the timeout)."""
    deadline = time.monotonic() + cfg.timeout_s
    while True:
        console = console_log.read_text(errors="replace") if console_log.exists() else ""
        if cfg.dump_marker in console:
            return
        failed = next((line for line in console.splitlines() if "LABDUMP status=failed" in line), None)
        if failed or proc.poll() is not None or time.monotonic() > deadline:
            why = (
                failed.strip()
                if failed
                else f"QEMU exited with {proc.returncode}"
                if proc.returncode is not None
                else f"no '{cfg.dump_marker}' within {cfg.timeout_s:.0f} s"
            )
            raise BuildError(f"The guest never got ready to be dumped ({why}); see {console_log}")
        time.sleep(0.5)


def _run_and_dump_from_host(
    qemu: str,
    work_dir: Path,
    vmlinuz: Path,
    initrd: Path,
    cfg: GuestConfig,
    console_log: Path,
    out_dir: Path,
) -> None:
    # A unix socket path must fit in 108 bytes: keep it short, outside the cache.
    sock_dir = Path(tempfile.mkdtemp(prefix="vmcore-qmp-"))
    qmp_path = sock_dir / "qmp.sock"
    argv = [
        *_qemu_argv(qemu, vmlinuz, initrd, cfg, console_log),
        "-device", "vmcoreinfo", "-qmp", f"unix:{qmp_path},server=on,wait=off",
    ]  # fmt: skip
    (work_dir / "qemu.cmdline").write_text(" ".join(argv) + "\n")
    progress(f"booting the guest under TCG (dumped by QEMU, ~1 min; log {console_log})")
    start = time.monotonic()
    try:
        with (work_dir / "qemu.stderr").open("w") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
            try:
                _wait_for_marker(proc, console_log, cfg)
                qmp = QmpClient(qmp_path)
                try:
                    qmp.execute("stop")
                    for fmt, name in HOST_DUMPS.items():
                        progress(f"dump-guest-memory -> {name} ({fmt})")
                        dest = out_dir / name
                        qmp.execute(
                            "dump-guest-memory",
                            timeout=cfg.timeout_s,
                            paging=False,
                            protocol=f"file:{dest}",
                            format=fmt,
                        )
                        dest.chmod(0o644)
                    qmp.execute("quit")
                finally:
                    qmp.close()
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    progress(f"guest dumped in {time.monotonic() - start:.0f} s")
    console = console_log.read_text(errors="replace") if console_log.exists() else ""
    (out_dir / "dmesg.txt").write_text(console_kernel_lines(first_boot(console)))
    (out_dir / "dmesg.txt").chmod(0o644)


def first_boot(console: str) -> str:
    """The serial console up to the kdump capture kernel's boot (its second ``Linux version``)."""
    starts = [m.start() for m in re.finditer(r"\] Linux version ", console)]
    if len(starts) < 2:
        return console
    return console[: console.rfind("\n", 0, starts[1]) + 1]


def console_kernel_lines(console: str) -> str:
    """Keep the kernel's own ``[ seconds.micro] text`` lines of a serial console log.

    User space writes to the same console, so a kernel line may follow a fragment of a user
    line (``LABFACT wait pid[   10.9] labbug: …``): each line is kept from its timestamp on.
    """
    kept = []
    for line in console.splitlines():
        m = _KERNEL_LINE.search(line)
        if m:
            kept.append(line[m.start() :] + "\n")
    return "".join(kept)
