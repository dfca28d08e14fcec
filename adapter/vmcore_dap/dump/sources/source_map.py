"""Map the file names DWARF records to files on this machine.

A distribution kernel's DWARF names most files relative to the build directory (``kernel/kthread.c``)
and a few absolutely (``/build/reproducible-path/linux-6.1.192/arch/x86/entry/entry_64.S``); an
out-of-tree module names them as they were where it was built. ``sourceFileMap`` rewrites absolute
prefixes (the longest matching prefix wins, on path-component boundaries, as cppdbg does) and
``sourceRoot`` anchors relative names. When neither finds the file, the distribution build layouts of
:mod:`.layouts` (Debian, Ubuntu, RHEL, hand builds) are tried under ``sourceRoot``, so a
``linux-source`` tree opens ``/usr/src/debug/kernel-…/linux-…/kernel/fork.c`` without a hand-written
``sourceFileMap``. This class is the one place that maps DWARF names for the adapter: stack frames,
disassembly, ``source`` and ``loadedSources`` all ask it.

Files are read only inside the configured roots. A DWARF name is whatever the module's builder (or a
hostile dump's author) wrote, so a file is opened only when its real path (``os.path.realpath``: ``..``
folded, symbolic links followed) lies inside ``sourceRoot``, a ``sourceFileMap`` target, or the
directory of a ``debugInfo`` entry (a module's sources next to the ``.ko`` the user pointed at). Any
other file, even one that exists, is reported as :attr:`ResolvedSource.outside_roots`: the frame still
names the DWARF path and line and shows the disassembly, with the launch setting that would open it.
A file that is not on disk still keeps a path (the mapped one when a rule or the root applied), so the
frame names it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.sources.layouts import resolve_in_roots
from vmcore_dap.errors import NotAvailable, UserError

__all__ = ["SourceMap", "ResolvedSource", "OUTSIDE_ROOTS_HINT", "module_source_dirs"]

#: What to do about a file outside every root, for messages ("… (<hint>)").
OUTSIDE_ROOTS_HINT = (
    "add its directory to the launch setting 'sourceRoot' or 'sourceFileMap', or list the module's "
    ".ko file in 'debugInfo'"
)


@dataclass(frozen=True)
class ResolvedSource:
    """Where a DWARF file name points on this machine.

    :param path: the local path (mapped if a rule applied, else the DWARF name made absolute when
        possible).
    :param exists: whether ``path`` is a readable file inside the configured roots (the only files
        the adapter reads).
    :param outside_roots: a file was found for the name but lies outside every configured root
        (its real path is not under ``sourceRoot``, a ``sourceFileMap`` target or a ``debugInfo``
        directory), so it is not read; ``exists`` is then false.
    """

    path: str
    exists: bool
    outside_roots: bool = False

    @property
    def name(self) -> str:
        """The basename, for display."""
        return os.path.basename(self.path)


def module_source_dirs(debug_info: Iterable[Path | str]) -> list[Path]:
    """The directories a ``debugInfo`` list allows sources to be read from: a file's own directory
    (``labbug.c`` next to ``labbug.ko``), a directory itself."""
    dirs: list[Path] = []
    for entry in debug_info:
        path = Path(entry)
        dirs.append(path if path.is_dir() else path.parent)
    return dirs


def _inside(root: str, candidate: str) -> bool:
    return candidate == root or candidate.startswith(root.rstrip(os.sep) + os.sep)


def _join_within(root: str, relative: str) -> str | None:
    """Join ``relative`` under ``root``; ``None`` if ``..`` would climb out of it."""
    root_norm = os.path.normpath(root)
    joined = os.path.normpath(os.path.join(root_norm, relative))
    return joined if _inside(root_norm, joined) else None


class SourceMap:
    """Resolve DWARF file names with ``sourceFileMap`` and ``sourceRoot``, inside the configured roots.

    :param file_map: DWARF prefix → local directory.
    :param root: where relative DWARF names are resolved (a kernel source tree), or ``None``.
    :param module_dirs: more directories whose files may be read (see :func:`module_source_dirs`).
    """

    def __init__(
        self,
        file_map: Mapping[str, str] | None = None,
        root: Path | str | None = None,
        module_dirs: Iterable[Path | str] = (),
    ) -> None:
        rules = [
            (os.path.normpath(prefix) if prefix.startswith("/") else prefix.rstrip("/"), target)
            for prefix, target in (file_map or {}).items()
            if prefix
        ]
        # Longest prefix first, so /build/linux/drivers beats /build/linux.
        self._rules = sorted(rules, key=lambda rule: len(rule[0]), reverse=True)
        self._root = str(root) if root is not None else None
        allowed = [*([self._root] if self._root else []), *(t for _p, t in rules), *map(str, module_dirs)]
        #: Real paths of every directory files may be read from.
        self._allowed = list(dict.fromkeys(os.path.realpath(d) for d in allowed if d))
        self._cache: dict[str, ResolvedSource] = {}

    @classmethod
    def from_config(cls, config: LaunchConfig) -> SourceMap:
        """The map of a launch configuration: its ``sourceFileMap``, ``sourceRoot`` and ``debugInfo``."""
        return cls(config.source_file_map, config.source_root, module_source_dirs(config.debug_info))

    @property
    def allowed_dirs(self) -> list[str]:
        """The real paths of the directories files are read from."""
        return list(self._allowed)

    def allows(self, path: str) -> bool:
        """Whether the file at ``path`` (after ``..`` and symbolic links) lies inside a configured root."""
        real = os.path.realpath(path)
        return any(_inside(root, real) for root in self._allowed)

    def resolve(self, dwarf_path: str) -> ResolvedSource:
        """Return the local path for ``dwarf_path`` and whether it may be read."""
        cached = self._cache.get(dwarf_path)
        if cached is not None:
            return cached
        result = self._resolve(dwarf_path)
        self._cache[dwarf_path] = result
        return result

    def read(self, path: str, what: str = "source") -> str:
        """Return the text of the file a client names by ``path`` (a DWARF name or a local path),
        read only from inside the configured roots.

        :param what: what is reading, to start error messages with.
        :raises UserError: when the file lies outside every configured root (the message says which
            setting would allow it).
        :raises NotAvailable: when the file is not on this machine.
        """
        resolved = self.resolve(path)
        if resolved.exists:
            return Path(resolved.path).read_text(errors="replace")
        if resolved.outside_roots:
            raise UserError(
                f"{what}: file '{path}' is outside the configured source roots, so it is not read "
                f"({OUTSIDE_ROOTS_HINT})"
            )
        raise NotAvailable(
            f"{what}: file '{path}' is not on this machine (set 'sourceRoot' or 'sourceFileMap')"
        )

    def _resolve(self, dwarf_path: str) -> ResolvedSource:
        refused: list[str] = []

        def readable(path: str) -> bool:
            if not os.path.isfile(path):
                return False
            if self.allows(path):
                return True
            refused.append(path)
            return False

        mapped = self._mapped(dwarf_path)
        if mapped is not None and readable(mapped):
            return ResolvedSource(mapped, True)
        found = self._from_layouts(dwarf_path, readable)
        if found is not None:
            return ResolvedSource(found, True)
        shown = mapped if mapped is not None else dwarf_path
        return ResolvedSource(shown, False, outside_roots=bool(refused))

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

    def _from_layouts(self, dwarf_path: str, readable: Callable[[str], bool]) -> str | None:
        """The absolute name as is when it lies in a root (a module's ``labbug.c`` next to its
        ``.ko``), else the distribution layouts under ``sourceRoot``."""
        if dwarf_path.startswith("/") and readable(os.path.normpath(dwarf_path)):
            return os.path.normpath(dwarf_path)
        roots = [self._root] if self._root is not None else []
        hit = resolve_in_roots(dwarf_path, roots, exists=lambda p: readable(str(p)))
        return str(hit) if hit is not None else None
