"""Malformed DAP input, fuzzed with hypothesis against a launched adapter: every message gets an
error response or is ignored, the adapter never dies or stalls, and afterwards a real request still
returns the right stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.e2e._session import config_for, stack_of
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(900)

# Requests that would legitimately end or restart the session are not fuzzed.
_SPARED = {"disconnect", "terminate", "launch", "configurationDone", "initialize"}
_COMMANDS = [
    "threads",
    "stackTrace",
    "exceptionInfo",
    "scopes",
    "variables",
    "evaluate",
    "source",
    "next",
    "continue",
    "stepIn",
    "pause",
    "cancel",
    "setBreakpoints",
    "frobnicate",
    "",
]
_KEYS = ["threadId", "frameId", "startFrame", "levels", "variablesReference", "requestId", "format", "source"]

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _request(draw_command: str, arguments: Any, seq: Any) -> bytes:
    message = {"seq": seq, "type": "request", "command": draw_command, "arguments": arguments}
    return _frame(json.dumps(message).encode())


_payloads = st.one_of(
    # A well-framed body that is not JSON, or not an object.
    st.binary(max_size=64).map(_frame),
    _json.map(lambda v: _frame(json.dumps(v).encode())),
    # Requests with real or unknown commands and arguments of every shape and type.
    st.builds(
        _request,
        st.sampled_from(_COMMANDS),
        st.one_of(_json, st.dictionaries(st.sampled_from(_KEYS), _json, max_size=4)),
        # Seqs far above the test client's own, so a fuzzed request's response can never be
        # mistaken for the answer to one of the client's probes.
        st.one_of(st.integers(10**6, 2**31), st.text(max_size=4), st.none()),
    ),
    # Broken header blocks (no body follows, so the stream stays in step).
    st.sampled_from(
        [
            b"Content-Length: abc\r\n\r\n",
            b"Content-Length: -1\r\n\r\n",
            b"no colon here\r\n\r\n",
            b"X-Foo: bar\r\n\r\n",
            b"Content-Length: 99999999999\r\n\r\n",
        ]
    ),
)


def test_fuzzed_input_never_kills_the_adapter(sample_oops: Any, tmp_path: Path) -> None:
    with DapClient(tmp_path) as client:
        stopped = client.launch_and_stop(config_for(sample_oops))["body"]
        reference = stack_of(client, stopped["threadId"])

        @settings(
            max_examples=150,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(payload=_payloads)
        def one(payload: bytes) -> None:
            assert payload.startswith(b"Content-Length") or b"\r\n\r\n" in payload
            client.send_raw(payload)
            # The adapter is still alive and answering, in order, within a second or two.
            probe = client.call("threads", timeout=20)
            assert len(probe["threads"]) == len(reference_threads)

        reference_threads = client.call("threads")["threads"]
        one()
        assert client.proc.poll() is None, client.diagnostics()
        # Stale ids are errors, not crashes; then the real request gives the same stack.
        for arguments in ({"threadId": 10**9}, {"threadId": -1}, {"threadId": None}):
            assert not client.request("stackTrace", arguments)["success"]
        assert not client.request("scopes", {"frameId": 10**9})["success"]
        assert stack_of(client, stopped["threadId"]) == reference
        assert client.schema_errors == [], client.schema_errors[:5]
