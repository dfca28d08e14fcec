"""Which drgn plugins load when the adapter opens a dump.

drgn loads every ``drgn.plugins`` entry point in the process's first ``Program.set_core_dump``: 77 ms
of CPU on the way to the first picture (issue 18). The two plugins drgn ships are only its command
sets (``drgn.commands._builtin`` and ``drgn.commands._crash``, which imports ``drgn.helpers.linux``:
30–40 ms); the Debug Console imports both itself on its first command line
(:mod:`vmcore_dap.dump.console.namespace`) and ``launch`` imports ``drgn.helpers.linux``
(:mod:`vmcore_dap.handlers.launch`), so loading them at the open buys nothing. A user's own plugins
(type, object or debug-info finders registered in ``drgn_prog_set``) are not ours to drop: when one is
installed, only drgn's two are switched off and drgn's loader runs as usual. When none is, drgn is
told to skip its entry-point machinery altogether, which saves importing ``importlib.metadata``
(≈ 25 ms: ``email``, ``zipfile``, ``csv``). Whether one is installed is read from the same
``*.dist-info``/``*.egg-info`` ``entry_points.txt`` files ``importlib.metadata`` would read, on the same
``sys.path`` (≈ 1 ms).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["DRGN_OWN_PLUGINS", "other_plugins_installed", "skip_drgn_plugins"]

#: drgn's plugin switch (comma-separated plugin-name patterns, ``*`` for all), read once per process
#: by the first ``Program.set_core_dump``.
DRGN_DISABLE_PLUGINS = "DRGN_DISABLE_PLUGINS"

#: The variable that names plugins to load explicitly; if the user set it, drgn's rules apply untouched.
DRGN_PLUGINS = "DRGN_PLUGINS"

#: The ``drgn.plugins`` entry points drgn itself ships (drgn 0.3's entry_points.txt): its command sets.
DRGN_OWN_PLUGINS = ("builtin_commands", "crash_commands")

_GROUP_HEADER = "[drgn.plugins]"
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def _distribution_name(metadata_dir: str) -> str:
    """``drgn`` for ``drgn-0.3.0.dist-info``: the project part of a metadata directory's name."""
    stem = metadata_dir.rsplit(".", 1)[0]
    return stem.split("-", 1)[0].lower()


def _declares_plugins(metadata_path: str) -> bool:
    try:
        with open(os.path.join(metadata_path, "entry_points.txt"), encoding="utf-8") as text:
            return any(line.strip() == _GROUP_HEADER for line in text)
    except OSError:
        return False


def other_plugins_installed(path: Sequence[str]) -> bool:
    """Whether a distribution other than drgn on ``path`` declares a ``drgn.plugins`` entry point."""
    for entry in path:
        try:
            with os.scandir(entry or ".") as listing:
                found = [item.path for item in listing if item.name.endswith(_METADATA_SUFFIXES)]
        except OSError:  # a missing directory or a zip file: importlib.metadata finds no plugin there either
            continue
        for metadata_path in found:
            if _distribution_name(os.path.basename(metadata_path)) == "drgn":
                continue
            if _declares_plugins(metadata_path):
                return True
    return False


def skip_drgn_plugins(path: Sequence[str] | None = None) -> None:
    """Set :data:`DRGN_DISABLE_PLUGINS` before the dump is opened, unless the user set either variable.

    ``*`` when no other distribution declares a drgn plugin (drgn then skips its entry-point scan),
    else drgn's own two names, so that every plugin of the user's still loads.
    """
    if DRGN_PLUGINS in os.environ or DRGN_DISABLE_PLUGINS in os.environ:
        return
    others = other_plugins_installed(sys.path if path is None else path)
    os.environ[DRGN_DISABLE_PLUGINS] = ",".join(DRGN_OWN_PLUGINS) if others else "*"
