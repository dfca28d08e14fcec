"""Every sample of the kernel matrix opens in drgn and holds what its manifest promises.

The samples are real dumps built by ``make-vmcore`` (built here when missing, never skipped);
drgn reads them and the manifest's ``expected`` facts, which the builder derived from the guest's
own log, are the oracle. ``make test`` covers one sample of every kernel (and the default kernel's
five); ``make test-matrix`` (``VMCORE_DAP_MATRIX=1``) all of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import drgn
import pytest
from drgn.helpers.linux.pid import for_each_task

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from samples.sample_store import MatrixSample, Sample, ensure_sample, samples_under_test  # noqa: E402

pytestmark = pytest.mark.timeout(1800)  # a missing sample is built first (arm64 under TCG: minutes)

_ARCH = {"amd64": drgn.Architecture.X86_64, "arm64": drgn.Architecture.AARCH64}


def _open(sample: Sample) -> drgn.Program:
    prog = drgn.Program()
    prog.set_core_dump(str(sample.vmcore))
    prog.load_debug_info([str(sample.vmlinux), *map(str, sample.debug_info)])
    return prog


def _tasks(prog: drgn.Program) -> tuple[int, Exception | None]:
    """How many tasks the task list yields, and the error that stopped the walk (if any)."""
    count = 0
    try:
        for _ in for_each_task(prog):
            count += 1
    except drgn.FaultError as e:
        return count, e
    return count, None


@pytest.fixture(scope="module", params=samples_under_test(), ids=lambda s: s.label)
def matrix_sample(request: pytest.FixtureRequest) -> tuple[MatrixSample, Sample]:
    spec: MatrixSample = request.param
    return spec, ensure_sample(spec.scenario, spec.kernel, spec.variant)


def test_sample_is_the_pinned_kernel_and_architecture(matrix_sample: tuple[MatrixSample, Sample]) -> None:
    spec, sample = matrix_sample
    assert (sample.kernel, sample.scenario, sample.variant) == (spec.kernel, spec.scenario, spec.variant)
    prog = _open(sample)
    assert prog.platform is not None and prog.platform.arch == _ARCH[sample.arch]
    release = prog["init_uts_ns"].name.release.string_().decode()
    assert release == sample.kernel_release


def test_sample_holds_every_task_or_is_the_lossy_variant(matrix_sample: tuple[MatrixSample, Sample]) -> None:
    spec, sample = matrix_sample
    count, error = _tasks(_open(sample))
    if spec.variant == "lossy-d31":
        # makedumpfile -d 31 dropped slab pages of the task list: the walk breaks off early.
        assert error is not None and "excluded" in str(error).lower(), (count, error)
        assert count < sample.expected["min_tasks"]
    else:
        assert error is None, f"{spec.label}: task walk stopped after {count} tasks: {error}"
        assert count >= sample.expected["min_tasks"]


def test_crashed_thread_is_the_one_the_guest_reported(matrix_sample: tuple[MatrixSample, Sample]) -> None:
    _, sample = matrix_sample
    prog = _open(sample)
    if sample.expected["crashed_pid"] is None:  # no-panic: QEMU dumped a live guest
        with pytest.raises(LookupError, match="panic_cpu is not set"):
            prog.crashed_thread()
        return
    # Also on the lossy variant: the crashed task's own task_struct survived -d 31.
    thread = prog.crashed_thread()
    assert thread.tid == sample.expected["crashed_pid"]
    assert thread.object.comm.string_().decode() == sample.expected["crashed_comm"]
