"""A minimal lock-step LSP client for the benchmarks: the language server over stdio, one request at a time.

Like :mod:`bench.lockstep` for DAP: one thread writes a request and reads the server's stdout until its
response arrives, answering the server's own requests (``workspace/codeLens/refresh`` …) with ``null``
on the way, so the benchmark times the server and the pipe, not a client's threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["LspLockstepClient"]

REPO = Path(__file__).resolve().parents[1]


class LspLockstepClient:
    """``python -m vmcore_dap.lsp`` over stdio, driven one request at a time."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO / "adapter")}
        env.pop("VMCORE_DAP_LSP_LOG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vmcore_dap.lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        self._id = 0

    def _write(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self._in.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self._in.flush()

    def _read(self) -> dict[str, Any]:
        length = None
        while True:
            line = self._out.readline()
            if not line:
                raise EOFError("the language server closed its output")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ValueError("a message without Content-Length")
        message: dict[str, Any] = json.loads(self._out.read(length))
        return message

    def notify(self, method: str, params: Any) -> None:
        """Send a notification."""
        self._write({"method": method, "params": params})

    def call(self, method: str, params: Any) -> Any:
        """Send a request and return its result, answering the server's requests meanwhile."""
        self._id += 1
        wanted = self._id
        self._write({"id": wanted, "method": method, "params": params})
        while True:
            message = self._read()
            if "method" in message and "id" in message:  # a request of the server's
                self._write({"id": message["id"], "result": None})
            elif message.get("id") == wanted and "method" not in message:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result")

    def wait_notification(self, method: str, uri: str) -> Any:
        """Read until the server sends notification ``method`` about document ``uri``; its params."""
        while True:
            message = self._read()
            if "method" in message and "id" in message:
                self._write({"id": message["id"], "result": None})
            elif message.get("method") == method and message.get("params", {}).get("uri") == uri:
                return message["params"]

    def initialize(self, configuration: dict[str, Any]) -> None:
        """``initialize`` with the launch configuration (the server opens the dump), ``initialized``."""
        self.call(
            "initialize",
            {"processId": os.getpid(), "capabilities": {}, "initializationOptions": configuration},
        )
        self.notify("initialized", {})

    def close(self) -> None:
        """``shutdown``, ``exit``, then make sure the process is gone."""
        try:
            if self.proc.poll() is None:
                self.call("shutdown", None)
                self.notify("exit", None)
        except (OSError, EOFError, ValueError, RuntimeError):
            pass
        for stream in (self._in, self._out):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
