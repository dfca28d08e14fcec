"""A small stdlib DAP client that drives the real adapter over stdio, for end-to-end tests.

Every message the adapter sends is validated against the official DAP JSON schema as it arrives
(:mod:`tests.helpers.dap_schema`), so any test that talks to the adapter is also a conformance test.
On failure, :meth:`DapClient.diagnostics` returns the adapter's log and stderr for the report.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers.dap_schema import validate_message

__all__ = ["DapClient", "DapError", "ADAPTER_CMD", "INITIALIZE_ARGUMENTS"]

REPO = Path(__file__).resolve().parents[2]
ADAPTER_CMD = [sys.executable, "-m", "vmcore_dap"]

#: ``initialize`` arguments as VS Code sends them (the capabilities the adapter reads).
INITIALIZE_ARGUMENTS: dict[str, Any] = {
    "clientID": "vscode",
    "adapterID": "vmcore",
    "linesStartAt1": True,
    "columnsStartAt1": True,
    "pathFormat": "path",
    "supportsVariableType": True,
    "supportsProgressReporting": True,
    "supportsInvalidatedEvent": True,
    "supportsMemoryReferences": True,
}


class DapError(AssertionError):
    """A response with ``success: false`` where success was expected."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__(f"{response.get('command')} failed: {response.get('message')}")
        self.response = response


