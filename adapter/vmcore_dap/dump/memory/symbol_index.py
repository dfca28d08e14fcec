"""``prog.symbol(address)`` answered from a sorted table instead of drgn's linear scan.

drgn 0.3 finds the ELF symbol containing an address by scanning the whole symbol table: about 0.7 ms
a lookup on a Debian vmlinux (120,000 symbols). Disassembling 200 instructions needs a few hundred
lookups (each instruction, each branch target), so they were most of a cold ``disassemble``.

:class:`SymbolIndex` sorts the sized symbols once (``prog.symbols()`` plus a sort: ~30 ms) and answers
as drgn does: of the symbols containing the address, the one starting closest to it, then the
smallest. Whenever that rule does not settle the answer by itself — no sized symbol contains the
address (drgn may then answer with a size-0 symbol, or nothing), several symbols share the winner's
start and size (drgn breaks the tie by binding and table order), or the containing symbol is too far
back in the table to find quickly — :meth:`SymbolIndex.lookup` says so and the caller asks drgn.
So every answer is the one ``prog.symbol`` gives.
"""

from __future__ import annotations

import bisect
import itertools
from operator import attrgetter

import drgn

from vmcore_dap.dump.memory.symtab_labels import kernel_labels_inside

__all__ = [
    "SymbolIndex",
    "UNDECIDED",
    "find_symbol",
    "nearest_symbol",
    "remember_symbol",
    "symbol_index",
    "symbol_or_none",
]

_CACHE_KEY = "vmcore_dap_symbol_index"
_SYMBOLS_KEY = "vmcore_dap_symbols"
_LABELS_KEY = "vmcore_dap_labels"
_KNOWN_KEY = "vmcore_dap_symbol_at"
#: drgn ignores these kinds in address searches.
_NOT_CODE_OR_DATA = frozenset({drgn.SymbolKind.SECTION, drgn.SymbolKind.FILE, drgn.SymbolKind.TLS})
#: How many table rows back a lookup looks for an enclosing symbol before deferring to drgn.
_MAX_WALK = 64
_address = attrgetter("address")
_size = attrgetter("size")


class _Undecided:
    """The index cannot answer this address alone: ask ``prog.symbol``."""

    def __repr__(self) -> str:
        return "UNDECIDED"


UNDECIDED = _Undecided()


class SymbolIndex:
    """Sized symbols in order of their start address.

    Built with C-level helpers only (``map``/``attrgetter``/``compress``/``sorted``): a Python loop
    over 120,000 drgn symbols costs more than the lookups it saves. It keeps the sized symbols
    themselves, sorted, and reads a candidate's address and size when a lookup looks at it: building
    is paid by the first ``disassemble`` of a session, and copies of the starts and ends (sorted, with
    a running maximum of the ends) made it take ~60 ms instead of ~30.
    """

    def __init__(self, symbols: list[drgn.Symbol]) -> None:
        sized = itertools.compress(symbols, map(_size, symbols))
        self._symbols: list[drgn.Symbol] = sorted(sized, key=_address)
        #: What ``prog.symbol`` answered where the index could not decide (``None``: no symbol).
        self.asked: dict[int, drgn.Symbol | None] = {}
        #: Whether the symbol at a position is of a kind drgn ignores in address searches.
        self._special: dict[int, bool] = {}

    def __len__(self) -> int:
        return len(self._symbols)

    def lookup(self, address: int) -> drgn.Symbol | None | _Undecided:
        """Return what ``prog.symbol(address)`` returns when the index can tell, else :data:`UNDECIDED`.

        ``None`` means no sized symbol contains ``address``: drgn then answers with a size-0 symbol
        or raises ``LookupError``, so callers needing drgn's exact answer ask it.
        """
        symbols = self._symbols
        i = bisect.bisect_right(symbols, address, key=_address) - 1
        best = -1
        best_start = best_end = 0
        walked = 0
        while i >= 0:
            candidate = symbols[i]
            start = candidate.address
            if best >= 0 and start != best_start:
                break  # every remaining candidate starts further from the address
            end = start + candidate.size
            if end > address:
                if best < 0 or end < best_end:
                    best, best_start, best_end = i, start, end
                elif end == best_end:
                    return UNDECIDED  # same start and size: drgn picks by binding, then table order
            i -= 1
            walked += 1
            if walked > _MAX_WALK:
                # Nothing near contains the address (a gap between symbols), or something far back
                # does (a huge symbol): drgn's own search tells.
                return UNDECIDED
        if best < 0:
            return None
        special = self._special.get(best)
        if special is None:  # Symbol.kind makes a new enum member each time: ask once a symbol
            special = self._special[best] = symbols[best].kind in _NOT_CODE_OR_DATA
        return UNDECIDED if special else symbols[best]


def _symbols(prog: drgn.Program) -> list[drgn.Symbol]:
    """``prog.symbols()`` (about 60 ms for a Debian vmlinux and its modules), read once."""
    found: list[drgn.Symbol] | None = prog.cache.get(_SYMBOLS_KEY)
    if found is None:
        found = prog.cache[_SYMBOLS_KEY] = prog.symbols()
    return found


