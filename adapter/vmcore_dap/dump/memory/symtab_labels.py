"""The kernel image's labels (size-0 symbols) inside an address range, read from vmlinux's ``.symtab``.

A kernel backtrace names assembly code by the nearest label before the address
(:func:`~.symbol_index.nearest_symbol`), and the crashed task's first ``stackTrace`` usually has one
such frame (``entry_SYSCALL_64_after_hwframe``). drgn has no lookup of size-0 symbols by address:
finding them through ``prog.symbols()`` builds all 120,000 ``Symbol`` objects of a Debian vmlinux
(7 ms) and then filters them in Python (6 ms), 13 ms of the first picture's 32 ms ``stackTrace``.

Here the debug file drgn loaded for the kernel (``Module.debug_file_path``, its addresses shifted by
``Module.debug_file_bias``) is read instead: its symbol table in one read, and ``bytes.find`` over it
for entries whose value shares the range's upper bytes, each then checked. About 3 ms for the first
range. Only the kernel image of a little-endian 64-bit ELF file is answered this way; anything else
(a module's address, a file without ``.symtab``, a 32-bit or big-endian file) returns ``None`` and the
caller filters drgn's symbols as before, so the answers are the same.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import drgn

__all__ = ["kernel_labels_inside"]

_LAYOUT_KEY = "vmcore_dap_symtab_layout"
_SHT_SYMTAB = 2
_SECTION = struct.Struct("<IIQQQQIIQQ")
#: An ``Elf64_Sym``: name, info, other, shndx, value, size.
_SYM = struct.Struct("<IBBHQQ")
#: A value's bytes 2-7 (little-endian): the 64 KiB block it lies in, what :func:`bytes.find` looks for.
_BLOCK_SHIFT = 16
_BLOCK_AT = 8 + _BLOCK_SHIFT // 8
#: The longest symbol name read (the kernel's KSYM_NAME_LEN is 512 since v6.1).
_NAME_MAX = 512
#: More blocks than this in one range: let the caller filter drgn's symbols instead.
_MAX_BLOCKS = 64
#: ELF ``STB_*`` → drgn's binding (``STB_GNU_UNIQUE`` is 10).
_BINDINGS = {
    0: drgn.SymbolBinding.LOCAL,
    1: drgn.SymbolBinding.GLOBAL,
    2: drgn.SymbolBinding.WEAK,
    10: drgn.SymbolBinding.UNIQUE,
}


class _Layout(NamedTuple):
    """Where the kernel debug file keeps its symbol and string tables, and its bias."""

    path: str
    symtab: int
    size: int
    strtab: int
    strsize: int
    bias: int
    start: int
    end: int


def _layout(prog: drgn.Program) -> _Layout | None:
    """The kernel debug file's symbol table layout (read once per program), or ``None`` when it cannot
    be read this way."""
    if _LAYOUT_KEY in prog.cache:
        cached: _Layout | None = prog.cache[_LAYOUT_KEY]
        return cached
    layout = None
    try:
        module = prog.main_module()
        path, bias, span = module.debug_file_path, module.debug_file_bias, module.address_range
        if path is not None and bias is not None and span is not None:
            with open(path, "rb") as f:
                head = f.read(64)
                if head[:4] == b"\x7fELF" and head[4] == 2 and head[5] == 1:
                    shoff = struct.unpack_from("<Q", head, 0x28)[0]
                    shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
                    f.seek(shoff)
                    table = f.read(shentsize * shnum)
                    sections = [
                        _SECTION.unpack_from(table, i * shentsize)
                        for i in range(shnum)
                        if (i + 1) * shentsize <= len(table) and shentsize >= _SECTION.size
                    ]
                    symtab = next((s for s in sections if s[1] == _SHT_SYMTAB), None)
                    if symtab is not None and symtab[6] < len(sections) and symtab[9] == _SYM.size:
                        strtab = sections[symtab[6]]
                        layout = _Layout(path, symtab[4], symtab[5], strtab[4], strtab[5], bias, *span)
    except (LookupError, OSError, struct.error, ValueError):
        layout = None
    prog.cache[_LAYOUT_KEY] = layout
    return layout


def kernel_labels_inside(prog: drgn.Program, start: int, end: int) -> list[drgn.Symbol] | None:
    """The size-0 symbols of the kernel image after ``start`` and before ``end``, in table order
    (as ``prog.symbols()`` lists them), or ``None`` when this cannot tell (see the module docstring).

    :param start: a containing symbol's start (runtime address).
    :param end: its end (exclusive).
    """
    layout = _layout(prog)
    if layout is None or not (layout.start <= start and end <= layout.end):
        return None
    low, high = start - layout.bias, end - layout.bias
    first, last = low >> _BLOCK_SHIFT, (high - 1) >> _BLOCK_SHIFT
    if last - first >= _MAX_BLOCKS:
        return None
    try:
        with open(layout.path, "rb") as f:
            f.seek(layout.symtab)
            table = f.read(layout.size)
            if len(table) != layout.size:
                return None
            found: list[tuple[int, int, int]] = []  # (index, name offset, info)
            for block in range(first, last + 1):
                pattern = block.to_bytes(8 - _BLOCK_SHIFT // 8, "little")
                at = table.find(pattern)
                while at >= 0:
                    if at % _SYM.size == _BLOCK_AT:
                        index = at // _SYM.size
                        name, info, _other, _shndx, value, size = _SYM.unpack_from(table, index * _SYM.size)
                        if not size and low < value < high:
                            found.append((index, name, info))
                    at = table.find(pattern, at + 1)
            labels = []
            for index, name, info in sorted(found):
                f.seek(layout.strtab + name)
                raw = f.read(_NAME_MAX).split(b"\0", 1)[0]
                value = _SYM.unpack_from(table, index * _SYM.size)[4]
                binding = _BINDINGS.get(info >> 4, drgn.SymbolBinding.UNKNOWN)
                labels.append(
                    drgn.Symbol(raw.decode(errors="replace"), value + layout.bias, 0, binding, _kind(info))
                )
    except (OSError, struct.error, ValueError):
        return None
    return labels


def _kind(info: int) -> drgn.SymbolKind:
    """drgn's kind for an ``st_info`` (drgn's values are ELF's ``STT_*``)."""
    try:
        return drgn.SymbolKind(info & 0xF)
    except ValueError:
        return drgn.SymbolKind.UNKNOWN
