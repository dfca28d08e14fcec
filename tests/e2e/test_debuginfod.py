"""debuginfod: debug info fetched by build ID from a local server (Debian's ``debuginfod``) on 127.0.0.1.

The server indexes a directory holding only the sample's vmlinux and module ``.ko`` (symlinks); the
adapter's own search path holds nothing, so every byte of DWARF must come through debuginfod.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import drgn
import pytest
from tests.e2e._session import source_line
from tests.helpers.dap_client import DapClient

from vmcore_dap.dump.opening import debuginfod

pytestmark = pytest.mark.timeout(600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _build_id(sample: Any) -> str:
    prog = drgn.Program()
    prog.set_core_dump(str(sample.vmcore))
    main, _ = next(prog.loaded_modules())
    assert main.build_id, "the vmcore's VMCOREINFO has no build ID"
    return main.build_id.hex()


@pytest.fixture(scope="module")
def server(sample: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A debuginfod on 127.0.0.1 serving the sample's vmlinux and modules; yields its URL."""
    binary = shutil.which("debuginfod")
    assert binary, "Debian package 'debuginfod' is not installed (scripts/bootstrap.sh installs it)"
    base = tmp_path_factory.mktemp(f"debuginfod-{sample.scenario}")
    tree = base / "tree"
    tree.mkdir()
    for path in [Path(sample.vmlinux), *map(Path, sample.debug_info)]:
        (tree / path.name).symlink_to(path)
    port = _free_port()
    log = (base / "server.log").open("w")
    proc = subprocess.Popen(
        [binary, "-d", str(base / "db.sqlite"), "-p", str(port), "-F", "-L", str(tree)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        probe = f"{url}/buildid/{_build_id(sample)}/debuginfo"
        deadline = time.monotonic() + 300
        while True:  # indexing the 560 MB vmlinux takes a few seconds
            try:
                # debuginfod answers HEAD with 404; a GET whose body we drop after 4 bytes is cheap.
                with urllib.request.urlopen(probe, timeout=10) as response:
                    if response.status == 200 and response.read(4) == b"\x7fELF":
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None, (base / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "debuginfod did not index the vmlinux in 300 s"
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture()
def debuginfod_env(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"DEBUGINFOD_URLS": server, "DEBUGINFOD_CACHE_PATH": str(tmp_path / "client-cache")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_vmlinux_and_modules_come_from_debuginfod(sample: Any, debuginfod_env: dict[str, str]) -> None:
    """Target level: fetch by build ID with progress, hand to drgn, and source lines appear."""
    reports: list[tuple[str, float | None]] = []
    path = debuginfod.find_debuginfo_by_build_id(_build_id(sample), lambda m, f: reports.append((m, f)))
    assert path is not None and path.is_file()
    assert Path(debuginfod_env["DEBUGINFOD_CACHE_PATH"]) in path.parents
    assert path.stat().st_size == Path(sample.vmlinux).stat().st_size
    assert reports, "no progress was reported during the download"

    prog = drgn.Program()
    prog.set_core_dump(str(sample.vmcore))
    prog.set_enabled_debug_info_finders([])
    modules = prog.loaded_modules()
    main, _ = next(modules)
    main.try_file(str(path))
    assert main.debug_file_status == drgn.ModuleFileStatus.HAVE
    rest = [m for m, _ in modules]
    loaded = debuginfod.load_missing_debuginfo(rest)
    assert sorted(loaded) == sorted(p.name.split(".")[0] for p in sample.debug_info)
    thread = prog.crashed_thread()
    frames = [f for f in thread.stack_trace() if f.name == sample.expected["function"]]
    assert frames, f"{sample.expected['function']} not on the crashed stack"
    filename, line, _column = frames[0].source()
    assert Path(filename).name == sample.expected["file"] and line == sample.expected["line"]


def test_cancel_stops_the_download(sample: Any, debuginfod_env: dict[str, str]) -> None:
    class Stop(Exception):
        pass

    calls: list[str] = []

    def cancel(message: str, fraction: float | None) -> None:
        calls.append(message)
        raise Stop(message)

    with pytest.raises(Stop):
        debuginfod.find_debuginfo_by_build_id(_build_id(sample), cancel)
    # libdebuginfod aborts the transfer when the progress function returns non-zero: no later calls.
    # (Over loopback the whole file may already be there; a slow server stops mid-way.)
    assert len(calls) == 1


def test_unknown_build_id_is_none(debuginfod_env: dict[str, str]) -> None:
    assert debuginfod.find_debuginfo_by_build_id("00" * 20) is None


def _only_debuginfod(sample: Any, tmp_path: Path) -> dict[str, Any]:
    """A launch configuration whose local search paths hold no debug info at all."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    return {"vmcore": str(sample.vmcore), "debugInfo": [], "debugInfoDirectories": [str(empty)]}


def _progress_messages(client: DapClient) -> list[str]:
    return [e["body"].get("message", "") for e in client.events if e["event"] == "progressUpdate"]


def test_launch_with_debug_info_only_from_debuginfod(
    sample: Any, debuginfod_env: dict[str, str], tmp_path: Path
) -> None:
    with DapClient(tmp_path, env=debuginfod_env) as client:
        stopped = client.launch_and_stop(_only_debuginfod(sample, tmp_path))
        frames = client.call("stackTrace", {"threadId": stopped["body"]["threadId"]})["stackFrames"]
        named = [f for f in frames if f["name"] == sample.expected["function"]]
        assert named and source_line(named[0]) == sample.expected["line"], frames
        messages = _progress_messages(client)
        assert any("debuginfod" in m for m in messages), messages
        modules = {m["name"]: m for m in client.call("modules", {})["modules"]}
        for ko in sample.debug_info:  # module debug info came through debuginfod too
            name = ko.name.split(".")[0]
            assert "client-cache" in modules[name].get("symbolFilePath", ""), modules[name]
        assert not client.schema_errors, client.schema_errors


def test_debuginfod_false_searches_only_locally(
    sample: Any, debuginfod_env: dict[str, str], tmp_path: Path
) -> None:
    """``debuginfod: false`` wins over DEBUGINFOD_URLS: the local search alone fails, plainly."""
    with DapClient(tmp_path, env=debuginfod_env) as client:
        client.initialize()
        response = client.request("launch", {**_only_debuginfod(sample, tmp_path), "debuginfod": False})
        assert not response["success"]
        assert response["message"].startswith("No debug info found for the dump's kernel"), response
        assert debuginfod_env["DEBUGINFOD_URLS"] not in response["message"]  # the server was not asked


def test_cancel_during_a_debuginfod_launch(
    sample: Any, debuginfod_env: dict[str, str], tmp_path: Path
) -> None:
    with DapClient(tmp_path, env=debuginfod_env) as client:
        client.initialize()
        launch = client.send_request("launch", _only_debuginfod(sample, tmp_path))
        client.wait_event("progressUpdate", lambda e: "debuginfod" in e["body"].get("message", ""), 120)
        client.send_request("cancel", {"requestId": launch})
        response = client.wait_response(launch, 300)
        assert not response["success"] and response["message"] == "launch: cancelled", response
        assert not client.schema_errors, client.schema_errors
