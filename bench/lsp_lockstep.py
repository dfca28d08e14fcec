"""A minimal lock-step LSP client for the benchmarks: the language server over stdio, one request at a time.

Like :mod:`bench.lockstep` for DAP: one thread writes a request and reads the server's stdout until its
response arrives, answering the server's own requests (``workspace/codeLens/refresh`` …) with ``null``
on the way, so the benchmark times the server and the pipe, not a client's threads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.lockstep import read_framed, start, stop, write_framed

__all__ = ["LspLockstepClient"]

REPO = Path(__file__).resolve().parents[1]


class LspLockstepClient:
    """``python -m vmcore_dap.lsp`` over stdio, driven one request at a time."""

    def __init__(self) -> None:
        self.proc = start(["-m", "vmcore_dap.lsp"], "VMCORE_DAP_LSP_LOG")
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        self._id = 0

    def _write(self, message: dict[str, Any]) -> None:
        write_framed(self._in, {"jsonrpc": "2.0", **message})

    def _read(self) -> dict[str, Any]:
        return read_framed(self._out, "the language server")

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
        stop(self.proc)
