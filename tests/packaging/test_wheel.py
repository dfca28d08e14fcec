"""The Python package as users install it: a wheel built from this clone, installed with pip into a
fresh virtual environment outside the clone (its dependencies from PyPI, through pip's usual cache),
gives working ``vmcore-dap`` and ``vmcore-dap-lsp`` commands that report their versions and drgn's,
and an adapter that opens a real sample vmcore over DAP with every message schema-valid.

The wheel holds the ``vmcore_dap`` package and its metadata only (no tests, samples or benchmarks);
the metadata says what the package needs (Python, drgn and the releases tested, see
docs/compatibility.md), and the compatibility note names every private drgn module we import.
"""

from __future__ import annotations

import email.parser
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from tests.e2e._session import config_for, parse_thread_name, stack_of
from tests.helpers.dap_client import DapClient

from vmcore_dap import __version__

pytestmark = pytest.mark.timeout(1200)

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "adapter" / "vmcore_dap"
COMPATIBILITY_NOTE = REPO / "docs" / "compatibility.md"


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that points Python at the clone."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(args: list[Any], cwd: Path) -> str:
    """Run a command outside the clone; its stdout, or a failure that shows its output."""
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory outside the clone."""
    path = tmp_path_factory.mktemp("outside-the-clone")
    assert REPO not in path.resolve().parents
    return path


@pytest.fixture(scope="module")
def wheel(outside: Path) -> Path:
    """The wheel of this clone, built as ``npm run package`` builds it (scripts/build_wheel.py)."""
    script = REPO / "scripts" / "build_wheel.py"
    built = Path(_run([sys.executable, script, outside / "wheelhouse"], outside).strip())
    assert built.name == f"vmcore_dap-{__version__}-py3-none-any.whl"
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, outside: Path) -> Path:
    """A fresh virtual environment with the wheel and its dependencies installed by pip."""
    path = outside / "venv"
    _run([sys.executable, "-m", "venv", path], outside)
    _run([path / "bin" / "python", "-m", "pip", "install", "--quiet", wheel], outside)
    return path


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"vmcore_dap-{__version__}.dist-info/METADATA").decode()
    return email.parser.Parser().parsestr(text)


def test_the_wheel_holds_the_package_and_its_metadata_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    dist_info = f"vmcore_dap-{__version__}.dist-info/"
    strays = [n for n in names if not n.startswith(("vmcore_dap/", dist_info))]
    assert strays == [], "only the package and its dist-info"
    tests = [
        n for n in names if re.search(r"(^|/)(tests?|samples|bench)/|(^|/)(test_[^/]*|conftest)\.py$", n)
    ]
    assert tests == [], "no test, sample or benchmark code"
    modules = {f"vmcore_dap/{p.relative_to(PACKAGE).as_posix()}" for p in PACKAGE.rglob("*.py")}
    shipped = {n for n in names if n.endswith(".py")}
    assert modules - shipped == set(), "every module of the package"
    assert shipped - modules == set(), "no module the sources no longer have (a stale build/)"
    assert {"vmcore_dap/py.typed", f"{dist_info}licenses/LICENSE", f"{dist_info}entry_points.txt"} <= set(
        names
    )


def test_the_metadata_says_what_the_package_needs(wheel: Path) -> None:
    import drgn

    meta = _metadata(wheel)
    assert meta["Name"] == "vmcore-dap" and meta["Version"] == __version__
    assert "crash dump" in meta["Summary"]
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.11"
    classifiers = meta.get_all("Classifier") or []
    for expected in (
        "Topic :: Software Development :: Debuggers",
        "Operating System :: POSIX :: Linux",
        f"Programming Language :: Python :: {sys.version_info.major}.{sys.version_info.minor}",
    ):
        assert expected in classifiers
    requirements = {r.name: r for r in map(Requirement, meta.get_all("Requires-Dist") or []) if not r.marker}
    assert set(requirements) == {"drgn", "capstone", "pygls", "debugpy"}
    drgn_bounds = requirements["drgn"].specifier
    assert {s.operator for s in drgn_bounds} == {">=", "<"}, "drgn: the oldest and the first untested release"
    assert drgn_bounds.contains(drgn.__version__), "the drgn these tests run on is within the bounds"
    assert str(drgn_bounds) in COMPATIBILITY_NOTE.read_text(), "docs/compatibility.md states the same bounds"
    assert drgn.__version__ in COMPATIBILITY_NOTE.read_text(), "docs/compatibility.md names the drgn tested"


def test_the_compatibility_note_names_every_private_drgn_module_we_import() -> None:
    private = set()
    for path in PACKAGE.rglob("*.py"):
        for match in re.finditer(r"^\s*(?:from|import) (drgn(?:\.\w+)*)", path.read_text(), re.MULTILINE):
            module = match.group(1)
            if any(part.startswith("_") for part in module.split(".")):
                private.add(module)
    assert private, "the adapter imports drgn.commands._crash (the scan works)"
    note = COMPATIBILITY_NOTE.read_text()
    assert [m for m in sorted(private) if f"`{m}`" not in note] == []


def test_the_installed_commands_report_their_versions_and_drgns(venv: Path, outside: Path) -> None:
    python = venv / "bin" / "python"
    where = _run([python, "-c", "import vmcore_dap; print(vmcore_dap.__file__)"], outside).strip()
    assert Path(where).is_relative_to(venv), "the package is the installed one, not the clone's"
    drgn_version = _run([python, "-c", "import drgn; print(drgn.__version__)"], outside).strip()
    python_version = _run(
        [python, "-c", "import platform; print(platform.python_version())"], outside
    ).strip()
    for program in ("vmcore-dap", "vmcore-dap-lsp"):
        line = _run([venv / "bin" / program, "--version"], outside).strip()
        assert line == f"{program} {__version__} (drgn {drgn_version}, Python {python_version})"


def test_the_installed_adapter_opens_a_sample(
    venv: Path, outside: Path, sample_oops: Any, tmp_path: Path
) -> None:
    expected = sample_oops.expected
    with DapClient(tmp_path, command=[str(venv / "bin" / "vmcore-dap")], cwd=outside) as client:
        capabilities = client.initialize()
        versions = capabilities["vmcoreDap"]
        assert versions["adapterVersion"] == __version__
        assert Path(versions["pythonExecutable"]).is_relative_to(venv)
        stopped = client.launch_and_stop(config_for(sample_oops))["body"]
        threads = client.call("threads")["threads"]
        assert threads[0]["id"] == stopped["threadId"]
        crashed = parse_thread_name(threads[0]["name"])
        assert (crashed["pid"], crashed["comm"]) == (expected["crashed_pid"], expected["crashed_comm"])
        names = [frame["name"] for frame in stack_of(client, stopped["threadId"])]
        assert any(name.startswith(expected["function"]) for name in names), names
        assert client.schema_errors == []
