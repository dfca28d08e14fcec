"""Turn the source paths that distributions' kernel debug info records into paths inside a kernel tree.

Each distribution builds its kernel somewhere else, and the DWARF line tables remember that place:

- Debian: relative to the build directory, ``kernel/kthread.c``; generated headers under the
  out-of-tree build directory ``debian/build/build_amd64_none_cloud-amd64/include/generated/…``;
  older or locally rebuilt packages ``/build/linux-XXXX/linux-6.1.x/kernel/kthread.c`` or
  ``/build/reproducible-path/linux-6.1.192/…``.
- Ubuntu: ``/build/linux-AbCdEf/linux-5.15.0/kernel/kthread.c``, and ``debian/build/build-generic/…``.
- RHEL, CentOS, Fedora: ``/usr/src/debug/kernel-5.14.0-70.el9/linux-5.14.0-70.el9.x86_64/kernel/…``.
- Kernels built by hand: ``/usr/src/linux-6.1/…``, ``/home/me/linux/…`` (found by the top-level
  directory names of the kernel tree).

:func:`tree_relative_candidates` answers "which paths inside the tree could this be", most specific
first; :func:`resolve_in_roots` tries them under each source root. Both are pure string work (plus an
``exists`` callback), so they are tested on synthetic paths with no kernel tree at hand. The adapter's
path mapping (:mod:`.source_map`) calls :func:`resolve_in_roots` after applying the user's explicit
``sourceFileMap``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["KERNEL_TOP_DIRS", "tree_relative_candidates", "resolve_in_roots"]

#: Top-level directories of a Linux source tree (v2.6 … v6.x); one of them starts the tree-relative
#: part of a path when no known build prefix matches.
KERNEL_TOP_DIRS = frozenset(
    {
        "arch",
        "block",
        "certs",
        "crypto",
        "drivers",
        "fs",
        "include",
        "init",
        "io_uring",
        "ipc",
        "kernel",
        "lib",
        "mm",
        "net",
        "rust",
        "samples",
        "scripts",
        "security",
        "sound",
        "tools",
        "usr",
        "virt",
    }
)

# Known build prefixes, each matched at the start of a normalized absolute path; what follows the match
# is relative to the top of the tree. Order: most specific first.
_PREFIXES = (
    # RHEL/CentOS/Fedora debuginfo: /usr/src/debug/kernel-<ver>/linux-<ver>.<arch>/
    re.compile(r"^/usr/src/debug/kernel-[^/]+/linux-[^/]+/"),
    # Debian/Ubuntu out-of-tree build directory (generated files live here; sources are ../../..).
    re.compile(r"^(?:.*/)?debian/build/build[_-][^/]+/"),
    # Debian/Ubuntu buildd: /build/<random or reproducible-path>/linux-<ver>/
    re.compile(r"^/build/[^/]+/linux[^/]*/"),
    # /usr/src/linux-<ver>/ and /usr/src/kernels/<ver>/ (headers packages, hand builds)
    re.compile(r"^/usr/src/kernels/[^/]+/"),
    re.compile(r"^/usr/src/linux[^/]*/"),
)

_GENERATED = re.compile(r"^(?:.*/)?debian/build/build[_-][^/]+/")


def _normalize(path: str) -> str:
    # "debian/build/build_amd64_none_amd64/../../../kernel/fork.c" and "./kernel/fork.c" both name
    # kernel/fork.c; normpath folds them (a path on the build machine has no symlinks we could honour).
    normalized = posixpath.normpath(path.replace("\\", "/"))
    return "" if normalized == "." else normalized


def _from_top_dir(path: str) -> str | None:
    parts = path.strip("/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part in KERNEL_TOP_DIRS:
            return "/".join(parts[i:])
    return None


def tree_relative_candidates(path: str) -> list[str]:
    """Return the paths relative to the top of a kernel tree that ``path`` may name, best first.

    A path already relative (Debian's own layout) comes back normalized. An absolute one loses the
    longest known build prefix; failing that, everything before the first top-level kernel directory.
    A path that leads nowhere returns ``[]``. Paths into the out-of-tree build directory of Debian and
    Ubuntu (``debian/build/build_…/include/generated/…``) map to the same relative path: a tree that
    was built in place has those files there.
    """
    if not path:
        return []
    normalized = _normalize(path)
    if not normalized or normalized.startswith("../"):
        stripped = normalized.lstrip("./")
        return [stripped] if stripped and "/" in stripped else []
    candidates: list[str] = []

    def add(candidate: str | None) -> None:
        if candidate and not candidate.startswith("../") and candidate not in candidates:
            candidates.append(candidate)

    if not normalized.startswith("/"):
        generated = _GENERATED.match(normalized)
        add(normalized[generated.end() :] if generated else normalized)
        return candidates
    for prefix in _PREFIXES:
        match = prefix.match(normalized)
        if match:
            add(normalized[match.end() :])
    add(_from_top_dir(normalized))
    return candidates


def _lexically_inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def resolve_in_roots(
    path: str,
    roots: Iterable[str | Path],
    exists: Callable[[Path], bool] = Path.is_file,
) -> Path | None:
    """Find the file that debug-info ``path`` names under one of ``roots`` (kernel source trees).

    An absolute ``path`` inside a root that exists as is wins (a developer's own build tree as
    ``sourceRoot``); then each candidate of :func:`tree_relative_candidates` under each root, in
    order. Nothing outside ``roots`` is ever returned: an absolute name is compared after folding
    ``..`` (``<root>/../secret`` is not inside ``<root>``), and candidates never start with ``..``.
    Symbolic links are the caller's to judge (:class:`.source_map.SourceMap` checks the
    real path of what this returns).

    :param exists: the existence test (injected by tests).
    """
    root_list = [Path(posixpath.normpath(str(r))) for r in roots]
    if path.startswith("/"):
        as_is = posixpath.normpath(path)
        if any(_lexically_inside(str(root), as_is) for root in root_list) and exists(Path(as_is)):
            return Path(as_is)
    for candidate in tree_relative_candidates(path):
        for root in root_list:
            full = root / candidate
            if exists(full):
                return full
    return None
