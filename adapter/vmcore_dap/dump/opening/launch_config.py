"""The ``launch`` configuration, parsed and checked once, with the same names as the extension's schema.

Keys the adapter does not use (``type``, ``name``, ``request``, ``python``, ``adapterPath``,
``logFile``, ``__sessionId``, anything a client adds) are ignored, so launch.json files stay portable
between clients. Paths expand ``~``; relative paths are taken from the adapter's working directory
(VS Code resolves ``${workspaceFolder}`` before they arrive).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmcore_dap.dump.opening.debuginfod import debuginfod_enabled
from vmcore_dap.errors import SettingError

__all__ = ["LaunchConfig"]

_WHERE = "launch"


def _path(value: str) -> Path:
    return Path(value).expanduser()


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _string(raw: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise SettingError(
                f"{_WHERE}: missing required setting '{key}' (set it to the path of the crash dump, "
                "e.g. /var/crash/<date>/vmcore)",
                key,
            )
        return None
    if not isinstance(value, str):
        raise SettingError(f"{_WHERE}: '{key}' must be a string (got {_kind(value)})", key)
    return value


def _string_list(raw: Mapping[str, Any], key: str) -> list[str]:
    value = raw.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingError(f"{_WHERE}: '{key}' must be a list of paths (got {_kind(value)})", key)
    return [item for item in value if item]


@dataclass(frozen=True)
class LaunchConfig:
    """What to open and how to present it.

    :param vmcore: the dump (kdump-compressed, flattened or ELF).
    :param vmlinux: the kernel with debug info; ``None`` to search ``debug_info_directories`` by build ID.
    :param debug_info: module debug files (``.ko``, ``.ko.debug``) or directories of them.
    :param debug_info_directories: where to look for the vmlinux and modules; ``None`` for the standard
        directories (:func:`~vmcore_dap.dump.opening.debuginfo.default_debug_dirs`), which is also what an
        empty list means: the schema's default ``[]`` must not narrow the search to nothing.
    :param source_file_map: DWARF path prefix → local directory.
    :param source_root: a kernel source tree for DWARF's relative paths (``kernel/kthread.c``).
    :param stop_on_panic: stop on the crashed task with reason ``exception`` (else ``pause``).
    :param debuginfod: fetch debug info that is not found locally from debuginfod servers, by build
        ID; ``None`` (the default) means "when ``DEBUGINFOD_URLS`` is set", ``False`` never asks even
        then (see :func:`vmcore_dap.dump.opening.debuginfod.debuginfod_enabled`).
    """

    vmcore: Path
    vmlinux: Path | None = None
    debug_info: tuple[Path, ...] = ()
    debug_info_directories: tuple[Path, ...] | None = None
    source_file_map: dict[str, str] = field(default_factory=dict)
    source_root: Path | None = None
    stop_on_panic: bool = True
    debuginfod: bool | None = None

    def directory_problems(self) -> list[SettingError]:
        """Source directories that are not directories: the session works, without their files."""
        problems = []
        if self.source_root is not None and not self.source_root.is_dir():
            problems.append(
                SettingError(
                    f"Kernel source tree '{self.source_root}' is not a directory, so kernel sources will "
                    "not open (fix 'sourceRoot' or remove it)",
                    "sourceRoot",
                )
            )
        for prefix, target in self.source_file_map.items():
            if not Path(target).is_dir():
                problems.append(
                    SettingError(
                        f"'{prefix}' is mapped to '{target}', which is not a directory, so sources under "
                        "it will not open (fix 'sourceFileMap')",
                        "sourceFileMap",
                    )
                )
        return problems

    @property
    def use_debuginfod(self) -> bool:
        """Whether missing debug info is asked from debuginfod (the setting, else ``DEBUGINFOD_URLS``)."""
        return debuginfod_enabled(self.debuginfod)

    @classmethod
    def from_arguments(cls, raw: Mapping[str, Any]) -> LaunchConfig:
        """Parse the ``launch`` request's arguments.

        :raises SettingError: naming the setting and what it must be.
        """
        vmcore = _string(raw, "vmcore", required=True)
        assert vmcore is not None
        vmlinux = _string(raw, "vmlinux")
        source_root = _string(raw, "sourceRoot")
        mapping = raw.get("sourceFileMap")
        if mapping is None:
            mapping = {}
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise SettingError(
                f"{_WHERE}: 'sourceFileMap' must map path prefixes to local directories, e.g. "
                '{"/build/linux-6.1": "${workspaceFolder}/linux"} (got ' + _kind(mapping) + ")",
                "sourceFileMap",
            )
        stop = raw.get("stopOnPanic", True)
        if stop is None:
            stop = True
        if not isinstance(stop, bool):
            raise SettingError(
                f"{_WHERE}: 'stopOnPanic' must be true or false (got {_kind(stop)})", "stopOnPanic"
            )
        debuginfod = raw.get("debuginfod")
        if debuginfod is not None and not isinstance(debuginfod, bool):
            raise SettingError(
                f"{_WHERE}: 'debuginfod' must be true, false or null (got {_kind(debuginfod)}; "
                "leave it out to ask debuginfod exactly when DEBUGINFOD_URLS is set)",
                "debuginfod",
            )
        return cls(
            vmcore=_path(vmcore),
            vmlinux=_path(vmlinux) if vmlinux else None,
            debug_info=tuple(_path(p) for p in _string_list(raw, "debugInfo")),
            debug_info_directories=tuple(_path(p) for p in _string_list(raw, "debugInfoDirectories")) or None,
            source_file_map={k: str(_path(v)) for k, v in mapping.items() if k},
            source_root=_path(source_root) if source_root else None,
            stop_on_panic=stop,
            debuginfod=debuginfod,
        )
