"""Say why an address cannot be read from the dump: excluded by makedumpfile, not mapped, or lost.

A read that fails in a crash dump has a handful of causes a person must tell apart: the page was
filtered out on purpose when the dump was written (``makedumpfile -d 31`` drops user, cache, free and
zero pages; older makedumpfile releases also drop slab pages of kernels >= 6.2), the address has no
translation in the page tables at all, the physical address is not RAM, or the file was truncated.
drgn's ``FaultError`` says none of this, so this module decides, once, for every reader (variables,
memory, disassembly, the console):

1. translate the virtual address with the page tables in the dump (``init_mm`` for kernel addresses,
   a task's ``mm`` for user addresses when one is given);
2. look the physical page up in the file itself (:class:`PageFilter`): the two page bitmaps of a
   kdump-compressed file (memory the dump covers, pages written), or the ``PT_LOAD`` segments of an
   ELF vmcore, and for a written page whether its data lies past the end of a truncated file. An ELF
   vmcore from ``makedumpfile -E`` leaves runs of 256 or more excluded pages (and a segment's trailing
   ones) in a segment's ``p_filesz < p_memsz`` tail, which drgn reads as zeros *without* a fault: such
   a page is :attr:`PageState.ZERO_FILLED`, and :func:`zero_filled_reason` lets a reader say that the
   zeros it shows are not the kernel's data (shorter runs keep their data and cannot be told apart);
3. name the kind of page from its ``struct page`` (anonymous, page cache, slab, free), since the
   ``mem_map`` itself is always in the dump.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import drgn

from vmcore_dap.dump.arch import arch_of
from vmcore_dap.dump.opening.vmcore_file import (
    VmcoreFile,
    excluded_page_kinds,
    inspect_vmcore,
    inspected_file,
)

__all__ = [
    "PageFilter",
    "PageState",
    "explain_unreadable",
    "is_partial_dump",
    "page_filter_for",
    "page_kind",
    "zero_filled_reason",
]

_PAGE_DESC_SIZE = 24  # struct page_desc: offset, size, flags, page_flags
_PAGE_MAPPING_ANON = 1
# Kernel page_type encoding before v6.10: "PageType(page, PG_buddy)" is true when these bits of
# page_type equal PAGE_TYPE_BASE (the field counts down from -1 as _mapcount).
_PAGE_TYPE_BASE = 0xF0000000
_PG_BUDDY = 0x00000080
_MAX_BUDDY_ORDER = 11  # MAX_ORDER on x86-64 up to v6.3; a larger order is simply not searched
_CACHE_KEY = "vmcore_dap.page_filter"
_ZERO_FILL_KEY = "vmcore_dap.page_filter.zero_filled"


class PageState(enum.Enum):
    """What the dump file says about one physical page."""

    PRESENT = "present"  # its data is in the file
    EXCLUDED = "excluded"  # RAM the kernel had, left out when the dump was written
    NOT_RAM = "not RAM"  # not memory of the crashed kernel (a hole, device memory, the crash kernel's)
    NOT_IN_FILE = "not in file"  # an ELF vmcore without this page; ELF cannot say why
    ZERO_FILLED = "zero-filled"  # ELF: in a segment's p_filesz < p_memsz tail, left out, reads as zeros
    BEYOND_EOF = "beyond end of file"  # written, but the file was cut before its data


@dataclass(frozen=True)
class PageFilter:
    """Which physical pages a vmcore file holds, read from its own headers (no drgn)."""

    file: VmcoreFile

    @classmethod
    def open(cls, path: Path) -> PageFilter:
        """Inspect the vmcore at ``path``."""
        return cls(inspect_vmcore(path))

    def state(self, phys: int) -> PageState:
        """Return what the file holds for the page containing physical address ``phys``."""
        size = self.file.page_size
        pfn = phys // size
        if self.file.bitmaps is not None:
            return self._kdump_state(pfn)
        if self.file.format == "elf":
            page = pfn * size
            for paddr, offset, filesz in self.file.loads:
                if paddr <= page < paddr + filesz:
                    end = offset + (page - paddr) + size
                    return PageState.BEYOND_EOF if end > self.file.size else PageState.PRESENT
            if self.file.is_zero_filled(page):
                return PageState.ZERO_FILLED
            return PageState.NOT_IN_FILE
        return PageState.NOT_IN_FILE

    def _kdump_state(self, pfn: int) -> PageState:
        maps = self.file.bitmaps
        assert maps is not None
        if (maps.max_mapnr and pfn >= maps.max_mapnr) or pfn >> 3 >= maps.length:
            return PageState.NOT_RAM
        byte, bit = divmod(pfn, 8)
        with open(self.file.path, "rb") as f:
            f.seek(maps.offset + byte)
            in_memory = f.read(1)
            f.seek(maps.offset + maps.length + byte)
            dumpable = f.read(1)
            if len(in_memory) < 1 or len(dumpable) < 1:
                return PageState.BEYOND_EOF
            if not dumpable[0] >> bit & 1:
                return PageState.EXCLUDED if in_memory[0] >> bit & 1 else PageState.NOT_RAM
            # The page was written: its descriptor is the n-th, n = written pages before it.
            f.seek(maps.offset + maps.length)
            before = int.from_bytes(f.read(byte), "little").bit_count()
            before += (dumpable[0] & ((1 << bit) - 1)).bit_count()
            f.seek(maps.desc_offset + before * _PAGE_DESC_SIZE)
            desc = f.read(_PAGE_DESC_SIZE)
        if len(desc) < _PAGE_DESC_SIZE:
            return PageState.BEYOND_EOF
        offset = int.from_bytes(desc[0:8], "little", signed=True)
        size = int.from_bytes(desc[8:12], "little")
        return PageState.BEYOND_EOF if offset + size > self.file.size else PageState.PRESENT


def page_filter_for(prog: drgn.Program) -> PageFilter | None:
    """The :class:`PageFilter` of the dump ``prog`` was opened on (cached), or ``None`` when it has
    no core dump file or the file cannot be inspected any more."""
    cached = prog.cache.get(_CACHE_KEY)
    if cached is not None:
        return cached if isinstance(cached, PageFilter) else None
    result: PageFilter | bool = False
    path = prog.core_dump_path
    inspected = inspected_file(prog)
    if inspected is not None:
        result = PageFilter(inspected)
    elif path:
        try:
            result = PageFilter.open(Path(path))
        except Exception:  # noqa: BLE001 - a diagnosis must never fail; the generic message remains
            result = False
    prog.cache[_CACHE_KEY] = result
    return result if isinstance(result, PageFilter) else None


def is_partial_dump(prog: drgn.Program) -> bool:
    """Whether makedumpfile left pages out of the dump by its ``-d`` level (as crash's ``sys`` marks
    ``[PARTIAL DUMP]``): known from the file's own header, so from any program opened on it."""
    pf = page_filter_for(prog)
    return pf is not None and bool(pf.file.dump_level)


