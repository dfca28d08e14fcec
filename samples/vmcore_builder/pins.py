"""The pinned sample kernels: ``samples/kernels.json``, read here, written by ``samples/pin-kernels``.

Why a pin: "the newest 6.1 kernel in the apt lists" is a different kernel on every machine and on
the same machine a week later, and tests would compare different kernels without saying so. The
pin file names, for each kernel of the matrix, its suite, architecture, flavour, ``uname -r``
release, Debian version and every package file it needs (pool path, SHA-256, size): the kernel's
own packages and the tools that build its guest (the suite's compiler, arm64's userland).
:func:`pin_hash` of a kernel goes into each sample's cache key, so a re-pin rebuilds its samples.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .common import SAMPLES_DIR, BuildError

__all__ = [
    "PIN_FILE",
    "REPIN_COMMAND",
    "KernelPin",
    "PinnedPackage",
    "load_pins",
    "pin_hash",
    "save_pins",
]

#: The pin file, in the repository.
PIN_FILE = SAMPLES_DIR / "kernels.json"

#: The one command that re-pins (printed in every "no longer served" error).
REPIN_COMMAND = "samples/pin-kernels"


@dataclass(frozen=True)
class PinnedPackage:
    """One ``.deb`` file: what it is for (``role``), and where the archive keeps it."""

    role: str
    name: str
    version: str
    arch: str
    archive: str
    filename: str
    sha256: str
    size: int

    @property
    def file(self) -> str:
        """The ``.deb`` file name (the last part of the pool path)."""
        return self.filename.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class KernelPin:
    """One kernel of the matrix, as pinned.

    :param id: e.g. ``deb12-6.1-amd64``: Debian release, kernel series, architecture.
    :param series: the kernel line a re-pin follows (``6.1`` picks the newest ``6.1.0-N``;
        ``7`` the newest ``7.x``).
    :param packages: the kernel's own packages (roles ``image``, ``modules``, ``dbg``,
        ``headers``, ``headers-common``, ``kbuild``, and ``source``: ``linux-source-X.Y``).
    :param tools: the packages that build its guest when the host's cannot (role ``compiler``,
        ``guest``): the suite's gcc and binutils with their libraries, arm64's userland.
    """

    id: str
    suite: str
    arch: str
    flavour: str
    series: str
    release: str
    version: str
    packages: tuple[PinnedPackage, ...]
    tools: tuple[PinnedPackage, ...] = field(default=())

    def package(self, role: str) -> list[PinnedPackage]:
        return [p for p in self.packages if p.role == role]

    @property
    def dump_packages(self) -> tuple[PinnedPackage, ...]:
        """The packages a sample is built from: all but the kernel's source tree (role ``source``)."""
        return tuple(p for p in self.packages if p.role != "source")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("id")
        data["packages"] = [asdict(p) for p in self.packages]
        data["tools"] = [asdict(p) for p in self.tools]
        return data


def _kernel_from_json(kernel_id: str, data: dict[str, Any]) -> KernelPin:
    try:
        return KernelPin(
            id=kernel_id,
            suite=data["suite"],
            arch=data["arch"],
            flavour=data["flavour"],
            series=data["series"],
            release=data["release"],
            version=data["version"],
            packages=tuple(PinnedPackage(**p) for p in data["packages"]),
            tools=tuple(PinnedPackage(**p) for p in data.get("tools", [])),
        )
    except (KeyError, TypeError) as e:
        raise BuildError(
            f"{PIN_FILE}: kernel '{kernel_id}' is malformed ({e}); "
            f"re-pin it with '{REPIN_COMMAND} {kernel_id}'"
        ) from None


def load_pins(path: Path = PIN_FILE) -> tuple[str, dict[str, KernelPin]]:
    """Return (default kernel id, kernel id -> pin), in the file's order."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BuildError(f"No kernel pin file at {path} (restore it from git)") from None
    except json.JSONDecodeError as e:
        raise BuildError(f"Corrupt kernel pin file {path}: {e} (restore it from git)") from None
    kernels = {kid: _kernel_from_json(kid, k) for kid, k in data["kernels"].items()}
    default = data["default"]
    if default not in kernels:
        raise BuildError(f"{path}: the default kernel '{default}' is not pinned")
    return default, kernels


def save_pins(default: str, kernels: dict[str, KernelPin], path: Path = PIN_FILE) -> None:
    """Rewrite the pin file (atomically), keeping the kernels' order."""
    data = {
        "comment": (
            "Pinned Debian kernels of the sample matrix (samples/README.md). Written by "
            f"{REPIN_COMMAND}; do not edit by hand."
        ),
        "default": default,
        "kernels": {k.id: k.to_json() for k in kernels.values()},
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.rename(path)


def pin_hash(kernel: KernelPin, length: int = 12) -> str:
    """Hash what a kernel's samples are made of: every pinned file's SHA-256 (and its role)."""
    h = hashlib.sha256(f"{kernel.id}\0{kernel.release}\0{kernel.version}\0".encode())
    # The source tree is not part of a dump (kernel_source.py fetches it for launch configs).
    for p in (*kernel.dump_packages, *kernel.tools):
        h.update(f"{p.role}\0{p.name}\0{p.sha256}\0".encode())
    return h.hexdigest()[:length]
