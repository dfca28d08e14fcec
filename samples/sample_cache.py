#!/usr/bin/env python3
"""Keep the sample cache from growing without bound: prune samples of older builders.

A sample directory is named ``<scenario>-<kernel release>-<builder hash>``; any edit to the builder or
the guest sources gives every scenario a new hash, and the old directories (150 MB – 1.3 GB each) stay
behind. Each use of a sample stamps its directory (:func:`mark_used`); after a sample is built,
directories of other hashes unused for :data:`IDLE_DAYS` days are removed — long enough for an older
clone sharing the cache (a CI run of a previous commit) to keep its samples. Removing them all now:

    samples/sample_cache.py --prune          # every sample directory not of today's builder
    samples/sample_cache.py --list           # what is cached, what today's builder uses, sizes

This module is not a builder input (see ``vmcore_builder/hashing.py``): changing it rebuilds nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from vmcore_builder.build import sample_dir_for, samples_root  # noqa: E402
from vmcore_builder.common import SCENARIOS  # noqa: E402
from vmcore_builder.matrix import matrix_samples  # noqa: E402

__all__ = ["IDLE_DAYS", "CachedSample", "cached_samples", "mark_used", "prune"]

#: Samples of other builders unused this long are removed after a build.
IDLE_DAYS = 7.0
#: Stamp file whose modification time says when a sample was last used.
USED_STAMP = ".last-used"


@dataclass(frozen=True)
class CachedSample:
    """One directory under ``samples/`` of the cache.

    :param current: it is the directory today's builder uses for its scenario.
    :param idle_days: days since it was last used (or built, when it was never stamped).
    """

    path: Path
    scenario: str
    current: bool
    idle_days: float

    @property
    def size(self) -> int:
        """Bytes on disk (apparent sizes of its files)."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file() and not p.is_symlink())


def mark_used(sample_dir: Path) -> None:
    """Record that ``sample_dir`` was used now (best effort: a read-only cache is not an error)."""
    try:
        (sample_dir / USED_STAMP).touch()
    except OSError:
        pass


def _scenario_of(name: str) -> str | None:
    # Longest first: no scenario name is a prefix of another today, but nothing guarantees it.
    for scenario in sorted(SCENARIOS, key=len, reverse=True):
        if name.startswith((scenario + "-", scenario + "+")):
            return scenario
    return None


def current_samples() -> dict[str, Path]:
    """Label (``sysrq-c@sid-7-amd64``) -> today's directory, for every sample of the matrix."""
    return {s.label: sample_dir_for(s.scenario, s.kernel, s.variant) for s in matrix_samples()}


def cached_samples(current: dict[str, Path] | None = None) -> list[CachedSample]:
    """Every sample directory in the cache (finished, failed and abandoned builds alike).

    :param current: label -> today's directory, for every sample of the matrix; computed from the
        builder and the pins when not given.
    """
    root = samples_root()
    if not root.is_dir():
        return []
    if current is None:
        current = current_samples()
    now = time.time()
    found = []
    for path in sorted(root.iterdir()):
        scenario = _scenario_of(path.name.lstrip("."))
        if scenario is None or not path.is_dir():
            continue
        stamp = path / USED_STAMP
        used = (stamp if stamp.exists() else path).stat().st_mtime
        found.append(
            CachedSample(
                path=path,
                scenario=scenario,
                current=path in current.values(),
                idle_days=(now - used) / 86400,
            )
        )
    return found


def prune(
    idle_days: float | None = IDLE_DAYS, *, dry_run: bool = False, current: dict[str, Path] | None = None
) -> list[tuple[Path, int]]:
    """Remove sample directories that today's builder does not use.

    :param idle_days: only those unused for at least this many days; ``None`` for all of them.
    :param current: as for :func:`cached_samples`.
    :return: ``(directory, bytes)`` of each one removed (or that would be, with ``dry_run``).
    """
    removed = []
    for sample in cached_samples(current):
        if sample.current or (idle_days is not None and sample.idle_days < idle_days):
            continue
        size = sample.size
        if not dry_run:
            shutil.rmtree(sample.path, ignore_errors=True)
        removed.append((sample.path, size))
    return removed


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sample_cache.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="list the cached sample directories")
    action.add_argument("--prune", action="store_true", help="remove the directories of other builders")
    parser.add_argument(
        "--idle-days", type=float, default=None, help="with --prune: only those unused for this many days"
    )
    parser.add_argument("--dry-run", action="store_true", help="with --prune: say what would go")
    args = parser.parse_args(argv)
    if args.list:
        for sample in cached_samples():
            mark = "in use " if sample.current else f"{sample.idle_days:5.1f} d"
            print(f"{mark}  {_mib(sample.size):>10}  {sample.path}")
        return 0
    removed = prune(args.idle_days, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path, size in removed:
        print(f"{verb} {path} ({_mib(size)})")
    print(f"{verb} {len(removed)} sample directories, {_mib(sum(s for _, s in removed))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
