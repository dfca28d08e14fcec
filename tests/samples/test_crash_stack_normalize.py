"""The shared stack normalisation on crash's real ``bt`` of every sample (the rules on fixed frames are
unit tests: tests/unit/test_stack_normalize.py). Needs the samples and crash's answers about them."""

from __future__ import annotations

from tests.helpers.crash_parse import parse_bt
from tests.helpers.stack_normalize import CRASH_MACHINERY, normalize_crash_bt


def test_crash_bt_starts_at_the_crash_site(crash_answers: dict[str, str], sample) -> None:
    """On the real dump: the kdump path above the crash site is cut, nothing else."""
    task = parse_bt(crash_answers["bt"])[0]
    frames = normalize_crash_bt(crash_answers["bt"])
    whole = normalize_crash_bt(crash_answers["bt"], start_at_exception=False)
    assert len(whole) == len(task.frames)
    if task.exceptions:  # oops: the faulting function leads, then its callers as crash lists them
        assert frames[0].function == sample.expected["function"]
        # A later exception block (irq-oops: the timer interrupt) adds the frame it interrupted.
        later = {e.registers["RIP"]: e.symbol for e in task.exceptions[1:]}
        assert [f for f in frames[1:] if f.pc not in later] == whole[task.exceptions[0].before_level :]
        assert {f.pc: f.function for f in frames if f.pc in later} == later
    else:  # panic() called directly: machine_kexec and __crash_kexec go, panic stays
        assert [f.function for f in frames[:2]] == ["panic", sample.expected["function"]]
        assert frames == whole[len(whole) - len(frames) :]
        assert {f.function for f in whole[: len(whole) - len(frames)]} <= CRASH_MACHINERY
    assert frames[-1].function == "entry_SYSCALL_64"  # crash's entry_SYSCALL_64_after_hwframe


def test_crash_bt_l_gives_the_crash_site_line(crash_answers: dict[str, str], sample) -> None:
    frames = [f for f in normalize_crash_bt(crash_answers["bt-l"]) if f.function != "panic"]
    top = frames[0]
    assert (top.function, top.line) == (sample.expected["function"], sample.expected["line"])
    assert top.file is not None and top.file.endswith("/" + sample.expected["file"])
    assert all(f.line is not None for f in frames), crash_answers["bt-l"]
