"""``samples/crash_oracle.py``'s command line: several scenarios, ``--all``, and the scenarios crash
cannot open (``NO_CRASH_ANSWERS``), which are skipped by ``--all`` and refused with their reason."""

from __future__ import annotations

from typing import Any

import pytest
from samples.crash_oracle import NO_CRASH_ANSWERS, CrashOracleError, _scenarios_from, ensure_crash_answers
from samples.sample_store import SCENARIOS

pytestmark = pytest.mark.timeout(120)


def test_all_is_every_scenario_crash_can_open(capsys: pytest.CaptureFixture[str]) -> None:
    chosen = _scenarios_from(["--all"], tuple(SCENARIOS))
    assert chosen == [s for s in SCENARIOS if s != "no-panic"] and "many-tasks" in chosen
    err = capsys.readouterr().err
    assert f"skipping no-panic: {NO_CRASH_ANSWERS['no-panic']}" in err
    assert "cannot open QEMU's dump-guest-memory ELF" in NO_CRASH_ANSWERS["no-panic"]


def test_named_scenarios_in_order_without_repeats() -> None:
    assert _scenarios_from(["sysrq-c", "oops-null", "sysrq-c"], tuple(SCENARIOS)) == ["sysrq-c", "oops-null"]
    for bad in ([], ["--all", "oops-null"], ["-x"], ["oops-null", "--bogus"]):
        assert _scenarios_from(bad, tuple(SCENARIOS)) is None, bad


def test_no_panic_is_refused_with_the_reason(sample_nopanic: Any) -> None:
    with pytest.raises(CrashOracleError, match="no crash answers for 'no-panic': crash 8.0.6 cannot open"):
        ensure_crash_answers(sample_nopanic)
