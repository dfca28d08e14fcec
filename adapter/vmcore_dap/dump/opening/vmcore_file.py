"""Inspect a vmcore file's own headers before drgn opens it.

drgn (through libkdumpfile) reports damaged files with messages such as "unknown compression method"
or "Unexpected EOF"; a person needs "this copy is truncated". So this module identifies the format
(kdump-compressed ``KDUMP   ``, makedumpfile's flattened stream, ELF core), checks that every byte the
headers promise is present, reads the ``VMCOREINFO`` note (kernel release, ``BUILD-ID=``) and the
makedumpfile filter level, all without drgn.

Formats (makedumpfile ``diskdump_mod.h``): a kdump-compressed file is a ``disk_dump_header`` block, a
``kdump_sub_header`` of ``sub_hdr_size`` blocks, two page bitmaps of ``bitmap_blocks`` blocks, one
24-byte ``page_desc`` per dumpable page (the bits set in the second bitmap), then the page data.
A flattened stream (``makedumpfile -F``, for pipes) carries the same file in ``(offset, size)``
records, headers first; only its headers are read here.

An ELF vmcore records no filter level, but its segments show the filtering: the kernel's
``/proc/vmcore`` and QEMU's ``dump-guest-memory`` write every ``PT_LOAD`` whole (``p_filesz ==
p_memsz``), while ``makedumpfile -E -d N`` (``write_elf_pages_cyclic``) ends a segment's data before
each run of 256 or more excluded pages and before a segment's trailing excluded pages, keeping them
only in ``p_memsz``. Readers (drgn included) return zeros for that ``p_filesz < p_memsz`` tail, without
an error, so those pages are listed here (:attr:`VmcoreFile.zero_filled`) for the launch message and
:mod:`~vmcore_dap.dump.memory.page_filter`. Runs of fewer than 256 excluded pages are written with
their data and cannot be told apart.
"""

from __future__ import annotations

import bisect
import io
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import drgn

from vmcore_dap.dump.arch import MIN_PAGE_SIZE
from vmcore_dap.dump.opening import elf
from vmcore_dap.errors import SettingError, UserError

log = logging.getLogger(__name__)

__all__ = [
    "KDUMP_SIGNATURE",
    "KdumpBitmaps",
    "VmcoreFile",
    "describe_dump_level",
    "describe_filtering",
    "excluded_page_kinds",
    "inspect_vmcore",
    "inspected_file",
    "remember_inspection",
    "vmcore_format",
]

KDUMP_SIGNATURE = b"KDUMP   "
_DISKDUMP_SIGNATURE = b"DISKDUMP"
_FLAT_SIGNATURE = b"makedumpfile\0\0\0\0"
#: A flattened stream: a 4 KiB header, then records of big-endian ``(offset, size)`` and ``size`` bytes
#: of the kdump file at ``offset`` (makedumpfile ``struct makedumpfile_data_header``).
_FLAT_HEADER_SIZE = 4096
_FLAT_RECORD = struct.Struct(">qq")
#: The headers and VMCOREINFO are the first records and lie in the first few blocks of the file.
_FLAT_HEAD_RECORDS = 64
_FLAT_HEAD_LIMIT = 1 << 20
_HEADER = struct.Struct("<8si390s6xqqIiiIIIIIIi")  # struct disk_dump_header, x86-64
_SUB_HEADER = struct.Struct("<QiiQQqQqQqQQQQ")  # struct kdump_sub_header, x86-64
_PAGE_DESC = struct.Struct("<qIIQ")  # struct page_desc: offset, size, flags, page_flags

_INF = float("inf")

_COPY_HINT = "copy the vmcore again, e.g. with 'cp --sparse=always', and compare its size with the original"


