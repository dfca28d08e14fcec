"""Which of the paths on the command line are vmcores: files as given, directories searched.

A directory of dumps holds more than dumps (``vmcore-dmesg.txt``, ``vmlinux``, module ``.ko`` files,
logs), so a file found in a directory counts only when its first bytes are a vmcore's: a
kdump-compressed or flattened header, or an ELF *core* file (a ``vmlinux`` and a ``.ko`` are ELF too,
but executables and relocatable objects). A file named on the command line is always triaged, so
one that is not a vmcore gets a report saying so instead of silently disappearing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from vmcore_dap.dump.opening.vmcore_file import vmcore_format

__all__ = ["find_vmcores"]


def find_vmcores(paths: Iterable[Path]) -> list[Path]:
    """Return the dumps named by ``paths`` (absolute, each once, in a stable order).

    :param paths: files (triaged whatever they are) and directories (searched recursively, symbolic
        links to directories not followed).
    """
    found: dict[Path, None] = {}
    for path in paths:
        path = path.absolute()
        if not path.is_dir():
            found.setdefault(path)
            continue
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                candidate = Path(root) / name
                if candidate.is_file() and vmcore_format(candidate) is not None:
                    found.setdefault(candidate)
    return list(found)
