"""Paths from DWARF are read only inside ``sourceRoot`` / ``sourceFileMap`` targets / ``debugInfo``
directories (issue 8).

DWARF in a hostile dump's modules names whatever it likes. Through the adapter's own path mapping
(:class:`vmcore_dap.dump.sources.source_map.SourceMap`, which stack frames, ``source`` and the language server
all use), a name with ``../``, an absolute name, or a symbolic link must not reach a file outside the
configured roots, and neither may a ``source`` request's ``path``. A real directory layout in ``tmp_path``: a
source root, a map target, and a secret file beside them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmcore_dap.dump.sources.source_map import SourceMap, module_source_dirs
from vmcore_dap.errors import NotAvailable, UserError

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


@pytest.mark.parametrize("form", ["plain", "dot-dot"])
def test_absolute_names_outside_every_root_are_not_opened(tmp_path: Path, form: str) -> None:
    root, mapped, secret = _layout(tmp_path)
    name = str(secret) if form == "plain" else f"{root}/../secret/id_rsa"
    resolved = _source_map(root, mapped).resolve(name)
    assert not (resolved.exists and not _inside(resolved.path, root, mapped)), resolved
    # The frame still names the file as DWARF does, and says why it is not shown.
    assert resolved.outside_roots and resolved.path == name, resolved


def test_a_module_source_next_to_its_debug_info_opens(tmp_path: Path) -> None:
    """``labbug.c`` named absolutely by the module's DWARF, next to the ``.ko`` listed in debugInfo."""
    root, _mapped, secret = _layout(tmp_path)
    module = tmp_path / "labbug-build"
    module.mkdir()
    (module / "labbug.c").write_text("/* module source */\n")
    (module / "labbug.ko").write_bytes(b"\x7fELF")
    sources = SourceMap({}, root, module_source_dirs([module / "labbug.ko"]))
    resolved = sources.resolve(str(module / "labbug.c"))
    assert resolved.exists and resolved.path == str(module / "labbug.c")
    assert not sources.resolve(str(secret)).exists
    # A debugInfo *directory* allows its own tree, not its parent.
    by_dir = SourceMap({}, None, module_source_dirs([module]))
    assert by_dir.resolve(str(module / "labbug.c")).exists
    assert by_dir.resolve(str(secret)).outside_roots
    # Without the debugInfo entry the same file is outside every root.
    assert SourceMap({}, root).resolve(str(module / "labbug.c")).outside_roots


def test_symlinks_out_of_a_root_are_not_followed(tmp_path: Path) -> None:
    """A link inside the source tree (or a map target) that points outside it is refused, whichever way
    the name reaches it; a link between two configured roots is fine."""
    root, mapped, secret = _layout(tmp_path)
    (root / "fs" / "leak.c").symlink_to(secret)
    (root / "linked").symlink_to(secret.parent, target_is_directory=True)
    (mapped / "leak.c").symlink_to(secret)
    (root / "fs" / "labbug.c").symlink_to(mapped / "labbug.c")  # root -> map target: both allowed
    sources = _source_map(root, mapped)
    for name in (
        "fs/leak.c",  # relative, under sourceRoot
        "linked/id_rsa",  # through a linked directory
        f"{PREFIX}/fs/leak.c",  # sourceFileMap rule into the root
        "/home/dev/labbug/leak.c",  # sourceFileMap rule into the other target
        str(root / "fs" / "leak.c"),  # the local path itself, as a client would send it
        "/build/x/linux-6.1/fs/leak.c",  # a distribution layout under sourceRoot
    ):
        resolved = sources.resolve(name)
        assert not resolved.exists and resolved.outside_roots, (name, resolved)
    inner = sources.resolve("fs/labbug.c")
    assert inner.exists and inner.path == str(root / "fs" / "labbug.c")


def test_a_symlinked_root_is_the_root(tmp_path: Path) -> None:
    """The configured root may itself be a link (``/usr/src/linux`` -> the tree): its files open."""
    root, mapped, _secret = _layout(tmp_path)
    link = tmp_path / "linux-link"
    link.symlink_to(root, target_is_directory=True)
    resolved = SourceMap({}, link).resolve("fs/read_write.c")
    assert resolved.exists and resolved.path == str(link / "fs" / "read_write.c")


def test_source_request_paths_are_confined(tmp_path: Path) -> None:
    """``source`` with a ``path`` reads only what the frames may show: not a file named outright, not
    one reached through ``..`` or a symlink; a file inside a root opens."""
    root, mapped, secret = _layout(tmp_path)
    (root / "fs" / "leak.c").symlink_to(secret)
    sources = _source_map(root, mapped)
    assert sources.read("fs/read_write.c") == "/* inside the root */\n"
    assert sources.read(str(mapped / "labbug.c")) == "/* inside the map target */\n"
    for path in (str(secret), f"{root}/../secret/id_rsa", str(root / "fs" / "leak.c")):
        with pytest.raises(UserError, match="outside the configured source roots") as info:
            sources.read(path)
        assert "sourceRoot" in str(info.value) and "secret" not in str(info.value).replace(path, "")
    with pytest.raises(NotAvailable, match="is not on this machine"):
        sources.read("mm/nowhere.c")
