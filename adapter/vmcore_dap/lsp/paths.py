"""Map DWARF file names to files on this machine and back, as the adapter maps its stack frames.

Forward mapping is the adapter's own :class:`~vmcore_dap.dump.sources.source_map.SourceMap`
(``sourceFileMap``/``sourceRoot``, then the distribution build layouts under ``sourceRoot``; only files
inside those roots and the ``debugInfo`` directories), so the editor and the Call Stack always agree on
which file a DWARF name means. The language server
also needs the way back (an open document → the DWARF names that mean it) to put code lenses and
diagnostics on the right file; that is answered from the names it has mapped forward.
"""

from __future__ import annotations

import os
from pathlib import Path

import drgn

from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.sources.source_map import SourceMap

__all__ = ["PathMapper", "code_location"]


def code_location(prog: drgn.Program, address: int) -> tuple[str, int] | None:
    """Return (DWARF file name, line) of the function containing ``address`` itself.

    ``prog.source_location`` lists inlined functions first; the last entry is the function whose
    code this is.
    """
    try:
        locations = prog.source_location(address)
    except (LookupError, ValueError):
        return None
    if not len(locations):
        return None
    outer = locations[len(locations) - 1]
    return (outer.filename, outer.line) if outer.filename else None


def _canonical(path: str) -> str:
    return os.path.realpath(path)


class PathMapper:
    """DWARF file name ↔ local path for one launch configuration."""

    def __init__(self, config: LaunchConfig) -> None:
        # The adapter's own map, confinement included: the editor is never sent to a file outside
        # sourceRoot, the sourceFileMap targets and the debugInfo directories.
        self._map = SourceMap.from_config(config)
        self._targets = [Path(target) for target in config.source_file_map.values()]
        self._roots = [config.source_root] if config.source_root is not None else []
        self._forward: dict[str, str | None] = {}
        self._backward: dict[str, set[str]] = {}

    @property
    def roots(self) -> list[Path]:
        """Every local directory the configuration names as holding sources."""
        return list(dict.fromkeys([*self._roots, *self._targets]))

    def local(self, dwarf_path: str) -> str | None:
        """Return the existing local file that ``dwarf_path`` names, or ``None``."""
        if dwarf_path in self._forward:
            return self._forward[dwarf_path]
        resolved = self._map.resolve(dwarf_path)
        found = resolved.path if resolved.exists else None
        if found is not None:
            found = _canonical(found)
            self._backward.setdefault(found, set()).add(dwarf_path)
        self._forward[dwarf_path] = found
        return found

    def same_file(self, dwarf_path: str, local_path: str) -> bool:
        """Whether DWARF's ``dwarf_path`` is the document at ``local_path``."""
        found = self.local(dwarf_path)
        return found is not None and found == _canonical(local_path)

    def dwarf_hint(self, local_path: str) -> str:
        """A suffix of ``local_path`` that drgn's ``filename=`` lookups match (tree-relative if possible)."""
        canonical = _canonical(local_path)
        known = self._backward.get(canonical)
        if known:
            return min(known, key=len)
        for root in self.roots:
            root_text = _canonical(str(root))
            if canonical.startswith(root_text.rstrip("/") + "/"):
                return canonical[len(root_text.rstrip("/")) + 1 :]
        return os.path.basename(canonical)