def _page(prog: drgn.Program, pfn: int) -> drgn.Object:
    from drgn.helpers.linux.mm import compound_head, pfn_to_page

    # drgn's helper, not page->compound_head: Linux 7.x renamed that member compound_info.
    return compound_head(pfn_to_page(prog, pfn))


def _is_buddy(page: drgn.Object) -> bool:
    page_type = page.page_type.value_() & 0xFFFFFFFF
    try:
        # v6.10 moved the type to the top byte: page_type >> 24 == PGTY_buddy.
        return page_type >> 24 == page.prog_.constant("PGTY_buddy").value_()
    except LookupError:
        return page_type & (_PAGE_TYPE_BASE | _PG_BUDDY) == _PAGE_TYPE_BASE


def _is_free(prog: drgn.Program, pfn: int) -> bool:
    """Whether ``pfn`` lies in a free buddy block (only the block's first page is marked)."""
    for order in range(_MAX_BUDDY_ORDER):
        head_pfn = pfn & ~((1 << order) - 1)
        page = _page(prog, head_pfn)
        if _is_buddy(page):
            return page.private.value_() >= order
    return False


def page_kind(prog: drgn.Program, pfn: int) -> str | None:
    """Name the kind of page frame ``pfn`` holds, from its ``struct page``, as makedumpfile sorts
    pages (``None`` when it is none of those, or its ``struct page`` cannot be read).

    :param pfn: a page frame number of RAM.
    """
    from drgn.helpers.linux.mm import PageSlab

    try:
        page = _page(prog, pfn)
        if PageSlab(page):
            return "slab page"
        mapping = page.mapping.value_()
        if mapping & _PAGE_MAPPING_ANON:
            return "user (anonymous) page"
        if mapping:
            return "page-cache page"
        if _is_free(prog, pfn):
            return "free page"
    except (drgn.FaultError, LookupError, AttributeError, ValueError, TypeError):
        return None
    return None


def _translate(prog: drgn.Program, address: int, mm: drgn.Object | None) -> int | None:
    from drgn.helpers.linux.mm import follow_phys

    try:
        return int(follow_phys(mm if mm is not None else prog["init_mm"].address_of_(), address))
    except (drgn.FaultError, LookupError, ValueError, NotImplementedError):
        return None


