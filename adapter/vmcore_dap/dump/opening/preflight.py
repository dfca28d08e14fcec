"""The checks of a launch configuration that need no dump opened, as one list of problems.

A client runs them before it starts a debug session (``vmcore-dap --check-launch``: the VS Code
extension does, to explain a bad setting in a notification with "Open launch.json" instead of a failed
session). They are the very checks :func:`~.opener.open_dump` and the ``launch`` request make — the
settings' types (:class:`~.launch_config.LaunchConfig`), the vmcore's headers
(:func:`~.vmcore_file.inspect_vmcore`), the vmlinux against the dump's build ID
(:func:`~.debuginfo.check_vmlinux`), the module debug info paths (:func:`~.debuginfo.module_file_index`),
the source directories (:meth:`~.launch_config.LaunchConfig.directory_problems`) — so there is one
authority on what a configuration may say, and one wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from vmcore_dap.dump.opening import debuginfo
from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.opening.vmcore_file import inspect_vmcore
from vmcore_dap.errors import SettingError

__all__ = ["Problem", "check_launch"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a setting.

    :param severity: ``"error"``: the session cannot start; ``"warning"``: it starts, with less.
    """

    setting: str
    message: str
    severity: Literal["error", "warning"]

    @classmethod
    def of(cls, error: SettingError, severity: Literal["error", "warning"] = "error") -> Problem:
        return cls(error.setting, error.message, severity)


def check_launch(raw: Mapping[str, Any]) -> list[Problem]:
    """Check the ``launch`` arguments ``raw`` without opening the dump; an empty list when all is well."""
    try:
        config = LaunchConfig.from_arguments(raw)
    except SettingError as exc:
        return [Problem.of(exc)]
    problems: list[Problem] = []
    build_id: str | None = None
    try:
        build_id = inspect_vmcore(config.vmcore).build_id
    except SettingError as exc:
        problems.append(Problem.of(exc))
    if config.vmlinux is not None:
        try:
            debuginfo.check_vmlinux(config.vmlinux, build_id)
        except SettingError as exc:
            problems.append(Problem.of(exc))
    try:
        debuginfo.module_file_index(config.debug_info)
    except SettingError as exc:
        problems.append(Problem.of(exc))
    problems += [Problem.of(exc, "warning") for exc in config.directory_problems()]
    return problems
