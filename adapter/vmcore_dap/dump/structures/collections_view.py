"""Lists and trees as their entries: windows of a long list, the entry type and the person's choice.

A list head becomes a :class:`ListView` (its walk, entry type and how it was decided) shown a
window of :data:`CHUNK` nodes at a time; a tree or map a :class:`TreeView`. "View entries as…"
choices are remembered per place a head lives (:func:`choice_key`) for the session.
:mod:`~vmcore_dap.dump.structures.views` shows both; this module decides what they hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import drgn

from vmcore_dap.dump.structures.chains import Chain, chain_kind, walk_chain
from vmcore_dap.dump.structures.entry_types import (
    EntryType,
    Inference,
    entry_type_for,
    infer_entry_types,
    infer_from_object,
)
from vmcore_dap.dump.structures.known_links import is_node_member, link_for_member
from vmcore_dap.dump.structures.pointer_notes import pointer_note
from vmcore_dap.dump.structures.trees import TreeItems, tree_kind, walk_tree
from vmcore_dap.dump.values.render import Variable

__all__ = [
    "CHUNK",
    "ListView",
    "TreeView",
    "WARNING_KEY",
    "WARNING_PREFIX",
    "choice_key",
    "choose_entry_type",
    "entry_choices",
    "first_index",
    "list_children",
    "list_view",
    "tree_children",
    "tree_view",
]

#: Names of rows that warn (a corrupted list or tree).
WARNING_PREFIX = "⚠"

_CHOICES_KEY = "vmcore_dap.entry_choices"


# -- the person's choices ------------------------------------------------------------------------


def choice_key(var: Variable) -> str | None:
    """What a choice of entry type is remembered by: where the head lives (``struct
    labbug_dev.reqs``: every such head), else its address (``0x…``: that head only)."""
    if var.container is not None:
        return var.container
    address = var.obj.address_
    return f"{address:#x}" if address is not None else None


def choose_entry_type(prog: drgn.Program, key: str, type_name: str, member: str) -> EntryType:
    """Remember, for this session, that the lists (or trees, maps) remembered by ``key``
    (:func:`choice_key`) hold ``type_name`` linked through ``member`` (a map's entries: ``""``).

    :raises LookupError: if the type or the member does not exist.
    """
    type_ = prog.type(type_name)
    if member:
        drgn.offsetof(type_, member)
    choice = EntryType(type_.type_name(), member, "chosen")
    prog.cache.setdefault(_CHOICES_KEY, {})[key] = choice
    return choice


def _chosen(prog: drgn.Program, key: str | None) -> EntryType | None:
    if key is None:
        return None
    choices: dict[str, EntryType] = prog.cache.get(_CHOICES_KEY, {})
    return choices.get(key)


# -- lists ------------------------------------------------------------------------------------------


#: Nodes a list shows per window: the first page of a list of thousands reads this many nodes,
#: not all of them; a "[1000…]" row walks on.
CHUNK = 1000
_MORE_KEY = "⋯more:"


@dataclass(frozen=True)
class ListView:
    """A list head as its entries: the walk, the entry type (``None``: raw nodes) and how it was
    decided, and what is wrong with the list once the walk found it (:func:`_described_problem`)."""

    chain: Chain
    entry: EntryType | None
    inference: Inference | None
    problem: str | None = None

    @property
    def count(self) -> int:
        """Nodes known so far (all of them once ``chain.complete``)."""
        return len(self.chain.nodes)

    def span(self, first: int) -> tuple[int, int, bool]:
        """``(first, end, more)`` of the window of nodes that starts at ``first``."""
        end = min(self.count, first + CHUNK)
        return first, end, self.count > end or not self.chain.complete

    def summary(self, first: int = 0) -> str:
        _, end, more = self.span(first)
        if first:
            return f"entries [{first}]…[{end - 1}]" + (", and more" if more else "")
        n = end
        plus = "+" if more else ""
        if self.entry is not None:
            what = f"{n}{plus} {'entry' if n == 1 and not more else 'entries'} ({self.entry.label})"
        else:
            what = f"{n}{plus} {'node' if n == 1 and not more else 'nodes'}"
            choices = self.inference.candidates if self.inference else ()
            if len(choices) > 1:
                what += f" (View entries as…: {len(choices)} types fit)"
            elif n:
                what += " (entry type unknown)"
        if self.problem is not None and not more:
            return f"{what}, then {WARNING_PREFIX} {self.problem}"
        return "empty" if n == 0 else what


def first_index(var: Variable) -> int:
    """Where the window of ``var`` starts: 0 for a list head, N for its "[N…]" row."""
    if var.key is not None and var.key.startswith(_MORE_KEY):
        return int(var.key[len(_MORE_KEY) :])
    return 0


def list_view(var: Variable) -> ListView | None:
    """The :class:`ListView` of ``var`` when it is a list head in memory that is not an entry's own
    link (``task_struct.sibling`` is a node of its parent's ``children``, not a list to expand)."""
    obj = var.obj
    if obj.absent_ or obj.address_ is None or chain_kind(obj.type_) is None:
        return None
    prog = obj.prog_
    container = var.container
    if container is not None and is_node_member(prog, container) and link_for_member(prog, container) is None:
        return None
    key = ("vmcore_dap.list_view", obj.address_, container)
    cached = prog.cache.get(key)
    chosen = _chosen(prog, choice_key(var))
    if chosen is not None and not chosen.member:
        chosen = None  # a map's choice (whole objects) says nothing about a list's links
    chain = walk_chain(obj, upto=first_index(var) + CHUNK + 1)  # one more: is there anything after?
    problem = _described_problem(prog, chain)
    if cached is not None and (chosen is None or cached.entry == chosen):
        if cached.problem != problem:  # a later window's walk found it
            cached = prog.cache[key] = replace(cached, problem=problem)
        return cached  # type: ignore[no-any-return]
    entry = chosen or entry_type_for(prog, obj, container)
    inference = None
    if entry is None and chain.nodes:
        inference = infer_entry_types(prog, chain, container)
        if len(inference.candidates) == 1:
            entry = inference.candidates[0]
    view = ListView(chain, entry, inference, problem)
    prog.cache[key] = view
    return view


def _described_problem(prog: drgn.Program, chain: Chain) -> str | None:
    """What stopped the walk, and what the wrong link points at: a ``prev`` left pointing at a
    request unlinked half-way and freed reads ``…; 0x… → ⚠ FREED kmalloc-96 object +0x8``."""
    if chain.problem is None:
        return None
    note = pointer_note(prog, chain.suspect) if chain.suspect is not None else None
    return chain.problem if note is None else f"{chain.problem}; {chain.suspect:#x} {note.text}"


def entry_choices(var: Variable) -> list[EntryType]:
    """The entry types that fit ``var``'s list, tree or map (for "View entries as…"): the one shown
    now (from the table, inferred or chosen), then the others the first entry's slab object allows."""
    view = list_view(var) or tree_view(var)
    if view is None:
        return []
    found = [view.entry] if view.entry is not None else []
    inference = view.inference
    if inference is None:
        inference = _infer(var, view)
    labels = {entry.label for entry in found}
    for candidate in inference.candidates:
        if candidate.label not in labels:
            labels.add(candidate.label)
            found.append(candidate)
    return found


def list_children(
    var: Variable, view: ListView, start: int, count: int | None, filter_: str | None
) -> list[Variable]:
    prog = var.obj.prog_
    first, end, more = view.span(first_index(var))
    result: list[Variable] = []
    if filter_ != "indexed":
        if not first:
            result += [
                Variable(m.name, var.obj.member_(m.name), _member_expr(var, m.name))
                for m in var.obj.type_.unaliased().members or ()
                if m.name
            ]
        if view.problem is not None and not more:
            at = view.chain.problem_at
            where = (
                drgn.Object(prog, "struct list_head *", at) if at is not None else drgn.Object(prog, "int", 0)
            )
            result.append(_warning_row(where, view.problem))
        if more:
            result.append(
                Variable(f"[{end}…]", var.obj, None, key=f"{_MORE_KEY}{end}", container=var.container)
            )
    if filter_ == "named":
        return result
    nodes = view.chain.nodes
    low = first + max(0, min(start, end - first))
    high = end if count is None or count <= 0 else min(end, low + count)
    if view.entry is not None:
        type_ = prog.type(view.entry.type_name)
        offset = drgn.offsetof(type_, view.entry.member)
        pointer = prog.pointer_type(type_)
        spelled = pointer.type_name()
    else:
        node_type = prog.type(_NODE_TYPE[view.chain.kind])
        offset = 0
        pointer = prog.pointer_type(node_type)
        spelled = pointer.type_name()
    for i in range(low, high):
        address = nodes[i] - offset
        # The key names the type: after "View entries as…" the same row is another value.
        obj = drgn.Object(prog, pointer, address)
        result.append(Variable(f"[{i}]", obj, f"({spelled}){address:#x}", key=f"[{i}] {spelled}"))
    return result


WARNING_KEY = "⚠problem:"


def _warning_row(obj: drgn.Object, problem: str) -> Variable:
    """The row that says what is wrong with a list or tree (its text travels in the key)."""
    return Variable(f"{WARNING_PREFIX} corrupted", obj, None, key=WARNING_KEY + problem)


_NODE_TYPE = {
    "list": "struct list_head",
    "hlist": "struct hlist_node",
    "hlist_nulls": "struct hlist_nulls_node",
    "llist": "struct llist_node",
}


def _member_expr(var: Variable, name: str) -> str | None:
    if var.expr is None:
        return None
    base = var.expr if re.fullmatch(r"[\w.\->\[\]]+", var.expr) else f"({var.expr})"
    return f"{base}.{name}"


# -- trees ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeView:
    """A tree or map as its entries, with the entry type when known and how it was decided."""

    items: TreeItems
    entry: EntryType | None
    inference: Inference | None = None

    def summary(self) -> str:
        n = len(self.items.items)
        what = "empty" if n == 0 else f"{n} {'entry' if n == 1 else 'entries'}"
        choices = self.inference.candidates if self.inference else ()
        if n and self.entry is not None:
            what += f" ({self.entry.label})"
        elif len(choices) > 1:
            what += f" (View entries as…: {len(choices)} types fit)"
        if self.items.problem is not None:
            return f"{what}, then {WARNING_PREFIX} {self.items.problem}"
        return what


def tree_view(var: Variable) -> TreeView | None:
    """The :class:`TreeView` of ``var`` when it is a tree or map root in memory: the entry type from
    the person's choice, the table, or the first entry's slab object."""
    obj = var.obj
    if obj.absent_ or obj.address_ is None or tree_kind(obj.type_) is None:
        return None
    prog = obj.prog_
    chosen = _chosen(prog, choice_key(var))
    key = ("vmcore_dap.tree_view", obj.address_, var.container)
    cached = prog.cache.get(key)
    if cached is not None and (chosen is None or cached.entry == chosen):
        return cached  # type: ignore[no-any-return]
    entry = chosen
    if entry is None and var.container is not None:
        link = link_for_member(prog, var.container)
        if link is not None:
            entry = EntryType(link.entry, link.member, "table")
    if entry is None:
        entry = entry_type_for(prog, obj, None)
    view = TreeView(walk_tree(obj), entry)
    if entry is None and view.items.items:
        inference = _infer(var, view)
        view = TreeView(
            view.items, inference.candidates[0] if len(inference.candidates) == 1 else None, inference
        )
    prog.cache[key] = view
    return view


def _infer(var: Variable, view: ListView | TreeView) -> Inference:
    """What the first entry's slab object says the entries of ``view`` are."""
    prog = var.obj.prog_
    if isinstance(view, ListView):
        return infer_entry_types(prog, view.chain, var.container)
    if not view.items.items:
        return Inference(())
    kind = "rbtree" if view.items.kind == "rbtree" else "map"
    return infer_from_object(prog, view.items.items[0][1], kind, var.container)


def tree_children(
    var: Variable, view: TreeView, start: int, count: int | None, filter_: str | None
) -> list[Variable]:
    prog = var.obj.prog_
    result: list[Variable] = []
    if filter_ != "indexed" and view.items.problem is not None:
        result.append(_warning_row(drgn.Object(prog, "int", 0), view.items.problem))
    if filter_ == "named":
        return result
    items = view.items.items
    first = max(0, min(start, len(items)))
    end = len(items) if count is None or count <= 0 else min(len(items), first + count)
    entry = view.entry
    if entry is not None:
        type_ = prog.type(entry.type_name)
        offset = drgn.offsetof(type_, entry.member) if entry.member else 0
        pointer = prog.pointer_type(type_)
    else:
        offset = 0
        pointer = prog.pointer_type(
            prog.type("struct rb_node") if view.items.kind == "rbtree" else prog.void_type()
        )
    spelled = pointer.type_name()
    for i in range(first, end):
        label, value = items[i]
        address = value - offset if value else 0
        result.append(
            Variable(
                f"[{label}]", drgn.Object(prog, pointer, address), f"({spelled}){address:#x}", key=f"[{i}]"
            )
        )
    return result
