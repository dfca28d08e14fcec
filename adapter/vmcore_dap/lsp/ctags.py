"""Where types and globals are declared: a Universal Ctags index of a source tree, built once, cached.

drgn 0.3 knows no declaration lines (DWARF's ``DW_AT_decl_line`` is not exposed), so "go to
definition" of a struct, typedef, enum or global variable is answered from a tags file. Indexing a
kernel tree takes about a minute on two cores, so the file is kept in
``$VMCORE_DAP_CACHE/ctags/<hash>/tags``; the hash covers the ctags version, the options and the
tree's file names, sizes and modification times, so an edited tree is re-indexed and an untouched one
never is. Lookups bisect the sorted file through ``mmap``: nothing is loaded into memory.

For a kernel tree only the architecture of the dump is indexed (``arch/x86`` for x86-64), and
``Documentation``, ``tools``, ``scripts`` and ``samples`` are left out; macros are not indexed (the
DRM register headers alone define millions).
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vmcore_dap.errors import UserError

__all__ = ["Tag", "TagsFile", "build_tags", "cache_root", "ctags_binary", "KINDS"]

log = logging.getLogger(__name__)

#: ctags C kinds indexed: functions, enums, enumerators, structs, typedefs, unions, variables.
KINDS = "efgstuv"
_OPTIONS = (
    "--languages=C",
    "--langmap=C:.c.h",
    f"--kinds-C={KINDS}",
    "--fields=K",
    "--excmd=number",
    "--sort=yes",
    # Variables the kernel defines through macros: per-CPU data and statically initialised locks,
    # lists and wait queues (``DEFINE_PER_CPU(struct rq, runqueues)``, ``DEFINE_MUTEX(m)``).
    r"--regex-C=/^[ \t]*(static[ \t]+)?DEFINE_PER_CPU[A-Z_]*\([^;]*,[ \t]*([A-Za-z_][A-Za-z0-9_]*)\)"
    r"/\2/v,variable/",
    r"--regex-C=/^[ \t]*(static[ \t]+)?(DEFINE_(MUTEX|SPINLOCK|RAW_SPINLOCK|RWLOCK|SEMAPHORE|IDA|IDR|XARRAY"
    r"|XARRAY_ALLOC|WAIT_QUEUE_HEAD|RATELIMIT_STATE|STATIC_SRCU|SRCU)|DECLARE_WAIT_QUEUE_HEAD|LIST_HEAD"
    r"|HLIST_HEAD|DECLARE_RWSEM|DECLARE_COMPLETION)\([ \t]*([A-Za-z_][A-Za-z0-9_]*)/\4/v,variable/",
    # Kernel annotations that would otherwise be read as the declared name (``int __read_mostly x``
    # indexed as ``__read_mostly``) or hide the next definition (``void __weak f(void)``).
    "-I",
    ",".join(
        (
            "__initdata,__exitdata,__initconst,__ro_after_init,__initdata_memblock,__refdata,__init,__exit",
            "__maybe_unused,__always_unused,__deprecated,__always_inline,__read_mostly",
            "____cacheline_aligned,____cacheline_aligned_in_smp,__cacheline_aligned",
            "__cacheline_aligned_in_smp,____cacheline_internodealigned_in_smp,__used,__packed",
            "__must_check,__weak,__percpu,__rcu,__user,__iomem,__force,__visible,__cold,__noreturn",
            "noinline,notrace,asmlinkage,__latent_entropy,__randomize_layout,__no_randomize_layout",
            "__aligned+,__attribute__+,__attribute+,__section+,__must_hold+,__acquires+,__releases+",
            "EXPORT_SYMBOL+,EXPORT_SYMBOL_GPL+,EXPORT_SYMBOL_NS_GPL+,__printf+,__scanf+",
            # ctags 5.9 drops ``atomic_t panic_cpu = ATOMIC_INIT(...);`` unless the macro is ignored.
            "ATOMIC_INIT+,ATOMIC64_INIT+,ATOMIC_LONG_INIT+",
        )
    ),
)
_KERNEL_EXCLUDES = ("Documentation", "tools", "scripts", "samples", "LICENSES", "usr", ".git", ".pc")
_BUILD_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Tag:
    """One definition: ``kind`` is ctags' long name (``struct``, ``variable``, ``typedef`` …)."""

    name: str
    path: Path
    line: int
    kind: str


def cache_root() -> Path:
    """``$VMCORE_DAP_CACHE`` (default ``~/.cache/vmcore-dap``)."""
    return Path(os.environ.get("VMCORE_DAP_CACHE") or Path.home() / ".cache" / "vmcore-dap")


