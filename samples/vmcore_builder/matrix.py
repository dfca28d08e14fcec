"""The kernel matrix: which kernels the samples are built on, and which samples each kernel gets.

One place says it all: the kernel lines (re-pinned by ``samples/pin-kernels``) and the list of
samples with the part of the test suite that uses them (``make test`` builds one sample of every
kernel; ``make test-matrix`` the rest). How each kernel's dump is saved is ``dumpplan.py``.

Not a sample input (``hashing.py``): adding a kernel or a sample here rebuilds no other sample
(a kernel's packages count through its pin hash).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .common import KNOWN_SCENARIOS, SCENARIOS, BuildError
from .dumpplan import dump_plan

__all__ = [
    "DEFAULT_KERNEL",
    "HOST_SUITE",
    "KERNEL_LINES",
    "VARIANTS",
    "KernelLine",
    "MatrixSample",
    "matrix_samples",
]


@dataclass(frozen=True)
class KernelLine:
    """What a kernel of the matrix is: its id, Debian suite, architecture, flavour and the series
    a re-pin follows (``6.1`` picks the newest ``6.1.0-N``, ``7`` the newest ``7.x``)."""

    id: str
    suite: str
    arch: str
    flavour: str
    series: str

    def release_pattern(self) -> re.Pattern[str]:
        """``linux-image-<release>-dbg`` of this series and flavour: ``6.1.0-57``, ``6.12.118+deb13``,
        ``7.2.13+deb14`` (not a backport's ``6.1.0-0.deb11.52``)."""
        series = re.escape(self.series)
        return re.compile(rf"linux-image-({series}\.[\d.]*(?:-\d+|\+deb\d+)-{re.escape(self.flavour)})-dbg")


#: The host's Debian suite: its own gcc and userland serve its kernels (nothing to pin).
HOST_SUITE = "bookworm"

#: Every kernel of the matrix, in the order the README's table lists them.
KERNEL_LINES: dict[str, KernelLine] = {
    line.id: line
    for line in (
        KernelLine("deb11-5.10-amd64", "bullseye", "amd64", "cloud-amd64", "5.10"),
        KernelLine("deb12-6.1-amd64", "bookworm", "amd64", "cloud-amd64", "6.1"),
        KernelLine("deb13-6.12-amd64", "trixie", "amd64", "cloud-amd64", "6.12"),
        KernelLine("sid-7-amd64", "sid", "amd64", "cloud-amd64", "7"),
        KernelLine("deb13-6.12-arm64", "trixie", "arm64", "cloud-arm64", "6.12"),
    )
}

#: The kernel of ``ensure_sample(scenario)`` when none is named: today's samples.
DEFAULT_KERNEL = "deb12-6.1-amd64"

#: Variants of a sample: another dump file of the same guest run (``lossy-d31``), or another
#: guest run whose dump QEMU takes (``qemu-dump``).
VARIANTS = ("lossy-d31", "qemu-dump")


@dataclass(frozen=True)
class MatrixSample:
    """One sample of the matrix.

    :param in_make_test: ``make test`` needs it (else only ``make test-matrix``).
    """

    scenario: str
    kernel: str
    variant: str | None = None
    in_make_test: bool = False

    @property
    def label(self) -> str:
        """``oops-null@deb13-6.12-amd64`` or ``sysrq-c@sid-7-amd64+lossy-d31``."""
        return f"{self.scenario}@{self.kernel}" + (f"+{self.variant}" if self.variant else "")


def _samples() -> tuple[MatrixSample, ...]:
    found = [MatrixSample(s, DEFAULT_KERNEL, in_make_test=True) for s in SCENARIOS]
    for kernel in KERNEL_LINES:
        if kernel == DEFAULT_KERNEL:
            continue
        # One sample of every kernel in make test (the small sysrq-c); oops-null in test-matrix.
        found.append(MatrixSample("sysrq-c", kernel, in_make_test=True))
        found.append(MatrixSample("oops-null", kernel))
    found.append(MatrixSample("sysrq-c", "sid-7-amd64", "lossy-d31", in_make_test=True))
    found.append(MatrixSample("sysrq-c", "deb13-6.12-arm64", "qemu-dump"))
    found.append(MatrixSample("many-tasks", "deb13-6.12-amd64"))
    # labuaf.c compiles on every kernel of the matrix; its dump is tested on the oldest and newest
    # kernels whose crash loads module debug info (sid's crash runs with --no_modules).
    found += [MatrixSample("list-uaf", kernel) for kernel in ("deb11-5.10-amd64", "deb13-6.12-amd64")]
    return tuple(found)


def matrix_samples(*, make_test_only: bool = False) -> tuple[MatrixSample, ...]:
    """Every sample of the matrix (or only those ``make test`` needs), the default kernel's first."""
    return tuple(s for s in _samples() if s.in_make_test or not make_test_only)


def check_known(scenario: str, kernel: str, variant: str | None) -> None:
    """Raise BuildError naming what is wrong with a (scenario, kernel, variant) request."""
    if scenario not in KNOWN_SCENARIOS:
        raise BuildError(f"Unknown scenario '{scenario}' (known: {', '.join(KNOWN_SCENARIOS)})")
    if kernel not in KERNEL_LINES:
        raise BuildError(f"Unknown kernel '{kernel}' (known: {', '.join(KERNEL_LINES)})")
    if variant is not None and variant not in VARIANTS:
        raise BuildError(f"Unknown sample variant '{variant}' (known: {', '.join(VARIANTS)})")
    if variant == "lossy-d31" and not dump_plan(kernel).lossy_d31:
        raise BuildError(f"Kernel {kernel} has no lossy-d31 variant (only sid's samples keep the -d 31 file)")