@dataclass(frozen=True)
class KdumpBitmaps:
    """Where a kdump-compressed file says which pages exist and which were written.

    :param offset: file offset of the first bitmap (a bit per page frame: RAM the kernel had).
    :param length: bytes of each bitmap; the second (pages written to the file) follows the first.
    :param desc_offset: file offset of the ``page_desc`` of the first written page.
    :param max_mapnr: number of page frames the bitmaps describe (0 if not recorded).
    """

    offset: int
    length: int
    desc_offset: int
    max_mapnr: int


@dataclass
class VmcoreFile:
    """What the headers of a vmcore say, before any memory is read.

    :param format: ``"kdump"`` (compressed), ``"flattened"`` (makedumpfile -F) or ``"elf"``.
    :param vmcoreinfo: the ``VMCOREINFO`` key/value pairs (``OSRELEASE``, ``BUILD-ID``, ``CRASHTIME``…).
    :param dump_level: makedumpfile's ``-d`` level, when the format records it.
    :param missing_bytes: how many bytes of page data the file lacks (0 if complete).
    :param warnings: things the user should know even though the file opens.
    """

    path: Path
    format: str
    size: int
    vmcoreinfo: dict[str, str] = field(default_factory=dict)
    dump_level: int | None = None
    missing_bytes: int = 0
    missing_pages: int = 0
    warnings: list[str] = field(default_factory=list)
    #: kdump-compressed only: where the page bitmaps are (for :mod:`~vmcore_dap.dump.memory.page_filter`).
    bitmaps: KdumpBitmaps | None = None
    #: ELF only: ``(p_paddr, p_offset, p_filesz)`` of every PT_LOAD with data, in file order.
    loads: list[tuple[int, int, int]] = field(default_factory=list)
    #: kdump-compressed only: the header's block size, which is the dumped kernel's page size.
    block_size: int | None = None
    #: ELF only: sorted, merged physical ranges ``[start, end)`` that lie in some segment's
    #: ``p_filesz < p_memsz`` tail and in no segment's data: pages left out when the file was
    #: written (makedumpfile -E), which read as zeros.
    zero_filled: list[tuple[int, int]] = field(default_factory=list)

    @property
    def release(self) -> str | None:
        """The kernel release (``uname -r``) recorded in the dump."""
        return self.vmcoreinfo.get("OSRELEASE")

    @property
    def build_id(self) -> str | None:
        """The kernel's GNU build ID (lowercase hex) recorded in ``VMCOREINFO``, if any."""
        value = self.vmcoreinfo.get("BUILD-ID")
        return value.strip().lower() if value else None

    @property
    def page_size(self) -> int:
        """The dumped kernel's page size: the kdump header's block size, else VMCOREINFO's
        ``PAGESIZE``, else the smallest page of any architecture."""
        if self.block_size:
            return self.block_size
        recorded = self.vmcoreinfo.get("PAGESIZE", "")
        return int(recorded) if recorded.isdigit() and int(recorded) > 0 else MIN_PAGE_SIZE

    @property
    def zero_filled_pages(self) -> int:
        """How many pages lie in :attr:`zero_filled` (a partial page counts as one)."""
        page = self.page_size
        return sum((end + page - 1) // page - start // page for start, end in self.zero_filled)

    def is_zero_filled(self, phys: int) -> bool:
        """Whether physical address ``phys`` lies in :attr:`zero_filled`."""
        i = bisect.bisect_right(self.zero_filled, (phys, _INF)) - 1
        return i >= 0 and self.zero_filled[i][0] <= phys < self.zero_filled[i][1]

    @property
    def truncated(self) -> bool:
        """Whether the headers describe more data than the file holds."""
        return self.missing_bytes > 0


def describe_dump_level(fmt: str, level: int | None) -> str:
    """Say in one phrase what the dump contains, e.g. for ``-d 31``.

    >>> describe_dump_level("kdump", 31)
    'partial dump, makedumpfile -d 31: user, cache and free pages excluded'

    Zero pages are not mentioned next to other kinds: excluding them loses nothing.
    """
    if level is None:
        return f"{fmt} vmcore: filter level not recorded"
    if level == 0:
        return "complete dump, makedumpfile -d 0: no pages excluded"
    kinds = excluded_page_kinds(level)
    if not kinds:
        return f"dump with makedumpfile -d {level}: only zero pages excluded (nothing is lost)"
    listed = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]
    return f"partial dump, makedumpfile -d {level}: {listed} pages excluded"


