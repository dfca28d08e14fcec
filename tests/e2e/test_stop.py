"""Launch → stopped on every sample: reason, thread, panic text, progress, the filter level.

How fast the first picture comes is measured by ``make bench`` (bench/RESULTS.md), as ratios against
crash and plain drgn in one run, not asserted here: a wall-clock limit fails on a loaded machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import config_for, parse_thread_name, stack_of, stopped_session
from tests.helpers.crash_parse import crash_state_letter, parse_ps, parse_sys
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(900)


def test_stops_on_the_crashed_task_with_the_panic(
    sample: Any, crash_answers: dict[str, str], tmp_path: Path
) -> None:
    expected = sample.expected
    with DapClient(tmp_path) as client:
        caps = client.initialize()
        assert caps["supportsConfigurationDoneRequest"] and caps["supportsExceptionInfoRequest"]
        launch = client.send_request("launch", config_for(sample))
        response = client.wait_response(launch, 300)
        assert response["success"], response
        client.wait_event("initialized")
        client.call("configurationDone")
        stopped = client.wait_event("stopped")["body"]
        threads = client.call("threads")["threads"]
        frames = stack_of(client, stopped["threadId"])

        assert stopped["reason"] == "exception" and stopped["allThreadsStopped"] is True
        assert stopped["description"] == expected["panic"]
        assert stopped["description"] == parse_sys(crash_answers["sys"])["PANIC"].split('"')[1]
        if "oops_line" in expected:
            assert stopped["text"] == expected["oops_line"]
        crashed = parse_thread_name(threads[0]["name"])
        assert threads[0]["id"] == stopped["threadId"]
        (crash_row,) = [r for r in parse_ps(crash_answers["ps"]) if r.pid == expected["crashed_pid"]]
        assert crashed == {
            "pid": expected["crashed_pid"],
            "comm": expected["crashed_comm"],
            "state": crash_state_letter(crash_row.state),
            "cpu": expected["crashed_cpu"],
        }
        assert frames and all(isinstance(f["id"], int) for f in frames)

        # Events: progress while loading, exactly one stop, the filter level said once.
        names = [e["event"] for e in client.events]
        assert names.count("stopped") == 1
        assert names.index("progressStart") < names.index("progressEnd") < names.index("initialized")
        assert any(e["event"] == "progressUpdate" for e in client.events)
        levels = [
            e["body"]["output"]
            for e in client.events
            if e["event"] == "output" and "makedumpfile" in e["body"]["output"]
        ]
        assert len(levels) == 1
        assert "partial dump, makedumpfile -d 31: user, cache and free pages excluded" in levels[0]
        assert "[PARTIAL DUMP]" in parse_sys(crash_answers["sys"])["DUMPFILE"]
        assert client.schema_errors == []


def test_elf_vmcore_stops_the_same_way(sample: Any, tmp_path: Path) -> None:
    with stopped_session(sample, tmp_path, vmcore=str(sample.vmcore_elf)) as (client, stopped):
        assert stopped["body"]["reason"] == "exception"
        assert stopped["body"]["description"] == sample.expected["panic"]
        threads = client.call("threads")["threads"]
        assert parse_thread_name(threads[0]["name"])["pid"] == sample.expected["crashed_pid"]
        levels = [e["body"]["output"] for e in client.events if e["event"] == "output"]
        # The samples' vmcore.elf is makedumpfile -E -d 31: filtered, which its segments show
        # (tests/e2e/test_page_filter.py checks the count against the file and the kdump twin).
        assert any("ELF dump written by makedumpfile with filtering: " in text for text in levels), levels


def test_stop_on_panic_false_pauses_on_cpu0s_task(
    sample: Any, crash_answers: dict[str, str], tmp_path: Path
) -> None:
    cpu0 = [row for row in parse_ps(crash_answers["ps"]) if row.active and row.cpu == 0]
    assert len(cpu0) == 1, cpu0
    with stopped_session(sample, tmp_path, stopOnPanic=False) as (client, stopped):
        body = stopped["body"]
        assert body["reason"] == "pause" and body["allThreadsStopped"] is True
        names = {t["id"]: t["name"] for t in client.call("threads")["threads"]}
        assert parse_thread_name(names[body["threadId"]])["pid"] == cpu0[0].pid


def test_threads_are_answered_while_launch_is_still_loading(sample: Any, tmp_path: Path) -> None:
    with DapClient(tmp_path) as client:
        client.initialize()
        launch = client.send_request("launch", config_for(sample))
        early = client.send_request("threads")
        response = client.wait_response(early, 10)
        assert response["success"]
        launched = client.wait_response(launch, 300)
        assert launched["success"]
        # The reader answered threads before the worker finished launch (seq order of the replies).
        assert response["seq"] < launched["seq"]


def test_cancel_stops_a_launch_and_the_next_launch_works(sample: Any, tmp_path: Path) -> None:
    with DapClient(tmp_path) as client:
        client.initialize()
        # launch and its cancel back to back: the reader marks it cancelled within microseconds,
        # long before the debug-info indexing step (hundreds of ms) ends and progress is checked.
        launch = client.send_request("launch", config_for(sample))
        client.send_request("cancel", {"requestId": launch})
        response = client.wait_response(launch, 300)
        assert not response["success"] and response["message"] == "launch: cancelled"
        assert response["body"]["error"]["showUser"] is False
        stopped = client.launch_and_stop(config_for(sample))
        assert stopped["body"]["reason"] == "exception"
        assert client.schema_errors == []


def test_terminate_then_disconnect_ends_the_adapter(sample_oops: Any, tmp_path: Path) -> None:
    with stopped_session(sample_oops, tmp_path) as (client, _):
        client.call("terminate")
        client.wait_event("terminated", timeout=10)
        assert client.call("disconnect", {"terminateDebuggee": True}) == {}
        assert client.proc.wait(timeout=10) == 0
