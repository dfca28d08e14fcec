"""Load sample vmcores from the cache, building them when missing: the tests' entry point.

    from sample_store import ensure_sample        # samples/ on sys.path
    sample = ensure_sample("oops-null")          # the default kernel (Debian 12's 6.1)
    sample.vmcore, sample.vmlinux, sample.expected["crashed_pid"]
    ensure_sample("sysrq-c", kernel="deb13-6.12-arm64")             # another kernel of the matrix
    ensure_sample("sysrq-c", kernel="sid-7-amd64", variant="lossy-d31")
    for spec in matrix_samples(make_test_only=True): ensure_sample(spec.scenario, spec.kernel, spec.variant)

Importable both as ``sample_store`` (with ``samples/`` on ``sys.path``) and as
``samples.sample_store`` (with the repository root on it). A build runs
``make-vmcore`` in a subprocess so its progress lines reach the terminal and a
failure reports make-vmcore's own message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from sample_cache import IDLE_DAYS, mark_used, prune  # noqa: E402
from vmcore_builder.build import sample_dir_for as _sample_dir_for  # noqa: E402
from vmcore_builder.common import KNOWN_SCENARIOS, SCENARIOS, BuildError, cache_root  # noqa: E402
from vmcore_builder.manifest import MANIFEST_NAME, load_manifest  # noqa: E402
from vmcore_builder.matrix import (  # noqa: E402
    DEFAULT_KERNEL,
    KERNEL_LINES,
    VARIANTS,
    MatrixSample,
    matrix_samples,
)

__all__ = [
    "DEFAULT_KERNEL",
    "KERNEL_LINES",
    "KNOWN_SCENARIOS",
    "MAKE_VMCORE",
    "SCENARIOS",
    "VARIANTS",
    "MatrixSample",
    "Sample",
    "SampleError",
    "builder_hash",
    "ensure_sample",
    "launch_configuration",
    "load_sample",
    "matrix_samples",
    "sample_dir_for",
    "samples_under_test",
]

#: The sample launch.json templates, one per scenario (placeholders documented in README.md).
LAUNCH_DIR = _HERE / "launch"

#: The builder script ensure_sample() runs.
MAKE_VMCORE = _HERE / "make-vmcore"

#: Raised when a sample cannot be loaded or built; the message says why and what to do.
SampleError = BuildError


@dataclass(frozen=True)
class Sample:
    """A complete sample: its files as absolute paths, and the facts it guarantees."""

    dir: Path
    scenario: str
    kernel_release: str
    #: The kernel id of the matrix (``deb12-6.1-amd64``), its architecture (``amd64``, ``arm64``).
    kernel: str
    arch: str
    #: ``None``, ``lossy-d31`` (``vmcore`` is makedumpfile -d 31's lossy file) or ``qemu-dump``.
    variant: str | None
    #: ``kdump-compressed``, ``raw-elf`` (/proc/vmcore as it was) or ``qemu-elf``.
    dump_format: str
    vmcore: Path
    vmcore_elf: Path
    dmesg: Path
    console_log: Path
    vmlinux: Path
    debug_info_dir: Path
    debug_info: list[Path]
    module_source_dir: Path
    expected: dict[str, Any]
    manifest: dict[str, Any]


#: Set to 1 by ``make test-matrix``: tests parametrised by :func:`samples_under_test` then take
#: every sample of the matrix, not only those ``make test`` builds.
MATRIX_ENV = "VMCORE_DAP_MATRIX"


def samples_under_test() -> tuple[MatrixSample, ...]:
    """The matrix samples this test run covers: ``make test``'s (one of every kernel, the default
    kernel's five), or all of them when ``VMCORE_DAP_MATRIX=1`` (``make test-matrix``)."""
    return matrix_samples(make_test_only=os.environ.get(MATRIX_ENV) != "1")


def builder_hash(scenario: str = "oops-null", kernel: str | None = None, variant: str | None = None) -> str:
    """Return the hash part of a sample's directory name (builder, guest files, kernel pin)."""
    return sample_dir_for(scenario, kernel, variant).name.rsplit("-", 1)[1]


def sample_dir_for(scenario: str, kernel: str | None = None, variant: str | None = None) -> Path:
    """Return the cache directory of a sample for today's builder and pinned kernel (no network)."""
    return _sample_dir_for(scenario, kernel, variant)


