"""How a value that is a kernel data structure is shown: one line, and its children page by page.

:func:`present` takes a :class:`~vmcore_dap.dump.values.render.Variable` with the line
:func:`~vmcore_dap.dump.values.render.render` gave it and returns the line a kernel engineer wants:

* a list head: ``264 entries (struct task_struct.tasks)``, ``empty``, ``12 nodes, then ⚠ …``; its
  entries are indexed children (``indexedVariables``: clients page them), its raw ``next``/``prev``
  and a warning row (corruption, or "View entries as…" when several types fit) are named children;
* a tree or map: its entries by position, index or range;
* a per-CPU variable or ``__percpu`` pointer: ``per-CPU (2 CPUs)``, children ``[cpu0]``, ``[cpu1]``…;
* a pointer: its value followed by what it points at (:mod:`~vmcore_dap.dump.structures.pointer_notes`).

:func:`children` gives the children of those, or ``None`` for any other value (the caller then asks
``render``). Nothing here walks more than the list's link words before its first page is shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import drgn

from vmcore_dap.dump.structures.chains import Chain, chain_kind, walk_chain
from vmcore_dap.dump.structures.entry_types import EntryType, Inference, entry_type_for, infer_entry_types
from vmcore_dap.dump.structures.known_links import is_node_member, link_for_member
from vmcore_dap.dump.structures.percpu import (
    is_percpu_pointer,
    is_percpu_variable,
    per_cpu_values,
    percpu_cpus,
)
from vmcore_dap.dump.structures.pointer_notes import PointerNote, pointer_notes
from vmcore_dap.dump.structures.trees import TreeItems, tree_kind, walk_tree
from vmcore_dap.dump.values.render import Rendered, Variable, render

__all__ = [
    "ListView",
    "TreeView",
    "choice_key",
    "choose_entry_type",
    "entry_choices",
    "list_view",
    "present",
    "children",
    "note_pointers",
    "WARNING_PREFIX",
]

#: Names of rows that warn (a corrupted list, a choice to make).
WARNING_PREFIX = "⚠"

_CHOICES_KEY = "vmcore_dap.entry_choices"
_STRINGLIKE = (
    drgn.PrimitiveType.C_CHAR,
    drgn.PrimitiveType.C_SIGNED_CHAR,
    drgn.PrimitiveType.C_UNSIGNED_CHAR,
)


# -- the person's choices ------------------------------------------------------------------------


def choice_key(var: Variable) -> str | None:
    """What a choice of entry type is remembered by: where the head lives (``struct
    labbug_dev.reqs``: every such head), else its address (``0x…``: that head only)."""
    if var.container is not None:
        return var.container
    address = var.obj.address_
    return f"{address:#x}" if address is not None else None


def choose_entry_type(prog: drgn.Program, key: str, type_name: str, member: str) -> EntryType:
    """Remember, for this session, that the lists remembered by ``key`` (:func:`choice_key`) hold
    ``type_name`` linked through ``member``.

    :raises LookupError: if the type or the member does not exist.
    """
    type_ = prog.type(type_name)
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
    decided."""

    chain: Chain
    entry: EntryType | None
    inference: Inference | None

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
        if self.chain.problem is not None and not more:
            return f"{what}, then {WARNING_PREFIX} {self.chain.problem}"
        return "empty" if n == 0 else what


def _first(var: Variable) -> int:
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
    chain = walk_chain(obj, upto=_first(var) + CHUNK + 1)  # one more: is there anything after?
    if cached is not None and (chosen is None or cached.entry == chosen):
        return cached  # type: ignore[no-any-return]
    entry = chosen or entry_type_for(prog, obj, container)
    inference = None
    if entry is None and chain.nodes:
        inference = infer_entry_types(prog, chain)
        if len(inference.candidates) == 1:
            entry = inference.candidates[0]
    view = ListView(chain, entry, inference)
    prog.cache[key] = view
    return view


