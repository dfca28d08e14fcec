"""Dispatch, the one exception boundary, inline vs worker handlers, cancel, and capabilities.

The channel runs on real pipes in a thread, exactly as over stdio; test-only handlers are registered
under names no client sends (``_test…``) and advertise no capability.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.channel import Channel
from vmcore_dap.dap.session import Session
from vmcore_dap.dap.transport import Transport
from vmcore_dap.dump.errors import translate_error
from vmcore_dap.errors import NotAvailable, UserError
from vmcore_dap.handlers import ROUTES, load_all
from vmcore_dap.handlers.lifecycle import REFUSED_COMMANDS

load_all()
_release = threading.Event()


@registry.request("_testEcho")
def _echo(session: Session, args: Args) -> dict[str, Any]:
    return {"got": args.integer("n"), "thread": threading.current_thread().name}


@registry.request("_testInline", inline=True)
def _inline(session: Session, args: Args) -> dict[str, Any]:
    return {"thread": threading.current_thread().name}


#: Set while ``_testBlock`` runs.
_blocking = threading.Event()


@registry.request("_testBlock")
def _block(session: Session, args: Args) -> None:
    _blocking.set()
    try:
        _release.wait(10)
    finally:
        _blocking.clear()


#: How long ``_testLong`` works unless cancelled: far longer than a cancel takes even on a loaded
#: machine, so a test that sees it end by itself has found a cancel that did not work.
_LONG_S = 20.0


@registry.request("_testLong")
def _long(session: Session, args: Args) -> None:
    with session.progress("long work") as progress:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < _LONG_S:
            progress.update(f"{elapsed:.1f} s", 100 * elapsed / _LONG_S)
            time.sleep(0.01)


#: How long ``_testSteps`` reports progress, updating every millisecond, with at most one update sent
#: per :data:`_STEP_INTERVAL`.
_STEPS_S = 0.5
_STEP_INTERVAL = 0.1


@registry.request("_testSteps")
def _steps(session: Session, args: Args) -> dict[str, Any]:
    updates = 0
    with session.progress("steps", interval=_STEP_INTERVAL) as progress:
        start = time.monotonic()
        while time.monotonic() - start < _STEPS_S:
            progress.update(f"{updates} updates")
            updates += 1
            time.sleep(0.001)
    return {"updates": updates}


@registry.request("_testRaise")
def _raise(session: Session, args: Args) -> None:
    kind = args.string("kind")
    if kind == "user":
        raise UserError("Cannot open vmcore '/x': not a kdump or ELF core file (check the path)")
    if kind == "quiet":
        raise NotAvailable("<optimized out>")
    if kind == "after":
        session.after_response(lambda: 1 / 0)
        return
    raise KeyError("boom")


@registry.request("_testAfter")
def _after(session: Session, args: Args) -> None:
    session.after_response(lambda: session.send_event("stopped", {"reason": "pause", "threadId": 1}))


#: When each step of ``_testQuietJob``'s background job ran (``time.monotonic()``).
_job_steps: list[float] = []
#: Steps of ``_testQuietJob``'s job, each this long: the job lasts far longer than a request takes.
_JOB_STEPS, _JOB_STEP_S = 60, 0.01


@registry.request("_testQuietJob")
def _quiet_job(session: Session, args: Args) -> None:
    """Start a background job of :data:`_JOB_STEPS` steps that waits for ``quiet_ms`` without a
    request before each step."""
    _job_steps.clear()

    def step() -> bool:
        time.sleep(_JOB_STEP_S)
        _job_steps.append(time.monotonic())
        return len(_job_steps) >= _JOB_STEPS

    session.run_when_idle(step, quiet=args.integer("quiet_ms") / 1000)


#: Whether a step of ``_testBusyJob``'s background job is running, and what ``_testDirect`` saw.
_in_step = threading.Event()
_direct_saw_step: list[bool] = []


@registry.request("_testDirect", direct=True)
def _direct(session: Session, args: Args) -> dict[str, Any]:
    _direct_saw_step.append(_in_step.is_set())
    time.sleep(args.integer("sleep_ms", 0) / 1000)
    return {"got": args.integer("n"), "thread": threading.current_thread().name}


#: Set by ``_testDirectLong`` once it runs for real (on the worker).
_long_direct_started = threading.Event()


@registry.request("_testDirectLong", direct=True)
def _direct_long(session: Session, args: Args) -> dict[str, Any]:
    """A direct request that turns out long (as a ``stackTrace`` of a thread not listed yet): on the
    reader it asks for the worker; there it runs until :data:`_release`."""
    if registry.running_direct():
        raise registry.NeedsWorker("long")
    _long_direct_started.set()
    assert _release.wait(10)
    return {"thread": threading.current_thread().name}


@registry.request("_testBusyJob")
def _busy_job(session: Session, args: Args) -> None:
    """Start a background job of short steps that runs until ``_release`` is set."""

    def step() -> bool:
        _in_step.set()
        time.sleep(0.002)
        _in_step.clear()
        return _release.is_set()

    session.run_when_idle(step)


class Harness:
    """A channel on pipes, read back message by message."""

    def __init__(self) -> None:
        in_r, self._in_w = os.pipe()
        out_r, out_w = os.pipe()
        self._to_adapter = os.fdopen(self._in_w, "wb")
        self._from_adapter = Transport(os.fdopen(out_r, "rb"), open(os.devnull, "wb"))
        transport = Transport(os.fdopen(in_r, "rb"), os.fdopen(out_w, "wb"))
        self.channel = Channel(transport, translate_error=translate_error)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.thread.start()
        threading.Thread(target=self._read, daemon=True).start()
        self._seq = 0
        #: Responses read while waiting for another one (a worker's response may overtake the
        #: reader thread's answer to a later request, e.g. a cancelled request and its ``cancel``).
        self._responses: dict[int, dict[str, Any]] = {}
        #: ``request_seq`` of each response read, in the order the adapter sent them.
        self.response_order: list[int] = []

    def _run(self) -> None:
        self.channel.run()

    def _read(self) -> None:
        while True:
            try:
                message = self._from_adapter.read_message()
            except Exception:  # noqa: BLE001
                return
            if message is None:
                return
            self.messages.put(message)

    def raw(self, data: bytes) -> None:
        self._to_adapter.write(data)
        self._to_adapter.flush()

    def send(self, command: str, arguments: Any = None, **extra: Any) -> int:
        self._seq += 1
        message = {"seq": self._seq, "type": "request", "command": command, **extra}
        if arguments is not None:
            message["arguments"] = arguments
        body = json.dumps(message).encode()
        self.raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self._seq

    def next(self, timeout: float = 10) -> dict[str, Any]:
        return self.messages.get(timeout=timeout)

    def response(self, seq: int, timeout: float = 10) -> dict[str, Any]:
        """The response to request ``seq``, in whatever order responses arrive; events are skipped."""
        deadline = time.monotonic() + timeout
        while seq not in self._responses:
            message = self.next(max(0.01, deadline - time.monotonic()))
            if message.get("type") == "response" and isinstance(message.get("request_seq"), int):
                self._responses[message["request_seq"]] = message
                self.response_order.append(message["request_seq"])
        return self._responses.pop(seq)

    def close(self) -> None:
        self._to_adapter.close()
        self.thread.join(5)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    _release.set()
    h.close()


pytestmark = pytest.mark.timeout(30)


def test_worker_handler_runs_on_the_drgn_worker_and_inline_on_the_reader(harness: Harness) -> None:
    r = harness.response(harness.send("_testEcho", {"n": 5}))
    assert r["success"] and r["body"] == {"got": 5, "thread": "vmcore-dap-worker"}
    r = harness.response(harness.send("_testInline"))
    assert r["body"]["thread"] != "vmcore-dap-worker"


def test_inline_requests_are_answered_while_the_worker_is_busy(harness: Harness) -> None:
    _release.clear()
    blocked = harness.send("_testBlock")
    r = harness.response(harness.send("threads"), timeout=3)
    assert r["success"] and r["body"] == {"threads": []}
    _release.set()
    assert harness.response(blocked)["success"]


def test_unknown_command_bad_arguments_and_bad_envelopes_get_error_responses(harness: Harness) -> None:
    r = harness.response(harness.send("frobnicate"))
    assert not r["success"] and "Unsupported request 'frobnicate'" in r["message"]
    assert r["body"]["error"]["id"] == 1008
    r = harness.response(harness.send("_testEcho", ["not", "an", "object"]))
    assert not r["success"] and r["message"] == "_testEcho: 'arguments' must be an object"
    r = harness.response(harness.send("_testEcho", {"n": "5"}))
    assert r["message"] == "_testEcho: 'n' must be an integer (got a string)"
    r = harness.response(harness.send("_testEcho", {}))
    assert r["message"] == "_testEcho: missing required argument 'n'"
    harness.raw(b'Content-Length: 9\r\n\r\n{"seq": 1')
    # Nothing to answer (no usable seq; DAP wants request_seq >= 1): said in the console instead.
    r = harness.next()
    assert r["type"] == "event" and r["event"] == "output" and r["body"]["category"] == "important"
    assert r["body"]["output"].startswith("vmcore-dap: Malformed DAP message: message body is not valid JSON")
    body = json.dumps({"seq": "x", "type": "request", "command": "threads"}).encode()
    harness.raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    r = harness.next()
    assert r["event"] == "output" and "'seq' must be an integer" in r["body"]["output"]
    # Still serving.
    assert harness.response(harness.send("_testEcho", {"n": 1}))["success"]


def test_exceptions_become_responses_with_the_right_blame(harness: Harness) -> None:
    r = harness.response(harness.send("_testRaise", {"kind": "user"}))
    assert r["message"].startswith("Cannot open vmcore '/x'")
    assert r["body"]["error"] == {"id": 1001, "format": r["message"], "showUser": True}
    r = harness.response(harness.send("_testRaise", {"kind": "quiet"}))
    assert r["body"]["error"]["showUser"] is False
    r = harness.response(harness.send("_testRaise", {"kind": "bug"}))
    assert r["message"].startswith("Internal adapter error in _testRaise: KeyError")
    assert r["body"]["error"]["id"] == 1999
    r = harness.response(harness.send("_testRaise", {"kind": "after"}))
    assert r["success"]
    event = harness.next()
    assert event["event"] == "output" and "ZeroDivisionError" in event["body"]["output"]


def test_after_response_work_follows_the_response(harness: Harness) -> None:
    seq = harness.send("_testAfter")
    first, second = harness.next(), harness.next()
    assert first["type"] == "response" and first["request_seq"] == seq
    assert second["type"] == "event" and second["event"] == "stopped"
    assert second["seq"] > first["seq"]


def test_cancel_stops_a_long_request_through_its_progress(harness: Harness) -> None:
    harness.response(harness.send("initialize", {"adapterID": "vmcore", "supportsProgressReporting": True}))
    seq = harness.send("_testLong")
    start = harness.next()  # the cancel names the progress, so it waits for the progress to start
    assert start["event"] == "progressStart" and start["body"]["requestId"] == seq
    sent = time.monotonic()
    cancel = harness.send("cancel", {"progressId": start["body"]["progressId"]})
    assert harness.response(cancel)["success"]
    r = harness.response(seq, timeout=_LONG_S)
    assert not r["success"] and r["message"] == "_testLong: cancelled"
    assert time.monotonic() - sent < _LONG_S  # stopped by the cancel, not by running out of work


def test_progress_with_an_interval_sends_at_most_one_update_per_interval(harness: Harness) -> None:
    """Work over 50,000 tasks reports every 64 of them: sent as they come that was 800 updates in
    4 s, each redrawn by VS Code. With an interval, updates closer than it to the last one sent are
    dropped (the first is sent)."""
    harness.response(harness.send("initialize", {"adapterID": "vmcore", "supportsProgressReporting": True}))
    seq = harness.send("_testSteps")
    updates = []
    while True:
        message = harness.next(timeout=_STEPS_S + 10)
        if message.get("event") == "progressUpdate":
            updates.append(message)
        if message.get("type") == "response" and message.get("request_seq") == seq:
            r = message
            break
    made = r["body"]["updates"]
    assert made > 100, f"only {made} updates made in {_STEPS_S} s"
    assert 1 <= len(updates) <= _STEPS_S / _STEP_INTERVAL + 1, (len(updates), made)
    assert updates[0]["body"]["message"] == "0 updates"


def test_queued_request_cancelled_before_it_runs(harness: Harness) -> None:
    _release.clear()
    blocked = harness.send("_testBlock")
    queued = harness.send("_testEcho", {"n": 1})
    assert harness.response(harness.send("cancel", {"requestId": queued}))["success"]
    _release.set()
    assert harness.response(blocked)["success"]
    r = harness.response(queued)
    assert not r["success"] and "cancelled" in r["message"]


def test_disconnect_ends_the_loop(harness: Harness) -> None:
    assert harness.response(harness.send("disconnect", {}))["success"]
    harness.thread.join(5)
    assert not harness.thread.is_alive()


def test_a_handler_that_cannot_be_loaded_is_a_failed_response(harness: Harness) -> None:
    """A routed module that does not import (a broken installation) fails its request with a message
    naming it; the adapter goes on answering."""
    registry.route([registry.Route("_testBroken", "vmcore_dap.handlers._no_such_module")])
    r = harness.response(harness.send("_testBroken"))
    assert not r["success"]
    assert "cannot load its handler (vmcore_dap.handlers._no_such_module" in r["message"], r["message"]
    assert "reinstall vmcore-dap" in r["message"]
    assert harness.response(harness.send("_testEcho", {"n": 1}))["success"]


def test_every_handler_module_registers_exactly_its_routes() -> None:
    """The routes are read before any handler module is imported: a route whose module does not
    register it, or a handler no route leads to, would be a capability without a handler or a
    handler no client can reach."""
    for route in ROUTES:
        handler = registry.load(route.command)
        assert handler.func.__module__ == route.module, route
        assert (handler.inline, handler.capabilities) == (route.inline, route.capabilities)
    routed = {route.command for route in ROUTES}
    for command in registry.registered_commands():
        handler = registry.lookup(command)
        assert handler is not None
        if handler.func.__module__.startswith("vmcore_dap.handlers."):
            assert command in routed, f"{command} is registered by {handler.func.__module__} but not routed"


def test_capabilities_come_from_the_registry() -> None:
    caps = registry.capabilities()
    for command, capability in [
        ("configurationDone", "supportsConfigurationDoneRequest"),
        ("exceptionInfo", "supportsExceptionInfoRequest"),
        ("terminate", "supportsTerminateRequest"),
        ("cancel", "supportsCancelRequest"),
        ("stackTrace", "supportsDelayedStackTraceLoading"),
    ]:
        assert registry.lookup(command) is not None
        assert caps.get(capability) is True
    advertised = {
        name for h in map(registry.lookup, registry.registered_commands()) if h for name in h.capabilities
    }
    assert set(caps) == advertised | set(registry.extra_capabilities())
    # Refusals must not make a client offer stepping.
    for command in REFUSED_COMMANDS:
        assert registry.lookup(command) is not None and registry.lookup(command).capabilities == ()  # type: ignore[union-attr]
    for capability in (
        "supportsStepBack",
        "supportsGotoTargetsRequest",
        "supportsRestartRequest",
        "supportsRestartFrame",
    ):
        assert capability not in caps


def test_refused_commands_say_read_only(harness: Harness) -> None:
    for command in REFUSED_COMMANDS:
        r = harness.response(harness.send(command, {"threadId": 1}))
        assert not r["success"]
        assert (
            r["message"] == f"{command}: the vmcore is read-only: a crash dump cannot be resumed or modified"
        )


def test_requests_that_need_a_dump_say_launch_first(harness: Harness) -> None:
    for command, args in [
        ("stackTrace", {"threadId": 1}),
        ("configurationDone", {}),
        ("exceptionInfo", {"threadId": 1}),
    ]:
        r = harness.response(harness.send(command, args))
        assert r["message"] == "no vmcore is open (send launch first)"


def test_launch_argument_errors_name_the_setting(harness: Harness) -> None:
    r = harness.response(harness.send("launch", {"type": "vmcore"}))
    assert r["message"].startswith("launch: missing required setting 'vmcore' in launch.json (set it to")
    r = harness.response(harness.send("launch", {"vmcore": 3}))
    assert r["message"] == "launch: 'vmcore' in launch.json must be a string (got a number)"
    r = harness.response(harness.send("launch", {"vmcore": "/x", "stopOnPanic": "yes"}))
    assert r["message"] == "launch: 'stopOnPanic' in launch.json must be true or false (got a string)"


def test_a_quiet_background_job_waits_for_the_client_to_pause_and_yields_to_requests(
    harness: Harness,
) -> None:
    """A job started with ``quiet`` runs no step while requests keep coming closer together than
    that, runs once they stop, and a request sent while it runs is answered before it ends."""
    quiet = 0.3
    harness.response(harness.send("_testQuietJob", {"quiet_ms": int(quiet * 1000)}))
    burst_end = time.monotonic() + 1.0
    while time.monotonic() < burst_end:  # a client asking every 50 ms: never quiet for 0.3 s
        harness.response(harness.send("_testEcho", {"n": 1}))
        time.sleep(0.05)
    last_answer = time.monotonic()
    assert _job_steps == [], "a step ran while the client was busy"
    deadline = time.monotonic() + 10
    while len(_job_steps) < 5:
        assert time.monotonic() < deadline, "the job never ran once the client was quiet"
        time.sleep(0.01)
    assert _job_steps[0] >= last_answer + quiet - 0.05
    seq = harness.send("_testEcho", {"n": 2})
    assert harness.response(seq)["body"]["got"] == 2
    answered = time.monotonic()
    assert len(_job_steps) < _JOB_STEPS, "the request waited for the whole job"
    while len(_job_steps) < _JOB_STEPS:  # and it goes on after the request, once quiet again
        assert time.monotonic() < deadline, "the job did not go on after the request"
        time.sleep(0.01)
    assert any(t >= answered + quiet - 0.05 for t in _job_steps)


def test_a_direct_request_runs_on_the_reader_when_the_worker_is_idle_else_in_order_on_the_worker(
    harness: Harness,
) -> None:
    r = harness.response(harness.send("_testDirect", {"n": 1}))
    assert r["success"] and r["body"]["got"] == 1 and r["body"]["thread"] != "vmcore-dap-worker"
    _release.clear()
    blocked = harness.send("_testBlock")
    queued = [harness.send("_testDirect", {"n": n}) for n in range(2, 6)]
    # The reader reads in order: once this inline one is answered, the direct ones were read (and
    # queued, the worker being blocked); released earlier, the worker could be idle when they come.
    assert harness.response(harness.send("threads"))["success"]
    _release.set()
    assert harness.response(blocked)["success"]
    for n, seq in enumerate(queued, start=2):
        r = harness.response(seq)
        assert r["body"] == {"got": n, "thread": "vmcore-dap-worker"}, r
    # Requests queued behind a worker request are answered in the order they came.
    order = [seq for seq in harness.response_order if seq in (blocked, *queued)]
    assert order == [blocked, *queued]


def test_pipelined_requests_are_each_answered_once_in_the_order_sent(harness: Harness) -> None:
    """A client with many requests in flight (as VS Code sends them): direct ones on the reader, a
    worker one and a ``cancel`` among them; each is answered once, and the direct and worker ones in
    the order sent (the reader never overtakes a request queued for the worker)."""
    slow = harness.send("_testDirect", {"n": 0, "sleep_ms": 200})
    seqs = [harness.send("_testDirect", {"n": n}) for n in range(1, 40)]
    echo = harness.send("_testEcho", {"n": 7})
    later = [harness.send("_testDirect", {"n": n}) for n in range(40, 60)]
    # Read after seqs[5] was answered: nothing left to cancel, and the cancel still succeeds.
    cancel = harness.send("cancel", {"requestId": seqs[5]})
    last = harness.send("_testDirect", {"n": 99})
    assert harness.response(slow)["success"]
    for n, seq in enumerate([*seqs, *later], start=1):
        r = harness.response(seq)
        assert r["success"] and r["body"]["got"] == n, r
    assert harness.response(echo)["body"] == {"got": 7, "thread": "vmcore-dap-worker"}
    assert harness.response(cancel)["success"]
    assert harness.response(last)["body"]["got"] == 99
    answered = [seq for seq in harness.response_order if seq != cancel]
    assert answered == [slow, *seqs, echo, *later, last]
    assert len(harness.response_order) == len(set(harness.response_order))


def test_a_direct_request_never_runs_beside_a_background_step(harness: Harness) -> None:
    """drgn has one user at a time: a direct request queues behind the step under way (and a step
    never starts while a direct request runs)."""
    _release.clear()
    _direct_saw_step.clear()
    harness.response(harness.send("_testBusyJob"))
    time.sleep(0.05)
    seqs = [harness.send("_testDirect", {"n": n}) for n in range(200)]
    for seq in seqs:
        assert harness.response(seq)["success"]
    _release.set()
    assert len(_direct_saw_step) == 200 and not any(_direct_saw_step)


def test_a_direct_request_behind_a_long_request_leaves_the_reader_free(harness: Harness) -> None:
    """Behind a long worker request a direct one queues: the reader does not wait for the long one,
    and still answers ``threads`` (and would read a ``cancel``) meanwhile."""
    _release.clear()
    blocked = harness.send("_testBlock")
    assert _blocking.wait(5)  # the worker has taken it: the direct one finds it running
    queued = harness.send("_testDirect", {"n": 1})
    r = harness.response(harness.send("threads"), timeout=3)
    assert r["success"]
    _release.set()
    assert harness.response(blocked)["success"]
    assert harness.response(queued)["body"] == {"got": 1, "thread": "vmcore-dap-worker"}


def test_a_direct_request_that_turns_out_long_goes_to_the_worker(harness: Harness) -> None:
    """A direct handler that raises NeedsWorker on the reader is run again on the worker and
    answered once; the reader meanwhile answers ``threads`` and later direct requests queue behind it."""
    _release.clear()
    _long_direct_started.clear()
    long = harness.send("_testDirectLong")
    assert _long_direct_started.wait(5)
    after = harness.send("_testDirect", {"n": 1})
    assert harness.response(harness.send("threads"), timeout=3)["success"]
    _release.set()
    assert harness.response(long)["body"] == {"thread": "vmcore-dap-worker"}
    assert harness.response(after)["body"] == {"got": 1, "thread": "vmcore-dap-worker"}
    assert [seq for seq in harness.response_order if seq in (long, after)] == [long, after]
    assert not registry.running_direct()
