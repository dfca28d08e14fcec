"""Validate adapter messages against the official DAP JSON schema (../shared/spec/).

Each message is checked against the definition of its kind: ``<Command>Response`` for successful
responses (``ErrorResponse`` for failures), ``<Event>Event`` for events. Our own custom requests and
events (prefixed ``vmcore/``) are exempt from the per-kind check but still validated as a generic
``Response``/``Event``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

__all__ = ["validate_message", "spec_path"]

REPO = Path(__file__).resolve().parents[2]


def spec_path() -> Path:
    """Locate ``debugAdapterProtocol.json`` in ``shared/spec`` beside the checkout."""
    for candidate in (
        REPO.parent / "shared" / "spec" / "debugAdapterProtocol.json",
        Path("/work/shared/spec/debugAdapterProtocol.json"),
    ):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("debugAdapterProtocol.json not found in ../shared/spec beside the repository")


@functools.cache
def _definitions() -> dict[str, Any]:
    return json.loads(spec_path().read_text())["definitions"]


@functools.cache
def _validator(name: str) -> jsonschema.Draft7Validator:
    schema = {"$ref": f"#/definitions/{name}", "definitions": _definitions()}
    return jsonschema.Draft7Validator(schema)


def _kind_of(message: dict[str, Any]) -> str:
    defs = _definitions()
    kind = message.get("type")
    if kind == "response":
        if not message.get("success"):
            return "ErrorResponse"
        command = str(message.get("command", ""))
        name = command[:1].upper() + command[1:] + "Response"
        return name if name in defs else "Response"
    if kind == "event":
        event = str(message.get("event", ""))
        name = event[:1].upper() + event[1:] + "Event"
        return name if name in defs else "Event"
    return "ProtocolMessage"


def validate_message(message: dict[str, Any]) -> str | None:
    """Return a description of what is wrong with ``message``, or ``None`` if it conforms."""
    name = _kind_of(message)
    errors = sorted(_validator(name).iter_errors(message), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    details = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:5])
    return f"{name} violates the DAP schema: {details}\n  message: {json.dumps(message)[:500]}"