def entry_choices(var: Variable) -> list[EntryType]:
    """The entry types that fit ``var``'s list (for "View entries as…"): the one shown now (from the
    table, inferred or chosen), then the others the first entry's slab object allows."""
    view = list_view(var)
    if view is None:
        return []
    found = [view.entry] if view.entry is not None else []
    inference = view.inference
    if inference is None and view.chain.nodes:
        inference = infer_entry_types(var.obj.prog_, view.chain)
    labels = {entry.label for entry in found}
    for candidate in inference.candidates if inference is not None else ():
        if candidate.label not in labels:
            labels.add(candidate.label)
            found.append(candidate)
    return found


def _list_children(
    var: Variable, view: ListView, start: int, count: int | None, filter_: str | None
) -> list[Variable]:
    prog = var.obj.prog_
    first, end, more = view.span(_first(var))
    result: list[Variable] = []
    if filter_ != "indexed":
        if not first:
            result += [
                Variable(m.name, var.obj.member_(m.name), _member_expr(var, m.name))
                for m in var.obj.type_.unaliased().members or ()
                if m.name
            ]
        if view.chain.problem is not None and not more:
            at = view.chain.problem_at
            where = (
                drgn.Object(prog, "struct list_head *", at) if at is not None else drgn.Object(prog, "int", 0)
            )
            result.append(_warning_row(where, view.chain.problem))
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


_WARNING_KEY = "⚠problem:"


def _warning_row(obj: drgn.Object, problem: str) -> Variable:
    """The row that says what is wrong with a list or tree (its text travels in the key)."""
    return Variable(f"{WARNING_PREFIX} corrupted", obj, None, key=_WARNING_KEY + problem)


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
    """A tree or map as its entries, with the entry type when known."""

    items: TreeItems
    entry: EntryType | None

    def summary(self) -> str:
        n = len(self.items.items)
        what = "empty" if n == 0 else f"{n} {'entry' if n == 1 else 'entries'}"
        if n and self.entry is not None:
            what += f" ({self.entry.label.rstrip('.')})"
        if self.items.problem is not None:
            return f"{what}, then {WARNING_PREFIX} {self.items.problem}"
        return what


def _tree_view(var: Variable) -> TreeView | None:
    obj = var.obj
    if obj.absent_ or obj.address_ is None or tree_kind(obj.type_) is None:
        return None
    prog = obj.prog_
    entry = _chosen(prog, choice_key(var))
    if entry is None and var.container is not None:
        link = link_for_member(prog, var.container)
        if link is not None:
            entry = EntryType(link.entry, link.member, "table")
    if entry is None:
        entry = entry_type_for(prog, obj, None)
    return TreeView(walk_tree(obj), entry)


