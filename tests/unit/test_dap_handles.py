"""Handle tables: small stable ints, no growth on re-expansion, stale ids are errors."""

from __future__ import annotations

import threading

import pytest

from vmcore_dap.dap.handles import HandleTable
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


def test_intern_keys_hands_out_the_same_handles_as_one_at_a_time() -> None:
    """A page of frame ids at once: stable, in order, shared with keys interned before, and each
    entry is its key."""
    table: HandleTable[tuple[int, int]] = HandleTable("frameId")
    earlier = table.intern((1, 1), lambda: (1, 1))
    handles = table.intern_keys([(1, 0), (1, 1), (1, 2)])
    assert handles[1] == earlier and len(set(handles)) == 3
    assert table.intern_keys([(1, 0), (1, 1), (1, 2)]) == handles
    assert [table.get(h) for h in handles] == [(1, 0), (1, 1), (1, 2)]