def _abs(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def _format_1_dump_format(manifest: dict[str, Any]) -> str:
    return "qemu-elf" if manifest.get("guest", {}).get("host_dump") else "kdump-compressed"


def load_sample(sample_dir: Path, variant: str | None = None) -> Sample:
    """Load a complete sample directory (one with a manifest).

    :param variant: ``lossy-d31``: the same guest run's makedumpfile -d 31 file as ``vmcore``.
    """
    m = load_manifest(sample_dir)
    vmcore = m["vmcore"]
    if variant is not None and variant != m.get("variant"):
        variants = m.get("variants", {})
        if variant not in variants:
            have = ", ".join(variants) or "none"
            raise SampleError(f"Sample {sample_dir} has no '{variant}' variant (it has: {have})")
        vmcore = variants[variant]
    return Sample(
        dir=sample_dir,
        scenario=m["scenario"],
        kernel_release=m["kernel_release"],
        # Manifests of format 1 (before the matrix) are the default kernel's kdump samples.
        kernel=m.get("kernel", DEFAULT_KERNEL),
        arch=m.get("arch", "amd64"),
        variant=variant or m.get("variant"),
        dump_format=m.get("dump_format", _format_1_dump_format(m)),
        vmcore=_abs(sample_dir, vmcore),
        vmcore_elf=_abs(sample_dir, m["vmcore_elf"]),
        dmesg=_abs(sample_dir, m["dmesg"]),
        console_log=_abs(sample_dir, m["console_log"]),
        vmlinux=_abs(sample_dir, m["vmlinux"]),
        debug_info_dir=_abs(sample_dir, m["debug_info_dir"]),
        debug_info=[_abs(sample_dir, p) for p in m["debug_info"]],
        module_source_dir=_abs(sample_dir, m["module_source_dir"]),
        expected=m["expected"],
        manifest=m,
    )


def _run_make_vmcore(scenario: str, kernel: str | None, variant: str | None) -> None:
    """Run make-vmcore, echoing its progress to stderr; raise with its error on failure."""
    tail: deque[str] = deque(maxlen=12)
    options = [*(["--kernel", kernel] if kernel else []), *(["--variant", variant] if variant else [])]
    with subprocess.Popen(
        [sys.executable, str(MAKE_VMCORE), *options, scenario],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line.rstrip())
    if proc.returncode != 0:
        errors = [line for line in tail if not line.startswith("[make-vmcore]")] or list(tail)
        raise SampleError(
            f"Cannot build the '{scenario}' sample of {kernel or DEFAULT_KERNEL} (make-vmcore exited with "
            f"{proc.returncode}):\n" + "\n".join(errors)
        )


def ensure_sample(scenario: str, kernel: str | None = None, variant: str | None = None) -> Sample:
    """Return a sample, building it first if the cache lacks it (minutes).

    :param kernel: a kernel id of the matrix (``KERNEL_LINES``); default: Debian 12's 6.1.
    :param variant: ``lossy-d31`` or ``qemu-dump`` (``VARIANTS``; which kernels have them:
        ``matrix_samples()``).
    :raises SampleError: unknown scenario, kernel or variant, or the build failed (message from
        make-vmcore: a pinned package the archive no longer serves names the re-pin command).
    """
    if scenario not in KNOWN_SCENARIOS:
        raise SampleError(f"Unknown sample scenario '{scenario}' (known: {', '.join(KNOWN_SCENARIOS)})")
    sample_dir = sample_dir_for(scenario, kernel, variant)
    if not (sample_dir / MANIFEST_NAME).exists():
        _run_make_vmcore(scenario, kernel, variant)
        _prune_idle_samples()
    mark_used(sample_dir)
    sample = load_sample(sample_dir, variant)
    for path in (sample.vmcore, sample.vmcore_elf, sample.vmlinux, *sample.debug_info):
        if not path.exists():
            raise SampleError(
                f"Sample '{scenario}' at {sample_dir} is missing {path} "
                f"(delete {sample_dir} and rebuild with '{MAKE_VMCORE} {scenario}'"
                + (f" --kernel {kernel}" if kernel else "") + (f" --variant {variant}')" if variant else "')")
            )
    return sample


def _prune_idle_samples() -> None:
    """After a build: remove samples of other builders unused for a week (they are large)."""
    for path, size in prune(IDLE_DAYS):
        print(
            f"[samples] removed {path.name} ({size / 2**20:,.0f} MiB, unused for {IDLE_DAYS:g} days)",
            file=sys.stderr,
        )


def _placeholders(sample: Sample, kernel_source: Path | None) -> dict[str, str]:
    version = sample.manifest.get("kernel_version", "")
    if kernel_source is None:
        # Where samples/kernel_source.py unpacks Debian's tree (it may not be fetched yet).
        from kernel_source import source_package

        kernel_source = cache_root() / "kernel-source" / version / source_package(version)
    return {
        "@SAMPLE_DIR@": str(sample.dir),
        # The sample's dump, or its variant's file (lossy-d31: vmcore-d31) for load_sample(dir, variant).
        "@VMCORE@": str(sample.vmcore),
        "@VMLINUX@": str(sample.vmlinux),
        "@DEBUG_INFO_DIR@": str(sample.debug_info_dir),
        # Debian builds in /build/reproducible-path/linux-<upstream version>.
        "@KERNEL_BUILD_DIR@": f"/build/reproducible-path/linux-{version.split('-')[0]}",
        "@KERNEL_SOURCE@": str(kernel_source),
    }


def _substitute(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, repl in table.items():
            value = value.replace(key, repl)
        return value
    if isinstance(value, list):
        return [_substitute(v, table) for v in value]
    if isinstance(value, dict):
        return {_substitute(k, table): _substitute(v, table) for k, v in value.items()}
    return value


def launch_configuration(sample: Sample, kernel_source: Path | None = None) -> dict[str, Any]:
    """Return ``samples/launch/<scenario>.json`` with its placeholders filled in for ``sample``.

    :param kernel_source: the unpacked kernel tree for ``sourceRoot``; default: where
        ``samples/kernel_source.py`` puts Debian's linux-source-6.1 for this kernel.
    """
    template = json.loads((LAUNCH_DIR / f"{sample.scenario}.json").read_text())
    return _substitute(template, _placeholders(sample, kernel_source))


def _main(argv: list[str]) -> int:
    """``sample_store.py launch|dir SCENARIO [KERNEL_ID [VARIANT]]``: print the filled-in
    launch.json, or the sample's directory (building it if needed)."""
    if not 2 <= len(argv) <= 4 or argv[0] not in ("launch", "dir"):
        print("usage: sample_store.py launch|dir SCENARIO [KERNEL_ID [VARIANT]]", file=sys.stderr)
        return 2
    try:
        sample = ensure_sample(argv[1], *argv[2:])
    except SampleError as e:
        print(f"sample_store: error: {e}", file=sys.stderr)
        return 1
    if argv[0] == "dir":
        print(sample.dir)
    else:
        print(json.dumps(launch_configuration(sample), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
