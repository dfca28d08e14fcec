""":class:`SymbolIndex` answers as drgn's ELF symbol search does, or defers to it.

drgn's rule (libdrgn elf_symtab.c): of the sized symbols containing the address, the one starting
closest, then the smallest; ties of start and size go by binding, which the index leaves to drgn.
"""

from __future__ import annotations

import drgn
import pytest

from vmcore_dap.dump.memory.symbol_index import UNDECIDED, SymbolIndex

pytestmark = pytest.mark.timeout(30)

G, L = drgn.SymbolBinding.GLOBAL, drgn.SymbolBinding.LOCAL
FUNC, SECTION = drgn.SymbolKind.FUNC, drgn.SymbolKind.SECTION


def _sym(
    name: str, address: int, size: int, binding: drgn.SymbolBinding = G, kind: drgn.SymbolKind = FUNC
) -> drgn.Symbol:
    return drgn.Symbol(name, address, size, binding, kind)


@pytest.fixture
def index() -> SymbolIndex:
    return SymbolIndex(
        [
            _sym("after", 0x2000, 0x10),
            _sym("outer", 0x1000, 0x100),  # contains "inner", as retbleed_untrain_ret does in vmlinux
            _sym("inner", 0x1040, 0x10),
            _sym("label", 0x1080, 0),  # size 0: never contains anything
            _sym("alias1", 0x3000, 0x20),
            _sym("alias2", 0x3000, 0x20, L),
            _sym("wide", 0x4000, 0x40),
            _sym("narrow", 0x4000, 0x8),
            _sym(".text", 0x5000, 0x1000, kind=SECTION),
        ]
    )


@pytest.mark.parametrize(
    ("address", "name"),
    [
        (0x1000, "outer"),
        (0x1040, "inner"),  # the innermost symbol wins
        (0x104F, "inner"),
        (0x1050, "outer"),  # past the inner one: the enclosing one again
        (0x1080, "outer"),  # a size-0 label inside a sized symbol does not count
        (0x4004, "narrow"),  # same start: the smaller one
        (0x4010, "wide"),
        (0x200F, "after"),
    ],
)
def test_innermost_symbol(index: SymbolIndex, address: int, name: str) -> None:
    found = index.lookup(address)
    assert isinstance(found, drgn.Symbol) and found.name == name


def test_outside_every_symbol_is_none(index: SymbolIndex) -> None:
    assert index.lookup(0xFFF) is None
    assert index.lookup(0x1100) is None
    assert index.lookup(0x2010) is None


def test_ties_and_sections_are_left_to_drgn(index: SymbolIndex) -> None:
    assert index.lookup(0x3008) is UNDECIDED
    assert index.lookup(0x5008) is UNDECIDED
