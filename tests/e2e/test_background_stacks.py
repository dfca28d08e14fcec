"""Every task's stack read and matched in the background after the stop (``handlers/stop.py``).

Once the task list is whole, the adapter reads and matches every task's stack a step at a time while
no request waits (``StackService.match_stacks``). What it leaves must be what a request would have
computed itself:

* the stack service stepped in small chunks, with ``stack()`` of other tasks asked in between (as
  ``stackTrace`` requests between background steps do), groups and indexes every task as a service
  that does it in one go;
* through DAP, a session that asks at once (the requests do the work) and one that asks after the
  background finished answer ``vmcore/stackGroups``, ``vmcore/blocked`` and ``stackTrace`` alike;
* (huge) a request sent while the background reads 50,000 stacks is answered between two steps, not
  after the last one. (That no step runs while a client keeps asking: ``tests/unit/test_dap_channel``.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import config_for, grouped_service, open_sample_dump
from tests.helpers.dap_client import DapClient

from vmcore_dap.dump.kernel.panic import crashed_task
from vmcore_dap.dump.kernel.tasks import list_tasks
from vmcore_dap.dump.stacks.service import StackService

pytestmark = pytest.mark.timeout(900)

#: What the adapter logs when its background steps, not a request, matched the last task's stack.
DONE_LINE = "matched every task's stack in the background"


def _wait_for_log(client: DapClient, text: str, timeout: float) -> None:
    assert client.log_path is not None
    deadline = time.monotonic() + timeout
    while text not in client.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, (
            f"no {text!r} in the log within {timeout} s\n{client.diagnostics()}"
        )
        time.sleep(0.05)


def _logged(client: DapClient, text: str) -> bool:
    assert client.log_path is not None
    return text in client.log_path.read_text(errors="replace")


def _group_shape(body: dict[str, Any]) -> list[tuple[object, ...]]:
    return [
        (
            tuple((f["function"], f["module"], f["pc"]) for f in g["frames"]),
            tuple(g["threadIds"]),
            tuple(g["pids"]),
            g["stateLetters"],
        )
        for g in body["groups"]
    ]


def _stack_shape(client: DapClient, thread_id: int) -> list[tuple[object, ...]]:
    frames = client.call("stackTrace", {"threadId": thread_id}, timeout=300)["stackFrames"]
    return [(f["name"], f.get("line"), f.get("instructionPointerReference")) for f in frames]


def test_stepped_matching_equals_matching_at_once(sample_many: Any) -> None:
    """Small steps with other tasks' stacks asked in between give the groups and function index of
    one pass (in process, the real dump)."""
    whole = grouped_service(sample_many)
    dump = open_sample_dump(sample_many)
    crashed = crashed_task(dump.prog)
    service = StackService(dump.prog, list_tasks(dump.prog, crashed), crashed.value_() if crashed else None)
    total = len(service.tasks)
    asked = iter(range(total, 0, -97))  # tasks far ahead of the steps, as stackTrace requests come
    steps = 0
    while not service.match_stacks(7):
        steps += 1
        assert service.matched == 7 * steps
        key = next(asked, None)
        if key is not None:
            service.stack(key)
    assert service.matched == total
    assert service.match_stacks(7)  # done: nothing more to do
    stepped = service.groups()
    assert [(g.functions, g.members, g.pids) for g in stepped.groups] == [
        (g.functions, g.members, g.pids) for g in whole.groups().groups
    ]
    assert service.function_index().by_function == whole.function_index().by_function
    assert service.function_index().by_file == whole.function_index().by_file


def test_background_answers_equal_answers_computed_on_request(sample_many: Any, tmp_path: Path) -> None:
    """A Kernel view opened at once (the requests match the stacks) and one opened after the
    background finished get the same groups, blocked tasks and Call Stacks."""
    answers = []
    for name, wait in (("at-once", False), ("after-background", True)):
        (tmp_path / name).mkdir()
        with DapClient(tmp_path / name) as client:
            # At once: the stop of a dump listed after it, not waiting for the list either.
            client.launch_and_stop(config_for(sample_many), whole_thread_list=False)
            if wait:
                _wait_for_log(client, DONE_LINE, 300)
            groups = client.call("vmcore/stackGroups", timeout=300)
            blocked = client.call("vmcore/blocked", timeout=300)
            ids = [t["id"] for t in client.call("threads")["threads"]]
            stacks = {i: _stack_shape(client, i) for i in ids[:: max(1, len(ids) // 60)]}
            answers.append(
                (_group_shape(groups), groups["unwound"], json.dumps(blocked, sort_keys=True), stacks)
            )
            # The at-once session's requests did the work: its background found nothing left.
            assert _logged(client, DONE_LINE) == wait
            assert client.schema_errors == []
    (groups_a, unwound_a, blocked_a, stacks_a), (groups_b, unwound_b, blocked_b, stacks_b) = answers
    assert groups_a == groups_b
    assert unwound_a == unwound_b
    assert blocked_a == blocked_b
    assert stacks_a == stacks_b


@pytest.mark.huge
@pytest.mark.timeout(1800)
def test_requests_are_answered_between_background_steps(sample_huge: Any, tmp_path: Path) -> None:
    """While the background reads 50,000 stacks, a ``stackTrace`` and a ``threads`` are answered
    between two of its steps (the log has no end of the background yet), and it goes on after."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    with DapClient(tmp_path) as client:
        stopped = client.launch_and_stop(config_for(sample_huge), timeout=600)
        ids = [t["id"] for t in client.call("threads", timeout=600)["threads"]]
        time.sleep(0.5)  # quiet: the background steps begin (after MATCH_QUIET) and are under way
        assert _logged(client, "listed ") and not _logged(client, DONE_LINE), "background ended too soon"
        t0 = time.monotonic()
        frames = client.call("stackTrace", {"threadId": ids[-1]}, timeout=600)["stackFrames"]
        seconds = time.monotonic() - t0
        assert frames
        assert client.call("stackTrace", {"threadId": stopped["body"]["threadId"]}, timeout=600)[
            "stackFrames"
        ]
        assert not _logged(client, DONE_LINE), "the requests waited for the whole background job"
        _wait_for_log(client, DONE_LINE, 600)
        print(f"stackTrace of the last of {len(ids)} threads during the background: {seconds * 1000:.1f} ms")
        assert client.schema_errors == []
