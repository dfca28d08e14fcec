"""A minimal lock-step DAP client for the benchmarks: one thread, blocking reads, no validation
(and, for the pipelined row of *all stacks*, a window of requests in flight:
:meth:`LockstepClient.pipelined`).

The tests' :class:`tests.helpers.dap_client.DapClient` reads on a thread of its own, validates messages
and keeps a log; every response then crosses two threads of the *client* before the caller sees it.
That costs about 0.1 ms a request here, which is the harness's cost, not the adapter's, and across the
5,067 ``stackTrace`` requests of *all stacks* it would count as the adapter's. This client writes a
request and reads the adapter's stdout in the same thread until the response arrives — what an editor's
single-threaded event loop does — so the benchmark times the adapter and the pipe, nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers.dap_client import INITIALIZE_ARGUMENTS

__all__ = ["LockstepClient", "read_framed", "start", "stop", "write_framed"]

REPO = Path(__file__).resolve().parents[1]


def read_framed(stream: Any, who: str = "the adapter") -> dict[str, Any]:
    """Read one ``Content-Length``-framed JSON message (DAP and LSP frame alike)."""
    length = None
    while True:
        line = stream.readline()
        if not line:
            raise EOFError(f"{who} closed its output")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError("a message without Content-Length")
    message: dict[str, Any] = json.loads(stream.read(length))
    return message


def write_framed(stream: Any, message: dict[str, Any]) -> None:
    """Write one ``Content-Length``-framed JSON message."""
    body = json.dumps(message).encode()
    stream.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    stream.flush()


def start(args: list[str], log_env: str) -> subprocess.Popen[bytes]:
    """Start ``python <args>`` (a server of this clone) on pipes, without the log ``log_env`` names."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "adapter")}
    env.pop(log_env, None)
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Close a server's pipes and make sure the process is gone."""
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class LockstepClient:
    """The adapter over stdio (``python -m vmcore_dap``), driven one request at a time.

    ``VMCORE_DAP_BENCH_ADAPTER`` replaces ``-m vmcore_dap`` (e.g. with a script that runs the adapter
    under a profiler) when looking into a benchmark's numbers.
    """

    def __init__(self) -> None:
        self.proc = start(
            os.environ.get("VMCORE_DAP_BENCH_ADAPTER", "-m vmcore_dap").split(), "VMCORE_DAP_LOG"
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        self._seq = 0
        #: Events received so far, in order.
        self.events: list[dict[str, Any]] = []

    def read(self) -> dict[str, Any]:
        """Read the adapter's next message, whatever it is."""
        return read_framed(self._out)

    def send(self, command: str, arguments: dict[str, Any] | None = None) -> int:
        """Write one request; return its ``seq``."""
        self._seq += 1
        write_framed(
            self._in, {"seq": self._seq, "type": "request", "command": command, "arguments": arguments or {}}
        )
        return self._seq

    def response(self, seq: int) -> dict[str, Any]:
        """Read messages until the response to ``seq``; keep the events on the way."""
        while True:
            message = self.read()
            if message.get("type") == "event":
                self.events.append(message)
            elif message.get("type") == "response" and message.get("request_seq") == seq:
                return message

    def call(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its body; raise with the adapter's message when it failed."""
        response = self.response(self.send(command, arguments))
        if not response.get("success"):
            raise RuntimeError(f"{command} failed: {response.get('message')}")
        body: dict[str, Any] = response.get("body", {})
        return body

    def pipelined(self, command: str, arguments: list[dict[str, Any]], window: int) -> int:
        """Send one ``command`` per entry of ``arguments``, keeping up to ``window`` requests in
        flight (a new one as each response comes, in whatever order they come); return how many were
        answered. Raise with the adapter's message when one failed.

        What a client that does not wait for each answer does (DAP allows it; VS Code sends its
        requests concurrently): the adapter's reading, answering and the client's reading overlap.
        The bodies are decoded, then dropped: kept, 50,910 stacks grew this process past 900 MiB, and
        a child started afterwards (crash, plain drgn) reports that as its own ``ru_maxrss``
        (:func:`bench.measure._popen_with_peak`).
        """
        in_flight: dict[int, int] = {}
        sent = answered = 0
        while sent < len(arguments) or in_flight:
            while sent < len(arguments) and len(in_flight) < window:
                in_flight[self.send(command, arguments[sent])] = sent
                sent += 1
            message = self.read()
            if message.get("type") == "event":
                self.events.append(message)
                continue
            if in_flight.pop(message.get("request_seq", -1), None) is None:
                continue
            if not message.get("success"):
                raise RuntimeError(f"{command} failed: {message.get('message')}")
            answered += 1
        return answered

    def event(self, name: str) -> dict[str, Any]:
        """Return the first event called ``name``, reading until it comes."""
        while True:
            found = next((e for e in self.events if e.get("event") == name), None)
            if found is not None:
                return found
            message = self.read()
            if message.get("type") == "event":
                self.events.append(message)

    def launch_and_stop(self, config: dict[str, Any]) -> dict[str, Any]:
        """``initialize`` → ``launch`` → ``configurationDone``; return the ``stopped`` event's body."""
        self.call("initialize", INITIALIZE_ARGUMENTS)
        self.call("launch", config)
        self.event("initialized")
        self.call("configurationDone")
        body: dict[str, Any] = self.event("stopped")["body"]
        return body

    def wait_whole_thread_list(self) -> bool:
        """When the adapter stops before listing every task (a "Listing tasks" progress started before
        ``stopped``), read until its ``thread`` event; return whether it did so."""
        stopped = self.event("stopped")
        before = self.events[: self.events.index(stopped)]
        if not any(
            e.get("event") == "progressStart" and e["body"].get("title") == "Listing tasks" for e in before
        ):
            return False
        self.event("thread")
        return True

    def close(self) -> None:
        """Disconnect, then make sure the process is gone."""
        try:
            if self.proc.poll() is None:
                self.response(self.send("disconnect"))
        except (OSError, EOFError, ValueError):
            pass
        stop(self.proc)
