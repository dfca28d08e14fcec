"""The adapter's own file checks, on real files: launch settings, vmcore headers, build IDs, sources.

These run without a dump; the e2e tests repeat the important ones through the protocol on real
vmcores (including truncated copies).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from vmcore_dap.dump.opening.debuginfo import (
    check_vmlinux,
    find_vmlinux,
    module_file_index,
    module_name_of_file,
)
from vmcore_dap.dump.opening.elf import file_build_id
from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.opening.vmcore_file import (
    VmcoreFile,
    describe_dump_level,
    describe_filtering,
    inspect_vmcore,
)
from vmcore_dap.dump.sources.source_map import SourceMap
from vmcore_dap.errors import SettingError, UserError

LS = Path(shutil.which("ls") or "/bin/ls")


def _readelf_build_id(path: Path) -> str:
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if "Build ID" in line)


def test_build_id_matches_readelf() -> None:
    assert file_build_id(LS) == _readelf_build_id(LS)


def test_launch_config_parses_everything_and_ignores_client_keys(tmp_path: Path) -> None:
    config = LaunchConfig.from_arguments(
        {
            "type": "vmcore",
            "request": "launch",
            "name": "x",
            "__sessionId": "abc",
            "python": "/usr/bin/python3",
            "vmcore": "~/dump/vmcore",
            "vmlinux": str(tmp_path / "vmlinux"),
            "debugInfo": [str(tmp_path)],
            "debugInfoDirectories": [],
            "sourceFileMap": {"/build/linux": str(tmp_path)},
            "sourceRoot": str(tmp_path),
            "stopOnPanic": False,
        }
    )
    assert config.vmcore == Path("~/dump/vmcore").expanduser()
    assert config.vmlinux == tmp_path / "vmlinux"
    # An empty list is the schema's default: the standard directories, as when the setting is absent.
    assert config.debug_info == (tmp_path,) and config.debug_info_directories is None
    assert config.source_file_map == {"/build/linux": str(tmp_path)} and config.stop_on_panic is False
    defaults = LaunchConfig.from_arguments({"vmcore": "/v"})
    assert defaults.debug_info_directories is None and defaults.stop_on_panic is True


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "launch: missing required setting 'vmcore'"),
        ({"vmcore": ""}, "launch: missing required setting 'vmcore'"),
        ({"vmcore": "/v", "debugInfo": [1]}, "'debugInfo' must be a list of paths"),
        ({"vmcore": "/v", "sourceFileMap": ["a"]}, "'sourceFileMap' must map path prefixes"),
        ({"vmcore": "/v", "sourceFileMap": {"a": 1}}, "'sourceFileMap' must map path prefixes"),
        ({"vmcore": "/v", "vmlinux": {}}, "'vmlinux' must be a string (got an object)"),
    ],
)
def test_launch_config_errors(raw: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SettingError) as info:
        LaunchConfig.from_arguments(raw)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "it is a directory"),
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_text("root:x:0:0:root:/root:/bin/bash\n"), "not a kdump or ELF core file"),
        (lambda p: shutil.copy(LS, p), "it is a shared object, not a core dump"),
        (lambda p: p.write_bytes(b"KDUMP   " + b"\0" * 20), "the file is truncated"),
    ],
)
def test_not_a_vmcore(tmp_path: Path, make, why: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "vmcore"
    make(path)
    with pytest.raises(UserError) as info:
        inspect_vmcore(path)
    assert info.value.message.startswith(f"Cannot open vmcore '{path}': {why}")
    assert info.value.message.endswith(")")  # always says what to do


def _tiny_elf_core(path: Path, segment_size: int, cut: int, memsz: int | None = None) -> None:
    """Write an ELF64 core with a VMCOREINFO note and one PT_LOAD, then cut ``cut`` bytes off.

    :param memsz: the segment's ``p_memsz`` when larger than its data (a makedumpfile -E tail).
    """
    desc = b"OSRELEASE=6.1.0-test\nBUILD-ID=00112233\n"
    note = struct.pack("<III", 11, len(desc), 0) + b"VMCOREINFO\0\0" + desc
    note += b"\0" * (-len(note) % 4)
    phoff, phnum = 64, 2
    note_off = phoff + 56 * phnum
    load_off = (note_off + len(note) + 4095) & ~4095
    eh = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    eh += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, phoff, 0, 0, 64, 56, phnum, 64, 0, 0)
    ph_note = struct.pack("<IIQQQQQQ", 4, 0, note_off, 0, 0, len(note), len(note), 4)
    ph_load = struct.pack(
        "<IIQQQQQQ", 1, 7, load_off, 0xFFFF888000000000, 0x100000, segment_size, memsz or segment_size, 4096
    )
    data = eh + ph_note + ph_load + note
    data += b"\0" * (load_off - len(data)) + b"\xaa" * segment_size
    path.write_bytes(data[: len(data) - cut] if cut else data)


def test_elf_core_headers_vmcoreinfo_and_truncation(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    _tiny_elf_core(whole, 8192, 0)
    info = inspect_vmcore(whole)
    assert (info.format, info.release, info.build_id, info.truncated) == (
        "elf",
        "6.1.0-test",
        "00112233",
        False,
    )
    cut = tmp_path / "cut"
    _tiny_elf_core(cut, 8192, 5000)
    info = inspect_vmcore(cut)
    assert info.truncated and info.missing_bytes == 5000
    assert (
        "the vmcore is truncated" in info.warnings[0] and "physical memory from 0x100c78" in info.warnings[0]
    )


def test_dump_level_descriptions() -> None:
    assert (
        describe_dump_level("kdump", 31)
        == "partial dump, makedumpfile -d 31: user, cache and free pages excluded"
    )
    assert describe_dump_level("kdump", 0) == "complete dump, makedumpfile -d 0: no pages excluded"
    assert describe_dump_level("kdump", 1).endswith("only zero pages excluded (nothing is lost)")
    assert describe_dump_level("kdump", 17) == "partial dump, makedumpfile -d 17: free pages excluded"
    assert describe_dump_level("kdump", 2) == "partial dump, makedumpfile -d 2: page cache pages excluded"
    assert describe_dump_level("elf", None) == "elf vmcore: filter level not recorded"


def test_elf_filtering_is_read_from_the_segments(tmp_path: Path) -> None:
    """An ELF dump records no -d level: a segment whose p_memsz exceeds its p_filesz (makedumpfile -E)
    shows the filtering, a whole one (the kernel's /proc/vmcore, QEMU) shows none."""
    whole = tmp_path / "whole"
    _tiny_elf_core(whole, 8192, 0)
    info = inspect_vmcore(whole)
    assert info.zero_filled == [] and info.zero_filled_pages == 0
    assert describe_filtering(info) == (
        "complete ELF dump: every page of its 1 memory segment is in the file (no filtering)"
    )
    filtered = tmp_path / "filtered"
    _tiny_elf_core(filtered, 8192, 0, memsz=8192 + 300 * 4096)
    info = inspect_vmcore(filtered)
    assert info.zero_filled == [(0x102000, 0x102000 + 300 * 4096)] and info.zero_filled_pages == 300
    assert not info.is_zero_filled(0x101FFF) and info.is_zero_filled(0x102000)
    assert info.is_zero_filled(0x102000 + 300 * 4096 - 1) and not info.is_zero_filled(0x102000 + 300 * 4096)
    assert describe_filtering(info) == (
        "ELF dump written by makedumpfile with filtering: 300 pages (1 MiB) excluded; excluded pages "
        "read as zeros (an ELF dump does not record the -d level)"
    )
    kdump = VmcoreFile(tmp_path / "vmcore", "kdump", 0, dump_level=31)
    assert describe_filtering(kdump) == describe_dump_level("kdump", 31)  # the level it records


def test_vmlinux_check_and_search(tmp_path: Path) -> None:
    ls_id = file_build_id(LS)
    assert ls_id is not None
    check_vmlinux(LS, ls_id)  # same ID: accepted
    with pytest.raises(UserError) as info:
        check_vmlinux(LS, "ab" * 20)
    assert ls_id in info.value.message and "ab" * 20 in info.value.message
    with pytest.raises(UserError, match="no such file"):
        check_vmlinux(tmp_path / "nope", None)
    # Search: build-id tree first, then vmlinux-<release>; a wrong-ID candidate is reported.
    (tmp_path / "boot").mkdir()
    shutil.copy(LS, tmp_path / "boot" / "vmlinux-6.1.0-x")
    found, search = find_vmlinux([tmp_path], "6.1.0-x", ls_id)
    assert found == tmp_path / "boot" / "vmlinux-6.1.0-x"
    found, search = find_vmlinux([tmp_path], "6.1.0-x", "cd" * 20)
    assert found is None and search.rejected == [(tmp_path / "boot" / "vmlinux-6.1.0-x", ls_id)]
    link = tmp_path / ".build-id" / ls_id[:2] / f"{ls_id[2:]}.debug"
    link.parent.mkdir(parents=True)
    link.symlink_to(LS)
    found, _ = find_vmlinux([tmp_path], None, ls_id)
    assert found == link


def test_module_file_index(tmp_path: Path) -> None:
    (tmp_path / "kernel/drivers").mkdir(parents=True)
    for name in ("snd-hda.ko", "labbug.ko.debug", "labbug.ko", "README"):
        (tmp_path / "kernel/drivers" / name).write_bytes(b"")
    index = module_file_index([tmp_path])
    assert sorted(index) == ["labbug", "snd_hda"]
    assert [p.name for p in index["labbug"]] == ["labbug.ko.debug", "labbug.ko"]
    assert module_name_of_file(Path("x/ext4.ko.xz")) == "ext4"
    with pytest.raises(SettingError, match="it is not a kernel module"):
        module_file_index([tmp_path / "kernel/drivers/README"])
    with pytest.raises(UserError, match="no such file or directory"):
        module_file_index([tmp_path / "missing"])


def test_source_map_longest_prefix_root_and_no_escape(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    (tree / "kernel").mkdir(parents=True)
    (tree / "kernel/kthread.c").write_text("")
    other = tmp_path / "drivers-elsewhere"
    other.mkdir()
    sources = SourceMap({"/build/linux": str(tree), "/build/linux/drivers": str(other)}, tree)
    r = sources.resolve("/build/linux/kernel/kthread.c")
    assert r.path == str(tree / "kernel/kthread.c") and r.exists
    assert sources.resolve("/build/linux/drivers/tty/sysrq.c").path == str(other / "tty/sysrq.c")
    assert sources.resolve("/build/linuxfoo/x.c").path == "/build/linuxfoo/x.c"  # component boundary
    r = sources.resolve("kernel/kthread.c")
    assert r.path == str(tree / "kernel/kthread.c") and r.exists and r.name == "kthread.c"
    missing = sources.resolve("mm/slub.c")
    assert missing.path == str(tree / "mm/slub.c") and not missing.exists  # still names the file
    assert sources.resolve("../../etc/passwd").path == "../../etc/passwd"  # never leaves the root
    escaped = sources.resolve("/build/linux/../../etc/shadow")  # ".." leaves the mapped prefix: unmapped
    assert escaped.path == "/build/linux/../../etc/shadow" and not escaped.path.startswith(str(tree))
    assert not SourceMap().resolve("kernel/fork.c").exists


@pytest.mark.parametrize(
    "dwarf_path",
    [
        "/usr/src/debug/kernel-5.14.0-70.el9/linux-5.14.0-70.el9.x86_64/kernel/fork.c",  # RHEL
        "/build/linux-AbCdEf/linux-5.15.0/kernel/fork.c",  # Ubuntu buildd
        "/build/reproducible-path/linux-6.1.192/kernel/fork.c",  # Debian
        "debian/build/build_amd64_none_cloud-amd64/../../../kernel/fork.c",  # Debian out-of-tree build
    ],
)
def test_source_map_falls_back_to_distribution_layouts(tmp_path: Path, dwarf_path: str) -> None:
    """Without a sourceFileMap rule, the distribution build layouts still find the file under sourceRoot."""
    tree = tmp_path / "linux"
    (tree / "kernel").mkdir(parents=True)
    (tree / "kernel/fork.c").write_text("")
    r = SourceMap({}, tree).resolve(dwarf_path)
    assert r.path == str(tree / "kernel/fork.c") and r.exists
    # An explicit rule that leads nowhere still falls back, and the layouts never need the rule.
    r = SourceMap({"/usr/src/debug": str(tmp_path / "nowhere")}, tree).resolve(dwarf_path)
    assert r.path == str(tree / "kernel/fork.c") and r.exists


def test_source_map_fallback_never_leaves_the_root(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    tree.mkdir()
    (tmp_path / "secret.c").write_text("")
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel/fork.c").write_text("")  # next to the tree, not in it
    sources = SourceMap({}, tree)
    for name in ("../secret.c", "../kernel/fork.c", "/build/x/linux-6.1/../../../secret.c"):
        r = sources.resolve(name)
        assert not r.exists and not r.path.startswith(str(tmp_path) + "/secret"), (name, r)
    r = sources.resolve("/build/x/linux-6.1/kernel/fork.c")
    assert not r.exists and r.path == "/build/x/linux-6.1/kernel/fork.c"  # still names the DWARF file
    missing = sources.resolve("kernel/fork.c")
    assert not missing.exists and missing.path == str(tree / "kernel/fork.c")  # the mapped name


def test_launch_config_debuginfod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEBUGINFOD_URLS", raising=False)
    assert LaunchConfig.from_arguments({"vmcore": "/v"}).debuginfod is None
    assert not LaunchConfig.from_arguments({"vmcore": "/v"}).use_debuginfod
    assert LaunchConfig.from_arguments({"vmcore": "/v", "debuginfod": True}).use_debuginfod
    monkeypatch.setenv("DEBUGINFOD_URLS", "http://127.0.0.1:1")
    assert LaunchConfig.from_arguments({"vmcore": "/v", "debuginfod": None}).use_debuginfod
    assert not LaunchConfig.from_arguments({"vmcore": "/v", "debuginfod": False}).use_debuginfod
    with pytest.raises(SettingError, match="'debuginfod' must be true, false or null"):
        LaunchConfig.from_arguments({"vmcore": "/v", "debuginfod": "yes"})