def _tree_children(
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


# -- per-CPU ------------------------------------------------------------------------------------------


def _is_percpu(var: Variable) -> bool:
    return is_percpu_variable(var.obj) or is_percpu_pointer(var.obj, var.container)


#: Per-CPU scalars of at most this many CPUs show every value inline (a hover shows them all, as
#: crash's ``p var:a``).
_INLINE_CPUS = 8
_SCALARS = (
    drgn.TypeKind.INT,
    drgn.TypeKind.BOOL,
    drgn.TypeKind.ENUM,
    drgn.TypeKind.POINTER,
    drgn.TypeKind.FLOAT,
)


def _percpu_summary(var: Variable) -> str:
    """``per-CPU {cpu0: 0, cpu1: 1}`` for a scalar on a few CPUs, else ``per-CPU (64 CPUs)``."""
    cpus = percpu_cpus(var.obj.prog_)
    pointer = var.obj.type_.unaliased_kind() == drgn.TypeKind.POINTER and not is_percpu_variable(var.obj)
    if len(cpus) <= _INLINE_CPUS and not pointer and var.obj.type_.unaliased_kind() in _SCALARS:
        values = ", ".join(f"cpu{cpu}: {render(value).value}" for cpu, value in per_cpu_values(var.obj))
        return f"per-CPU {{{values}}}"
    return f"per-CPU ({len(cpus)} CPUs)"


def _percpu_children(var: Variable, start: int, count: int | None, filter_: str | None) -> list[Variable]:
    if filter_ == "named":
        return []
    values = per_cpu_values(var.obj)
    end = len(values) if count is None or count <= 0 else min(len(values), start + count)
    pointer = var.obj.type_.unaliased_kind() == drgn.TypeKind.POINTER and not is_percpu_variable(var.obj)
    result = []
    for cpu, value in values[start:end]:
        if var.expr is None:
            expr = None
        elif pointer:
            expr = f"*per_cpu_ptr({var.expr}, {cpu})"
        else:
            expr = f"per_cpu({var.expr}, {cpu})"
        result.append(Variable(f"[cpu{cpu}]", value, expr))
    return result


# -- the two entry points ----------------------------------------------------------------------------


def present(var: Variable, rendered: Rendered) -> Rendered:
    """The line of ``var`` (as :func:`render` gave it in ``rendered``) for a kernel data structure;
    ``rendered`` itself for anything else."""
    obj = var.obj
    if obj.absent_:
        return rendered
    try:
        if _is_percpu(var):
            return Rendered(
                _percpu_summary(var),
                rendered.type,
                indexed=len(percpu_cpus(obj.prog_)),
                memory_reference=rendered.memory_reference,
            )
        view = list_view(var)
        if view is not None:
            first, end, more = view.span(_first(var))
            named = 0 if first else len([m for m in obj.type_.unaliased().members or () if m.name])
            named += (view.chain.problem is not None and not more) + more
            return Rendered(
                view.summary(first),
                rendered.type,
                named=named,
                indexed=end - first,
                memory_reference=rendered.memory_reference,
            )
        tree = _tree_view(var)
        if tree is not None:
            return Rendered(
                tree.summary(),
                rendered.type,
                named=tree.items.problem is not None,
                indexed=len(tree.items.items),
                memory_reference=rendered.memory_reference,
            )
    except (drgn.FaultError, LookupError, ValueError):
        return rendered
    if var.key is not None and var.key.startswith(_WARNING_KEY):
        return Rendered(var.key[len(_WARNING_KEY) :], "", memory_reference=rendered.memory_reference)
    note = _pointer_note_for(obj)
    return _with_note(obj, rendered, note) if note is not None else rendered


def children(
    var: Variable, *, start: int = 0, count: int | None = None, filter_: str | None = None
) -> list[Variable] | None:
    """The children of a data structure ``var`` (see :func:`present`), or ``None`` when ``var`` is an
    ordinary value whose children :func:`~vmcore_dap.dump.values.render.children` gives."""
    if var.obj.absent_:
        return None
    try:
        if _is_percpu(var):
            return _percpu_children(var, start, count, filter_)
        view = list_view(var)
        if view is not None:
            return _list_children(var, view, start, count, filter_)
        tree = _tree_view(var)
        if tree is not None:
            return _tree_children(var, tree, start, count, filter_)
    except (drgn.FaultError, LookupError, ValueError):
        return None
    return None


# -- pointer notes ------------------------------------------------------------------------------------


def _noted_pointer(obj: drgn.Object) -> int | None:
    """The value of ``obj`` when it is a pointer that gets a note (not ``char *``, not a function)."""
    type_ = obj.type_.unaliased()
    if type_.kind != drgn.TypeKind.POINTER:
        return None
    target = type_.type.unaliased()
    if target.kind == drgn.TypeKind.FUNCTION:
        return None
    if target.kind == drgn.TypeKind.INT and target.primitive in _STRINGLIKE:
        return None
    try:
        value = obj.value_()
    except (drgn.FaultError, drgn.ObjectAbsentError):
        return None
    return value or None


def note_pointers(objs: Iterable[drgn.Object]) -> None:
    """Compute the notes of every pointer among ``objs`` together (a page of Variables); later
    :func:`present` calls find them cached."""
    addresses = []
    prog = None
    for obj in objs:
        value = _noted_pointer(obj)
        if value is not None:
            addresses.append(value)
            prog = obj.prog_
    if prog is not None:
        pointer_notes(prog, addresses)


def _pointer_note_for(obj: drgn.Object) -> PointerNote | None:
    value = _noted_pointer(obj)
    if value is None:
        return None
    return pointer_notes(obj.prog_, (value,))[value]


def _with_note(obj: drgn.Object, rendered: Rendered, note: PointerNote) -> Rendered:
    text = rendered.value
    if "<error:" in text:
        return rendered  # render already says why it cannot be read
    if note.symbol:
        text = re.sub(r" <[^<>]*>$", "", text)
    return replace(rendered, value=f"{text} {note.text}")
