"""The server's configuration: the adapter's launch configuration, from the client's options.

A client sends it as ``initializationOptions`` or in ``workspace/didChangeConfiguration``, either
as the launch configuration itself (``{"vmcore": …, "vmlinux": …}``, the keys of launch.json) or
under one of the keys ``launch``, ``vmcoreDap`` or ``vmcore-dap`` (how editors nest settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vmcore_dap.dump.opening.launch_config import LaunchConfig

__all__ = ["launch_config_from", "NESTING_KEYS"]

NESTING_KEYS = ("launch", "vmcoreDap", "vmcore-dap")


def _find(options: Any) -> Mapping[str, Any] | None:
    if not isinstance(options, Mapping):
        return None
    if "vmcore" in options:
        return options
    for key in NESTING_KEYS:
        found = _find(options.get(key))
        if found is not None:
            return found
    return None


def launch_config_from(options: Any) -> LaunchConfig | None:
    """Return the launch configuration found in ``options``, or ``None`` when there is none.

    :raises InvalidArguments: when a configuration is there but a setting is wrong.
    """
    found = _find(options)
    return LaunchConfig.from_arguments(found) if found is not None else None
