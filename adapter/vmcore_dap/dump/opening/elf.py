"""Just enough ELF reading to check files before drgn sees them: the type, notes and build ID.

drgn compares build IDs quietly (``Module.try_file`` ignores a file that does not match); the adapter
must refuse a wrong ``vmlinux`` loudly, naming both IDs, so it reads them itself. Only 64- and 32-bit
little- and big-endian headers are understood, nothing else (no relocation, no DWARF).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "ElfHeader",
    "ProgramHeader",
    "ElfNote",
    "read_elf_header",
    "program_headers",
    "iter_notes",
    "file_build_id",
    "ET_EXEC",
    "ET_DYN",
    "ET_REL",
    "ET_CORE",
    "PT_LOAD",
    "PT_NOTE",
]

ELF_MAGIC = b"\x7fELF"
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
PT_LOAD, PT_NOTE = 1, 4
_SHT_NOTE = 7
_NT_GNU_BUILD_ID = 3


@dataclass(frozen=True)
class ElfHeader:
    """The fields of the ELF file header this package uses."""

    is_64: bool
    endian: str  # "<" or ">" for struct
    e_type: int
    e_machine: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shentsize: int
    shnum: int


@dataclass(frozen=True)
class ProgramHeader:
    """One program header (segment)."""

    p_type: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True)
class ElfNote:
    """One ELF note: owner name, type and descriptor bytes."""

    name: bytes
    n_type: int
    desc: bytes


def read_elf_header(f: BinaryIO) -> ElfHeader | None:
    """Return the ELF header of an open file, or ``None`` if it is not an ELF file."""
    f.seek(0)
    ident = f.read(64)
    if len(ident) < 52 or ident[:4] != ELF_MAGIC or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    is_64 = ident[4] == 2
    endian = "<" if ident[5] == 1 else ">"
    if is_64:
        if len(ident) < 64:
            return None
        e_type, e_machine = struct.unpack_from(endian + "HH", ident, 16)
        phoff, shoff = struct.unpack_from(endian + "QQ", ident, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(endian + "HHHH", ident, 54)
    else:
        e_type, e_machine = struct.unpack_from(endian + "HH", ident, 16)
        phoff, shoff = struct.unpack_from(endian + "II", ident, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(endian + "HHHH", ident, 42)
    return ElfHeader(is_64, endian, e_type, e_machine, phoff, phentsize, phnum, shoff, shentsize, shnum)


def program_headers(f: BinaryIO, header: ElfHeader) -> list[ProgramHeader]:
    """Return every program header; stops early (without raising) if the table itself is cut off."""
    result = []
    fmt = header.endian + ("IIQQQQQQ" if header.is_64 else "IIIIIIII")
    size = struct.calcsize(fmt)
    if header.phentsize < size:
        return []
    f.seek(header.phoff)
    table = f.read(header.phentsize * header.phnum)
    for i in range(header.phnum):
        start = i * header.phentsize
        if start + size > len(table):
            break
        fields = struct.unpack_from(fmt, table, start)
        if header.is_64:
            p_type, _flags, offset, vaddr, paddr, filesz, memsz, _align = fields
        else:
            p_type, offset, vaddr, paddr, filesz, memsz, _flags, _align = fields
        result.append(ProgramHeader(p_type, offset, vaddr, paddr, filesz, memsz))
    return result


def _note_regions(f: BinaryIO, header: ElfHeader) -> Iterator[tuple[int, int]]:
    """Yield ``(offset, size)`` of every note area: NOTE segments, else SHT_NOTE sections."""
    segments = [(ph.offset, ph.filesz) for ph in program_headers(f, header) if ph.p_type == PT_NOTE]
    if segments:
        yield from segments
        return
    fmt = header.endian + ("IIQQQQIIQQ" if header.is_64 else "IIIIIIIIII")
    size = struct.calcsize(fmt)
    if not header.shoff or header.shentsize < size:
        return
    f.seek(header.shoff)
    table = f.read(header.shentsize * header.shnum)
    for i in range(header.shnum):
        start = i * header.shentsize
        if start + size > len(table):
            break
        fields = struct.unpack_from(fmt, table, start)
        if fields[1] == _SHT_NOTE:
            yield fields[4], fields[5]


def iter_notes(f: BinaryIO, header: ElfHeader, max_bytes: int = 16 << 20) -> Iterator[ElfNote]:
    """Yield the notes of an ELF file (from its NOTE segments, else its note sections)."""
    for offset, size in list(_note_regions(f, header)):
        f.seek(offset)
        data = f.read(min(size, max_bytes))
        pos = 0
        while pos + 12 <= len(data):
            namesz, descsz, n_type = struct.unpack_from(header.endian + "III", data, pos)
            pos += 12
            name = data[pos : pos + namesz].rstrip(b"\0")
            pos += (namesz + 3) & ~3
            desc = data[pos : pos + descsz]
            pos += (descsz + 3) & ~3
            if len(desc) < descsz:
                break
            yield ElfNote(name, n_type, desc)


def file_build_id(path: Path) -> str | None:
    """Return the GNU build ID of an ELF file as lowercase hex, or ``None`` if it has none.

    :raises OSError: if the file cannot be read.
    """
    with open(path, "rb") as f:
        header = read_elf_header(f)
        if header is None:
            return None
        for note in iter_notes(f, header):
            if note.name == b"GNU" and note.n_type == _NT_GNU_BUILD_ID and note.desc:
                return note.desc.hex()
    return None