def _user_half(prog: drgn.Program, address: int) -> bool:
    return not arch_of(prog).is_kernel_address(address)


def zero_filled_reason(prog: drgn.Program, address: int, *, mm: drgn.Object | None = None) -> str | None:
    """Say why the zeros read at ``address`` are not the kernel's data, or ``None`` when they are
    (or nothing is known): the page lies in an ELF segment's zero-filled tail, left out by
    makedumpfile. Cheap for every dump that is not such an ELF file (no page-table walk).

    :param mm: as for :func:`explain_unreadable`.
    """
    pf = page_filter_for(prog)
    if pf is None or not pf.file.zero_filled or address < 0x1000:
        return None
    if _user_half(prog, address) and mm is None:
        return None
    # Values are shown many to a page (members, array elements): walk the page tables once a page.
    memo: dict[tuple[int, int], str | None] = prog.cache.setdefault(_ZERO_FILL_KEY, {})
    key = (address // pf.file.page_size, mm.value_() if mm is not None else 0)
    if key not in memo:
        phys = _translate(prog, address, mm)
        zero = phys is not None and pf.state(phys) is PageState.ZERO_FILLED
        memo[key] = _explain_physical(prog, pf, phys) if zero and phys is not None else None
    return memo[key]


def explain_unreadable(prog: drgn.Program, address: int, *, mm: drgn.Object | None = None) -> str:
    """Say in one phrase why ``address`` cannot be read, for after "cannot read memory at 0x…: ".

    :param mm: ``struct mm_struct *`` whose page tables translate a user-space address (a task's
        ``mm``); without it a user address is only called one.
    """
    if address < 0x1000:
        return "NULL pointer"
    if not prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL:
        return "not present in the dump"
    user = _user_half(prog, address)
    if user and mm is None:
        return "user-space address, not in the dump"
    phys = _translate(prog, address, mm)
    if phys is None:
        tables = "the task's page tables" if user else "the kernel's page tables"
        return f"not mapped (no translation in {tables})"
    pf = page_filter_for(prog)
    if pf is None:
        return f"excluded from the dump (physical {phys:#x})"
    return _explain_physical(prog, pf, phys)


def _explain_physical(prog: drgn.Program, pf: PageFilter, phys: int) -> str:
    page = phys - phys % pf.file.page_size
    state = pf.state(phys)
    if state is PageState.BEYOND_EOF:
        return f"the vmcore is truncated: physical page {page:#x} lies past the end of the file"
    if state is PageState.NOT_RAM:
        return (
            f"physical address {phys:#x} is not memory the dump covers (a hole, device memory or "
            "the capture kernel's crashkernel= reservation)"
        )
    if state is PageState.PRESENT:
        return f"physical page {page:#x} is in the dump but could not be read"
    kind = page_kind(prog, phys // pf.file.page_size)
    if state is PageState.ZERO_FILLED:
        what = f"a {kind}" if kind else "presumably a page of zeros (makedumpfile -d 1 drops those)"
        return (
            "excluded from the dump by makedumpfile (ELF format, -d level not recorded): physical page "
            f"{page:#x} lies in a segment's zero-filled tail, so it reads as zeros; it is {what}"
        )
    level = pf.file.dump_level
    if level is not None:
        kinds = "/".join(k.split()[-1] for k in excluded_page_kinds(level)) or "zero"
        text = f"excluded from the dump by makedumpfile -d {level} ({kinds} pages)"
    elif kind is not None:
        text = "excluded from the dump (the ELF vmcore has no data for it, as makedumpfile -d leaves out)"
    else:
        return f"not in the dump: no ELF segment holds physical page {page:#x}"
    if kind == "slab page" and level is not None:
        # No dump level excludes slab pages: makedumpfile took it for another kind. It does so on
        # kernels newer than it knows (it prints "The kernel version is not supported" and exits
        # 0): 1.7.2 on Linux >= 6.2, 1.7.2 and 1.7.8 alike on 7.x at -d 31 (the sid samples'
        # -d 23 and -d 31 files of one guest run differ by slab pages taken for user pages).
        remedy = "-d 23 (keeps user pages)" if level & 8 else "a lower -d level"
        return (
            f"{text}; physical page {page:#x} is a slab page, which no -d level drops: makedumpfile "
            "mistook it for another kind, as it does on kernels newer than it supports (it then says "
            f'"The kernel version is not supported"). Re-dump with {remedy} or a makedumpfile that '
            "supports this kernel, or keep the raw ELF /proc/vmcore"
        )
    if kind is None and level is not None and level & 1:
        kind = "page of zeros, presumably"
    return f"{text}; physical page {page:#x} is a {kind}" if kind else text
