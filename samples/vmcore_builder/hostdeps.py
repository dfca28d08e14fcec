"""Make sure the host has the Debian packages the builder runs (installing them when root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .common import BuildError, progress

__all__ = ["HOST_PACKAGES", "check_disk_space", "ensure_host_packages", "missing_packages"]

#: Debian package -> why the builder needs it.
HOST_PACKAGES: dict[str, str] = {
    "qemu-system-x86": "boots the guest (qemu-system-x86_64)",
    "busybox-static": "the guest's shell and tools (must be static)",
    "kexec-tools": "arms kdump in the guest (kexec -p)",
    "makedumpfile": "writes the dump in the capture kernel",
    "e2fsprogs": "the dump disk (mkfs.ext4) and reading it back (debugfs)",
    "binutils": "maps the oops RIP to a source line (addr2line, nm)",
    "gcc-12": "builds the module (the Debian 6.1 headers call gcc-12)",
    "gcc": "builds the guest programs",
    "libc6-dev": "static glibc for the guest programs",
    "make": "runs kbuild for the module",
    "kmod": "computes module load order (depmod)",
    "dpkg": "extracts the kernel packages (dpkg-deb)",
    "patchelf": "points another suite's compiler at its own C library",
}

#: Packages only a guest of another architecture needs.
ARCH_PACKAGES: dict[str, dict[str, str]] = {
    "arm64": {"qemu-system-arm": "boots arm64 guests (qemu-system-aarch64, TCG)"},
}


def missing_packages(packages: list[str] | None = None) -> list[str]:
    """Return the packages of ``packages`` (default: all) that dpkg does not list as installed."""
    wanted = packages if packages is not None else list(HOST_PACKAGES)
    if shutil.which("dpkg-query") is None:
        raise BuildError(
            "Cannot check host packages: dpkg-query not found (make-vmcore needs a Debian 12 host with apt)"
        )
    missing = []
    for pkg in wanted:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg],
            capture_output=True,
            text=True,
            check=False,
        )
        if not proc.stdout.startswith("ii"):
            missing.append(pkg)
    return missing


#: Wait for another apt/dpkg (a second clone's set-up, unattended-upgrades) instead of failing at once
#: with "Could not get lock /var/lib/dpkg/lock-frontend": two make runs on one machine are normal.
APT_LOCK_WAIT = ("-o", "DPkg::Lock::Timeout=900")


def apt_get_install(packages: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``apt-get install`` for ``packages`` non-interactively, waiting for the dpkg lock."""
    return subprocess.run(
        ["apt-get", *APT_LOCK_WAIT, "install", "-y", "--no-install-recommends", *packages],
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        capture_output=True,
        text=True,
        check=False,
    )


def ensure_host_packages(arch: str = "amd64") -> None:
    """Install missing host packages with apt-get (idempotent); explain when that is impossible.

    :param arch: the guest's architecture (arm64 also needs qemu-system-arm).
    """
    wanted = {**HOST_PACKAGES, **ARCH_PACKAGES.get(arch, {})}
    missing = missing_packages(list(wanted))
    if not missing:
        return
    reasons = "; ".join(f"{p}: {wanted[p]}" for p in missing)
    if os.geteuid() != 0:
        raise BuildError(
            f"Missing host packages ({reasons}): not root, cannot install them "
            f"(run: sudo apt-get install -y --no-install-recommends {' '.join(missing)})"
        )
    progress(f"installing host packages: {' '.join(missing)}")
    proc = apt_get_install(missing)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise BuildError(
            f"Cannot install host packages {' '.join(missing)}: apt-get failed "
            f"(is the Debian registry reachable? try 'apt-get update')\n{tail}"
        )


def check_disk_space(path: Path, need_bytes: int, what: str) -> None:
    """Fail early, and say how much is missing, when ``path``'s file system is too full."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need_bytes:
        raise BuildError(
            f"Not enough disk space for {what} under {path}: {free / 2**30:.1f} GiB free, "
            f"{need_bytes / 2**30:.1f} GiB needed (free some space or point "
            f"VMCORE_DAP_CACHE elsewhere)"
        )
