"""System-call numbers by architecture, from the host's kernel headers (linux-libc-dev): the ABI the
tests name a task's system call by, independently of the adapter's own table."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["syscall_names"]

#: Where each architecture's numbers are: x86-64's own table; arm64 uses the generic one.
_HEADERS = {
    "amd64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "arm64": Path("/usr/include/asm-generic/unistd.h"),
}


def syscall_names(arch: str) -> dict[int, str]:
    """{number: name} of ``arch``'s system calls (``amd64`` or ``arm64``, as samples name them)."""
    text = _HEADERS[arch].read_text()
    names: dict[int, str] = {}
    for name, number in re.findall(r"#define __NR(?:3264)?_(\w+) (\d+)", text):
        names.setdefault(int(number), name)
    return names
