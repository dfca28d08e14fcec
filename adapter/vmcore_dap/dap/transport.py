"""Content-Length framing of DAP messages over binary streams (stdio or a loopback socket).

The transport only turns bytes into JSON objects and back. It never dispatches and never touches
drgn. Damage in the input stream is reported as :class:`MalformedMessage`, after which the stream is
positioned on the next message whenever that is possible, so one bad message costs one error
response and not the session.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, BinaryIO

__all__ = ["EncodedBody", "Transport", "MalformedMessage", "MAX_MESSAGE_BYTES", "encode_json"]

log = logging.getLogger(__name__)

#: Refuse bodies above this size instead of allocating whatever a broken header claims.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_MAX_HEADER_LINE = 8192


#: One encoder for every message: ``json.dumps`` with these options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_json(value: Any) -> str:
    """JSON text as the transport writes it (compact, UTF-8 kept as is)."""
    return _ENCODER.encode(value)


class EncodedBody:
    """A message body that is already JSON text (made with :func:`encode_json` pieces).

    For bodies assembled from cached pieces: ``stackTrace`` of 5,000 tasks repeats the same rows,
    and encoding them anew was a fifth of each request's cost.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class MalformedMessage(Exception):
    """One message could not be decoded; the stream is still usable."""


class Transport:
    """Read and write framed DAP messages.

    :param reader: binary stream the client writes to (stdin, a socket file).
    :param writer: binary stream the client reads from (stdout, a socket file).
    """

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self._reader = reader
        self._writer = writer
        self._write_lock = threading.Lock()
        self.trace = False

    def read_message(self) -> dict[str, Any] | None:
        """Return the next message, or ``None`` at end of input.

        :raises MalformedMessage: for a bad header block or a body that is not a JSON object.
        """
        length = self._read_headers()
        if length is None:
            return None
        body = self._read_exactly(length)
        if body is None:
            return None
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedMessage(f"message body is not valid JSON ({exc})") from None
        if not isinstance(message, dict):
            raise MalformedMessage("message body is not a JSON object")
        if self.trace:
            log.debug("<-- %s", body.decode("utf-8", "replace"))
        return message

    def write_message(self, message: dict[str, Any]) -> None:
        """Send one message; safe to call from any thread."""
        payload = message.get("body")
        if isinstance(payload, EncodedBody):
            head = encode_json({k: v for k, v in message.items() if k != "body"})
            body = f'{head[:-1]},"body":{payload.text}}}'.encode()
        else:
            body = encode_json(message).encode("utf-8")
        frame = b"Content-Length: %d\r\n\r\n" % len(body) + body
        with self._write_lock:
            if self.trace:
                log.debug("--> %s", body.decode("utf-8", "replace"))
            self._writer.write(frame)
            self._writer.flush()

    def _read_headers(self) -> int | None:
        length: int | None = None
        problem: str | None = None
        saw_any = False
        headers_seen = 0
        while True:
            line = self._reader.readline(_MAX_HEADER_LINE)
            if not line:
                if saw_any:
                    raise MalformedMessage("input ended inside a message header")
                return None
            saw_any = True
            if not line.endswith(b"\n"):
                problem = "header line too long"
                continue
            text = line.rstrip(b"\r\n")
            if not text and not headers_seen and problem is None:
                continue  # tolerate blank lines between messages
            headers_seen += 1
            if not text:
                if problem is None and length is None:
                    problem = "missing Content-Length header"
                break
            name, sep, value = text.partition(b":")
            if not sep:
                problem = problem or f"bad header line {text[:80]!r}"
                continue
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    problem = problem or f"Content-Length is not a number: {value.strip()[:40]!r}"
                    continue
                if length < 0 or length > MAX_MESSAGE_BYTES:
                    problem = problem or f"Content-Length {length} out of range"
                    length = None
        if problem is not None:
            if length is not None:
                # The body length is known: consume it so the next read starts on a header.
                self._read_exactly(length)
            raise MalformedMessage(problem)
        assert length is not None
        return length

    def _read_exactly(self, length: int) -> bytes | None:
        chunks: list[bytes] = []
        remaining = length
        while remaining:
            chunk = self._reader.read(remaining)
            if not chunk:
                if chunks:
                    raise MalformedMessage(f"input ended after {length - remaining} of {length} body bytes")
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
