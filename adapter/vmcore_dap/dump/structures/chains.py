"""Walk the kernel's linked lists as raw pointer chains: bounded, validated, cached per head.

A list head from a dump may be corrupted (a use-after-free overwrote a node, ``list_del`` poisoned
it, a ``prev`` no longer points back) or simply long. Showing its first page must neither hang nor
build thousands of drgn objects, yet the client needs the count up front (``indexedVariables``). So
a walk reads only the two link words of each node (16 bytes, one read), checks them as drgn's
``validate_list`` does, and keeps the node addresses; the entries of a page are then built from
those numbers. The walk stops at the first problem and says what is wrong and where: a
``LIST_POISON`` value, a ``prev`` that does not point back, a node seen twice (a cycle that does
not return to the head), an unreadable or NULL link, or more than :data:`MAX_NODES` nodes.

A walk goes only as far as it is asked (``upto``): the first page of a list of thousands must not
read every node (each node of a long list sits in another page of the dump, which must be read and
decompressed). It resumes from where it stopped when more is wanted; ``complete`` says whether the
end was reached.

The kinds: ``list_head`` (circular, through ``next``/``prev``), ``hlist_head`` (``first``, then
``next`` until NULL, each ``pprev`` pointing at the previous link), ``hlist_nulls_head`` (ends at an
odd "nulls" value), ``llist_head`` (``first``, then ``next`` until NULL) and ``plist_head`` (its
``node_list`` is a ``list_head``). A dump never changes, so a walk is cached per program and head.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import drgn

from vmcore_dap.dump.arch import UnsupportedArchitecture, arch_of

__all__ = ["Chain", "ChainKind", "MAX_NODES", "chain_kind", "walk_chain", "list_poison"]

#: More nodes than a list shown to a person holds; the walk stops there and says so.
MAX_NODES = 1 << 20

#: The head types this module walks, by name.
ChainKind = str
_KINDS: dict[str, ChainKind] = {
    "list_head": "list",
    "hlist_head": "hlist",
    "hlist_nulls_head": "hlist_nulls",
    "llist_head": "llist",
    "plist_head": "plist",
}


@dataclass
class Chain:
    """The nodes of one list, in order, and what stopped the walk when it did not close normally.

    :param kind: ``list``, ``hlist``, ``hlist_nulls``, ``llist`` or ``plist``.
    :param head: address of the head (for ``plist``, of its ``node_list``).
    :param nodes: address of each node (the ``list_head``/``hlist_node``… inside each entry).
    :param problem: what is wrong, or ``None`` when the list closed as it should.
    :param problem_at: address of the node where the problem was found.
    :param suspect: the link value that is wrong (a ``prev`` that does not point back, a poisoned or
        unreadable ``next``), for a caller to say what it points at.
    :param complete: whether the walk reached the end (or a problem); ``False`` while only the
        first ``len(nodes)`` nodes have been asked for.
    """

    kind: ChainKind
    head: int
    nodes: list[int] = field(default_factory=list)
    problem: str | None = None
    problem_at: int | None = None
    suspect: int | None = None
    complete: bool = False
    # Where a walk that stopped at ``upto`` goes on from: (previous node, next node, nodes seen).
    _resume: tuple[int, int, set[int]] | None = field(default=None, repr=False)

    def fail(self, problem: str, at: int | None, suspect: int | None = None) -> None:
        self.problem, self.problem_at, self.suspect = problem, at, suspect
        self.complete = True


def chain_kind(type_: drgn.Type) -> ChainKind | None:
    """The kind of list a head of ``type_`` is, or ``None`` when it is no list head."""
    # Called for every value shown: the tag is a plain attribute, type_name() formats a string.
    plain = type_.unaliased()
    if plain.kind != drgn.TypeKind.STRUCT:
        return None
    return _KINDS.get(plain.tag or "")


def list_poison(prog: drgn.Program) -> tuple[int, int]:
    """``LIST_POISON1`` and ``LIST_POISON2`` of this kernel (include/linux/poison.h).

    ``POISON_POINTER_DELTA`` is ``CONFIG_ILLEGAL_POINTER_VALUE``, an architecture's fact
    (:attr:`~vmcore_dap.dump.arch.base.Arch.poison_pointer_delta`); 0 for an architecture without a
    module there (the default of 32-bit kernels).
    """
    try:
        delta = arch_of(prog).poison_pointer_delta
    except UnsupportedArchitecture:
        delta = 0
    return delta + 0x100, delta + 0x122


def _words(prog: drgn.Program) -> tuple[int, str]:
    platform = prog.platform
    wide = platform is None or bool(platform.flags & drgn.PlatformFlags.IS_64_BIT)
    little = platform is None or bool(platform.flags & drgn.PlatformFlags.IS_LITTLE_ENDIAN)
    return (8 if wide else 4), ("<" if little else ">") + ("QQ" if wide else "II")


def walk_chain(head: drgn.Object, limit: int = MAX_NODES, upto: int | None = None) -> Chain:
    """Walk the list whose head is ``head`` (an object in memory of a :func:`chain_kind` type), to
    its end or until ``upto`` nodes are known (then ``complete`` is ``False``).

    :raises ValueError: if ``head`` is not a list head in memory.
    """
    kind = chain_kind(head.type_)
    address = head.address_
    if kind is None or address is None:
        raise ValueError(f"{head.type_.type_name()} in memory is needed to walk a list")
    prog = head.prog_
    if kind == "plist":
        address += drgn.offsetof(prog.type("struct plist_head"), "node_list")
        kind = "list"
    key = ("vmcore_dap.chain", kind, address, limit)
    chain = prog.cache.get(key)
    if chain is None:
        chain = prog.cache[key] = Chain(kind, address)
    target = limit if upto is None else min(upto, limit)
    if not chain.complete and len(chain.nodes) < target:
        _walk(prog, chain, limit, target)
    return chain  # type: ignore[no-any-return]


def _walk(prog: drgn.Program, chain: Chain, limit: int, target: int) -> None:
    """Follow the first word of each node from the head's first word, until the end of its kind:
    back at the head (``list``), NULL (``hlist``, ``llist``) or an odd "nulls" value
    (``hlist_nulls``). The second word of each node must point back at the node before it (the
    head for the first one): ``prev`` of a ``list_head``, ``pprev`` of an ``hlist_node`` (which
    points at the previous ``next``, the first word of the node before). ``llist`` has no back link.
    """
    size, fmt = _words(prog)
    unpack = struct.Struct(fmt).unpack
    poison = list_poison(prog)
    kind = chain.kind
    back_name = {"list": "prev", "llist": ""}.get(kind, "pprev")
    nodes = chain.nodes
    if chain._resume is not None:
        prev, next_, seen = chain._resume
    else:
        seen = set()
        prev = chain.head
        try:
            next_ = prog.read_word(prev)
        except drgn.FaultError as exc:
            chain.fail(f"the head cannot be read (at {exc.address:#x})", prev)
            return
    while True:
        if next_ == chain.head if kind == "list" else (next_ == 0 or (kind == "hlist_nulls" and next_ & 1)):
            chain.complete = True
            return
        if len(nodes) >= target and target < limit:
            chain._resume = (prev, next_, seen)
            return
        where = f"after entry [{len(nodes) - 1}]" if nodes else "at the head"
        if next_ in poison:
            chain.fail(
                f"next {where} is LIST_POISON{poison.index(next_) + 1} ({next_:#x}): "
                "a deleted entry is still linked",
                prev,
                next_,
            )
            return
        if next_ == 0:
            chain.fail(f"next {where} is NULL", prev)
            return
        if next_ in seen:
            chain.fail(
                f"next {where} points back to entry [{nodes.index(next_)}], not to the head: a cycle",
                prev,
                next_,
            )
            return
        if len(nodes) >= limit:
            chain.fail(f"more than {limit} entries (stopped)", prev)
            return
        try:
            if back_name:
                following, back = unpack(prog.read(next_, 2 * size))
            else:
                following, back = prog.read_word(next_), prev
        except drgn.FaultError:
            chain.fail(f"next {where} ({next_:#x}) cannot be read", prev, next_)
            return
        nodes.append(next_)
        if back != prev:
            what = f"LIST_POISON{poison.index(back) + 1}" if back in poison else f"{back:#x}"
            chain.fail(
                f"entry [{len(nodes) - 1}] at {next_:#x}: {back_name} is {what}, not {prev:#x} "
                "(the node before it)",
                next_,
                back,
            )
            return
        seen.add(next_)
        prev, next_ = next_, following
