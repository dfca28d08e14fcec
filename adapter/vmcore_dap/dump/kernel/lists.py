"""Walk the kernel's linked lists of a dump with a bound: a damaged list must not hang the adapter.

A ``list_head`` read from a dump can point anywhere: back into the list (a cycle that never returns
to the head), at garbage, at memory the dump does not hold. drgn's ``list_for_each_entry`` follows
it faithfully and forever. :func:`bounded_list_entries` stops at the first node seen twice, at an
unreadable or NULL pointer, or after ``limit`` nodes, and says which of these happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import drgn

__all__ = ["ListWalk", "bounded_list_entries", "DEFAULT_LIMIT"]

#: More nodes than any list the adapter walks can hold in a sane kernel.
DEFAULT_LIMIT = 1 << 20


@dataclass
class ListWalk:
    """The outcome of a walk: ``problem`` is ``None`` when the list closed back on its head."""

    count: int = 0
    problem: str | None = None


def bounded_list_entries(
    head: drgn.Object,
    type_: str,
    member: str,
    walk: ListWalk,
    limit: int = DEFAULT_LIMIT,
    link: str = "next",
) -> Iterator[drgn.Object]:
    """Yield each ``type_ *`` on the list at ``head`` (``struct list_head *``), like
    ``list_for_each_entry``, but stop on a cycle, a bad pointer or after ``limit`` nodes, recording
    why in ``walk.problem``.

    :param link: ``"prev"`` walks the list backwards: from the other side of an unreadable node.
    """
    head_address = head.value_()
    seen: set[int] = set()
    node = head
    while True:
        try:
            next_ = getattr(node, link).read_()
            address = next_.value_()
        except drgn.FaultError as exc:
            walk.problem = f"unreadable link after {walk.count} entries (at {exc.address:#x})"
            return
        if address == head_address:
            return
        if address == 0:
            walk.problem = f"NULL link after {walk.count} entries"
            return
        if address in seen:
            walk.problem = f"the link after {walk.count} entries points back into the list (a cycle)"
            return
        if walk.count >= limit:
            walk.problem = f"more than {limit} entries (stopped)"
            return
        seen.add(address)
        walk.count += 1
        yield drgn.container_of(next_, type_, member)
        node = next_
