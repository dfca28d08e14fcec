"""The table of request handlers, keyed by the exact DAP command name.

Handlers register with :func:`request`. The ``initialize`` response's capabilities are computed from
this table (:func:`capabilities`), so an advertised capability always has a handler behind it and a
handler is never hidden from the client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmcore_dap.dap.args import Args
    from vmcore_dap.dap.session import Session
    from vmcore_dap.dap.transport import EncodedBody

__all__ = ["Handler", "HandlerFunc", "request", "lookup", "capabilities", "registered_commands"]

#: A handler returns the response body: a dict, already-encoded JSON, or ``None`` for no body.
HandlerFunc = Callable[["Session", "Args"], "dict[str, Any] | EncodedBody | None"]


@dataclass(frozen=True)
class Handler:
    """One registered request handler.

    :param inline: run on the reader thread instead of the drgn worker. Only for handlers that never
        touch drgn (``initialize``, ``cancel``, ``threads`` from its cached table), so the adapter keeps
        answering them while a long request runs.
    :param capabilities: ``initialize`` capability names this handler makes true.
    """

    command: str
    func: HandlerFunc
    inline: bool
    capabilities: tuple[str, ...]


_HANDLERS: dict[str, Handler] = {}

#: Capabilities that describe behaviour of handlers rather than the presence of one.
_EXTRA_CAPABILITIES: dict[str, Any] = {}


def request(
    command: str, *, capabilities: Iterable[str] = (), inline: bool = False
) -> Callable[[HandlerFunc], HandlerFunc]:
    """Register the decorated function as the handler of ``command``.

    The function receives the session and the request's ``arguments`` wrapped in
    :class:`~vmcore_dap.dap.args.Args` (typed getters with clear errors) and returns the response
    ``body`` (or ``None``). It reports failure by raising; the channel turns any exception into a
    ``success: false`` response.
    """

    def register(func: HandlerFunc) -> HandlerFunc:
        if command in _HANDLERS:
            raise RuntimeError(f"two handlers for DAP request {command!r}")
        _HANDLERS[command] = Handler(command, func, inline, tuple(capabilities))
        return func

    return register


def declare_capability(name: str, value: Any = True) -> None:
    """Advertise a capability that is a property of registered handlers (e.g. value formatting)."""
    _EXTRA_CAPABILITIES[name] = value


def lookup(command: str) -> Handler | None:
    """Return the handler of ``command`` or ``None``."""
    return _HANDLERS.get(command)


def registered_commands() -> list[str]:
    """Return every registered command name, sorted."""
    return sorted(_HANDLERS)


def capabilities() -> dict[str, Any]:
    """Build the ``initialize`` response body from the registered handlers."""
    caps: dict[str, Any] = {}
    for handler in _HANDLERS.values():
        for name in handler.capabilities:
            caps[name] = True
    caps.update(_EXTRA_CAPABILITIES)
    return dict(sorted(caps.items()))


def extra_capabilities() -> Mapping[str, Any]:
    """Return the declared non-handler capabilities (for tests)."""
    return dict(_EXTRA_CAPABILITIES)
