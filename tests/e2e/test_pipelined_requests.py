"""Many ``stackTrace`` requests in flight at once, as VS Code sends them, on the 5,067-task sample.

DAP lets a client send requests without waiting for the answers (responses come in any order, matched
by ``request_seq``). The adapter answers a ``stackTrace`` on its reader thread when the drgn worker is
idle (:mod:`vmcore_dap.dap.channel`), so pipelined requests, worker requests, inline ones and a
``cancel`` interleave there. Every message is validated against the DAP schema as it arrives
(:class:`~tests.helpers.dap_client.DapClient`); every thread's stack must be what the same adapter
answers one request at a time (that answer is checked against crash's ``foreach bt`` in
``test_stack.py``).
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import config_for, stopped_session
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(600)

#: Requests in flight at once (what a client keeping a window of requests would send).
WINDOW = 64


def test_stacks_of_every_thread_with_64_requests_in_flight_equal_lock_step(
    sample_many: Any, tmp_path: Path
) -> None:
    with stopped_session(sample_many, tmp_path) as (client, stopped):
        crashed = stopped["body"]["threadId"]
        top = client.call("stackTrace", {"threadId": crashed, "levels": 1})["stackFrames"][0]["id"]
        ids = [t["id"] for t in client.call("threads")["threads"]]
        in_flight: collections.deque[int] = collections.deque()
        of_seq: dict[int, int] = {}
        piped: dict[int, dict[str, Any]] = {}
        others: dict[int, str] = {}
        cancelled_thread = ids[len(ids) // 2]
        for n, thread_id in enumerate(ids):
            seq = client.send_request("stackTrace", {"threadId": thread_id})
            of_seq[seq] = thread_id
            in_flight.append(seq)
            if n % 500 == 0:  # unrelated requests in between: a worker one and an inline one
                others[client.send_request("scopes", {"frameId": top})] = "scopes"
                others[client.send_request("threads")] = "threads"
            if thread_id == cancelled_thread:
                others[client.send_request("cancel", {"requestId": seq})] = "cancel"
            while len(in_flight) >= WINDOW:
                oldest = in_flight.popleft()
                piped[oldest] = client.wait_response(oldest)
        while in_flight:
            oldest = in_flight.popleft()
            piped[oldest] = client.wait_response(oldest)
        for seq, command in others.items():
            response = client.wait_response(seq)
            assert response["success"] and response["command"] == command, response
            if command == "scopes":
                assert response["body"]["scopes"], response
            if command == "threads":
                assert [t["id"] for t in response["body"]["threads"]] == ids
        assert sorted(of_seq[seq] for seq in piped) == sorted(ids)
        # Each answered once, in the order sent (the reader never overtakes a queued request).
        order = [seq for seq in client.response_order if seq in of_seq]
        assert order == sorted(of_seq)
        for seq, response in piped.items():
            thread_id = of_seq[seq]
            if not response["success"]:
                # Only the cancelled one may fail, and only as cancelled.
                assert thread_id == cancelled_thread and "cancelled" in response["message"], response
                continue
            assert response["request_seq"] == seq and response["command"] == "stackTrace"
            one = client.call("stackTrace", {"threadId": thread_id})
            assert response["body"] == one, (thread_id, response["body"], one)


def test_a_stack_of_a_thread_not_listed_yet_leaves_the_reader_free(sample_many: Any, tmp_path: Path) -> None:
    """A ``stackTrace`` of an id that is not in the head of the list at the stop makes the adapter
    finish listing the tasks (0.1 s here, seconds at 50,000 tasks) to know whether the id exists: on
    the worker, not on the reader thread, which meanwhile answers a ``threads`` sent after it."""
    with DapClient(tmp_path) as client:
        stopped = client.launch_and_stop(config_for(sample_many), whole_thread_list=False)
        assert client.lists_after_stop(stopped)
        unknown = 1_000_000_000
        stack = client.send_request("stackTrace", {"threadId": unknown})
        threads = client.send_request("threads")
        listed = client.wait_response(threads)
        answer = client.wait_response(stack)
        assert not answer["success"] and f"unknown threadId {unknown}" in answer["message"], answer
        assert len(listed["body"]["threads"]) < 5_000, "threads waited for the listing"
        order = [seq for seq in client.response_order if seq in (stack, threads)]
        assert order == [threads, stack], "the reader thread waited for the listing"
        assert len(client.call("threads")["threads"]) > 5_000
        assert client.schema_errors == [], client.schema_errors
