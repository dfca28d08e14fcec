"""Handle tables: small stable ints, no growth on re-expansion, stale ids are errors."""

from __future__ import annotations

import threading

import pytest

from vmcore_dap.dap.handles import HandleBlocks, HandleTable
from vmcore_dap.errors import StaleReference


def test_same_key_same_handle_and_factory_runs_once() -> None:
    table: HandleTable[str] = HandleTable("frameId")
    calls = []

    def make() -> str:
        calls.append(1)
        return "entry"

    a = table.intern((1, 0), make)
    b = table.intern((1, 0), make)
    c = table.intern((1, 1), lambda: "other")
    assert a == b == 1 and c == 2 and len(calls) == 1 and len(table) == 2
    assert table.get(a) == "entry" and table.find((1, 1)) == c and table.find((9, 9)) is None
    assert [h for h, _ in table.items()] == [1, 2]


@pytest.mark.parametrize("bad", [0, -1, 3, "1", None, 1.0, True])
def test_unknown_handles_are_stale_references(bad: object) -> None:
    table: HandleTable[str] = HandleTable("variablesReference")
    table.intern("k", lambda: "v")
    table.intern("k2", lambda: "v")
    with pytest.raises(StaleReference, match="unknown variablesReference"):
        table.get(bad)


def test_reset_never_reuses_numbers() -> None:
    table: HandleTable[str] = HandleTable("frameId")
    old = table.intern("k", lambda: "v")
    table.reset()
    with pytest.raises(StaleReference):
        table.get(old)
    assert table.intern("k", lambda: "v") > old


def test_concurrent_interning_hands_out_one_handle_per_key() -> None:
    table: HandleTable[int] = HandleTable("frameId")
    results: list[int] = []

    def work() -> None:
        for i in range(200):
            results.append(table.intern(i % 50, lambda: 0))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(table) == 50 and set(results) == set(range(1, 51))


def test_handle_blocks_give_each_owner_consecutive_stable_ids() -> None:
    """Frame ids: a block per thread's stack, the same ids every time, every id maps back to its
    row, ids of a grown block's old block stay valid, and nothing else is accepted."""
    blocks: HandleBlocks[int] = HandleBlocks("frameId")
    first = blocks.base(7, 3)
    second = blocks.base(9, 2)
    assert blocks.base(7, 3) == first and blocks.base(7, 2) == first
    assert second == first + 3
    assert [blocks.get(first + i) for i in range(3)] == [(7, 0), (7, 1), (7, 2)]
    assert [blocks.get(second + i) for i in range(2)] == [(9, 0), (9, 1)]
    grown = blocks.base(9, 4)
    assert grown not in (first, second) and blocks.get(grown + 3) == (9, 3) and blocks.get(second) == (9, 0)
    for bad in (0, -1, first - 1, grown + 4, True, "1", None, 2**40):
        with pytest.raises(StaleReference):
            blocks.get(bad)