class DapClient:
    """Spawn ``vmcore-dap`` and exchange DAP messages with it.

    The benchmarks (``bench/``) drive the adapter with this client too, with ``log_dir=None`` and
    ``validate=False``: a message trace and schema checks cost time a user never pays.

    :param log_dir: where the adapter's log (full message trace) is written; ``None``: no log at all
        (not even one named by ``VMCORE_DAP_LOG``).
    :param validate: validate every adapter message against the DAP schema.
    :param command: the adapter to run instead of this clone's (``[venv/bin/vmcore-dap]`` of an installed
        wheel); it then gets no ``PYTHONPATH`` at all, so it runs only what it was installed with.
    :param cwd: the adapter's working directory (default: this process's).
    """

    def __init__(
        self,
        log_dir: Path | None,
        *,
        validate: bool = True,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        cwd: Path | None = None,
    ):
        self.log_path = log_dir / "adapter.log" if log_dir is not None else None
        self.validate = validate
        self._seq = itertools.count(1)
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.schema_errors: list[str] = []
        self._responses: dict[int, dict[str, Any]] = {}
        #: ``request_seq`` of every response in the order the adapter sent them.
        self.response_order: list[int] = []
        self._lock = threading.Condition()
        full_env = dict(os.environ)
        if command is None:
            full_env["PYTHONPATH"] = str(REPO / "adapter")
        else:
            full_env.pop("PYTHONPATH", None)
        if self.log_path is None:
            full_env.pop("VMCORE_DAP_LOG", None)
        if env:
            full_env.update(env)
        log_args = ["--log-file", str(self.log_path)] if self.log_path is not None else []
        self.proc = subprocess.Popen(
            [*(command or ADAPTER_CMD), *log_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
        )
        self._stderr: list[bytes] = []
        threading.Thread(target=self._read_loop, daemon=True).start()
        threading.Thread(target=self._stderr_loop, daemon=True).start()

    # -- raw I/O ----------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        """Write raw bytes to the adapter (for malformed-input tests)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send_message(self, message: dict[str, Any]) -> None:
        """Frame and send one JSON message."""
        body = json.dumps(message).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _read_loop(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    with self._lock:
                        self._lock.notify_all()
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            assert length is not None, "adapter sent a message without Content-Length"
            message = json.loads(stream.read(length))
            if self.validate:
                problem = validate_message(message)
                if problem:
                    self.schema_errors.append(problem)
            with self._lock:
                if message.get("type") == "response":
                    self._responses[message["request_seq"]] = message
                    self.response_order.append(message["request_seq"])
                elif message.get("type") == "event":
                    self.events.append(message)
                self._lock.notify_all()

    def _stderr_loop(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    # -- requests and events ----------------------------------------------------------------
    def send_request(self, command: str, arguments: dict[str, Any] | None = None) -> int:
        """Send a request and return its seq without waiting."""
        seq = next(self._seq)
        message: dict[str, Any] = {"seq": seq, "type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        self.send_message(message)
        return seq

    def wait_response(self, seq: int, timeout: float = 60) -> dict[str, Any]:
        """Wait for the response to request ``seq``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while seq not in self._responses:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None and seq not in self._responses:
                    raise TimeoutError(
                        f"no response to request {seq} within {timeout}s\n{self.diagnostics()}"
                    )
                self._lock.wait(min(remaining, 0.5))
            return self._responses.pop(seq)

    def request(
        self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """Send a request and return its response (success or not)."""
        return self.wait_response(self.send_request(command, arguments), timeout)

    def call(
        self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """Send a request that must succeed and return its ``body``."""
        response = self.request(command, arguments, timeout)
        if not response["success"]:
            raise DapError(response)
        return response.get("body", {})

    def wait_event(
        self,
        event: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 60,
        start: int = 0,
    ) -> dict[str, Any]:
        """Wait for an event named ``event`` (among those from index ``start``) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for message in self.events[start:]:
                    if message["event"] == event and (predicate is None or predicate(message)):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no '{event}' event within {timeout}s\n{self.diagnostics()}")
                self._lock.wait(min(remaining, 0.5))

    # -- session helpers --------------------------------------------------------------------
    def initialize(self, **extra: Any) -> dict[str, Any]:
        """Send ``initialize`` as VS Code does and return the capabilities."""
        arguments = {**INITIALIZE_ARGUMENTS, **extra}
        return self.call("initialize", arguments)

    def launch_and_stop(
        self, config: dict[str, Any], timeout: float = 180, whole_thread_list: bool = True
    ) -> dict[str, Any]:
        """Run initialize → launch → configurationDone and return the ``stopped`` event.

        :param whole_thread_list: when the adapter stops before listing every task (a large dump:
            a "Listing tasks" progress starts before the ``stopped`` event), also wait for the
            ``thread`` event that says the list is whole, so ``threads`` lists every task.
        """
        self.initialize()
        launch = self.send_request("launch", config)
        response = self.wait_response(launch, timeout)
        if not response["success"]:
            raise DapError(response)
        self.wait_event("initialized", timeout=timeout)
        self.call("configurationDone")
        stopped = self.wait_event("stopped", timeout=timeout)
        if whole_thread_list and self.lists_after_stop(stopped):
            self.wait_event("thread", timeout=timeout)
        return stopped

    def lists_after_stop(self, stopped: dict[str, Any]) -> bool:
        """Whether the adapter announced, before ``stopped``, that it lists the tasks after the stop."""
        with self._lock:
            before = self.events[: self.events.index(stopped)]
        return any(
            e["event"] == "progressStart" and e["body"].get("title") == "Listing tasks" for e in before
        )

    def repl(
        self, line: str, frame_id: int | None = None, timeout: float = 120
    ) -> tuple[str, dict[str, Any]]:
        """Evaluate ``line`` in the Debug Console (context ``repl``), as VS Code does in the selected
        frame; return (the text of the ``output`` events sent before the response, the response)."""
        start = len(self.events)
        args: dict[str, Any] = {"expression": line, "context": "repl"}
        if frame_id is not None:
            args["frameId"] = frame_id
        response = self.request("evaluate", args, timeout=timeout)
        text = "".join(
            e["body"]["output"]
            for e in self.events[start:]
            if e["event"] == "output" and e["body"].get("category", "console") in ("console", "stdout")
        )
        return text, response

    def diagnostics(self) -> str:
        """The adapter's stderr and the tail of its log, for failure reports."""
        log_tail = ""
        if self.log_path is not None and self.log_path.exists():
            log_tail = self.log_path.read_text(errors="replace")[-8000:]
        stderr = b"".join(self._stderr).decode(errors="replace")[-4000:]
        return f"--- adapter stderr ---\n{stderr}\n--- adapter log (tail) ---\n{log_tail}"

    def close(self) -> None:
        """Disconnect politely, then make sure the process is gone."""
        if self.proc.poll() is None:
            try:
                self.request("disconnect", {}, timeout=10)
            except (TimeoutError, OSError, ValueError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> DapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
