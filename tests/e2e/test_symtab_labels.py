"""The kernel image's labels read from vmlinux's ``.symtab`` (``dump/memory/symtab_labels.py``) are
drgn's: for every sized symbol of a real vmlinux that holds size-0 symbols (the assembly entry code),
and a few hundred that hold none, the same names, addresses, bindings and kinds in the same order as
filtering ``prog.symbols()``; outside the kernel image it declines (the caller filters drgn's)."""

from __future__ import annotations

import bisect
from typing import Any

import drgn
import pytest
from tests.e2e._session import open_sample_dump

from vmcore_dap.dump.memory.symbol_index import nearest_symbol
from vmcore_dap.dump.memory.symtab_labels import kernel_labels_inside

pytestmark = pytest.mark.timeout(300)


def _shape(symbols: list[drgn.Symbol]) -> list[tuple[str, int, int, drgn.SymbolBinding, drgn.SymbolKind]]:
    return [(s.name, s.address, s.size, s.binding, s.kind) for s in symbols]


def test_labels_from_the_file_are_drgns(sample_sysrq: Any) -> None:
    prog = open_sample_dump(sample_sysrq).prog
    start, end = prog.main_module().address_range
    every = prog.symbols()
    # drgn's answer, as symbol_index filtered it before: table order, then stably by address.
    labels = sorted((s for s in every if not s.size and start < s.address < end), key=lambda s: s.address)
    addresses = [s.address for s in labels]
    holding = empty = 0
    for symbol in every:
        low, high = symbol.address, symbol.address + symbol.size
        if not symbol.size or not (start <= low and high <= end):
            continue
        expected = labels[bisect.bisect_right(addresses, low) : bisect.bisect_left(addresses, high)]
        if not expected:
            if empty >= 300:
                continue
            empty += 1
        holding += bool(expected)
        found = kernel_labels_inside(prog, low, high)
        assert found is not None, symbol.name
        assert _shape(sorted(found, key=lambda s: s.address)) == _shape(expected), symbol.name
    assert holding >= 10  # the entry code: entry_SYSCALL_64, the interrupt and exception stubs…
    assert empty == 300
    # The crashed task's system call entry is named as kallsyms names it.
    entry = prog.symbol("entry_SYSCALL_64")
    inside = kernel_labels_inside(prog, entry.address, entry.address + entry.size)
    assert inside is not None and "entry_SYSCALL_64_after_hwframe" in {s.name for s in inside}
    label = prog.symbol("entry_SYSCALL_64_after_hwframe")
    assert nearest_symbol(prog, label.address + 1).name == "entry_SYSCALL_64_after_hwframe"


def test_outside_the_kernel_image_it_declines(sample_sysrq: Any) -> None:
    prog = open_sample_dump(sample_sysrq).prog
    _start, end = prog.main_module().address_range
    assert kernel_labels_inside(prog, end, end + 0x1000) is None
