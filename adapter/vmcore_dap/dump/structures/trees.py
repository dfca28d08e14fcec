"""Trees and maps as their entries: ``rb_root``/``rb_root_cached`` in order, ``xarray``,
``radix_tree_root`` and ``idr`` by index, ``maple_tree`` by range.

drgn's helpers do the walking (``rbtree_inorder_for_each``, ``xa_for_each``, ``radix_tree_for_each``,
``idr_for_each``, ``mt_for_each``); this module bounds them (a corrupted tree must not walk forever),
keeps the result per root (a dump never changes) and says what stopped a walk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import drgn

__all__ = ["TreeItems", "tree_kind", "walk_tree", "MAX_ITEMS"]

#: Entries of one tree shown at most; the walk stops there and says so.
MAX_ITEMS = 1 << 18

_KINDS = {
    "rb_root": "rbtree",
    "rb_root_cached": "rbtree",
    "xarray": "xarray",
    "radix_tree_root": "xarray",  # a radix tree is an xarray since v4.20
    "idr": "idr",
    "maple_tree": "maple",
}


@dataclass
class TreeItems:
    """The entries of one tree or map, in order.

    :param items: ``(label, address)``: ``label`` is the index (``"5"``), the range of a maple tree
        (``"0x1000-0x1fff"``) or the position of an rbtree node; ``address`` is the ``rb_node`` of an
        rbtree, the stored pointer of a map.
    """

    kind: str
    items: list[tuple[str, int]] = field(default_factory=list)
    problem: str | None = None


def tree_kind(type_: drgn.Type) -> str | None:
    """``rbtree``, ``xarray``, ``idr`` or ``maple`` for a root of that type, else ``None``."""
    plain = type_.unaliased()
    if plain.kind != drgn.TypeKind.STRUCT:
        return None
    return _KINDS.get(plain.tag or "")


def _entries(root: drgn.Object, kind: str) -> Iterator[tuple[str, int]]:
    if kind == "rbtree":
        from drgn.helpers.linux.rbtree import rbtree_inorder_for_each

        if root.type_.unaliased().type_name() == "struct rb_root_cached":
            root = root.rb_root
        for i, node in enumerate(rbtree_inorder_for_each(root.address_of_())):
            yield str(i), node.value_()
    elif kind == "xarray":
        from drgn.helpers.linux.xarray import xa_for_each

        if root.type_.unaliased().type_name() == "struct radix_tree_root":
            from drgn.helpers.linux.radixtree import radix_tree_for_each

            for index, entry in radix_tree_for_each(root.address_of_()):
                yield str(index), entry.value_()
            return
        for index, entry in xa_for_each(root.address_of_()):
            yield str(index), entry.value_()
    elif kind == "idr":
        from drgn.helpers.linux.idr import idr_for_each

        for index, entry in idr_for_each(root.address_of_()):
            yield str(index), entry.value_()
    elif kind == "maple":
        from drgn.helpers.linux.mapletree import mt_for_each

        for first, last, entry in mt_for_each(root.address_of_()):
            yield f"{first:#x}-{last:#x}", entry.value_()


def walk_tree(root: drgn.Object, limit: int = MAX_ITEMS) -> TreeItems:
    """The entries of the tree or map ``root`` (an object in memory of a :func:`tree_kind` type)."""
    kind = tree_kind(root.type_)
    address = root.address_
    if kind is None or address is None:
        raise ValueError(f"{root.type_.type_name()} in memory is needed to walk a tree")
    prog = root.prog_
    key = ("vmcore_dap.tree", kind, address, limit)
    cached = prog.cache.get(key)
    if cached is None:
        cached = TreeItems(kind)
        seen: set[int] = set()
        try:
            for label, value in _entries(root, kind):
                if kind == "rbtree" and value in seen:
                    cached.problem = f"node {value:#x} is reached twice: the tree is corrupted"
                    break
                if len(cached.items) >= limit:
                    cached.problem = f"more than {limit} entries (stopped)"
                    break
                seen.add(value)
                cached.items.append((label, value))
        except drgn.FaultError as exc:
            cached.problem = f"after {len(cached.items)} entries: cannot read {exc.address:#x}"
        except (ValueError, LookupError, NotImplementedError) as exc:
            cached.problem = f"after {len(cached.items)} entries: {exc}"
        prog.cache[key] = cached
    return cached  # type: ignore[no-any-return]