def describe_filtering(file: VmcoreFile) -> str:
    """Say in one phrase how complete the dump in ``file`` is, from what its headers show.

    A kdump-compressed file records makedumpfile's ``-d`` level (:func:`describe_dump_level`); an ELF
    one only shows it through its zero-filled segment tails (see the module docstring).
    """
    if file.format != "elf":
        return describe_dump_level(file.format, file.dump_level)
    pages = file.zero_filled_pages
    if not pages:
        segments = len(file.loads)
        return (
            f"complete ELF dump: every page of its {segments} memory segment{'s' if segments != 1 else ''} "
            "is in the file (no filtering)"
        )
    mib = pages * file.page_size / 2**20
    return (
        f"ELF dump written by makedumpfile with filtering: {pages:,} pages ({mib:,.0f} MiB) excluded; "
        "excluded pages read as zeros (an ELF dump does not record the -d level)"
    )


def excluded_page_kinds(level: int) -> list[str]:
    """The kinds of page that makedumpfile ``-d level`` leaves out, zero pages aside.

    >>> excluded_page_kinds(31)
    ['user', 'cache', 'free']
    """
    kinds = []
    if level & 8:
        kinds.append("user")
    if level & 6:
        kinds.append("cache" if level & 6 == 6 else ("page cache" if level & 2 else "private cache"))
    if level & 16:
        kinds.append("free")
    return kinds


def _parse_vmcoreinfo(data: bytes) -> dict[str, str]:
    info: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key and key not in info:
            info[key] = value
    return info


def _cannot_open(path: Path, why: str, hint: str) -> SettingError:
    return SettingError(f"Cannot open vmcore '{path}': {why} ({hint})", "vmcore")


def _head_format(f: BinaryIO) -> str | None:
    """``"kdump"``, ``"flattened"``, ``"elf"`` (any ELF file) or ``None``, from a file's first bytes."""
    f.seek(0)
    head = f.read(64)
    if head.startswith(KDUMP_SIGNATURE) or head.startswith(_DISKDUMP_SIGNATURE):
        return "kdump"
    if head.startswith(_FLAT_SIGNATURE):
        return "flattened"
    return "elf" if elf.read_elf_header(f) is not None else None


def vmcore_format(path: Path) -> str | None:
    """The vmcore format of the file at ``path`` from its first bytes (``"kdump"``, ``"flattened"``,
    ``"elf"`` for an ELF core file), or ``None`` for anything else, an unreadable file included.

    Cheap enough to sniff every file of a directory of dumps (which also holds logs, a ``vmlinux``
    and module ``.ko`` files: ELF files, but not core files).
    """
    try:
        with open(path, "rb") as f:
            fmt = _head_format(f)
            if fmt == "elf":
                header = elf.read_elf_header(f)
                return "elf" if header is not None and header.e_type == elf.ET_CORE else None
            return fmt
    except OSError:
        return None


