#!/usr/bin/env bash
# Install what the Python side of vmcore-dap needs on a fresh Debian 12 machine (as root), idempotently:
# a few apt packages, then the .venv at the repository root with the package, its dev extras and the
# triage extra (Dask, which the triage tests run a LocalCluster of).
# Re-running it is cheap: apt is skipped when every package is present, pip when pyproject.toml is
# unchanged since the last install (a stamp inside .venv records its hash).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."

say() { printf '[bootstrap] %s\n' "$*" >&2; }

# shellcheck source=lib.sh
. "$here/lib.sh"

# What the tests run on the host besides the samples (their builder installs its own): a local
# debuginfod server for the debuginfod tests, Universal Ctags for the language server's index, and
# binutils for AArch64 (objdump: the oracle of the arm64 disassembly tests besides crash).
apt_ensure git make gcc libc6-dev python3 python3-venv debuginfod universal-ctags binutils-aarch64-linux-gnu

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $($PY --version 2>&1)"
    "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    say "installing vmcore-dap and its dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >.venv/pip-install.log 2>&1 || true
    if ! .venv/bin/python -m pip install -e '.[dev,triage]' >>.venv/pip-install.log 2>&1; then
        say "pip install failed (is PyPI reachable?): last lines of .venv/pip-install.log:"
        tail -20 .venv/pip-install.log >&2
        exit 1
    fi
    rm -f .venv/.installed-*
    touch "$stamp"
fi
# What pip does when it installs a package, done for the editable one: byte-compile adapter/, so a
# fresh adapter process does not compile its ~70 modules on every start (~60-130 ms of its start-up).
# Python checks each .pyc against its source's mtime and size, so an edited module is compiled again,
# never run stale. PYTHONDONTWRITEBYTECODE, set on some machines, only stops Python from writing them
# at import time; existing ones are still read. Cheap when nothing changed (up-to-date files are
# skipped); the dependencies in .venv were compiled by pip.
if ! .venv/bin/python -m compileall -q adapter >/dev/null; then
    say "byte-compiling adapter/ failed (a syntax error?); Python compiles modules as they are imported"
fi
say "python side ready: $(.venv/bin/python -c 'import drgn, capstone, pygls; print("drgn", drgn.__version__, "capstone", capstone.__version__)')"
