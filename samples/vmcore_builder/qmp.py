"""Talk to a running QEMU over its QMP socket: just enough to stop the guest and dump its memory.

QMP is line-delimited JSON (docs/interop/qmp-spec): a greeting, ``qmp_capabilities``, then one
``{"execute": ...}`` per command, each answered by ``{"return": ...}`` or ``{"error": ...}`` with
asynchronous ``{"event": ...}`` lines in between. ``dump-guest-memory`` without ``detach`` answers
only once the file is complete.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from .common import BuildError

__all__ = ["QmpClient", "DUMP_FORMATS"]

#: ``dump-guest-memory`` formats used by the samples -> what the file is.
DUMP_FORMATS = {"elf": "ELF core", "kdump-zlib": "kdump-compressed (zlib)"}


class QmpClient:
    """A blocking QMP connection (one command at a time)."""

    def __init__(self, path: Path, connect_timeout: float = 30.0) -> None:
        deadline = time.monotonic() + connect_timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise BuildError(
                        f"QEMU's QMP socket {path} did not open in {connect_timeout:.0f} s"
                    ) from None
                time.sleep(0.2)
        self._sock = sock
        self._file = sock.makefile("rwb")
        self.events: list[dict[str, Any]] = []
        greeting = self._read(30.0)
        if "QMP" not in greeting:
            raise BuildError(f"QEMU's QMP socket {path} sent no greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self, timeout: float) -> dict[str, Any]:
        self._sock.settimeout(timeout)
        try:
            line = self._file.readline()
        except TimeoutError:
            raise BuildError(f"QEMU did not answer on QMP within {timeout:.0f} s") from None
        if not line:
            raise BuildError("QEMU closed its QMP socket (did it exit?)")
        message: dict[str, Any] = json.loads(line)
        return message

    def execute(self, command: str, timeout: float = 60.0, **arguments: Any) -> Any:
        """Run one command and return its ``return`` value; raise BuildError with QEMU's error."""
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self._file.write(json.dumps(request).encode() + b"\n")
        self._file.flush()
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(max(deadline - time.monotonic(), 0.1))
            if "event" in message:
                self.events.append(message)
                continue
            if "error" in message:
                error = message["error"]
                raise BuildError(f"QEMU refused '{command}': {error.get('class')}: {error.get('desc')}")
            if "return" in message:
                return message["return"]

    def close(self) -> None:
        """Close the connection (QEMU keeps running unless it was told to quit)."""
        try:
            self._file.close()
        finally:
            self._sock.close()
