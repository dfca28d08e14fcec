"""Requests answered in the middle of a streaming console line, on the 5,067-task sample.

A long console command (``foreach bt``) streams its output in chunks; between two chunks the adapter
answers the requests that arrived meanwhile on the same drgn thread (``Channel.serve_pending``). The
Kernel view's first render (``vmcore/summary``) and "Copy crash report" (``vmcore/crashReport``) run
crash's ``sys`` themselves, so they run a console command *inside* the console command: both must be
answered while the line streams, the line must finish with all of its output, and the console must
print afterwards (its output redirection undone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import stopped_session
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(900)

#: A request that gets no answer within this time is taken as hung.
HANG_TIMEOUT = 240


def _printed(client: DapClient, start: int) -> str:
    return "".join(
        e["body"]["output"]
        for e in client.events[start:]
        if e["event"] == "output" and e["body"].get("category", "console") in ("console", "stdout")
    )


def test_kernel_view_and_crash_report_answer_while_foreach_bt_streams(
    sample_many: Any, tmp_path: Path
) -> None:
    with stopped_session(sample_many, tmp_path) as (client, _stopped):
        threads = client.call("threads")["threads"]
        start = len(client.events)
        console_seq = client.send_request("evaluate", {"expression": "foreach bt", "context": "repl"})
        # The line is streaming once its first chunk has arrived; these two now nest inside it.
        client.wait_event(
            "output", lambda e: "PID:" in e["body"]["output"], timeout=HANG_TIMEOUT, start=start
        )
        summary_seq = client.send_request("vmcore/summary")
        report_seq = client.send_request("vmcore/crashReport")
        summary = client.wait_response(summary_seq, timeout=HANG_TIMEOUT)
        report = client.wait_response(report_seq, timeout=HANG_TIMEOUT)
        console = client.wait_response(console_seq, timeout=HANG_TIMEOUT)
        assert summary["success"], summary.get("message")
        assert report["success"], report.get("message")
        assert console["success"], console.get("message")
        order = client.response_order
        assert order.index(summary_seq) < order.index(console_seq), "the summary waited for foreach bt"
        assert order.index(report_seq) < order.index(console_seq), "the crash report waited for foreach bt"
        facts = {f["name"]: f["value"] for f in summary["body"]["facts"]}
        assert facts["TASKS"] == str(len(threads)) and facts["RELEASE"], facts
        assert report["body"]["markdown"].startswith("## Kernel crash: ")
        # foreach bt printed every task to the console, none of it into the nested sys.
        printed = _printed(client, start)
        assert printed.count("PID:") == len(threads), (printed.count("PID:"), len(threads))
        assert "LOAD AVERAGE:" not in printed
        # The console prints again: sys.stdout was given back.
        after = len(client.events)
        assert client.request("evaluate", {"expression": "sys", "context": "repl"}, timeout=HANG_TIMEOUT)[
            "success"
        ]
        assert f"TASKS: {len(threads)}" in " ".join(_printed(client, after).split())
