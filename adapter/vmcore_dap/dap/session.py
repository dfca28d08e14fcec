"""Per-connection state that handlers share, and the services the channel offers them.

A :class:`Session` is what every handler receives. It sends events, schedules work to run after the
current response (DAP wants ``stopped`` only after ``configurationDone`` is answered), reports progress,
and checks for cancellation. Areas keep their own state as *components*: ``session.component(Cls)``
creates one instance of ``Cls`` per session on first use, so no module needs to know another's state.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from vmcore_dap.errors import Cancelled

if TYPE_CHECKING:
    from vmcore_dap.dap.channel import Channel

__all__ = ["PROGRESS_INTERVAL", "Session", "Progress"]

#: Seconds between two updates of a progress over every task of a dump (:class:`Progress`): reported
#: every 64 tasks, listing or grouping 50,000 tasks sent about 800 updates each.
PROGRESS_INTERVAL = 0.1

T = TypeVar("T")


class _RequestContext(threading.local):
    seq: int | None = None
    command: str = ""
    after: list[Callable[[], None]] | None = None


class Progress:
    """A running DAP progress report; a no-op when the client did not ask for progress events.

    :param interval: send an update only this many seconds after the last one sent (the others are
        dropped; cancellation is still checked on each). Work that reports every few dozen tasks of
        50,000 sent 800 updates in 4 s, and VS Code redraws its progress for every one.
    """

    def __init__(self, session: Session, progress_id: str | None, interval: float = 0.0) -> None:
        self._session = session
        self.progress_id = progress_id
        self._ended = False
        self._interval = interval
        self._last_sent: float | None = None

    def end(self) -> None:
        """Send ``progressEnd`` (once)."""
        if self.progress_id is not None and not self._ended:
            self._ended = True
            self._session.send_event("progressEnd", {"progressId": self.progress_id})

    def update(self, message: str | None = None, percentage: float | None = None) -> None:
        """Report how far the work is, and honour a cancel of this progress or its request."""
        self._session.check_cancelled()
        if self.progress_id is None:
            return
        if self._interval:
            now = time.monotonic()
            if self._last_sent is not None and now - self._last_sent < self._interval:
                return
            self._last_sent = now
        body: dict[str, Any] = {"progressId": self.progress_id}
        if message is not None:
            body["message"] = message
        if percentage is not None:
            body["percentage"] = max(0.0, min(100.0, float(percentage)))
        self._session.send_event("progressUpdate", body)


class Session:
    """State and services of one DAP connection.

    :param channel: the channel that owns the connection.
    """

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._components: dict[type, Any] = {}
        self._components_lock = threading.Lock()
        self._context = _RequestContext()
        self._progress_ids = itertools.count(1)
        #: ``initialize`` arguments as the client sent them.
        self.client: dict[str, Any] = {}

    # -- components -------------------------------------------------------------------------
    def component(self, cls: type[T]) -> T:
        """Return this session's single instance of ``cls``, creating it with ``cls()`` first."""
        found = self._components.get(cls)  # a dict read is atomic: no lock once created
        if found is not None:
            return found  # type: ignore[no-any-return]
        # Inline handlers (reader thread) and queued ones (worker) may ask first at the same time.
        with self._components_lock:
            try:
                return self._components[cls]  # type: ignore[no-any-return]
            except KeyError:
                instance = cls()
                self._components[cls] = instance
                return instance

    # -- messages ---------------------------------------------------------------------------
    def send_event(self, event: str, body: dict[str, Any] | None = None) -> None:
        """Send a DAP event now (from any thread)."""
        self._channel.send_event(event, body)

    def output(self, text: str, category: str = "console", **extra: Any) -> None:
        """Print ``text`` in the client's Debug Console."""
        body: dict[str, Any] = {"category": category, "output": text}
        body.update(extra)
        self.send_event("output", body)

    def after_response(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` right after the current request's response has been sent."""
        if self._context.after is None:
            raise RuntimeError("after_response() called outside a request handler")
        self._context.after.append(callback)

    def close(self) -> None:
        """Stop serving this connection once the current response is sent."""
        self._channel.stop()

    # -- cancellation and progress ----------------------------------------------------------
    @property
    def current_request(self) -> tuple[int | None, str]:
        """``(seq, command)`` of the request being handled on this thread."""
        return self._context.seq, self._context.command

    def cancel(self, request_id: int | None, progress_id: str | None) -> None:
        """Cancel another request of this session, by its seq or by its progress id."""
        self._channel.cancel(request_id, progress_id)

    def run_when_idle(self, job: Callable[[], bool], quiet: float = 0.0) -> None:
        """Run ``job`` a step at a time whenever no request waits, until a step returns ``True``
        (for work no request waits for, on the drgn thread).

        :param quiet: only once no request was answered for this many seconds.
        """
        self._channel.run_when_idle(job, quiet)

    def serve_pending(self) -> None:
        """Let requests that arrived meanwhile run now (long handlers call this between chunks)."""
        self._channel.serve_pending()

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the client cancelled the request being handled."""
        seq = self._context.seq
        if seq is not None and self._channel.is_cancelled(seq):
            raise Cancelled(self._context.command)

    @property
    def supports_progress(self) -> bool:
        """Whether the client announced ``supportsProgressReporting``."""
        return bool(self.client.get("supportsProgressReporting"))

    def start_progress(
        self, title: str, message: str | None = None, cancellable: bool = True, interval: float = 0.0
    ) -> Progress:
        """Start a DAP progress report (``progressStart``); end it with :meth:`Progress.end`.

        :param cancellable: whether the client may offer to cancel it (a cancel then cancels the
            request the work belongs to); ``False`` for work that must finish.
        :param interval: the least time between two updates sent (:class:`Progress`).
        """
        if not self.supports_progress:
            return Progress(self, None)
        progress_id = f"vmcore-dap-{next(self._progress_ids)}"
        start: dict[str, Any] = {"progressId": progress_id, "title": title, "cancellable": cancellable}
        if cancellable and self._context.seq is not None:
            start["requestId"] = self._context.seq
            self._channel.link_progress(progress_id, self._context.seq)
        if message:
            start["message"] = message
        self.send_event("progressStart", start)
        return Progress(self, progress_id, interval)

    @contextmanager
    def progress(
        self, title: str, message: str | None = None, cancellable: bool = True, interval: float = 0.0
    ) -> Iterator[Progress]:
        """Report long work as DAP progress events (start, updates, end): :meth:`start_progress` for
        the length of a ``with`` block."""
        progress = self.start_progress(title, message, cancellable, interval)
        try:
            yield progress
        finally:
            progress.end()

    # -- used by the channel ----------------------------------------------------------------
    def _begin(
        self, seq: int, command: str
    ) -> tuple[list[Callable[[], None]], tuple[int | None, str, list[Callable[[], None]] | None]]:
        """Make ``seq`` the request handled on this thread; return its after-response list and what
        to give :meth:`_end` (the request it interrupted, when one is served inside another). Two
        calls, not a context manager: this runs for each of 50,000 ``stackTrace`` requests."""
        context = self._context
        after: list[Callable[[], None]] = []
        previous = (context.seq, context.command, context.after)
        context.seq, context.command, context.after = seq, command, after
        return after, previous

    def _end(self, previous: tuple[int | None, str, list[Callable[[], None]] | None]) -> None:
        """Undo :meth:`_begin`."""
        context = self._context
        context.seq, context.command, context.after = previous
