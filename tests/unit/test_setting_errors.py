"""A setting's error names the setting; the boundary that received it says where it is written.

The dump layer is used without VS Code (a shell, a batch report), so its messages name the setting as
launch.json spells it and nothing more; the DAP ``launch`` handler, the language server and
``vmcore-dap --check-launch`` place it (:meth:`SettingError.located`). The checks a client runs before
a session (:func:`~vmcore_dap.dump.opening.preflight.check_launch`) are those of ``launch``, on files.
"""

from __future__ import annotations

from pathlib import Path

from vmcore_dap.dump.opening.preflight import check_launch
from vmcore_dap.errors import SettingError


def test_located_places_the_setting_at_its_last_mention() -> None:
    error = SettingError("Cannot use vmlinux 'vmlinux': no such file (check 'vmlinux')", "vmlinux")
    assert error.located("launch.json").message == (
        "Cannot use vmlinux 'vmlinux': no such file (check 'vmlinux' in launch.json)"
    )
    assert error.located("launch.json").setting == "vmlinux"
    assert error.message.endswith("(check 'vmlinux')")  # the original is kept as it was


def test_a_message_that_does_not_name_its_setting_is_kept() -> None:
    error = SettingError("Cannot open vmcore '/v': the file is truncated (copy it again)", "vmcore")
    assert error.located("launch.json").message == error.message


def test_check_launch_names_each_setting(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a dump\n")
    problems = check_launch(
        {
            "vmcore": str(tmp_path / "notes.txt"),
            "vmlinux": str(tmp_path / "notes.txt"),
            "debugInfo": [str(tmp_path / "gone.ko")],
            "sourceFileMap": {"/build": str(tmp_path / "nowhere")},
        }
    )
    by_setting = {p.setting: p for p in problems}
    assert set(by_setting) == {"vmcore", "vmlinux", "debugInfo", "sourceFileMap"}
    assert "not a kdump or ELF core file (check 'vmcore';" in by_setting["vmcore"].message
    assert "it is not an ELF file" in by_setting["vmlinux"].message
    assert "gone.ko': no such file or directory (check 'debugInfo')" in by_setting["debugInfo"].message
    assert by_setting["sourceFileMap"].severity == "warning"
    assert all(p.severity == "error" for p in problems if p.setting != "sourceFileMap")
    assert "launch.json" not in " ".join(p.message for p in problems)  # the dump layer's own words


def test_check_launch_stops_at_a_setting_of_the_wrong_type() -> None:
    problems = check_launch({"vmcore": "/v", "stopOnPanic": "yes"})
    assert [(p.setting, p.severity) for p in problems] == [("stopOnPanic", "error")]
    assert problems[0].message == "launch: 'stopOnPanic' must be true or false (got a string)"
