"""Shared fixtures: the sample vmcores and crash's answers about them.

A test that needs a dump asks for one of these fixtures; the sample is built if it is missing
(``samples.sample_store.ensure_sample``), never skipped.  Samples and crash's answers are cached
outside the clone, so only the first run pays for building them.
"""

from __future__ import annotations

import os
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

#: Marks a test (or a module, with ``pytestmark``) whose ``sample`` is also every other kernel's
#: crashed sample of this run: ``make test``'s sysrq-c of each kernel of the matrix, and with
#: ``VMCORE_DAP_MATRIX=1`` (``make test-matrix``) its oops-null too (:func:`kernel_sample_keys`).
#: ``every_kernel(extra_crash_run=True)``: the test runs crash itself; arm64 in test-matrix only.
EVERY_KERNEL = "every_kernel"

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


def kernel_sample_keys(*, extra_crash_run: bool = False) -> list[_SampleKey]:
    """The crashed samples of the other kernels this run covers (``samples_under_test()``): sysrq-c
    of each in ``make test``, oops-null too in ``make test-matrix``; variants have tests of their own.

    :param extra_crash_run: for a test that runs crash on the dump beyond the oracle's stored
        answers: arm64's samples only in ``make test-matrix``. crash runs under qemu-aarch64 there,
        and one batch took 535 s to over 900 s at load 4–6 (an amd64 kernel's: 10–25 s).
    """
    from samples.sample_store import DEFAULT_KERNEL, KERNEL_LINES, MATRIX_ENV, samples_under_test

    slow = extra_crash_run and os.environ.get(MATRIX_ENV) != "1"
    return [
        (spec.scenario, spec.kernel, None)
        for spec in samples_under_test()
        if spec.kernel != DEFAULT_KERNEL
        and spec.scenario in SCENARIOS
        and spec.variant is None
        and not (slow and KERNEL_LINES[spec.kernel].arch == "arm64")
    ]


def sample_id(key: _SampleKey) -> str:
    """A sample key as test ids write it: ``oops-null``, ``sysrq-c@deb13-6.12-arm64`` (another kernel's)."""
    scenario, kernel, _ = key
    return scenario if kernel is None else f"{scenario}@{kernel}"


#: Set (by :func:`pytest_collection_modifyitems`) on every test that runs on another kernel's sample,
#: whatever parametrised it: ``make test-matrix`` selects them with ``-m other_kernel``.
OTHER_KERNEL = "other_kernel"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``sample``: the default kernel's small samples, and for a test marked ``every_kernel`` the
    crashed samples of every other kernel of the run after them."""
    if "sample" not in metafunc.fixturenames:
        return
    keys: list[_SampleKey] = [(scenario, None, None) for scenario in SCENARIOS]
    marker = metafunc.definition.get_closest_marker(EVERY_KERNEL)
    if marker is not None:
        keys += kernel_sample_keys(extra_crash_run=marker.kwargs.get("extra_crash_run", False))
    metafunc.parametrize("sample", keys, ids=sample_id, indirect=True, scope="session")


@pytest.fixture(scope="session")
def sample(request: pytest.FixtureRequest) -> Sample:
    """Every sample in turn (tests using it run once per scenario, and once per other kernel when
    marked ``every_kernel``)."""
    return get_sample(*request.param)


def answers_for(sample: Sample) -> CrashAnswers:
    """crash's answers about ``sample``, whichever kernel it is of."""
    from samples.sample_store import DEFAULT_KERNEL

    kernel = None if sample.kernel == DEFAULT_KERNEL else sample.kernel
    return get_crash_answers(sample.scenario, kernel, sample.variant)


@pytest.fixture(scope="session")
def crash_answers(sample: Sample) -> CrashAnswers:
    """crash's answers about ``sample``: {name: output}, names as in ``samples.crash_oracle``, with
    what the oracle knows of them (which crash; answers missing or distrusted on this kernel)."""
    return answers_for(sample)


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``other_kernel`` each test whose parameters name a sample of another kernel (its id has
    ``<scenario>@<kernel>``, as :func:`kernel_sample_keys` and ``MatrixSample.label`` write it)."""
    labels = [sample_id(key) for key in kernel_sample_keys()]
    for item in items:
        if any(label in item.name for label in labels):
            item.add_marker(OTHER_KERNEL)
