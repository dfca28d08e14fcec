"""Give back the pages of the dump file that libkdumpfile keeps mapped, as a task walk goes on.

drgn reads a kdump-compressed vmcore through libkdumpfile, which maps the file in windows of 4 MiB
(``FCACHE_ORDER`` 10 in its ``src/kdumpfile/open.c``) and keeps the last 16 of them (``FCACHE_SIZE``):
up to 64 MiB of the file. Every page of a window that a read touched (and, through the kernel's
fault-around, its neighbours) stays in the process's resident set until the window is recycled. A
walk of every task reads pages all over the file, so at 50,000 tasks those windows alone held
45-50 MiB of the adapter's peak resident set (measured with ``/proc/self/smaps`` on the huge sample),
while crash reads the same file with ``read(2)`` into a cache of a few pages. (drgn gives no way to
set libkdumpfile's ``file.mmap_policy``, which would make it read the same way.)

The pages are the file's own, clean and shared with the page cache: dropping them from the process
(``madvise(MADV_DONTNEED)``) loses nothing, and the next read of one faults it back in from the page
cache (a minor fault, no I/O while the file stays cached). :class:`MappedDumpPages` does that every
:data:`RELEASE_EVERY` reads a walk reports (:meth:`MappedDumpPages.note_reads`).

It must run on the thread that uses drgn: libkdumpfile unmaps and maps windows during a read, so
another thread could find an address of the file that is by then something else's memory. An ELF
vmcore is read with ``pread`` (nothing mapped: nothing to do), and on a system without
``/proc/self/maps`` or ``madvise`` this is a no-op.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

import drgn

__all__ = ["RELEASE_EVERY", "MappedDumpPages", "mapped_dump_pages", "watch_dump_file"]

log = logging.getLogger(__name__)

#: How many reported reads (about one task each) between two releases. Measured in process on the
#: huge sample (listing and grouping 50,910 tasks, load 6.5-7): every 256 reads cost 5-10 % more CPU
#: (the pages fault back in), every 1,024 about 2 % for the same peak (332-336 MiB against 377-380 MiB
#: without releasing), every 4,096 left 4-6 MiB more at the peak.
RELEASE_EVERY = 1024
#: ``MADV_DONTNEED`` (include/uapi/asm-generic/mman-common.h: x86-64 and arm64, the architectures
#: the adapter supports, use the generic value; alpha's differs).
_MADV_DONTNEED = 4
_CACHE_KEY = "vmcore_dap_mapped_dump"


def _libc_madvise() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return None
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    return madvise


class MappedDumpPages:
    """The mapped windows of one dump file, released every :data:`RELEASE_EVERY` reads.

    :param path: the dump file (matched in ``/proc/self/maps`` by device and inode, so a symlink or
        a relative path names the same file).
    """

    def __init__(self, path: Path, every: int = RELEASE_EVERY) -> None:
        st = os.stat(path)
        self._device = (os.major(st.st_dev), os.minor(st.st_dev))
        self._inode = st.st_ino
        self._every = every
        self._count = 0
        self._madvise = _libc_madvise()
        #: Bytes of mappings released so far (windows, not only their resident pages).
        self.released = 0

    def note_reads(self, count: int = 1) -> None:
        """Count ``count`` reads of the dump (about one task each); release when enough built up."""
        self._count += count
        if self._count >= self._every:
            self._count = 0
            self.release()

    def release(self) -> int:
        """Drop the file's mapped pages from the process now; return the bytes of mappings advised."""
        if self._madvise is None:
            return 0
        total = 0
        for start, end in self._windows():
            if self._madvise(start, end - start, _MADV_DONTNEED) == 0:
                total += end - start
        self.released += total
        return total

    def resident_kib(self) -> int:
        """How much of the file is resident in the process now, in KiB (``/proc/self/smaps``)."""
        windows = set(self._windows())
        total = 0
        inside = False
        try:
            with open("/proc/self/smaps", "rb") as smaps:
                for line in smaps:
                    head = line.split(maxsplit=1)[0]
                    if b"-" in head and not head.endswith(b":"):
                        low, _, high = head.partition(b"-")
                        inside = (int(low, 16), int(high, 16)) in windows
                    elif inside and head == b"Rss:":
                        total += int(line.split()[1])
        except OSError:
            return 0
        return total

    def _windows(self) -> list[tuple[int, int]]:
        """The read-only shared mappings of the file (libkdumpfile's windows: ``r--s``)."""
        found: list[tuple[int, int]] = []
        try:
            with open("/proc/self/maps", "rb") as maps:
                lines = maps.read().splitlines()
        except OSError:
            return found
        inode = str(self._inode).encode()
        for line in lines:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or fields[4] != inode or fields[1] != b"r--s":
                continue
            major, _, minor = fields[3].partition(b":")
            if (int(major, 16), int(minor, 16)) != self._device:
                continue
            low, _, high = fields[0].partition(b"-")
            found.append((int(low, 16), int(high, 16)))
        return found


def watch_dump_file(prog: drgn.Program, path: Path, every: int = RELEASE_EVERY) -> None:
    """Make ``path`` (the file ``prog`` was opened on) the dump whose mapped pages walks release,
    every ``every`` reads."""
    try:
        prog.cache[_CACHE_KEY] = MappedDumpPages(path, every)
    except OSError as exc:  # the dump opened, so this is odd; walks then just keep the pages
        log.warning("cannot watch the mapped pages of %s: %s", path, exc)


def mapped_dump_pages(prog: drgn.Program) -> MappedDumpPages | None:
    """The program's :class:`MappedDumpPages`, if :func:`watch_dump_file` was called for it."""
    found: MappedDumpPages | None = prog.cache.get(_CACHE_KEY)
    return found
