"""``exceptionInfo``: the panic string, oops line, taint and the oops's log lines, as crash sees them,
on every kernel of the run (``every_kernel``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.e2e._session import stopped_session
from tests.helpers.crash_parse import parse_log, parse_sys

pytestmark = [pytest.mark.timeout(900), pytest.mark.every_kernel]

#: Words of the kernel's oops line -> the kind of crash a person reads in the exception widget.
_HEADLINES = {"NULL pointer dereference": "NULL pointer dereference", "Trigger a crash": "SysRq crash"}


def test_exception_info(sample: Any, crash_answers: dict[str, str], tmp_path: Path) -> None:
    expected = sample.expected
    with stopped_session(sample, tmp_path) as (client, stopped):
        thread_id = stopped["body"]["threadId"]
        info = client.call("exceptionInfo", {"threadId": thread_id})
        other = client.request("exceptionInfo", {"threadId": thread_id + 1})
    assert info["breakMode"] == "always"
    assert info["description"] == expected["panic"]
    details = info["details"]
    if "oops_line" in expected:
        assert details["message"] == expected["oops_line"]
    # The headline names what the oops line says, in x86's words or arm64's ("BUG: kernel NULL
    # pointer dereference, …" / "Unable to handle kernel NULL pointer dereference at …"), the same
    # label as triage's class for that dump (dump/kernel/panic_kind.py).
    said = [label for words, label in _HEADLINES.items() if words in expected["oops_line"]]
    assert len(said) == 1 and info["exceptionId"] == said[0], (expected["oops_line"], info["exceptionId"])
    tainted = "[TAINTED]" in parse_sys(crash_answers["sys"])["KERNEL"]
    assert details["typeName"].startswith(
        "kernel panic (Tainted: " if tainted else "kernel panic (Not tainted"
    )
    report = details["stackTrace"].splitlines()
    log = [line.text.rstrip() for line in parse_log(crash_answers["log"]) if line.text.strip()]
    assert report[-1] == log[-1]  # to the end of the log
    assert report[0] in log and details["message"] in report
    assert not other["success"] and other["body"]["error"]["showUser"] is False
