"""Debug-info source paths of Debian, Ubuntu, RHEL and hand-built kernels map into a kernel tree.

Synthetic fixtures: the paths are the ones these distributions' debuginfo really records (as printed
by ``readelf --debug-dump=info`` / ``drgn`` on their vmlinux), the tree is a set of strings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vmcore_dap.dump.sources.layouts import resolve_in_roots, tree_relative_candidates

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("debug_path", "expected"),
    [
        # Debian 12: relative to the build directory.
        ("kernel/kthread.c", "kernel/kthread.c"),
        ("./include/linux/sched.h", "include/linux/sched.h"),
        ("arch/x86/include/asm/current.h", "arch/x86/include/asm/current.h"),
        # Debian out-of-tree build directory, as comp_dir + "../../.." and for generated headers.
        ("debian/build/build_amd64_none_amd64/../../../kernel/fork.c", "kernel/fork.c"),
        (
            "debian/build/build_amd64_none_cloud-amd64/include/generated/autoconf.h",
            "include/generated/autoconf.h",
        ),
        # Debian buildd and reproducible builds.
        ("/build/linux-Xy12Ab/linux-6.1.76/kernel/kthread.c", "kernel/kthread.c"),
        ("/build/reproducible-path/linux-6.1.192/mm/slub.c", "mm/slub.c"),
        (
            "/build/reproducible-path/linux-6.1.192/debian/build/build_amd64_none_amd64/../../../fs/open.c",
            "fs/open.c",
        ),
        # Ubuntu.
        (
            "/build/linux-hwe-6.5-QoAc9t/linux-hwe-6.5-6.5.0/drivers/net/virtio_net.c",
            "drivers/net/virtio_net.c",
        ),
        (
            "/build/linux-AbCdEf/linux-5.15.0/debian/build/build-generic/include/generated/x.h",
            "include/generated/x.h",
        ),
        # RHEL 9 / Fedora.
        (
            "/usr/src/debug/kernel-5.14.0-70.13.1.el9_0/linux-5.14.0-70.13.1.el9_0.x86_64/kernel/sched/core.c",
            "kernel/sched/core.c",
        ),
        ("/usr/src/debug/kernel-6.8.5/linux-6.8.5-301.fc40.x86_64/net/ipv4/tcp.c", "net/ipv4/tcp.c"),
        # Hand builds.
        ("/usr/src/linux-6.1/block/blk-core.c", "block/blk-core.c"),
        ("/home/dev/src/linux/io_uring/io_uring.c", "io_uring/io_uring.c"),
    ],
)
def test_first_candidate_is_tree_relative(debug_path: str, expected: str) -> None:
    assert tree_relative_candidates(debug_path)[0] == expected


def test_paths_that_lead_nowhere() -> None:
    assert tree_relative_candidates("") == []
    assert tree_relative_candidates("/opt/random/file.c") == []
    assert tree_relative_candidates("../../file.c") == []


def test_module_built_out_of_tree_keeps_its_own_path() -> None:
    """A module's absolute path matches no kernel layout: only the top-dir fallback, if any, applies."""
    assert tree_relative_candidates("/tmp/labbug/labbug.c") == []
    assert tree_relative_candidates("/srv/build/modules/drivers/foo/foo.c") == ["drivers/foo/foo.c"]


TREE = {
    "/src/linux-source-6.1/kernel/kthread.c",
    "/src/linux-source-6.1/mm/slub.c",
    "/other/root/fs/open.c",
    "/home/dev/linux/kernel/fork.c",
}


def _exists(path: Path) -> bool:
    return str(path) in TREE


@pytest.mark.parametrize(
    ("debug_path", "expected"),
    [
        ("kernel/kthread.c", "/src/linux-source-6.1/kernel/kthread.c"),
        ("/build/reproducible-path/linux-6.1.192/mm/slub.c", "/src/linux-source-6.1/mm/slub.c"),
        (
            "/usr/src/debug/kernel-5.14.0-70.el9/linux-5.14.0-70.el9.x86_64/fs/open.c",
            "/other/root/fs/open.c",
        ),
        # Exists as is, but outside every root: not returned (a DWARF name must not open any file).
        ("/home/dev/linux/kernel/fork.c", None),
        ("/other/root/../../home/dev/linux/kernel/fork.c", None),  # ".." folded before the check
        ("/other/root/fs/open.c", "/other/root/fs/open.c"),  # inside a root: as is
        ("kernel/sched/core.c", None),
    ],
)
def test_resolve_in_roots(debug_path: str, expected: str | None) -> None:
    found = resolve_in_roots(debug_path, ["/src/linux-source-6.1", "/other/root"], exists=_exists)
    assert (str(found) if found else None) == expected
