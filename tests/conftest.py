"""Shared fixtures: the sample vmcores and crash's answers about them.

A test that needs a dump asks for one of these fixtures; the sample is built if it is missing
(``samples.sample_store.ensure_sample``), never skipped.  Samples and crash's answers are cached
outside the clone, so only the first run pays for building them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # makes ``samples`` and ``tests`` importable

if TYPE_CHECKING:
    from samples.crash_oracle import CrashAnswers
    from samples.sample_store import Sample

#: The small crashed samples: ``sample`` runs a test once per each. The scale sample (``many-tasks``)
#: and the live-guest dump (``no-panic``) have fixtures of their own, so tests do not multiply.
SCENARIOS = ("oops-null", "sysrq-c", "irq-oops")

_SampleKey = tuple[str, str | None, str | None]
_samples: dict[_SampleKey, Sample] = {}
_answers: dict[_SampleKey, CrashAnswers] = {}


def get_sample(scenario: str, kernel: str | None = None, variant: str | None = None) -> Sample:
    """Build (or reuse) the sample of ``scenario`` once per test session (default: Debian 12's 6.1;
    ``kernel``/``variant`` name another sample of the matrix, see ``samples.sample_store``)."""
    key = (scenario, kernel, variant)
    if key not in _samples:
        from samples.sample_store import ensure_sample

        _samples[key] = ensure_sample(scenario, kernel, variant)
    return _samples[key]


def get_crash_answers(scenario: str, kernel: str | None = None, variant: str | None = None) -> CrashAnswers:
    """crash's answers about a sample ({command name: output}, with the oracle's metadata: which crash,
    which answers are missing or distrusted and why), once per session."""
    key = (scenario, kernel, variant)
    if key not in _answers:
        from samples.crash_oracle import ensure_crash_answers

        _answers[key] = ensure_crash_answers(get_sample(scenario, kernel, variant))
    return _answers[key]


@pytest.fixture(scope="session")
def sample_oops() -> Sample:
    """The ``oops-null`` sample: a NULL dereference in the labbug module, from write()."""
    return get_sample("oops-null")


@pytest.fixture(scope="session")
def sample_sysrq() -> Sample:
    """The ``sysrq-c`` sample: ``echo c > /proc/sysrq-trigger`` from a shell."""
    return get_sample("sysrq-c")


@pytest.fixture(scope="session")
def sample_many() -> Sample:
    """The ``many-tasks`` sample: 5,000 threads of one process, 8 D-state waiters, SysRq-c."""
    return get_sample("many-tasks")


@pytest.fixture(scope="session")
def sample_huge() -> Sample:
    """The ``huge`` sample: ≈50,000 tasks on 8 CPUs, lock pile-ups with owners, SysRq-c (tests that use
    it are marked ``huge``: ``make test-huge``)."""
    return get_sample("huge")


@pytest.fixture(scope="session")
def sample_nopanic() -> Sample:
    """The ``no-panic`` sample: QEMU's ``dump-guest-memory`` of a live guest (crash 9.0.2 answers
    about it, 8.0.6 cannot open it: ``samples/crash_choice.py``; it has no crash site)."""
    return get_sample("no-panic")


@pytest.fixture(scope="session")
def sample_irq() -> Sample:
    """The ``irq-oops`` sample: a NULL dereference in a hard-interrupt hrtimer callback, which
    interrupted ``labirq`` spinning in the kernel (``labbug_irq_wait``) on CPU 1."""
    return get_sample("irq-oops")


@pytest.fixture(scope="session", params=SCENARIOS)
def sample(request: pytest.FixtureRequest) -> Sample:
    """Every sample in turn (tests using it run once per scenario)."""
    return get_sample(request.param)


@pytest.fixture(scope="session")
def crash_answers(sample: Sample) -> dict[str, str]:
    """crash's answers about ``sample``: {name: output}, names as in ``samples.crash_oracle``."""
    return get_crash_answers(sample.scenario)


@pytest.fixture(scope="session")
def crash_oops(sample_oops: Sample) -> dict[str, str]:
    """crash's answers about the ``oops-null`` sample."""
    return get_crash_answers(sample_oops.scenario)


@pytest.fixture(scope="session")
def crash_sysrq(sample_sysrq: Sample) -> dict[str, str]:
    """crash's answers about the ``sysrq-c`` sample."""
    return get_crash_answers(sample_sysrq.scenario)


@pytest.fixture(scope="session")
def crash_many(sample_many: Sample) -> dict[str, str]:
    """crash's answers about the ``many-tasks`` sample (its ``foreach-bt`` holds 5,000+ tasks)."""
    return get_crash_answers(sample_many.scenario)


@pytest.fixture(scope="session")
def crash_huge(sample_huge: Sample) -> dict[str, str]:
    """crash's answers about the ``huge`` sample (its ``foreach-bt`` holds 50,000+ tasks)."""
    return get_crash_answers(sample_huge.scenario)


@pytest.fixture(scope="session")
def crash_irq(sample_irq: Sample) -> dict[str, str]:
    """crash's answers about the ``irq-oops`` sample."""
    return get_crash_answers(sample_irq.scenario)
