"""Content-Length framing: round trips, and damaged input that costs one message, not the session."""

from __future__ import annotations

import io
import json

import pytest

from vmcore_dap.dap.transport import (
    MAX_MESSAGE_BYTES,
    EncodedBody,
    MalformedMessage,
    Transport,
    encode_json,
)


def _frame(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _reader(data: bytes) -> Transport:
    return Transport(io.BufferedReader(io.BytesIO(data)), io.BytesIO())


def test_round_trip_preserves_unicode_and_frames_exactly() -> None:
    out = io.BytesIO()
    Transport(io.BytesIO(), out).write_message(
        {"type": "event", "event": "output", "body": {"output": "ü→\n"}}
    )
    raw = out.getvalue()
    header, _, body = raw.partition(b"\r\n\r\n")
    assert header == b"Content-Length: %d" % len(body)
    assert _reader(raw).read_message() == {"type": "event", "event": "output", "body": {"output": "ü→\n"}}


def test_an_encoded_body_is_written_as_the_same_message() -> None:
    """A body handed over as JSON text (stackTrace's cached rows) frames the message a dict would."""
    body = {"stackFrames": [{"id": 3, "name": "schedule ü", "line": 7}], "totalFrames": 1}
    message = {"type": "response", "request_seq": 9, "success": True, "command": "stackTrace"}
    plain, encoded = io.BytesIO(), io.BytesIO()
    Transport(io.BytesIO(), plain).write_message({**message, "body": body})
    Transport(io.BytesIO(), encoded).write_message({**message, "body": EncodedBody(encode_json(body))})
    assert _reader(encoded.getvalue()).read_message() == {**message, "body": body}
    assert len(encoded.getvalue()) == len(plain.getvalue())


def test_reads_consecutive_messages_and_tolerates_blank_lines_and_extra_headers() -> None:
    data = (
        _frame({"seq": 1})
        + b"\r\n"
        + b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
        + _frame({"seq": 2})
    )
    t = _reader(data)
    assert t.read_message() == {"seq": 1}
    assert t.read_message() == {"seq": 2}
    assert t.read_message() is None


def test_end_of_input_is_none() -> None:
    assert _reader(b"").read_message() is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"Content-Length: 2\r\n\r\n[]", "not a JSON object"),
        (b"Content-Length: 5\r\n\r\n{bad}", "not valid JSON"),
        (b"Content-Length: 2\r\n\r\n\xff\xfe", "not valid JSON"),
        (b"Content-Length: abc\r\n\r\n", "not a number"),
        (b"X-Other: 1\r\n\r\n", "missing Content-Length"),
        (b"garbage line\r\nContent-Length: 2\r\n\r\n{}", "bad header line"),
        (b"Content-Length: %d\r\n\r\n" % (MAX_MESSAGE_BYTES + 1), "out of range"),
        (b"Content-Length: -4\r\n\r\n", "out of range"),
    ],
)
def test_damaged_message_is_reported_and_the_next_one_still_reads(data: bytes, problem: str) -> None:
    t = _reader(data + _frame({"seq": 9}))
    with pytest.raises(MalformedMessage, match=problem):
        t.read_message()
    # The body length was known (or there was none): the stream is on the next header again.
    message = t.read_message()
    if problem not in ("not a number", "out of range"):
        assert message == {"seq": 9}


def test_input_ending_inside_a_body_or_header_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="after 3 of 10 body bytes"):
        _reader(b'Content-Length: 10\r\n\r\n{"a').read_message()
    with pytest.raises(MalformedMessage, match="inside a message header"):
        _reader(b"Content-Length: 10\r\n").read_message()


def test_overlong_header_line_is_malformed_not_a_hang() -> None:
    with pytest.raises(MalformedMessage, match="too long"):
        _reader(b"X" * 20000 + b"\r\nContent-Length: 2\r\n\r\n{}").read_message()
