"""drgn's plugins are not loaded when the adapter opens a dump, unless the user configured them.

drgn reads ``DRGN_PLUGINS``/``DRGN_DISABLE_PLUGINS`` once, at the process's first ``set_core_dump``;
loading its two plugins (its command sets) cost 77 ms of the first picture. The Debug Console imports
both command sets itself, so its commands (crash's ``!`` runs drgn's ``sh``) are all still there.
"""

from __future__ import annotations

import os

import pytest

from vmcore_dap import cli


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "*"),
        ({"DRGN_DISABLE_PLUGINS": "crash_commands"}, "crash_commands"),
        ({"DRGN_DISABLE_PLUGINS": ""}, ""),
        ({"DRGN_PLUGINS": "mine=my.module"}, None),
    ],
)
def test_plugins_skipped_unless_configured(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str | None
) -> None:
    monkeypatch.delenv("DRGN_PLUGINS", raising=False)
    monkeypatch.delenv("DRGN_DISABLE_PLUGINS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cli.skip_drgn_plugins()
    assert os.environ.get("DRGN_DISABLE_PLUGINS") == expected


def test_the_console_registers_both_command_sets_itself() -> None:
    from drgn.commands import DEFAULT_COMMAND_NAMESPACE
    from drgn.commands._crash.common import CRASH_COMMAND_NAMESPACE

    from vmcore_dap.dump.console import namespace  # noqa: F401 - the import under test

    assert "sh" in DEFAULT_COMMAND_NAMESPACE._commands
    assert "bt" in CRASH_COMMAND_NAMESPACE._commands
