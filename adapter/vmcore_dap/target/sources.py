"""Map the file names DWARF records to files on this machine.

A distribution kernel's DWARF names most files relative to the build directory (``kernel/kthread.c``)
and a few absolutely (``/build/reproducible-path/linux-6.1.192/arch/x86/entry/entry_64.S``); an
out-of-tree module names them as they were where it was built. ``sourceFileMap`` rewrites absolute
prefixes (the longest matching prefix wins, on path-component boundaries, as cppdbg does) and
``sourceRoot`` anchors relative names. When neither finds the file, the distribution build layouts of
:mod:`.source_layouts` (Debian, Ubuntu, RHEL, hand builds) are tried under ``sourceRoot``, so a
``linux-source`` tree opens ``/usr/src/debug/kernel-…/linux-…/kernel/fork.c`` without a hand-written
``sourceFileMap``. This class is the one place that maps DWARF names for the adapter: stack frames,
disassembly, ``source`` and ``loadedSources`` all ask it.

A mapped path never leaves its root through ``..``: such a name is left as DWARF wrote it. A file that
is not on disk still keeps a path (the mapped one when a rule or the root applied), so the frame names it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vmcore_dap.target.source_layouts import resolve_in_roots

__all__ = ["SourceMap", "ResolvedSource"]


@dataclass(frozen=True)
class ResolvedSource:
    """Where a DWARF file name points on this machine.

    :param path: the local path (mapped if a rule applied, else the DWARF name made absolute when
        possible).
    :param exists: whether ``path`` is a readable file.
    """

    path: str
    exists: bool

    @property
    def name(self) -> str:
        """The basename, for display."""
        return os.path.basename(self.path)


def _inside(root: str, candidate: str) -> bool:
    return candidate == root or candidate.startswith(root.rstrip(os.sep) + os.sep)


def _join_within(root: str, relative: str) -> str | None:
    """Join ``relative`` under ``root``; ``None`` if ``..`` would climb out of it."""
    root_norm = os.path.normpath(root)
    joined = os.path.normpath(os.path.join(root_norm, relative))
    return joined if _inside(root_norm, joined) else None


class SourceMap:
    """Resolve DWARF file names with ``sourceFileMap`` and ``sourceRoot``.

    :param file_map: DWARF prefix → local directory.
    :param root: where relative DWARF names are resolved (a kernel source tree), or ``None``.
    """

    def __init__(self, file_map: Mapping[str, str] | None = None, root: Path | str | None = None) -> None:
        rules = [
            (os.path.normpath(prefix) if prefix.startswith("/") else prefix.rstrip("/"), target)
            for prefix, target in (file_map or {}).items()
            if prefix
        ]
        # Longest prefix first, so /build/linux/drivers beats /build/linux.
        self._rules = sorted(rules, key=lambda rule: len(rule[0]), reverse=True)
        self._root = str(root) if root is not None else None
        self._cache: dict[str, ResolvedSource] = {}

    def resolve(self, dwarf_path: str) -> ResolvedSource:
        """Return the local path for ``dwarf_path`` and whether it exists."""
        cached = self._cache.get(dwarf_path)
        if cached is not None:
            return cached
        result = self._resolve(dwarf_path)
        self._cache[dwarf_path] = result
        return result

    def _resolve(self, dwarf_path: str) -> ResolvedSource:
        mapped = self._mapped(dwarf_path)
        if mapped is not None and os.path.isfile(mapped):
            return ResolvedSource(mapped, True)
        found = self._from_layouts(dwarf_path)
        if found is not None:
            return ResolvedSource(found, True)
        if mapped is not None:
            return ResolvedSource(mapped, False)
        return ResolvedSource(dwarf_path, False)

    def _mapped(self, dwarf_path: str) -> str | None:
        """Apply the first matching ``sourceFileMap`` rule, else ``sourceRoot`` to a relative name."""
        normalized = os.path.normpath(dwarf_path) if dwarf_path.startswith("/") else dwarf_path
        for prefix, target in self._rules:
            if normalized == prefix:
                rest = ""
            elif normalized.startswith(prefix.rstrip("/") + "/"):
                rest = normalized[len(prefix.rstrip("/")) + 1 :]
            else:
                continue
            mapped = _join_within(target, rest) if rest else os.path.normpath(target)
            if mapped is not None:
                return mapped
        if not dwarf_path.startswith("/") and self._root is not None:
            return _join_within(self._root, dwarf_path)
        return None

    def _from_layouts(self, dwarf_path: str) -> str | None:
        """An absolute name that exists as is, else the distribution layouts under ``sourceRoot``."""
        roots = [self._root] if self._root is not None else []
        hit = resolve_in_roots(dwarf_path, roots)
        if hit is None:
            return None
        found = str(hit)
        if found == str(Path(dwarf_path)) or any(_inside(os.path.normpath(root), found) for root in roots):
            return found
        return None  # a layout candidate outside every root: never shown
