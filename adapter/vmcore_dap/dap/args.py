"""Typed access to request arguments, with errors that name the request and the field.

A client that sends ``"threadId": "7"`` gets "stackTrace: 'threadId' must be an integer (got a
string)" instead of a ``KeyError`` traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from vmcore_dap.errors import InvalidArguments

__all__ = ["Args"]

T = TypeVar("T")

_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    str: "a string",
    dict: "an object",
    list: "an array",
}


def _describe(value: object) -> str:
    if value is None:
        return "null"
    for kind, name in _TYPE_NAMES.items():
        if type(value) is kind:
            return name
    if isinstance(value, float):
        return "a number with a fraction"
    return type(value).__name__


class Args:
    """Wrap one request's ``arguments`` object.

    :param command: the request name, used in error messages.
    :param raw: the arguments as received.
    """

    def __init__(self, command: str, raw: Mapping[str, Any]) -> None:
        self.command = command
        self.raw = raw

    def _get(self, key: str, kind: type[T], required: bool, default: T | None) -> T | None:
        if key not in self.raw or self.raw[key] is None:
            if required:
                raise InvalidArguments(f"{self.command}: missing required argument '{key}'")
            return default
        value = self.raw[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise InvalidArguments(
                f"{self.command}: '{key}' must be {_TYPE_NAMES.get(kind, kind.__name__)} "
                f"(got {_describe(value)})"
            )
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int | None = None) -> int:
        """Return a required integer (or ``default`` when given and the key is absent)."""
        value = self._get(key, int, default is None, default)
        assert value is not None
        if minimum is not None and value < minimum:
            raise InvalidArguments(f"{self.command}: '{key}' must be at least {minimum} (got {value})")
        return value

    def opt_integer(self, key: str) -> int | None:
        """Return an optional integer."""
        return self._get(key, int, False, None)

    def string(self, key: str, default: str | None = None) -> str:
        """Return a required string (or ``default`` when given and the key is absent)."""
        value = self._get(key, str, default is None, default)
        assert value is not None
        return value

    def opt_string(self, key: str) -> str | None:
        """Return an optional string."""
        return self._get(key, str, False, None)

    def boolean(self, key: str, default: bool) -> bool:
        """Return a boolean with a default."""
        value = self._get(key, bool, False, default)
        assert value is not None
        return value

    def obj(self, key: str) -> dict[str, Any]:
        """Return an optional object (empty when absent)."""
        value = self._get(key, dict, False, {})
        assert value is not None
        return value

    def string_list(self, key: str) -> list[str]:
        """Return an optional list of strings (empty when absent)."""
        value = self._get(key, list, False, [])
        assert value is not None
        for item in value:
            if not isinstance(item, str):
                raise InvalidArguments(
                    f"{self.command}: '{key}' must be a list of strings (found {_describe(item)})"
                )
        return value
