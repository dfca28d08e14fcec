"""Boot the guest in QEMU (TCG), let it crash and kdump itself, and read the dump back.

The capture kernel writes onto ``disk.img``, an ext4 file system made on the host;
debugfs reads the files back without mounting (no root, no loop devices).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .common import BuildError, progress, run

__all__ = ["DUMP_FILES", "GuestConfig", "capture_cmdline", "crash_cmdline", "run_guest"]

#: Files the capture kernel writes onto the disk -> names in the sample directory.
DUMP_FILES = {"vmcore": "vmcore", "vmcore.elf": "vmcore.elf", "dmesg.txt": "dmesg.txt"}

_DISK_SIZE = 4 * 2**30  # sparse; the dumps of a 1 GiB guest at -d 31 take ~100 MB


@dataclass(frozen=True)
class GuestConfig:
    """How the guest machine is shaped (TCG: /dev/kvm may exist but be unusable)."""

    memory_mib: int = 1024
    cpus: int = 2
    crashkernel: str = "256M"
    timeout_s: float = float(os.environ.get("VMCORE_DAP_QEMU_TIMEOUT", "600"))


def crash_cmdline(cfg: GuestConfig) -> str:
    """Kernel command line of the crashing kernel (KASLR stays on)."""
    return f"console=ttyS0 crashkernel={cfg.crashkernel} panic=5 printk.devkmsg=on"


def capture_cmdline() -> str:
    """Kernel command line of the kdump capture kernel, as kdump-tools would pass."""
    return "console=ttyS0 reset_devices irqpoll nr_cpus=1 panic=5 printk.devkmsg=on"


def _make_disk(path: Path) -> None:
    with path.open("wb") as f:
        f.truncate(_DISK_SIZE)
    run(["mkfs.ext4", "-q", "-F", "-L", "labdump", path], what="create the dump disk (mkfs.ext4)")


def _debugfs_read(disk: Path, name: str, dest: Path) -> bool:
    run(["debugfs", "-R", f"dump -p /{name} {dest}", disk], what=f"read /{name} from the dump disk")
    return dest.exists() and dest.stat().st_size > 0


def run_guest(
    *,
    work_dir: Path,
    vmlinuz: Path,
    initrd: Path,
    cfg: GuestConfig,
    console_log: Path,
    out_dir: Path,
) -> None:
    """Boot, crash, capture; copy DUMP_FILES into ``out_dir``.

    Raises BuildError pointing at ``console_log`` when the guest times out or
    writes no dump.
    """
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise BuildError("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    disk = work_dir / "disk.img"
    _make_disk(disk)
    argv = [
        qemu, "-nodefaults", "-machine", "pc", "-accel", "tcg",
        "-cpu", "max,la57=off", "-smp", str(cfg.cpus), "-m", str(cfg.memory_mib),
        "-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", crash_cmdline(cfg),
        "-display", "none", "-serial", f"file:{console_log}", "-no-reboot",
        "-drive", f"file={disk},format=raw,if=virtio",
    ]  # fmt: skip
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
        stderr = (work_dir / "qemu.stderr").read_text().strip()
        raise BuildError(f"qemu-system-x86_64 exited with {proc.returncode}: {stderr[-500:]}")
    console = console_log.read_text(errors="replace") if console_log.exists() else ""
    status = work_dir / "status"
    if "LABDUMP status=ok" not in console or not _debugfs_read(disk, "status", status):
        reason = next(
            (line for line in console.splitlines() if "LABDUMP status=" in line),
            "no LABDUMP line: the capture kernel never ran (kdump not armed, or it crashed)",
        )
        raise BuildError(f"The guest wrote no dump ({reason.strip()}); see {console_log}")
    for name, dest in DUMP_FILES.items():
        if not _debugfs_read(disk, name, out_dir / dest):
            raise BuildError(f"The dump disk has no /{name}; see {console_log}")
        (out_dir / dest).chmod(0o644)  # makedumpfile writes 0600; the files are for everyone
    disk.unlink()
