"""Sequence numbers, the read loop, dispatch, and the one place where handler exceptions stop.

Requests run in arrival order on a single worker thread (drgn's ``Program`` is not meant for
concurrent use), except handlers registered ``inline``, which run on the reader thread so that
``cancel``, ``threads`` and ``disconnect`` are answered while a long request is still running, and
handlers registered ``direct`` (``stackTrace``), which the reader thread runs itself when the worker
is idle and nothing waits for it: the worker is held off meanwhile, so drgn still has one user at a
time and requests are still answered in arrival order, without two thread switches per request (one
that turns out long raises :class:`~.registry.NeedsWorker` and queues after all). Work
that no request waits for (listing a large dump's tasks after the stop) runs on the same worker in
steps, whenever no request is waiting, or only once the client has been quiet for a while
(:meth:`Channel.run_when_idle`).
Whatever a handler raises becomes a ``success: false`` response; the adapter itself never dies on a
request.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.dap.transport import MalformedMessage, Transport
from vmcore_dap.errors import AdapterError, Cancelled

__all__ = ["Channel", "ErrorTranslator"]

log = logging.getLogger(__name__)

#: Turns a foreign exception (e.g. one of drgn's) into an :class:`AdapterError`, or returns ``None``.
ErrorTranslator = Callable[[BaseException], "AdapterError | None"]

_INTERNAL_ERROR_ID = 1999


class Channel:
    """Serve one DAP connection.

    :param transport: the framed message stream.
    :param translate_error: maps exceptions of lower layers to user-facing errors.
    :param log_path: named in internal-error messages so the user knows where the traceback went.
    """

    def __init__(
        self,
        transport: Transport,
        translate_error: ErrorTranslator | None = None,
        log_path: str | None = None,
    ) -> None:
        self._transport = transport
        self._translate_error = translate_error
        self._log_path = log_path
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        # Requests waiting for the worker; ``None`` tells it to stop.
        self._pending: collections.deque[dict[str, Any] | None] = collections.deque()
        self._pending_ready = threading.Condition()
        # Held by whichever thread runs a request or a background step that may use drgn (the worker,
        # or the reader for a ``direct`` request); taken by the worker before it takes a request.
        self._busy = threading.Lock()
        # Background jobs, run a step at a time when no request waits; a step returns True when done.
        # Each with the quiet time it waits for (seconds since the last request was answered).
        self._idle_jobs: collections.deque[tuple[Callable[[], bool], float]] = collections.deque()
        #: When the last request was answered (``time.monotonic()``; a float store is atomic).
        self._last_answer = time.monotonic()
        self._worker: threading.Thread | None = None
        self._nested = False
        self._cancelled: set[int] = set()
        self._progress_requests: dict[str, int] = {}
        self._cancel_lock = threading.Lock()
        self._stopping = threading.Event()
        self.session = Session(self)

    # -- services for the session -----------------------------------------------------------
    def send_event(self, event: str, body: Mapping[str, Any] | None = None) -> None:
        """Send an event message."""
        message: dict[str, Any] = {"type": "event", "event": event}
        if body is not None:
            message["body"] = dict(body)
        self._send(message)

    def stop(self) -> None:
        """Stop reading after the current message."""
        self._stopping.set()

    def is_cancelled(self, seq: int) -> bool:
        """Whether the client sent ``cancel`` for request ``seq``."""
        with self._cancel_lock:
            return seq in self._cancelled

    def cancel(self, request_id: int | None = None, progress_id: str | None = None) -> None:
        """Mark a request (directly or through its progress id) as cancelled."""
        with self._cancel_lock:
            if request_id is not None:
                self._cancelled.add(request_id)
            if progress_id is not None and progress_id in self._progress_requests:
                self._cancelled.add(self._progress_requests[progress_id])

    def run_when_idle(self, job: Callable[[], bool], quiet: float = 0.0) -> None:
        """Run ``job`` on the worker, one step (one call) at a time, whenever no request is waiting,
        until a step returns ``True``. A step that raises ends the job (logged). Jobs run one after
        another, in the order given.

        :param quiet: run a step only once no request was answered for this many seconds: work a
            client may never need then stays out of the way of a burst of requests (each would
            wait for the step under way), and of a client asking lock-step.
        """
        with self._pending_ready:
            self._idle_jobs.append((job, quiet))
            self._pending_ready.notify()

    def link_progress(self, progress_id: str, seq: int) -> None:
        """Remember which request a progress report belongs to, for cancel by ``progressId``."""
        with self._cancel_lock:
            self._progress_requests[progress_id] = seq

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        """Read and dispatch messages until end of input or ``disconnect``."""
        worker = threading.Thread(target=self._work, name="vmcore-dap-worker", daemon=True)
        self._worker = worker
        worker.start()
        try:
            while not self._stopping.is_set():
                try:
                    message = self._transport.read_message()
                except MalformedMessage as exc:
                    log.warning("malformed message: %s", exc)
                    self._respond_error(0, "unknown", f"Malformed DAP message: {exc}", 1007)
                    continue
                if message is None:
                    log.info("client closed the connection")
                    break
                self._dispatch(message)
        finally:
            self._enqueue(None)
            if not self._stopping.is_set():
                worker.join(timeout=5)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind != "request":
            if kind not in ("response", "event"):
                self._respond_error(
                    _seq_of(message),
                    "unknown",
                    f"Malformed DAP message: unknown type {kind!r}",
                    1007,
                )
            return
        seq = message.get("seq")
        command = message.get("command")
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(command, str):
            self._respond_error(
                _seq_of(message),
                command if isinstance(command, str) else "unknown",
                "Malformed DAP request: 'seq' must be an integer and 'command' a string",
                1007,
            )
            return
        arguments = message.get("arguments", {})
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            self._respond_error(seq, command, f"{command}: 'arguments' must be an object", 1002)
            return
        handler = registry.lookup(command)
        if handler is None:
            self._respond_error(
                seq,
                command,
                f"Unsupported request '{command}': vmcore-dap does not implement it",
                1008,
                show_user=False,
            )
            return
        request = {"seq": seq, "command": command, "arguments": arguments}
        if handler.inline:
            self._execute(handler, request)
        elif handler.direct and self._hold_worker():
            try:
                # A cancel may have come before it was read; a long one goes to the worker after all.
                ran = self._run_queued(request, direct=True)
            finally:
                self._busy.release()
            if not ran:
                self._enqueue(request)
        else:
            self._enqueue(request)

    def _hold_worker(self) -> bool:
        """Take the worker's place when it is idle and no request waits (then the caller runs the
        request and releases :attr:`_busy`); ``False`` when the request must queue behind others."""
        with self._pending_ready:
            return not self._pending and self._busy.acquire(blocking=False)

    def _enqueue(self, request: dict[str, Any] | None) -> None:
        with self._pending_ready:
            self._pending.append(request)
            self._pending_ready.notify()

    def _work(self) -> None:
        while True:
            with self._pending_ready:
                while not self._pending and not self._job_due():
                    self._pending_ready.wait(self._job_wait())
            # Never wait for the reader's direct request while holding the queue's lock: its handler
            # may queue background work (:meth:`run_when_idle`).
            with self._busy:
                job = None
                request: dict[str, Any] | None = None
                with self._pending_ready:
                    if self._pending:
                        request = self._pending.popleft()
                        if request is None:
                            return
                    elif self._job_due():
                        job = self._idle_jobs[0][0]
                if request is not None:
                    self._run_queued(request)
                elif job is not None:
                    self._run_step(job)

    def _job_due(self) -> bool:
        """Whether the first background job may run a step now (hold :attr:`_pending_ready`)."""
        if not self._idle_jobs:
            return False
        return self._last_answer + self._idle_jobs[0][1] <= time.monotonic()

    def _job_wait(self) -> float | None:
        """How long the worker may sleep before the first background job is due (``None``: no job)."""
        if not self._idle_jobs:
            return None
        return max(self._last_answer + self._idle_jobs[0][1] - time.monotonic(), 0.0)

    def _run_step(self, job: Callable[[], bool]) -> None:
        try:
            finished = job()
        except Exception:  # noqa: BLE001 - a background job never stops the worker
            log.exception("background job %s failed", getattr(job, "__name__", job))
            finished = True
        if finished:
            with self._pending_ready:
                if self._idle_jobs and self._idle_jobs[0][0] is job:
                    self._idle_jobs.popleft()

    def _run_queued(self, request: dict[str, Any], *, direct: bool = False) -> bool:
        """Run a request taken from the queue (or, ``direct``, in the worker's place); ``False`` only
        when its ``direct`` handler asked for the worker (:class:`~.registry.NeedsWorker`) and it
        was not answered."""
        handler = registry.lookup(request["command"])
        assert handler is not None
        if self.is_cancelled(request["seq"]):
            self._respond_exception(request["seq"], request["command"], Cancelled(request["command"]))
            return True
        return self._execute(handler, request, direct=direct)

    def serve_pending(self) -> None:
        """Answer requests that arrived while a long request runs (call it between its chunks).

        Runs on the worker thread, so drgn is still used by one thread at a time; the long request is
        paused at a safe point while the others run. One level only: a request served here cannot
        serve others. Console commands (``evaluate`` in the ``repl`` context) are not nested: they
        share the console's state, so they and everything behind them wait for the long one.
        """
        if self._nested or threading.current_thread() is not self._worker:
            return
        self._nested = True
        try:
            while True:
                with self._pending_ready:
                    if not self._pending or not _may_nest(self._pending[0]):
                        return
                    request = self._pending.popleft()
                assert request is not None
                self._run_queued(request)
        finally:
            self._nested = False

    def _execute(self, handler: registry.Handler, request: dict[str, Any], *, direct: bool = False) -> bool:
        """Run a request's handler and answer it; ``False`` (nothing answered) only when it ran
        ``direct`` and raised :class:`~.registry.NeedsWorker`."""
        seq, command = request["seq"], request["command"]
        session = self.session
        after, previous = session._begin(seq, command)
        try:
            try:
                if direct:
                    registry.set_running_direct(True)
                try:
                    body = handler.func(session, Args(command, request["arguments"]))
                finally:
                    if direct:
                        registry.set_running_direct(False)
            except BaseException as exc:  # noqa: BLE001 - the one exception boundary
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                if direct and isinstance(exc, registry.NeedsWorker):
                    log.debug("%s #%d goes to the worker: %s", command, seq, exc)
                    return False
                self._respond_exception(seq, command, exc)
                return True
            response: dict[str, Any] = {
                "type": "response",
                "request_seq": seq,
                "success": True,
                "command": command,
            }
            if body is not None:
                response["body"] = body
            self._send(response)
            for callback in after:
                try:
                    callback()
                except Exception as exc:  # noqa: BLE001 - reported, never fatal
                    log.exception("after-response work of %s failed", command)
                    error = self._as_adapter_error(command, exc)
                    self.send_event("output", {"category": "important", "output": error.message + "\n"})
        finally:
            session._end(previous)
        with self._cancel_lock:
            self._cancelled.discard(seq)
        return True

    # -- error responses --------------------------------------------------------------------
    def _as_adapter_error(self, command: str, exc: BaseException) -> AdapterError:
        if isinstance(exc, AdapterError):
            return exc
        if self._translate_error is not None:
            try:
                translated = self._translate_error(exc)
            except Exception:  # noqa: BLE001
                log.exception("error translator failed")
                translated = None
            if translated is not None:
                return translated
        if isinstance(exc, RecursionError):
            return AdapterError(f"{command}: the value is nested too deeply to show")
        where = f" (the traceback is in the adapter log {self._log_path})" if self._log_path else ""
        error = AdapterError(f"Internal adapter error in {command}: {type(exc).__name__}: {exc}{where}")
        error.error_id = _INTERNAL_ERROR_ID
        return error

    def _respond_exception(self, seq: int, command: str, exc: BaseException) -> None:
        error = self._as_adapter_error(command, exc)
        if error.error_id == _INTERNAL_ERROR_ID:
            log.error("%s failed:\n%s", command, "".join(traceback.format_exception(exc)))
        else:
            log.info("%s failed: %s", command, error.message)
        self._respond_error(seq, command, error.message, error.error_id, show_user=error.show_user)

    def _respond_error(
        self, seq: int, command: str, message: str, error_id: int, *, show_user: bool = True
    ) -> None:
        if seq < 1:
            # No request to answer (DAP's request_seq must be >= 1): tell the user in the console.
            self.send_event("output", {"category": "important", "output": f"vmcore-dap: {message}\n"})
            return
        self._send(
            {
                "type": "response",
                "request_seq": seq,
                "success": False,
                "command": command,
                "message": message,
                "body": {
                    "error": {
                        "id": error_id,
                        "format": message,
                        "showUser": show_user,
                    }
                },
            }
        )

    def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "response":
            self._last_answer = time.monotonic()
        with self._seq_lock:
            message["seq"] = next(self._seq)
            try:
                self._transport.write_message(message)
            except (BrokenPipeError, ConnectionError, ValueError) as exc:
                log.warning("cannot send to the client any more: %s", exc)
                self._stopping.set()


def _may_nest(request: dict[str, Any] | None) -> bool:
    if request is None:
        return False
    if request["command"] == "evaluate":
        return request["arguments"].get("context") != "repl"
    return request["command"] not in ("launch", "disconnect", "terminate")


def _seq_of(message: Mapping[str, Any]) -> int:
    seq = message.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
