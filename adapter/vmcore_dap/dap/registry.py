"""The table of request handlers, keyed by the exact DAP command name.

A command is *routed* (:func:`route`) to the module that answers it, with the ``initialize``
capabilities its handler makes true: the ``initialize`` response (:func:`capabilities`) is built from
the routes before any handler module is imported, and a module is imported on the first request of one
of its commands (issue 18: the first picture should not wait for the Kernel view, the disassembler or
the structures pane). The model is VS Code's own: an extension declares its commands in
``package.json`` and its code is loaded on their first use.

Handlers register with :func:`request` when their module is imported. A routed command's capabilities
and thread are those of its route; a handler registered in another module than its route names, or a
routed module that does not register its command, is refused with a clear error, so an advertised
capability always has a handler behind it. Unrouted commands (the channel's tests) register directly.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmcore_dap.dap.args import Args
    from vmcore_dap.dap.session import Session
    from vmcore_dap.dap.transport import EncodedBody

__all__ = [
    "Handler",
    "HandlerFunc",
    "NeedsWorker",
    "Route",
    "capabilities",
    "load",
    "lookup",
    "registered_commands",
    "request",
    "route",
    "running_direct",
]

#: A handler returns the response body: a dict, already-encoded JSON, or ``None`` for no body.
HandlerFunc = Callable[["Session", "Args"], "dict[str, Any] | EncodedBody | None"]


class NeedsWorker(Exception):
    """Raised by a ``direct`` handler running on the reader thread, before it changed anything, when
    this request would run long (a ``stackTrace`` of a thread not listed yet finishes listing a large
    dump's tasks: seconds at 50,000): the channel then queues the request for the worker instead, so
    that the reader goes on reading ``cancel`` and answering ``threads`` meanwhile."""


#: Whether the current thread runs a ``direct`` request in the reader's place (:func:`running_direct`).
_direct_run = threading.local()


def running_direct() -> bool:
    """Whether the calling code runs as a ``direct`` request on the reader thread: then it must raise
    :class:`NeedsWorker` rather than start long work."""
    return getattr(_direct_run, "active", False)


def set_running_direct(active: bool) -> None:
    """Mark the current thread as running a ``direct`` request, or no longer (the channel's own)."""
    _direct_run.active = active


@dataclass(frozen=True)
class Route:
    """Where a command's handler lives, known before its module is imported.

    :param module: the module whose import registers the handler (with :func:`request`).
    :param inline: run on the reader thread instead of the drgn worker. Only for handlers that never
        touch drgn (``initialize``, ``cancel``, ``threads`` from its cached table), so the adapter keeps
        answering them while a long request runs.
    :param capabilities: ``initialize`` capability names this handler makes true.
    :param direct: may run on the reader thread when the worker is idle and no request waits for it
        (still one drgn user at a time: :class:`~vmcore_dap.dap.channel.Channel` holds the worker off).
        Saves the hand-over to the worker and back, a third of a lock-step request's cost when a
        client asks ``stackTrace`` of each of 50,000 threads. Only for short requests that clients
        send by the thousand: while one runs there, no other request (``cancel`` included) is read.
    """

    command: str
    module: str
    inline: bool = False
    capabilities: tuple[str, ...] = ()
    direct: bool = False


@dataclass(frozen=True)
class Handler:
    """One request handler as the channel dispatches it (:class:`Route` for the parameters).

    For a routed command whose module is not imported yet, ``func`` imports it, then runs the handler
    it registered: on the thread the request runs on, so a worker request's import never holds up the
    reader thread.
    """

    command: str
    func: HandlerFunc
    inline: bool
    capabilities: tuple[str, ...]
    direct: bool = False


_ROUTES: dict[str, Route] = {}
_HANDLERS: dict[str, Handler] = {}

#: Capabilities that describe behaviour of handlers rather than the presence of one.
_EXTRA_CAPABILITIES: dict[str, Any] = {}

_load_lock = threading.Lock()


def route(routes: Iterable[Route]) -> None:
    """Declare where each command's handler lives (idempotent; a different route for a command that
    has one, or a route for a command registered unrouted, is a programming error)."""
    for entry in routes:
        known = _ROUTES.get(entry.command)
        if known is not None and known != entry:
            raise RuntimeError(f"two routes for DAP request {entry.command!r}: {known} and {entry}")
        if known is None and entry.command in _HANDLERS:
            raise RuntimeError(f"DAP request {entry.command!r} is routed after its handler registered")
        _ROUTES[entry.command] = entry


def request(
    command: str, *, capabilities: Iterable[str] = (), inline: bool = False, direct: bool = False
) -> Callable[[HandlerFunc], HandlerFunc]:
    """Register the decorated function as the handler of ``command``.

    The function receives the session and the request's ``arguments`` wrapped in
    :class:`~vmcore_dap.dap.args.Args` (typed getters with clear errors) and returns the response
    ``body`` (or ``None``). It reports failure by raising; the channel turns any exception into a
    ``success: false`` response. A routed command takes its capabilities and thread from its route
    (``capabilities``, ``inline`` and ``direct`` are for unrouted commands only).
    """

    def register(func: HandlerFunc) -> HandlerFunc:
        if command in _HANDLERS:
            raise RuntimeError(f"two handlers for DAP request {command!r}")
        entry = _ROUTES.get(command)
        if entry is None:
            _HANDLERS[command] = Handler(command, func, inline, tuple(capabilities), direct)
            return func
        if func.__module__ != entry.module:
            raise RuntimeError(f"DAP request {command!r} is routed to {entry.module}, not {func.__module__}")
        if inline or direct or tuple(capabilities):
            raise RuntimeError(f"DAP request {command!r}: its thread and capabilities are in its route")
        _HANDLERS[command] = Handler(command, func, entry.inline, entry.capabilities, entry.direct)
        return func

    return register


def declare_capability(name: str, value: Any = True) -> None:
    """Advertise a capability that is a property of handlers (e.g. value formatting)."""
    _EXTRA_CAPABILITIES[name] = value


def load(command: str) -> Handler:
    """Return the handler of a routed ``command``, importing its module first if need be.

    :raises RuntimeError: the module cannot be imported, or does not register ``command`` (a broken
        installation): the channel answers the request with ``success: false`` and logs the traceback.
    """
    handler = _HANDLERS.get(command)
    if handler is not None:
        return handler
    entry = _ROUTES[command]
    # One load at a time: the reader, the worker and launch's import while indexing may ask at once,
    # and two threads importing modules that import each other can each see the other half-done.
    with _load_lock:
        try:
            importlib.import_module(entry.module)
        except Exception as exc:
            raise RuntimeError(
                f"cannot load its handler ({entry.module}: {type(exc).__name__}: {exc}); "
                "the installation is broken (reinstall vmcore-dap)"
            ) from exc
    handler = _HANDLERS.get(command)
    if handler is None:
        raise RuntimeError(f"{entry.module} does not register a handler for it")
    return handler


def lookup(command: str) -> Handler | None:
    """Return the handler of ``command`` (one that imports its module on its first call), or ``None``."""
    handler = _HANDLERS.get(command)
    if handler is not None:
        return handler
    entry = _ROUTES.get(command)
    if entry is None:
        return None

    def load_and_run(session: Session, args: Args) -> dict[str, Any] | EncodedBody | None:
        return load(command).func(session, args)

    return Handler(command, load_and_run, entry.inline, entry.capabilities, entry.direct)


def registered_commands() -> list[str]:
    """Return every command with a handler or a route, sorted."""
    return sorted(set(_HANDLERS) | set(_ROUTES))


def capabilities() -> dict[str, Any]:
    """Build the ``initialize`` response body from the routes and the registered handlers."""
    caps: dict[str, Any] = {}
    for command in registered_commands():
        handler = lookup(command)
        assert handler is not None
        for name in handler.capabilities:
            caps[name] = True
    caps.update(_EXTRA_CAPABILITIES)
    return dict(sorted(caps.items()))


def extra_capabilities() -> Mapping[str, Any]:
    """Return the declared non-handler capabilities (for tests)."""
    return dict(_EXTRA_CAPABILITIES)
