"""How a value that is a kernel data structure is shown: one line, and its children page by page.

:func:`present` takes a :class:`~vmcore_dap.dump.values.render.Variable` with the line
:func:`~vmcore_dap.dump.values.render.render` gave it and returns the line a kernel engineer wants:

* a list head: ``264 entries (struct task_struct.tasks)``, ``1000+ entries (…)``, ``empty``,
  ``12 nodes, then ⚠ …``; its entries are indexed children (``indexedVariables``: clients page
  them), its raw ``next``/``prev``, a warning row and a ``[1000…]`` row for the next window are
  named children (:mod:`~vmcore_dap.dump.structures.collections_view` decides what it holds);
* a tree or map: its entries by position, index or range;
* a per-CPU variable or ``__percpu`` pointer: ``per-CPU (2 CPUs)``, children ``[cpu0]``, ``[cpu1]``…;
* a pointer: its value followed by what it points at (:mod:`~vmcore_dap.dump.structures.pointer_notes`).

:func:`children` gives the children of those, or ``None`` for any other value (the caller then asks
``render``). Nothing here walks more than a window of a list's link words before its first page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

import drgn

from vmcore_dap.dump.structures.collections_view import (
    WARNING_KEY,
    WARNING_PREFIX,
    ListView,
    TreeView,
    choice_key,
    choose_entry_type,
    entry_choices,
    first_index,
    list_children,
    list_view,
    tree_children,
    tree_view,
)
from vmcore_dap.dump.structures.entry_types import EntryType
from vmcore_dap.dump.structures.percpu import (
    is_percpu_pointer,
    is_percpu_variable,
    per_cpu_values,
    percpu_cpus,
)
from vmcore_dap.dump.structures.pointer_notes import PointerNote, pointer_notes
from vmcore_dap.dump.values.render import Rendered, Variable, render

__all__ = [
    "EntryType",
    "ListView",
    "TreeView",
    "Variable",
    "WARNING_PREFIX",
    "choice_key",
    "choose_entry_type",
    "children",
    "entry_choices",
    "list_view",
    "note_pointers",
    "tree_view",
    "present",
]

_STRINGLIKE = (
    drgn.PrimitiveType.C_CHAR,
    drgn.PrimitiveType.C_SIGNED_CHAR,
    drgn.PrimitiveType.C_UNSIGNED_CHAR,
)


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
            first, end, more = view.span(first_index(var))
            named = 0 if first else len([m for m in obj.type_.unaliased().members or () if m.name])
            named += (view.problem is not None and not more) + more
            return Rendered(
                view.summary(first),
                rendered.type,
                named=named,
                indexed=end - first,
                memory_reference=rendered.memory_reference,
            )
        tree = tree_view(var)
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
    if var.key is not None and var.key.startswith(WARNING_KEY):
        return Rendered(var.key[len(WARNING_KEY) :], "", memory_reference=rendered.memory_reference)
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
            return list_children(var, view, start, count, filter_)
        tree = tree_view(var)
        if tree is not None:
            return tree_children(var, tree, start, count, filter_)
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
