"""The Modules view against crash's ``mod`` and the kernel's own log, on every sample and (tests marked
``every_kernel``) every kernel of the matrix.

Names, struct module addresses, bases and sizes come from crash; taint letters from the dump's kernel
log ("Modules linked in: labbug(OE)", or the module-load messages when no oops printed the list);
debug-info status from what the launch configuration gave the adapter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from drgn.helpers.linux.list import list_for_each_entry
from samples.sample_store import launch_configuration
from tests.conftest import answers_for
from tests.e2e._session import open_sample_dump
from tests.helpers.crash_parse import parse_mod
from tests.helpers.dap_client import DapClient

pytestmark = pytest.mark.timeout(600)


def _config(sample: Any, **overrides: Any) -> dict[str, Any]:
    config = dict(launch_configuration(sample)["configurations"][0])
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def client(sample: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DapClient]:
    dap = DapClient(tmp_path_factory.mktemp(f"modules-{sample.scenario}"))
    try:
        capabilities = dap.initialize()
        assert capabilities.get("supportsModulesRequest") and capabilities.get("supportsLoadedSourcesRequest")
        launch = dap.send_request("launch", _config(sample))
        assert dap.wait_response(launch, 180)["success"]
        dap.wait_event("initialized")
        dap.call("configurationDone")
        dap.wait_event("stopped")
        yield dap
        assert not dap.schema_errors, dap.schema_errors
    finally:
        dap.close()


def _expected_taints(dmesg: str) -> dict[str, str]:
    """Module name -> taint letters, as the kernel itself reported them in this dump's log."""
    linked = re.findall(r"Modules linked in: (.*)", dmesg)
    if linked:
        return dict(re.findall(r"(\S+?)\((\w+)\)", linked[-1]))
    letters: dict[str, str] = {}
    for name in re.findall(r"\] (\S+): loading out-of-tree module taints kernel", dmesg):
        letters[name] = letters.get(name, "") + "O"
    for name in re.findall(r"\] (\S+): module verification failed", dmesg):
        letters[name] = letters.get(name, "") + "E"
    return letters


@pytest.mark.every_kernel
def test_modules_match_crash_mod(client: DapClient, sample: Any) -> None:
    body = client.call("modules", {})
    ours = {m["name"]: m for m in body["modules"]}
    assert body["totalModules"] == len(body["modules"])
    answers = answers_for(sample)
    if not answers.trusts("mod"):
        _assert_modules_equal_drgn(ours, sample)
        return
    crash_rows = parse_mod(answers["mod"])  # [] for "no modules installed"
    assert set(ours) == {row.name for row in crash_rows} | {"kernel"}
    for row in crash_rows:
        module = ours[row.name]
        assert int(module["base"], 16) == row.base, (module, row)
        assert module["size"] == row.size, (module, row)
        assert int(module["structModule"], 16) == row.module, (module, row)
        low, high = (int(x, 16) for x in module["addressRange"].split("-"))
        assert low <= row.base < high


def _assert_modules_equal_drgn(ours: dict[str, dict[str, Any]], sample: Any) -> None:
    """Where crash cannot list modules (7.x: crash 9.0.2 runs with ``--no_modules``), plain drgn's
    module list is the oracle: names, ``struct module`` addresses, the text's base (``mem[MOD_TEXT]``:
    v6.4's "module: replace module_layout with module_memory", ac3b43283923) and the core's size as
    crash's ``mod`` gives it on 6.x (every region before ``MOD_INIT_TEXT``, "init not included")."""
    prog = open_sample_dump(sample).prog
    modules = list(list_for_each_entry("struct module", prog["modules"].address_of_(), "list"))
    assert set(ours) == {mod.name.string_().decode() for mod in modules} | {"kernel"}
    for mod in modules:
        module = ours[mod.name.string_().decode()]
        text = mod.mem[prog.constant("MOD_TEXT")]
        core_size = sum(mod.mem[t].size.value_() for t in range(prog.constant("MOD_INIT_TEXT").value_()))
        assert int(module["structModule"], 16) == mod.value_(), module
        assert (int(module["base"], 16), module["size"]) == (text.base.value_(), core_size), module


@pytest.mark.every_kernel
def test_taints_as_in_the_kernel_log(client: DapClient, sample: Any) -> None:
    dmesg = Path(sample.dmesg).read_text(errors="replace")
    ours = {m["name"]: m for m in client.call("modules", {})["modules"]}
    expected = _expected_taints(dmesg)
    for name, letters in expected.items():
        assert sorted(ours[name]["taints"]) == sorted(letters), (name, ours[name])
    for name, module in ours.items():
        if name != "kernel" and name not in expected:
            assert module["taints"] == "", module
    # The kernel's own taint string when the log printed it ("Tainted: G           OE"); taints
    # added after that line (D for the oops itself) may follow, so it is a subset.
    printed = re.findall(r"Comm: .*? (?:Not tainted|Tainted: ([A-Z ]+?))\s+\d", dmesg)
    assert printed, "the log has no 'Tainted:' / 'Not tainted' line"
    letters = set(printed[0].replace(" ", "")) - {"G"}
    assert letters <= set(ours["kernel"]["taints"]), (printed[0], ours["kernel"])


@pytest.mark.every_kernel
def test_debug_info_status_and_files(client: DapClient, sample: Any) -> None:
    ours = {m["name"]: m for m in client.call("modules", {})["modules"]}
    kernel = ours["kernel"]
    assert kernel["symbolStatus"] == "Symbols loaded"
    assert Path(kernel["symbolFilePath"]).resolve() == Path(sample.vmlinux).resolve()
    assert kernel["version"].startswith(sample.kernel_release)
    given = {p.name.split(".")[0]: p for p in sample.debug_info}
    for name, path in given.items():
        assert ours[name]["symbolStatus"] == "Symbols loaded", ours[name]
        assert Path(ours[name]["symbolFilePath"]).resolve() == Path(path).resolve()


def test_module_without_debug_info_says_so(sample: Any, tmp_path: Path) -> None:
    with DapClient(tmp_path) as dap:
        dap.launch_and_stop(_config(sample, debugInfo=[], debugInfoDirectories=[str(tmp_path)]))
        ours = {m["name"]: m for m in dap.call("modules", {})["modules"]}
        for path in sample.debug_info:
            module = ours[path.name.split(".")[0]]
            assert module["symbolStatus"].startswith("Symbols not found"), module
            assert "symbolFilePath" not in module
        assert not dap.schema_errors, dap.schema_errors


def test_paging(client: DapClient) -> None:
    everything = client.call("modules", {})["modules"]
    page = client.call("modules", {"startModule": 1, "moduleCount": 1})
    assert page["modules"] == everything[1:2]
    assert page["totalModules"] == len(everything)


@pytest.mark.every_kernel
def test_loaded_sources_include_stack_and_module_files(client: DapClient, sample: Any) -> None:
    sources = client.call("loadedSources", {}, timeout=300)["sources"]
    paths = [Path(s["path"]) for s in sources]
    assert all(p.is_file() for p in paths)
    assert any(p.parent == Path(sample.module_source_dir) or p.name.endswith(".c") for p in paths)
    root = Path(launch_configuration(sample)["configurations"][0]["sourceRoot"])
    assert any(root in p.parents and p.parts[-2:] == ("fs", "read_write.c") for p in paths), paths[:20]
