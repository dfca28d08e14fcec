"""``samples/crash_oracle.py``'s command line: the samples it is asked for (scenarios of the default
kernel, matrix labels, ``--all``), in order, without repeats; anything else is a usage error."""

from __future__ import annotations

import pytest
from samples.crash_oracle import _samples_from, main
from samples.sample_store import DEFAULT_KERNEL, matrix_samples, samples_under_test

pytestmark = pytest.mark.timeout(120)


def test_all_is_every_sample_of_this_test_run() -> None:
    known = samples_under_test()
    assert _samples_from(["--all"], known, DEFAULT_KERNEL) == list(known)
    kernels = {spec.kernel for spec in known}
    assert DEFAULT_KERNEL in kernels and len(kernels) > 1, "make test covers every kernel of the matrix"


def test_scenarios_and_labels_in_order_without_repeats() -> None:
    known = matrix_samples()
    by_label = {spec.label: spec for spec in known}
    chosen = _samples_from(
        ["sysrq-c", "oops-null@sid-7-amd64", "sysrq-c", "sysrq-c@sid-7-amd64+lossy-d31"],
        known,
        DEFAULT_KERNEL,
    )
    assert chosen == [
        by_label[f"sysrq-c@{DEFAULT_KERNEL}"],
        by_label["oops-null@sid-7-amd64"],
        by_label["sysrq-c@sid-7-amd64+lossy-d31"],
    ]


@pytest.mark.parametrize(
    "bad",
    [
        [],
        ["--all", "oops-null"],
        ["-x"],
        ["oops-null", "--bogus"],
        ["no-such-scenario"],
        ["sysrq-c@no-kernel"],
    ],
)
def test_a_bad_command_line_is_a_usage_error(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _samples_from(bad, matrix_samples(), DEFAULT_KERNEL) is None
    assert main(bad) == 2
    assert "usage: python samples/crash_oracle.py <sample>... | --all" in capsys.readouterr().err
