"""The extension's launch.json schema and the adapter's LaunchConfig name the same settings.

The schema is what VS Code offers and validates as the user types; LaunchConfig is what the adapter
reads. A setting in one but not the other is either silently ignored or impossible to discover.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from vmcore_dap.dump.opening.launch_config import LaunchConfig

REPO = Path(__file__).resolve().parents[2]
#: Read by the extension only (how to start the adapter, where it logs).
EXTENSION_ONLY = {"python", "adapterPath", "logFile"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _schema() -> dict:
    package = json.loads((REPO / "vscode-extension" / "package.json").read_text())
    (debugger,) = [d for d in package["contributes"]["debuggers"] if d["type"] == "vmcore"]
    return debugger["configurationAttributes"]["launch"]


def test_schema_and_launch_config_name_the_same_settings() -> None:
    adapter = {_camel(f.name) for f in dataclasses.fields(LaunchConfig)}
    schema = set(_schema()["properties"]) - EXTENSION_ONLY
    assert schema == adapter, (
        f"only in the schema: {schema - adapter}; only in the adapter: {adapter - schema}"
    )


def test_schema_defaults_match_the_adapter() -> None:
    properties = _schema()["properties"]
    parsed = LaunchConfig.from_arguments({"vmcore": "/nonexistent/vmcore"})
    assert properties["stopOnPanic"]["default"] is parsed.stop_on_panic is True
    assert properties["debuginfod"]["default"] is parsed.debuginfod is None
    assert _schema()["required"] == ["vmcore"]
