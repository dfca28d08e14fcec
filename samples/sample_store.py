"""Load sample vmcores from the cache, building them when missing: the tests' entry point.

    from sample_store import ensure_sample        # samples/ on sys.path
    sample = ensure_sample("oops-null")
    sample.vmcore, sample.vmlinux, sample.expected["crashed_pid"]

Importable both as ``sample_store`` (with ``samples/`` on ``sys.path``) and as
``samples.sample_store`` (with the repository root on it). A build runs
``make-vmcore`` in a subprocess so its progress lines reach the terminal and a
failure reports make-vmcore's own message.
"""

from __future__ import annotations

import json
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
from vmcore_builder.common import SCENARIOS, BuildError, cache_root  # noqa: E402
from vmcore_builder.hashing import builder_hash as _builder_hash  # noqa: E402
from vmcore_builder.kernel import pick_kernel  # noqa: E402
from vmcore_builder.manifest import MANIFEST_NAME, load_manifest  # noqa: E402

__all__ = [
    "SCENARIOS",
    "MAKE_VMCORE",
    "Sample",
    "SampleError",
    "builder_hash",
    "ensure_sample",
    "launch_configuration",
    "load_sample",
    "sample_dir_for",
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


def builder_hash() -> str:
    """Return the hash part of today's sample directory names (builder files + kernel version)."""
    return _builder_hash(pick_kernel().version)


def sample_dir_for(scenario: str) -> Path:
    """Return the cache directory of ``scenario`` for today's builder and kernel."""
    return _sample_dir_for(scenario)


def _abs(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def load_sample(sample_dir: Path) -> Sample:
    """Load a complete sample directory (one with a manifest)."""
    m = load_manifest(sample_dir)
    return Sample(
        dir=sample_dir,
        scenario=m["scenario"],
        kernel_release=m["kernel_release"],
        vmcore=_abs(sample_dir, m["vmcore"]),
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


def _run_make_vmcore(scenario: str) -> None:
    """Run make-vmcore, echoing its progress to stderr; raise with its error on failure."""
    tail: deque[str] = deque(maxlen=12)
    with subprocess.Popen(
        [sys.executable, str(MAKE_VMCORE), scenario],
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
            f"Cannot build the '{scenario}' sample (make-vmcore exited with "
            f"{proc.returncode}):\n" + "\n".join(errors)
        )


def ensure_sample(scenario: str) -> Sample:
    """Return ``scenario``'s sample, building it first if the cache lacks it (minutes).

    :raises SampleError: unknown scenario, or the build failed (message from make-vmcore).
    """
    if scenario not in SCENARIOS:
        raise SampleError(f"Unknown sample scenario '{scenario}' (known: {', '.join(SCENARIOS)})")
    sample_dir = sample_dir_for(scenario)
    if not (sample_dir / MANIFEST_NAME).exists():
        _run_make_vmcore(scenario)
        _prune_idle_samples()
    mark_used(sample_dir)
    sample = load_sample(sample_dir)
    for path in (sample.vmcore, sample.vmcore_elf, sample.vmlinux, *sample.debug_info):
        if not path.exists():
            raise SampleError(
                f"Sample '{scenario}' at {sample_dir} is missing {path} "
                f"(delete {sample_dir} and rebuild with '{MAKE_VMCORE} {scenario}')"
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
        from kernel_source import PACKAGE

        kernel_source = cache_root() / "kernel-source" / version / PACKAGE
    return {
        "@SAMPLE_DIR@": str(sample.dir),
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
    """``sample_store.py launch SCENARIO``: print the filled-in launch.json (building if needed)."""
    if len(argv) != 2 or argv[0] not in ("launch", "dir"):
        print("usage: sample_store.py launch|dir SCENARIO", file=sys.stderr)
        return 2
    try:
        sample = ensure_sample(argv[1])
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