def symbol_index(prog: drgn.Program) -> SymbolIndex:
    """Return the program's :class:`SymbolIndex`, building it on first use."""
    index: SymbolIndex | None = prog.cache.get(_CACHE_KEY)
    if index is None:
        index = prog.cache[_CACHE_KEY] = SymbolIndex(_symbols(prog))
    return index


def nearest_symbol(prog: drgn.Program, address: int) -> drgn.Symbol:
    """The symbol a kernel backtrace names ``address`` by (kallsyms' rule): the nearest symbol at or
    before it, labels inside a function included — ``entry_SYSCALL_64_after_hwframe``, not the
    sized ``entry_SYSCALL_64`` that contains it.

    kallsyms is made from the same symbol table, so this is its answer without loading the kernel's
    compressed kallsyms tables from the dump (a quarter of a second on the way to the first stack):
    the containing symbol unless a size-0 symbol lies between it and ``address``. (The containing
    symbol is drgn's own answer: the first stack needs one or two, not the whole :class:`SymbolIndex`.)

    :raises LookupError: when no symbol contains ``address``.
    """
    symbol = prog.symbol(address)
    # A size-0 answer (drgn's when no sized symbol contains the address) bounds nothing: look up to
    # the address itself.
    labels = _labels_inside(
        prog, symbol.address, symbol.address + symbol.size if symbol.size else address + 1
    )
    i = bisect.bisect_right(labels, address, key=_address) - 1
    while i >= 0:
        label = labels[i]
        if label.kind not in _NOT_CODE_OR_DATA:
            return label
        i -= 1
    return symbol


def _labels_inside(prog: drgn.Program, start: int, end: int) -> list[drgn.Symbol]:
    """The size-0 symbols after ``start`` and before ``end`` (a containing symbol's range), by
    address, table order kept among equal addresses; found once per range.

    One pass over the symbol table (about 5 ms on a Debian vmlinux) rather than sorting its 42,000
    size-0 symbols once (13 ms): a stack names one to three assembly functions (the system call
    entry, an interrupt's, ``ret_from_fork``), and a whole dump's stacks few more.
    """
    cache: dict[tuple[int, int], list[drgn.Symbol]] = prog.cache.setdefault(_LABELS_KEY, {})
    labels = cache.get((start, end))
    if labels is None:
        # The kernel image's from vmlinux's own table (3 ms, not 13: no Symbol for every entry).
        inside = kernel_labels_inside(prog, start, end)
        if inside is None:
            inside = [s for s in _symbols(prog) if not s.size and start < s.address < end]
        labels = cache[(start, end)] = sorted(inside, key=_address)
    return labels


def _in_a_module(prog: drgn.Program, address: int) -> bool:
    """Whether a module (the kernel's included) holds ``address``. drgn's ELF symbol finder searches
    only that module's table, so without one, and with no other symbol finder enabled, there is no
    symbol to find (heap and per-CPU pointers, user addresses) and no need for drgn's scan."""
    try:
        prog.module(address)
    except LookupError:
        return False
    return True


def _only_elf_symbols(prog: drgn.Program) -> bool:
    return prog.enabled_symbol_finders() == ["elf"]


def _known_symbols(prog: drgn.Program) -> dict[int, drgn.Symbol | None]:
    known: dict[int, drgn.Symbol | None] = prog.cache.setdefault(_KNOWN_KEY, {})
    return known


def symbol_or_none(prog: drgn.Program, address: int) -> drgn.Symbol | None:
    """``prog.symbol(address)``, or ``None`` where it finds nothing; remembered per address (a dump
    does not change). An address outside every module (most pointers of a structure: slab objects,
    stacks, pages) costs no scan of the symbol table (about 0.6 ms each, 20 pointers in a
    ``task_struct``), nor one :func:`remember_symbol` was told."""
    known = _known_symbols(prog)
    if address in known:
        return known[address]
    symbol = None
    if _in_a_module(prog, address) or not _only_elf_symbols(prog):
        try:
            symbol = prog.symbol(address)
        except LookupError:
            pass
    known[address] = symbol
    return symbol


def remember_symbol(prog: drgn.Program, address: int, symbol: drgn.Symbol) -> None:
    """Record ``prog.symbol(address)``'s answer found elsewhere (drgn's ``identify_address_all``
    yields it), so that :func:`symbol_or_none` does not scan the table again for it: a Variables
    page notes its pointers first, then renders each with its symbol."""
    _known_symbols(prog)[address] = symbol


def find_symbol(prog: drgn.Program, address: int) -> drgn.Symbol:
    """``prog.symbol(address)``, through the index when it can decide.

    :raises LookupError: as ``prog.symbol`` does.
    """
    if not _in_a_module(prog, address):
        if _only_elf_symbols(prog):
            raise LookupError(f"could not find symbol containing {address:#x}")
        return prog.symbol(address)  # another symbol finder may know it
    index = symbol_index(prog)
    found = index.lookup(address)
    if isinstance(found, drgn.Symbol):
        return found
    # drgn's own answer (a size-0 symbol, a tie, or none), remembered: padding probes repeat them.
    if address not in index.asked:
        try:
            index.asked[address] = prog.symbol(address)
        except LookupError:
            index.asked[address] = None
    answer = index.asked[address]
    if answer is None:
        raise LookupError(f"could not find symbol containing {address:#x}")
    return answer
