"""The list walk's verdicts on fixed bytes: closed lists, poisoned links, a ``prev`` that does not
point back, cycles, NULL and unreadable links, the node limit — for each kind of list.

A real drgn ``Program`` reads a page of memory these tests lay out by hand (as the disassembler's
tests use fixed bytes); the corrupted lists of a real dump are the list-uaf sample's. The words are
written where a kernel's ``list_head``/``hlist_node`` put them: ``next`` first, then ``prev`` or
``pprev``.
"""

from __future__ import annotations

import struct

import drgn
import pytest

from vmcore_dap.dump.structures.chains import MAX_NODES, list_poison, walk_chain

BASE = 0xFFFF888000100000
PAGE = 4096
POISON1, POISON2 = 0xDEAD000000000100, 0xDEAD000000000122


class Memory:
    """One page of kernel memory at ``BASE`` and a program that reads it."""

    def __init__(self) -> None:
        self.data = bytearray(PAGE)
        self.prog = drgn.Program(
            drgn.Platform(
                drgn.Architecture.X86_64, drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN
            )
        )
        self.prog.add_memory_segment(
            BASE, PAGE, lambda address, count, offset, physical: bytes(self.data[offset : offset + count])
        )

    def words(self, slot: int, *values: int) -> int:
        """Write ``values`` at node ``slot`` (32 bytes apart); return the node's address."""
        struct.pack_into(f"<{len(values)}Q", self.data, slot * 32, *values)
        return self.at(slot)

    @staticmethod
    def at(slot: int) -> int:
        return BASE + slot * 32

    def head(self, tag: str, slot: int) -> drgn.Object:
        prog = self.prog
        node = prog.struct_type(tag, 16, ())
        return drgn.Object(prog, node, address=self.at(slot))


def _list(memory: Memory, links: list[tuple[int, int]]) -> None:
    """Lay out slots 0 (the head), 1, 2, … with the given (next, prev) slot numbers."""
    for slot, (nxt, prev) in enumerate(links):
        memory.words(slot, Memory.at(nxt), Memory.at(prev))


def test_a_closed_list_is_its_nodes_in_order() -> None:
    memory = Memory()
    _list(memory, [(1, 3), (2, 0), (3, 1), (0, 2)])
    chain = walk_chain(memory.head("list_head", 0))
    assert chain.nodes == [Memory.at(1), Memory.at(2), Memory.at(3)]
    assert chain.problem is None


def test_an_empty_list_has_no_nodes() -> None:
    memory = Memory()
    _list(memory, [(0, 0)])
    chain = walk_chain(memory.head("list_head", 0))
    assert chain.nodes == [] and chain.problem is None


def test_poisoned_next_names_the_deleted_entry() -> None:
    memory = Memory()
    _list(memory, [(1, 2), (2, 0)])
    memory.words(2, POISON1, POISON2)
    chain = walk_chain(memory.head("list_head", 0))
    # entry [1] is the deleted one: its prev is LIST_POISON2, not entry [0].
    assert chain.nodes == [Memory.at(1), Memory.at(2)]
    assert (
        chain.problem
        == f"entry [1] at {Memory.at(2):#x}: prev is LIST_POISON2, not {Memory.at(1):#x} (the node before it)"
    )
    assert chain.problem_at == Memory.at(2)


def test_next_poison_after_an_entry() -> None:
    memory = Memory()
    _list(memory, [(1, 1)])
    memory.words(1, POISON1, Memory.at(0))
    chain = walk_chain(memory.head("list_head", 0))
    assert chain.nodes == [Memory.at(1)]
    assert (
        chain.problem
        == f"next after entry [0] is LIST_POISON1 ({POISON1:#x}): a deleted entry is still linked"
    )


def test_a_prev_that_does_not_point_back_stops_at_that_node() -> None:
    memory = Memory()
    # 0 -> 1 -> 3 -> 0, but 3's prev still names 2 (unlinked half-way: prev->next = next only).
    _list(memory, [(1, 3), (3, 0), (3, 1), (0, 2)])
    chain = walk_chain(memory.head("list_head", 0))
    assert chain.nodes == [Memory.at(1), Memory.at(3)]
    assert (
        chain.problem == f"entry [1] at {Memory.at(3):#x}: prev is {Memory.at(2):#x}, not {Memory.at(1):#x}"
        " (the node before it)"
    )


def test_a_cycle_that_misses_the_head_ends() -> None:
    memory = Memory()
    # 0 -> 1 -> 2 -> 3 -> 2 … (3's next goes back to 2; prevs are consistent up to there)
    _list(memory, [(1, 3), (2, 0), (3, 1), (2, 2)])
    chain = walk_chain(memory.head("list_head", 0))
    assert chain.nodes == [Memory.at(1), Memory.at(2), Memory.at(3)]
    assert chain.problem == "next after entry [2] points back to entry [1], not to the head: a cycle"


def test_null_and_unreadable_links() -> None:
    memory = Memory()
    memory.words(0, Memory.at(1), Memory.at(1))
    memory.words(1, 0, Memory.at(0))
    assert walk_chain(memory.head("list_head", 0)).problem == "next after entry [0] is NULL"
    memory = Memory()
    outside = BASE + 2 * PAGE
    memory.words(0, outside, outside)
    assert (
        walk_chain(memory.head("list_head", 0)).problem == f"next at the head ({outside:#x}) cannot be read"
    )


def test_the_walk_stops_after_the_limit() -> None:
    memory = Memory()
    _list(memory, [(1, 3), (2, 0), (3, 1), (0, 2)])
    chain = walk_chain(memory.head("list_head", 0), limit=2)
    assert chain.nodes == [Memory.at(1), Memory.at(2)]
    assert chain.problem == "more than 2 entries (stopped)"
    assert MAX_NODES >= 1 << 20


@pytest.mark.parametrize("tag", ["hlist_head", "hlist_nulls_head"])
def test_hlists_check_pprev(tag: str) -> None:
    memory = Memory()
    end = 0 if tag == "hlist_head" else 0x5  # an odd "nulls" value ends an hlist_nulls
    memory.words(0, Memory.at(1))
    memory.words(1, Memory.at(2), Memory.at(0))  # pprev = &head->first
    memory.words(2, end, Memory.at(1))  # pprev = &node1->next
    chain = walk_chain(memory.head(tag, 0))
    assert chain.nodes == [Memory.at(1), Memory.at(2)] and chain.problem is None
    broken = Memory()  # node 2's pprev names node 3: an hlist_del that went half-way
    broken.words(0, Memory.at(1))
    broken.words(1, Memory.at(2), Memory.at(0))
    broken.words(2, end, Memory.at(3))
    chain = walk_chain(broken.head(tag, 0))
    assert chain.nodes == [Memory.at(1), Memory.at(2)]
    assert (
        chain.problem == f"entry [1] at {Memory.at(2):#x}: pprev is {Memory.at(3):#x}, not {Memory.at(1):#x}"
        " (the node before it)"
    )


def test_llist_has_no_back_links() -> None:
    memory = Memory()
    memory.words(0, Memory.at(1))
    memory.words(1, Memory.at(2))
    memory.words(2, 0)
    chain = walk_chain(memory.head("llist_head", 0))
    assert chain.nodes == [Memory.at(1), Memory.at(2)] and chain.problem is None


def test_list_poison_is_the_64_bit_kernels() -> None:
    assert list_poison(Memory().prog) == (POISON1, POISON2)