def ctags_binary() -> tuple[str, str]:
    """Return the path and version line of Universal Ctags.

    :raises UserError: when no ``ctags`` is installed or it is not Universal Ctags.
    """
    path = shutil.which("ctags")
    if path is None:
        raise UserError(
            "Cannot index the kernel sources: no ctags program found "
            "(install Universal Ctags: apt-get install universal-ctags)"
        )
    version = subprocess.run(
        [path, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.splitlines()
    if not version or "Universal Ctags" not in version[0]:
        raise UserError(
            f"Cannot index the kernel sources: {path} is not Universal Ctags "
            "(install it: apt-get install universal-ctags)"
        )
    return path, version[0]


def _is_kernel_tree(root: Path) -> bool:
    return (root / "Kbuild").is_file() and (root / "arch").is_dir() and (root / "kernel").is_dir()


def _excluded_dirs(root: Path, arch: str | None) -> set[str]:
    """Top-level (and ``arch/*``) directories of a kernel tree that are not indexed."""
    if not _is_kernel_tree(root):
        return set()
    excluded = set(_KERNEL_EXCLUDES)
    if arch is not None:
        excluded |= {
            f"arch/{entry.name}"
            for entry in (root / "arch").iterdir()
            if entry.is_dir() and entry.name != arch
        }
    return excluded


def _source_files(root: Path, excluded: set[str]) -> Iterator[tuple[str, os.stat_result]]:
    for directory, subdirs, files in os.walk(root):
        relative_dir = os.path.relpath(directory, root)
        relative_dir = "" if relative_dir == "." else relative_dir
        subdirs[:] = sorted(
            d for d in subdirs if os.path.join(relative_dir, d) not in excluded and not d.startswith(".")
        )
        for name in sorted(files):
            if name.endswith((".c", ".h")):
                relative = os.path.join(relative_dir, name)
                try:
                    yield relative, os.stat(os.path.join(directory, name))
                except OSError:
                    continue


def build_tags(root: Path, arch: str | None = None) -> Path:
    """Index ``root`` (or reuse the cached index) and return the tags file.

    :param arch: the kernel's ``arch/`` directory name to keep (``x86``); others are skipped.
    :raises UserError: when ctags is missing or fails.
    """
    binary, version = ctags_binary()
    root = root.resolve()
    excluded = _excluded_dirs(root, arch)
    files = list(_source_files(root, excluded))
    digest = hashlib.sha256()
    digest.update(f"{version}\0{_OPTIONS}\0{root}\0".encode())
    for relative, stat in files:
        digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    target_dir = cache_root() / "ctags" / digest.hexdigest()[:16]
    tags = target_dir / "tags"
    if tags.is_file():
        return tags
    target_dir.mkdir(parents=True, exist_ok=True)
    log.info("indexing %d source files under %s with ctags into %s", len(files), root, tags)
    with tempfile.NamedTemporaryFile("w", dir=target_dir, prefix=".files-", delete=False) as listing:
        listing.write("\n".join(relative for relative, _stat in files) + "\n")
    partial = target_dir / f".tags-{os.getpid()}"
    try:
        proc = subprocess.run(
            [binary, *_OPTIONS, "-f", str(partial), "-L", listing.name],
            cwd=root,
            env={**os.environ, "LC_ALL": "C"},  # bytewise sort order, which lookups rely on
            capture_output=True,
            text=True,
            check=False,
            timeout=_BUILD_TIMEOUT_S,
        )
        if proc.returncode != 0 or not partial.is_file():
            raise UserError(
                f"Cannot index the sources under '{root}': ctags failed (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-500:]} (check that the directory is readable)"
            )
        (target_dir / "root").write_text(str(root) + "\n")
        os.replace(partial, tags)
    finally:
        os.unlink(listing.name)
        if partial.exists():
            partial.unlink()
    return tags


class TagsFile:
    """A sorted tags file, searched by name without loading it.

    :param root: the directory the tags' relative paths start from.
    """

    def __init__(self, tags: Path, root: Path) -> None:
        self.path = tags
        self.root = root.resolve()
        self._file = open(tags, "rb")  # noqa: SIM115 - kept open for the mmap's lifetime
        size = os.fstat(self._file.fileno()).st_size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else None

    def close(self) -> None:
        """Release the mapping."""
        if self._map is not None:
            self._map.close()
        self._file.close()

    def _name_at(self, start: int) -> tuple[bytes, int]:
        data = self._map
        assert data is not None
        end = data.find(b"\n", start)
        if end < 0:
            end = len(data)
        tab = data.find(b"\t", start, end)
        return data[start : tab if tab >= 0 else end], end

    def _lower_bound(self, key: bytes) -> int:
        """Return the start of the first line whose name is >= ``key`` (bytewise, as ctags sorts)."""
        data = self._map
        assert data is not None
        lo, hi = 0, len(data)
        while lo < hi:  # lo and hi are always starts of lines (or the end)
            mid = (lo + hi) // 2
            start = max(data.rfind(b"\n", lo, mid) + 1, lo)
            found, end = self._name_at(start)
            if found < key:
                lo = end + 1
            else:
                hi = start
        return lo

    def lookup(self, name: str) -> list[Tag]:
        """Return every definition of ``name`` (exact, case-sensitive)."""
        data = self._map
        if data is None or not name:
            return []
        key = name.encode()
        tags: list[Tag] = []
        position = self._lower_bound(key)
        while position < len(data):
            found, end = self._name_at(position)
            if found != key:
                break
            tag = self._parse(data[position:end].decode("utf-8", "replace"))
            if tag is not None:
                tags.append(tag)
            position = end + 1
        return tags

    def prefix(self, text: str, limit: int) -> list[Tag]:
        """Return up to ``limit`` definitions whose name starts with ``text``."""
        data = self._map
        if data is None or not text:
            return []
        key = text.encode()
        tags: list[Tag] = []
        position = self._lower_bound(key)
        while position < len(data) and len(tags) < limit:
            found, end = self._name_at(position)
            if not found.startswith(key):
                break
            tag = self._parse(data[position:end].decode("utf-8", "replace"))
            if tag is not None:
                tags.append(tag)
            position = end + 1
        return tags

    def _parse(self, line: str) -> Tag | None:
        parts = line.split("\t")
        if len(parts) < 4 or line.startswith("!_TAG_"):
            return None
        name, relative, address, kind = parts[0], parts[1], parts[2], parts[3]
        number = address.split(";", 1)[0]
        if not number.isdigit():
            return None
        return Tag(name, self.root / relative, int(number), kind)
