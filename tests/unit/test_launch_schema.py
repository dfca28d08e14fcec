"""The extension's launch.json schema and the adapter's LaunchConfig name the same settings.

The schema is what VS Code offers and validates as the user types; LaunchConfig is what the adapter
reads. A setting in one but not the other is either silently ignored or impossible to discover, and a
schema default that the adapter reads differently from the setting's absence changes what a user gets
by accepting a suggestion.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from vmcore_dap.dump.opening.launch_config import LaunchConfig

REPO = Path(__file__).resolve().parents[2]
#: Read by the extension only (how to start the adapter, where it logs).
EXTENSION_ONLY = {"python", "adapterPath", "logFile"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _schema() -> dict[str, Any]:
    package = json.loads((REPO / "vscode-extension" / "package.json").read_text())
    (debugger,) = [d for d in package["contributes"]["debuggers"] if d["type"] == "vmcore"]
    launch: dict[str, Any] = debugger["configurationAttributes"]["launch"]
    return launch


def test_schema_and_launch_config_name_the_same_settings() -> None:
    adapter = {_camel(f.name) for f in dataclasses.fields(LaunchConfig)}
    schema = set(_schema()["properties"]) - EXTENSION_ONLY
    assert schema == adapter, (
        f"only in the schema: {schema - adapter}; only in the adapter: {adapter - schema}"
    )


def test_every_schema_default_is_the_adapters_default() -> None:
    """Accepting every default the schema offers gives the configuration of leaving them all out."""
    properties = _schema()["properties"]
    defaults = {
        name: prop["default"]
        for name, prop in properties.items()
        if name not in EXTENSION_ONLY and name != "vmcore"
    }
    assert set(defaults) == {_camel(f.name) for f in dataclasses.fields(LaunchConfig)} - {"vmcore"}
    bare = LaunchConfig.from_arguments({"vmcore": "/nonexistent/vmcore"})
    assert LaunchConfig.from_arguments({"vmcore": "/nonexistent/vmcore", **defaults}) == bare
    assert bare.debug_info_directories is None  # the adapter's own search (debuginfo.default_debug_dirs)
    assert _schema()["required"] == ["vmcore"]
