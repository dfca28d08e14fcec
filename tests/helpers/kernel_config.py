"""Facts of the crashed kernel from its own build config, and its uptime as crash counts it.

The build config Debian ships with a kernel (``boot/config-<release>`` in the image package, or the
headers' ``.config`` where the image package has none, as sid's split packages) is a fact of the
guest the dump does not carry: ``CONFIG_HZ``, ``CONFIG_X86_FRED`` …

crash's ``sys`` UPTIME is ``(jiffies_64 - INITIAL_JIFFIES) / HZ`` in whole seconds. Where the oracle
table distrusts crash's (it takes HZ for 1000 on kernels whose HZ is 250: 6.12, 7.x, arm64), the
same count with the HZ the kernel was built with is the oracle: ``CONFIG_HZ`` of that config, and
``jiffies_64`` read by plain drgn. The adapter takes HZ from the running kernel's NTP state
instead, so the two agree only if both are right.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import drgn

__all__ = ["config_hz", "config_value", "jiffies_uptime"]


def _kernel_dir(sample: Any) -> Path:
    """The kernel's cache directory (``kernel/<release>/<pin>``) the sample's vmlinux lies in."""
    vmlinux = Path(sample.vmlinux).resolve()
    pin = sample.manifest["kernel_pin"]
    return next(parent for parent in vmlinux.parents if parent.name == pin)


def config_value(sample: Any, name: str) -> str | None:
    """``CONFIG_<name>``'s value in the sample's kernel's build config (``None``: not set)."""
    base = _kernel_dir(sample)
    release = sample.kernel_release
    for config in (
        base / "image" / "boot" / f"config-{release}",
        base / "headers" / "usr" / "src" / f"linux-headers-{release}" / ".config",
    ):
        if config.exists():
            found = re.search(rf"^CONFIG_{name}=(.*)$", config.read_text(), re.M)
            return found[1] if found else None
    raise AssertionError(f"no build config of {release} under {base}")


def config_hz(sample: Any) -> int:
    """``CONFIG_HZ`` of the sample's kernel."""
    value = config_value(sample, "HZ")
    assert value is not None, f"{sample.kernel_release}'s config has no CONFIG_HZ"
    return int(value)


def jiffies_uptime(prog: drgn.Program, hz: int) -> int:
    """Whole seconds of jiffies since boot: ``INITIAL_JIFFIES`` is ``(unsigned int)(-300*HZ)``
    (include/linux/jiffies.h), so jiffies wrap five minutes after boot."""
    initial = (-300 * hz) & 0xFFFFFFFF
    return (prog["jiffies_64"].value_() - initial) // hz
