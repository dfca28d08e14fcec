"""Where types and globals are declared: a Universal Ctags index of a source tree, built once, cached.

drgn 0.3 knows no declaration lines (DWARF's ``DW_AT_decl_line`` is not exposed), so "go to
definition" of a struct, typedef, enum or global variable is answered from a tags file. Indexing a
kernel tree takes about a minute on two cores, so the file is kept in
``$VMCORE_DAP_CACHE/ctags/<hash>/tags``; the hash covers the ctags version, the options and the
tree's file names, sizes and modification times, so an edited tree is re-indexed and an untouched one
never is. Each use stamps the file; after a new index is built, indexes unused for
:data:`IDLE_DAYS` days are removed (a kernel index is about 90 MB). Lookups bisect the sorted file
through ``mmap``: nothing is loaded into memory.

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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vmcore_dap.errors import UserError

__all__ = ["IDLE_DAYS", "Tag", "TagsFile", "build_tags", "cache_root", "ctags_binary", "KINDS"]

#: Indexes not used for this many days are removed after a new one is built.
IDLE_DAYS = 7.0

log = logging.getLogger(__name__)

#: ctags C kinds indexed: functions, enums, enumerators, structs, typedefs, unions, variables.
KINDS = "efgstuv"
_OPTIONS: tuple[str, ...] = (
    "--langdef=KernelLdsHeader",
    "--languages=C,LdScript,KernelLdsHeader",
    "--langmap=C:.c.h",
    f"--kinds-C={KINDS}",
    "--fields=K",
    "--excmd=number",
    "--sort=yes",
    # Symbols the kernel's linker script defines (``_stext = .;``, ``jiffies = jiffies_64;``): ctags'
    # own LdScript parser for ``arch/<arch>/kernel/vmlinux.lds.S``; the generic header's assignments
    # sit inside ``#define`` bodies, which that parser skips, so a line regex reads them.
    "--map-LdScript=+(vmlinux.lds.S)",
    "--map-KernelLdsHeader=+(vmlinux.lds.h)",
    "--kinds-LdScript=s",
    r"--regex-KernelLdsHeader=/^[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[^=;]*;/\1/s,symbol/",
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
#: Kernel macros that define one global, as ctags ``-D`` definitions ``MACRO(params)=declarator``:
#: ctags expands each use, so ``__cacheline_aligned DEFINE_RWLOCK(tasklist_lock);`` is indexed as a
#: variable on its own line, whatever annotations or ``static`` precede it. The declared type is
#: always ``int``: the index records names and lines only, and a real type such as
#: ``DEFINE_PER_CPU(int [4], x)`` would not parse. The ``;`` ends the declaration at the name:
#: ctags 5.9 drops ``static int x = IRQ_WORK_INIT_LAZY(f);`` (a call-like initializer), and the
#: stray ``= …;`` left after it is skipped. Uses inside functions become locals, which are not
#: indexed. (Kernel v6.1 names; a macro missing from a tree is simply never expanded.)
_DEFINING_MACROS = (
    # include/linux/jump_label.h
    "DEFINE_STATIC_KEY_TRUE(name)=int name;",
    "DEFINE_STATIC_KEY_TRUE_RO(name)=int name;",
    "DEFINE_STATIC_KEY_FALSE(name)=int name;",
    "DEFINE_STATIC_KEY_FALSE_RO(name)=int name;",
    "DEFINE_STATIC_KEY_MAYBE(cfg,name)=int name;",
    "DEFINE_STATIC_KEY_MAYBE_RO(cfg,name)=int name;",
    "DEFINE_STATIC_KEY_ARRAY_TRUE(name,count)=int name;",
    "DEFINE_STATIC_KEY_ARRAY_FALSE(name,count)=int name;",
    "DEFINE_STATIC_KEY_DEFERRED_TRUE(name,rl)=int name;",
    "DEFINE_STATIC_KEY_DEFERRED_FALSE(name,rl)=int name;",
    # include/linux/percpu-defs.h, arch/x86/include/asm/percpu.h
    "DEFINE_PER_CPU(type,name)=int name;",
    "DEFINE_PER_CPU_SECTION(type,name,sec)=int name;",
    "DEFINE_PER_CPU_FIRST(type,name)=int name;",
    "DEFINE_PER_CPU_SHARED_ALIGNED(type,name)=int name;",
    "DEFINE_PER_CPU_ALIGNED(type,name)=int name;",
    "DEFINE_PER_CPU_PAGE_ALIGNED(type,name)=int name;",
    "DEFINE_PER_CPU_READ_MOSTLY(type,name)=int name;",
    "DEFINE_PER_CPU_DECRYPTED(type,name)=int name;",
    "DEFINE_EARLY_PER_CPU(type,name,init)=int name;",
    "DEFINE_EARLY_PER_CPU_READ_MOSTLY(type,name,init)=int name;",
    # locks, lists, wait queues, ID allocators, work
    "DEFINE_MUTEX(name)=int name;",
    "DEFINE_SPINLOCK(name)=int name;",
    "DEFINE_RAW_SPINLOCK(name)=int name;",
    "DEFINE_RWLOCK(name)=int name;",
    "DEFINE_SEQLOCK(name)=int name;",
    "DEFINE_SEMAPHORE(name)=int name;",
    "DECLARE_RWSEM(name)=int name;",
    "DEFINE_STATIC_PERCPU_RWSEM(name)=int name;",
    "DEFINE_PERCPU_RWSEM(name)=int name;",
    "DEFINE_SRCU(name)=int name;",
    "DEFINE_STATIC_SRCU(name)=int name;",
    "DECLARE_COMPLETION(name)=int name;",
    "DECLARE_WAIT_QUEUE_HEAD(name)=int name;",
    "DECLARE_SWAIT_QUEUE_HEAD(name)=int name;",
    "LIST_HEAD(name)=int name;",
    "HLIST_HEAD(name)=int name;",
    "LLIST_HEAD(name)=int name;",
    "PLIST_HEAD(name)=int name;",
    "DEFINE_HASHTABLE(name,bits)=int name;",
    "DEFINE_READ_MOSTLY_HASHTABLE(name,bits)=int name;",
    "DECLARE_BITMAP(name,bits)=int name;",
    "DEFINE_IDA(name)=int name;",
    "DEFINE_IDR(name)=int name;",
    "DEFINE_XARRAY(name)=int name;",
    "DEFINE_XARRAY_FLAGS(name,flags)=int name;",
    "DEFINE_XARRAY_ALLOC(name)=int name;",
    "DEFINE_XARRAY_ALLOC1(name)=int name;",
    "DEFINE_RATELIMIT_STATE(name,interval,burst)=int name;",
    "DECLARE_WORK(name,func)=int name;",
    "DECLARE_DELAYED_WORK(name,func)=int name;",
    "DECLARE_DEFERRABLE_WORK(name,func)=int name;",
    "DEFINE_TIMER(name,func)=int name;",
    "BLOCKING_NOTIFIER_HEAD(name)=int name;",
    "ATOMIC_NOTIFIER_HEAD(name)=int name;",
    "RAW_NOTIFIER_HEAD(name)=int name;",
    "SRCU_NOTIFIER_HEAD(name)=int name;",
    "ASYNC_DOMAIN(name)=int name;",
    "ASYNC_DOMAIN_EXCLUSIVE(name)=int name;",
    "DEFINE_COOKIE(name)=int name;",
    "DEFINE_CTL_TABLE_POLL(name)=int name;",
    "DEFINE_LED_TRIGGER(name)=int name;",
    "DEFINE_RCU_TASKS(name,gp,call,n)=int name;",
    # file operations of debugfs/seq_file helpers: the object is the fops (``foo_fops``)
    "DEFINE_DEBUGFS_ATTRIBUTE(fops,get,set,fmt)=int fops;",
    "DEFINE_SIMPLE_ATTRIBUTE(fops,get,set,fmt)=int fops;",
    "DEFINE_SHOW_ATTRIBUTE(name)=int name##_fops;",
    "DEFINE_SEQ_ATTRIBUTE(name)=int name##_fops;",
    # drivers/acpi/acpica/acglobal.h: defined where utglobal.c includes it with DEFINE_ACPI_GLOBALS
    "ACPI_GLOBAL(type,name)=int name;",
    "ACPI_INIT_GLOBAL(type,name,value)=int name;",
)
_OPTIONS += tuple(option for definition in _DEFINING_MACROS for option in ("-D", definition))
#: The linker scripts of a kernel tree that are indexed (other ``*.lds.S`` link the decompressor,
#: the vDSO or the real-mode trampoline, whose ``_end`` is not the kernel's).
_KERNEL_LINKER_SCRIPTS = ("kernel/vmlinux.lds.S", "include/asm-generic/vmlinux.lds.h")
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
            if name.endswith((".lds.S", ".lds.h")):
                if not os.path.join(relative_dir, name).endswith(_KERNEL_LINKER_SCRIPTS):
                    continue
            elif not name.endswith((".c", ".h")):
                continue
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
    digest = hashlib.sha256()
    digest.update(f"{version}\0{_OPTIONS}\0{root}\0".encode())
    # The names only, hashed with their stat as they come: the 43,328 files of the 6.1 tree as a list
    # of (name, ``stat_result``) took 32 MiB (tracemalloc), names alone 4 MiB; the list raised the
    # language server's peak by 30 MiB a few seconds after its first code lens.
    files = []
    for relative, stat in _source_files(root, excluded):
        digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        files.append(relative)
    target_dir = cache_root() / "ctags" / digest.hexdigest()[:16]
    tags = target_dir / "tags"
    if tags.is_file():
        _mark_used(tags)
        return tags
    target_dir.mkdir(parents=True, exist_ok=True)
    log.info("indexing %d source files under %s with ctags into %s", len(files), root, tags)
    with tempfile.NamedTemporaryFile("w", dir=target_dir, prefix=".files-", delete=False) as listing:
        listing.write("\n".join(files) + "\n")
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
    _prune_idle_indexes(keep=target_dir)
    return tags


def _mark_used(tags: Path) -> None:
    try:
        os.utime(tags)
    except OSError:  # a read-only cache still serves lookups
        pass


def _prune_idle_indexes(keep: Path) -> None:
    """Remove the other indexes whose tags file was last used :data:`IDLE_DAYS` days ago or more
    (a directory still being built has no tags file yet and a fresh mtime: it stays)."""
    cutoff = time.time() - IDLE_DAYS * 86400
    for directory in keep.parent.iterdir():
        if directory == keep or not directory.is_dir():
            continue
        tags = directory / "tags"
        try:
            used = (tags if tags.exists() else directory).stat().st_mtime
        except OSError:
            continue
        if used < cutoff:
            log.info("removing the ctags index %s, unused for %g days or more", directory, IDLE_DAYS)
            shutil.rmtree(directory, ignore_errors=True)


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
