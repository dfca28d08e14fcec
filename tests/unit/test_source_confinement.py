"""Paths from DWARF are read only inside ``sourceRoot`` / ``sourceFileMap`` targets (issue 8).

DWARF in a hostile dump's modules names whatever it likes. Through the adapter's own path mapping
(:class:`vmcore_dap.target.sources.SourceMap`, which stack frames, ``source`` and the language server
all use), a name with ``../`` must not reach a file outside the configured roots. A real directory
layout in ``tmp_path``: a source root, a map target, and a secret file beside them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmcore_dap.target.sources import SourceMap

pytestmark = pytest.mark.timeout(60)

PREFIX = "/build/reproducible-path/linux-6.1.192"


def _layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``root`` (a kernel tree), ``mapped`` (a sourceFileMap target), ``secret`` (outside both)."""
    root = tmp_path / "linux"
    (root / "fs").mkdir(parents=True)
    (root / "fs" / "read_write.c").write_text("/* inside the root */\n")
    mapped = tmp_path / "labbug"
    mapped.mkdir()
    (mapped / "labbug.c").write_text("/* inside the map target */\n")
    secret = tmp_path / "secret" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("secret\n")
    return root, mapped, secret


def _inside(path: str, *roots: Path) -> bool:
    real = os.path.realpath(path)
    return any(real == str(r.resolve()) or real.startswith(str(r.resolve()) + os.sep) for r in roots)


def _source_map(root: Path, mapped: Path) -> SourceMap:
    return SourceMap({"/home/dev/labbug": str(mapped), "drivers": str(mapped), PREFIX: str(root)}, root)


def test_the_layout_resolves_legitimate_names(tmp_path: Path) -> None:
    """The mapping works at all (otherwise the confinement tests below would pass vacuously)."""
    root, mapped, _ = _layout(tmp_path)
    sources = _source_map(root, mapped)
    assert sources.resolve("fs/read_write.c").path == str(root / "fs" / "read_write.c")
    assert sources.resolve("fs/read_write.c").exists
    assert sources.resolve("/home/dev/labbug/labbug.c").path == str(mapped / "labbug.c")
    assert sources.resolve(f"{PREFIX}/fs/read_write.c").exists


@pytest.mark.parametrize(
    "dwarf_name",
    [
        "../secret/id_rsa",  # relative, resolved under sourceRoot
        "fs/../../secret/id_rsa",
        "./fs/../../../{tmp}/secret/id_rsa",
        "drivers/../../secret/id_rsa",  # a relative sourceFileMap prefix, then ../
        "drivers/../../../../../../../../{tmp}/secret/id_rsa",
        "/home/dev/labbug/../../../{tmp}/secret/id_rsa",  # an absolute prefix rule, then ../
        "/home/dev/labbug/../secret/id_rsa",
        PREFIX + "/../../../{tmp}/secret/id_rsa",
        "debian/build/build_amd64_none_cloud-amd64/../../../../secret/id_rsa",
    ],
)
def test_dot_dot_cannot_climb_out_of_a_root(tmp_path: Path, dwarf_name: str) -> None:
    root, mapped, secret = _layout(tmp_path)
    name = dwarf_name.replace("{tmp}", str(tmp_path).lstrip("/"))
    resolved = _source_map(root, mapped).resolve(name)
    if resolved.exists:
        assert _inside(resolved.path, root, mapped), f"{name!r} escaped to {resolved.path}"
    assert os.path.realpath(resolved.path) != str(secret) or not resolved.exists


_COMPONENTS = st.sampled_from(["..", ".", "", "fs", "secret", "id_rsa", "read_write.c", "drivers", "linux"])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(_COMPONENTS, min_size=1, max_size=12), start=st.sampled_from(["", "drivers/", "./"]))
def test_relative_names_stay_inside_the_roots(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str], start: str
) -> None:
    """Any relative name made of ``..``, ``.`` and real directory names resolves inside a root, or to
    a file that does not exist."""
    tmp_path = tmp_path_factory.mktemp("fuzz")
    root, mapped, _ = _layout(tmp_path)
    name = start + "/".join(parts)
    resolved = _source_map(root, mapped).resolve(name)
    if resolved.exists:
        assert _inside(resolved.path, root, mapped), f"{name!r} escaped to {resolved.path}"


@pytest.mark.xfail(
    strict=True,
    reason="SourceMap opens an absolute DWARF name that exists on this machine as it is, outside every "
    "sourceRoot/sourceFileMap target (source_layouts.resolve_in_roots: 'an absolute path that exists "
    "as is wins'); reported to the lead, sources.py is the integration engineer's",
)
@pytest.mark.parametrize("form", ["plain", "dot-dot"])
def test_absolute_names_outside_every_root_are_not_opened(tmp_path: Path, form: str) -> None:
    root, mapped, secret = _layout(tmp_path)
    name = str(secret) if form == "plain" else f"{root}/../secret/id_rsa"
    resolved = _source_map(root, mapped).resolve(name)
    assert not (resolved.exists and not _inside(resolved.path, root, mapped)), resolved
