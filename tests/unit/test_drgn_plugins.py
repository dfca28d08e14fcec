"""drgn's own plugins are not loaded when the adapter opens a dump; a user's plugins still are.

drgn reads ``DRGN_PLUGINS``/``DRGN_DISABLE_PLUGINS`` once, at the process's first ``set_core_dump``;
loading its two plugins (its command sets) cost 77 ms of the first picture. The Debug Console imports
both command sets itself, so its commands (crash's ``!`` runs drgn's ``sh``) are all still there. A
third-party plugin (an entry point of another distribution) must still be loaded by drgn's own
loader: checked in a fresh interpreter with such a distribution on its path, and the adapter's quick
look for one is checked against ``importlib.metadata``'s answer on the same path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import distribution, distributions
from pathlib import Path

import pytest

from vmcore_dap import drgn_plugins


def _plant_plugin(site: Path) -> Path:
    """A distribution ``my-drgn-plugin`` declaring the drgn plugin ``mine``, installed in ``site``."""
    (site / "my_drgn_plugin.py").write_text("def drgn_prog_set(prog):\n    pass\n")
    dist = site / "my_drgn_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-drgn-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[console_scripts]\nx = y:z\n\n[drgn.plugins]\nmine = my_drgn_plugin\n"
    )
    return site


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("DRGN_PLUGINS", raising=False)
    monkeypatch.delenv("DRGN_DISABLE_PLUGINS", raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DRGN_DISABLE_PLUGINS": "crash_commands"}, "crash_commands"),
        ({"DRGN_DISABLE_PLUGINS": ""}, ""),
        ({"DRGN_PLUGINS": "mine=my.module"}, None),
    ],
)
def test_the_users_own_settings_are_left_alone(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], expected: str | None
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    drgn_plugins.skip_drgn_plugins()
    assert os.environ.get("DRGN_DISABLE_PLUGINS") == expected


def test_only_drgns_own_plugins_on_the_path_skips_drgns_scan(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    drgn_site = str(Path(distribution("drgn").locate_file("")))
    drgn_plugins.skip_drgn_plugins([drgn_site, str(tmp_path)])
    assert os.environ["DRGN_DISABLE_PLUGINS"] == "*"


def test_another_plugin_on_the_path_switches_off_drgns_two_only(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    drgn_plugins.skip_drgn_plugins([str(_plant_plugin(tmp_path))])
    assert os.environ["DRGN_DISABLE_PLUGINS"] == ",".join(drgn_plugins.DRGN_OWN_PLUGINS)


def _others_by_importlib(path: list[str]) -> bool:
    return any(
        ep.group == "drgn.plugins" and dist.metadata["Name"].lower() != "drgn"
        for dist in distributions(path=path)
        for ep in dist.entry_points
    )


def test_the_quick_look_agrees_with_importlib_metadata(tmp_path: Path) -> None:
    assert drgn_plugins.other_plugins_installed(sys.path) == _others_by_importlib(sys.path)
    with_plugin = [str(_plant_plugin(tmp_path)), *sys.path]
    assert drgn_plugins.other_plugins_installed(with_plugin) is _others_by_importlib(with_plugin) is True


def _plugins_drgn_loads(extra_site: Path | None) -> list[str]:
    """The plugin names drgn's own loader returns in a fresh interpreter after the adapter's switch."""
    script = textwrap.dedent(
        """
        import json, os
        from vmcore_dap.drgn_plugins import skip_drgn_plugins
        from _drgn_util.plugins import _load_plugins
        skip_drgn_plugins()
        print(json.dumps([name for name, _ in _load_plugins()]))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DRGN_PLUGINS", "DRGN_DISABLE_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join([*([str(extra_site)] if extra_site else []), *sys.path])
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    names: list[str] = json.loads(out.splitlines()[-1])
    return names


def test_drgn_loads_a_users_plugin_and_not_its_own(tmp_path: Path) -> None:
    assert _plugins_drgn_loads(_plant_plugin(tmp_path)) == ["mine"]


def test_drgn_loads_nothing_when_only_its_own_plugins_exist() -> None:
    assert not _others_by_importlib(sys.path), "this environment has a third-party drgn plugin"
    assert _plugins_drgn_loads(None) == []


def test_drgns_own_plugin_names_are_the_ones_drgn_ships() -> None:
    """If drgn renamed its entry points, the switch would silently stop saving anything."""
    shipped = {ep.name for ep in distribution("drgn").entry_points if ep.group == "drgn.plugins"}
    assert shipped == set(drgn_plugins.DRGN_OWN_PLUGINS)


def test_the_console_registers_both_command_sets_itself() -> None:
    from drgn.commands import DEFAULT_COMMAND_NAMESPACE
    from drgn.commands._crash.common import CRASH_COMMAND_NAMESPACE

    from vmcore_dap.dump.console import namespace  # noqa: F401 - the import under test

    assert "sh" in DEFAULT_COMMAND_NAMESPACE._commands
    assert "bt" in CRASH_COMMAND_NAMESPACE._commands
