"""A minimal synchronous DAP client for timing the adapter: no threads, no schema checks, no log.

The tests' client (``tests/helpers/dap_client.py``) validates every message and asks the adapter
for a full message trace; both cost time the user never pays, so benchmarks speak DAP directly.
Events that arrive while a response is awaited are kept in :attr:`events`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["BenchClient", "adapter_env"]

REPO = Path(__file__).resolve().parents[1]


def adapter_env() -> dict[str, str]:
    """The environment the adapter runs in: this checkout's package, no log file."""
    env = {k: v for k, v in os.environ.items() if k != "VMCORE_DAP_LOG"}
    env["PYTHONPATH"] = str(REPO / "adapter")
    return env


class BenchClient:
    """Spawn ``python -m vmcore_dap`` on stdio and exchange messages in lock step."""

    def __init__(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vmcore_dap"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=adapter_env(),
        )
        self._seq = 0
        self.events: list[dict[str, Any]] = []

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> dict[str, Any]:
        stream = self.proc.stdout
        assert stream is not None
        length = None
        while True:
            line = stream.readline()
            if not line:
                self._stderr.seek(0)
                tail = self._stderr.read()[-3000:].decode(errors="replace")
                raise RuntimeError(f"the adapter exited (code {self.proc.wait()}) before answering:\n{tail}")
            line = line.strip()
            if not line:
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError("the adapter sent a message without Content-Length")
        message: dict[str, Any] = json.loads(stream.read(length))
        return message

    def call(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its body; raise with the adapter's message on failure."""
        self._seq += 1
        seq = self._seq
        message: dict[str, Any] = {"seq": seq, "type": "request", "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        self._send(message)
        while True:
            reply = self._read()
            if reply.get("type") == "event":
                self.events.append(reply)
            elif reply.get("type") == "response" and reply.get("request_seq") == seq:
                if not reply.get("success"):
                    raise RuntimeError(f"{command} failed: {reply.get('message')}")
                body: dict[str, Any] = reply.get("body") or {}
                return body

    def wait_event(self, name: str) -> dict[str, Any]:
        """Return the first event called ``name`` (already received or the next ones)."""
        for i, event in enumerate(self.events):
            if event.get("event") == name:
                return self.events.pop(i)
        while True:
            message = self._read()
            if message.get("type") == "event" and message.get("event") == name:
                return message
            self.events.append(message)

    def peak_rss_kib(self) -> int:
        """The adapter's peak resident set so far (``VmHWM``), in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        """Disconnect and reap the process."""
        if self.proc.poll() is None:
            try:
                self.call("disconnect", {})
            except (RuntimeError, OSError):
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()
