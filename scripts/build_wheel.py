#!/usr/bin/env python3
"""Build the adapter's wheel from a clean copy of the sources, and print its path.

``pip wheel .`` in the clone builds in setuptools' ``build/`` directory, and whatever an earlier build
left there goes into the wheel too: a module that was moved or deleted since would ship again. So the
files a wheel is made of (pyproject.toml, README.md, LICENSE, adapter/ without byte-code) are copied
to a temporary directory and built there, with pip's build isolation (it fetches the setuptools that
pyproject.toml names), as ``python -m build`` does from an sdist.

Used by the extension's packaging (vscode-extension/scripts/build-wheel.js) and by
tests/packaging/test_wheel.py, so the wheel tested is the wheel shipped.

Usage: build_wheel.py OUT_DIR   (earlier vmcore_dap wheels in OUT_DIR are removed first)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What setuptools reads to build the wheel (pyproject's readme and license-files included).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "adapter")


def build_wheel(out_dir: Path) -> Path:
    """Build the wheel into ``out_dir`` (created if needed, its earlier vmcore_dap wheels removed) and
    return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("vmcore_dap-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="vmcore-dap-wheel-") as tmp:
        tree = Path(tmp) / "src"
        tree.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for name in SOURCES:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, tree / name, ignore=ignore)
            else:
                shutil.copy2(source, tree / name)
        pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
        subprocess.run([*pip, "--wheel-dir", str(out_dir), str(tree)], check=True)
    built = sorted(out_dir.glob("vmcore_dap-*.whl"))
    if len(built) != 1:
        raise SystemExit(f"build_wheel: expected one new wheel in {out_dir}, found {[p.name for p in built]}")
    return built[0]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(build_wheel(Path(argv[1]).resolve()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