def inspect_vmcore(path: Path) -> VmcoreFile:
    """Identify and check the vmcore at ``path``.

    :raises SettingError: for a missing, unreadable, foreign or truncated-beyond-use file, saying which.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _cannot_open(
            path,
            "no such file",
            "check 'vmcore'; vmcores are usually under /var/crash",
        ) from None
    except OSError as exc:
        raise _cannot_open(
            path, exc.strerror or str(exc), "check 'vmcore' and the file's permissions"
        ) from None
    if path.is_dir():
        raise _cannot_open(path, "it is a directory", "point 'vmcore' at the dump file inside it")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise _cannot_open(
            path,
            exc.strerror or str(exc),
            "check the file's permissions; vmcores are often readable by root only",
        ) from None
    with f:
        fmt = _head_format(f)
        if fmt == "kdump":
            return _inspect_kdump(path, f, st.st_size)
        if fmt == "flattened":
            return _inspect_flattened(path, f, st.st_size)
        header = elf.read_elf_header(f)
        if header is not None:
            return _inspect_elf(path, f, header, st.st_size)
    if st.st_size == 0:
        raise _cannot_open(path, "the file is empty", "the dump was not saved; check the kdump service's log")
    raise _cannot_open(
        path,
        "not a kdump or ELF core file",
        "check 'vmcore'; vmcores are usually under /var/crash, and a 'vmcore-dmesg.txt' next to it "
        "is only the log",
    )


def _inspect_flattened(path: Path, f: BinaryIO, size: int) -> VmcoreFile:
    """Read the kdump headers a flattened stream carries (release, build ID, dump level).

    The stream is the kdump-compressed file cut into ``(offset, size, data)`` records, headers first
    (makedumpfile writes them before any page), so a few records give what the vmlinux search and
    check need. Page data is not checked: that would mean reading the whole stream.
    """
    head = _flattened_head(f)
    result = VmcoreFile(path, "flattened", size)
    if head.startswith(KDUMP_SIGNATURE):
        try:
            known = _inspect_kdump(path, io.BytesIO(head), len(head), headers_only=True)
        except UserError:
            log.info("the headers of flattened dump %s are incomplete in its first records", path)
        else:
            result.vmcoreinfo, result.dump_level = known.vmcoreinfo, known.dump_level
    return result


def _flattened_head(f: BinaryIO) -> bytes:
    """The start of the kdump file a flattened stream carries, as far as its first records give it."""
    f.seek(_FLAT_HEADER_SIZE)
    pieces: list[tuple[int, bytes]] = []
    for _ in range(_FLAT_HEAD_RECORDS):
        raw = f.read(_FLAT_RECORD.size)
        if len(raw) < _FLAT_RECORD.size:
            break
        offset, length = _FLAT_RECORD.unpack(raw)
        if offset < 0 or length <= 0:  # the end marker, or damage
            break
        if offset + length <= _FLAT_HEAD_LIMIT:
            pieces.append((offset, f.read(length)))
        else:
            f.seek(length, io.SEEK_CUR)
    image = bytearray(max((offset + len(data) for offset, data in pieces), default=0))
    for offset, data in pieces:
        image[offset : offset + len(data)] = data
    return bytes(image)


def _inspect_kdump(path: Path, f: BinaryIO, size: int, *, headers_only: bool = False) -> VmcoreFile:
    """Read a kdump-compressed file's headers and check that its pages are all there.

    :param headers_only: stop after the headers and ``VMCOREINFO`` (a flattened dump's start).
    """
    result = VmcoreFile(path, "kdump", size)
    f.seek(0)
    raw = f.read(_HEADER.size)
    if len(raw) < _HEADER.size:
        raise _cannot_open(
            path, f"the file is truncated: it is {size} bytes, inside its first header", _COPY_HINT
        )
    (
        _sig,
        header_version,
        _uts,
        _sec,
        _usec,
        _status,
        block_size,
        sub_hdr_size,
        bitmap_blocks,
        max_mapnr,
        *_rest,
    ) = _HEADER.unpack(raw)
    if block_size <= 0 or block_size & (block_size - 1) or sub_hdr_size < 0:
        raise _cannot_open(path, f"its kdump header is damaged (block size {block_size})", _COPY_HINT)
    result.block_size = block_size
    f.seek(block_size)
    sub = f.read(_SUB_HEADER.size)
    if len(sub) < _SUB_HEADER.size:
        raise _cannot_open(
            path,
            f"the file is truncated: it is {size} bytes and ends inside the kdump sub-header",
            _COPY_HINT,
        )
    fields = _SUB_HEADER.unpack(sub)
    if header_version >= 1:
        result.dump_level = fields[1]
    if header_version >= 3 and fields[6] > 0:
        off, length = fields[5], fields[6]
        if off + length > size:
            raise _cannot_open(
                path,
                f"the file is truncated: it is {size} bytes but its VMCOREINFO ends at {off + length}",
                _COPY_HINT,
            )
        f.seek(off)
        result.vmcoreinfo = _parse_vmcoreinfo(f.read(length))
    if header_version >= 6 and fields[13]:
        max_mapnr = fields[13]

    if headers_only:
        return result
    bitmap_offset = (1 + sub_hdr_size) * block_size
    bitmap_len = bitmap_blocks * block_size
    desc_offset = bitmap_offset + bitmap_len
    result.bitmaps = KdumpBitmaps(bitmap_offset, bitmap_len // 2, desc_offset, max_mapnr)
    if desc_offset > size:
        raise _cannot_open(
            path,
            f"the file is truncated: it is {size} bytes but its page bitmaps end at {desc_offset}",
            _COPY_HINT,
        )
    f.seek(bitmap_offset + bitmap_len // 2)
    dumpable = f.read(bitmap_len // 2)
    usable_bits = min(len(dumpable) * 8, max_mapnr) if max_mapnr else len(dumpable) * 8
    whole, rest = divmod(usable_bits, 8)
    count = int.from_bytes(dumpable[:whole], "little").bit_count()
    if rest:
        count += (dumpable[whole] & ((1 << rest) - 1)).bit_count()
    desc_end = desc_offset + count * _PAGE_DESC.size
    if desc_end > size:
        raise _cannot_open(
            path,
            f"the file is truncated: it is {size} bytes but its {count} page descriptors end at {desc_end}",
            _COPY_HINT,
        )
    if count:
        data_end = _page_data_end(f, desc_offset, count)
        if data_end > size:
            result.missing_bytes = data_end - size
            result.missing_pages = _count_missing_pages(f, desc_offset, count, size)
            result.warnings.append(
                f"the vmcore is truncated: it is {size} bytes but its page data ends at {data_end}; "
                f"{result.missing_pages} of {count} pages are missing and read as errors ({_COPY_HINT})"
            )
    return result


_INSPECTION_KEY = "vmcore_dap_vmcore_file"


def remember_inspection(prog: drgn.Program, vmfile: VmcoreFile) -> None:
    """Keep what :func:`inspect_vmcore` found about the file ``prog`` was opened on (it reads the
    file's headers and page descriptors: one inspection per dump)."""
    prog.cache[_INSPECTION_KEY] = vmfile


def inspected_file(prog: drgn.Program) -> VmcoreFile | None:
    """The :class:`VmcoreFile` remembered for ``prog``, if any."""
    found: VmcoreFile | None = prog.cache.get(_INSPECTION_KEY)
    return found


def _page_data_end(f: BinaryIO, desc_offset: int, count: int) -> int:
    """Return where the page data ends, reading as few descriptors as possible.

    Data is written in descriptor order, except that every zero page shares the one copy written
    first; so the end is found in the last descriptors that are not zero pages, read backwards, a
    few at first (the last page of a dump is rarely a zero page), more when they all were.
    """
    f.seek(desc_offset)
    first_offset = _PAGE_DESC.unpack(f.read(_PAGE_DESC.size))[0]
    chunk = 256
    end = 0
    stop = count
    while stop > 0:
        start = max(0, stop - chunk)
        f.seek(desc_offset + start * _PAGE_DESC.size)
        data = f.read((stop - start) * _PAGE_DESC.size)
        distinct = False
        for offset, length, _flags, _pf in _PAGE_DESC.iter_unpack(data):
            end = max(end, offset + length)
            distinct = distinct or offset != first_offset
        if distinct:
            return end
        stop = start
        chunk = min(chunk * 4, 65536)
    return end


def _count_missing_pages(f: BinaryIO, desc_offset: int, count: int, size: int) -> int:
    """Count the descriptors whose page data lies past the end of the file (only for a truncated dump)."""
    missing = 0
    chunk = 65536
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        f.seek(desc_offset + start * _PAGE_DESC.size)
        data = f.read(n * _PAGE_DESC.size)
        for offset, length, _flags, _pf in _PAGE_DESC.iter_unpack(data):
            if offset + length > size:
                missing += 1
    return missing


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _zero_filled_tails(phdrs: list[elf.ProgramHeader]) -> list[tuple[int, int]]:
    """The physical ranges in some ``PT_LOAD``'s ``p_filesz < p_memsz`` tail and in no segment's data
    (x86-64 maps the kernel image twice, so its pages appear in two segments)."""
    loads = [ph for ph in phdrs if ph.p_type == elf.PT_LOAD]
    tails = _merge([(ph.paddr + ph.filesz, ph.paddr + ph.memsz) for ph in loads if ph.memsz > ph.filesz])
    data = _merge([(ph.paddr, ph.paddr + ph.filesz) for ph in loads if ph.filesz])
    result: list[tuple[int, int]] = []
    for start, end in tails:
        for d_start, d_end in data:
            if d_end <= start or d_start >= end:
                continue
            if d_start > start:
                result.append((start, d_start))
            start = max(start, d_end)
            if start >= end:
                break
        if start < end:
            result.append((start, end))
    return result


def _inspect_elf(path: Path, f: BinaryIO, header: elf.ElfHeader, size: int) -> VmcoreFile:
    if header.e_type != elf.ET_CORE:
        kind = {
            elf.ET_EXEC: "an executable",
            elf.ET_DYN: "a shared object",
            elf.ET_REL: "a relocatable object",
        }
        what = kind.get(header.e_type, f"an ELF file of type {header.e_type}")
        raise _cannot_open(
            path,
            f"it is {what}, not a core dump",
            "is this the vmlinux? put it in 'vmlinux' and the dump in 'vmcore'",
        )
    result = VmcoreFile(path, "elf", size)
    phdrs = elf.program_headers(f, header)
    table_end = header.phoff + header.phentsize * header.phnum
    if table_end > size or len(phdrs) < header.phnum:
        raise _cannot_open(
            path, f"the file is truncated: it is {size} bytes, inside its program header table", _COPY_HINT
        )
    for ph in phdrs:
        if ph.p_type == elf.PT_NOTE and ph.offset + ph.filesz > size:
            raise _cannot_open(
                path,
                f"the file is truncated: it is {size} bytes but its ELF notes end at {ph.offset + ph.filesz}",
                _COPY_HINT,
            )
    for note in elf.iter_notes(f, header):
        if note.name == b"VMCOREINFO":
            result.vmcoreinfo = _parse_vmcoreinfo(note.desc)
            break
    loads = [ph for ph in phdrs if ph.p_type == elf.PT_LOAD and ph.filesz]
    result.loads = [(ph.paddr, ph.offset, ph.filesz) for ph in loads]
    result.zero_filled = _zero_filled_tails(phdrs)
    end = max((ph.offset + ph.filesz for ph in loads), default=0)
    if end > size:
        result.missing_bytes = end - size
        cut = [ph for ph in loads if ph.offset + ph.filesz > size]
        first = min(cut, key=lambda ph: ph.offset)
        lost_from = first.paddr + max(0, size - first.offset)
        result.missing_pages = result.missing_bytes // result.page_size
        result.warnings.append(
            f"the vmcore is truncated: it is {size} bytes but its ELF segments end at {end}; "
            f"{len(cut)} of {len(loads)} memory segments are cut short, physical memory from "
            f"{lost_from:#x} on is missing and reads there fail ({_COPY_HINT})"
        )
    return result
