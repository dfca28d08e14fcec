"""``vmcore/entryTypes`` and ``vmcore/setEntryType``: which struct a list's (tree's, map's) entries are.

When the entry type of a list cannot be told (several structs fit the first entry's slab object,
or none), the extension offers "View entries as…": it asks for the candidates of the list behind a
``variablesReference``, and sends the person's choice back. The choice holds for every head that
lives where that one does (``struct labbug_dev.reqs``), for the session; the extension remembers it
across sessions and sends it again (with ``key`` instead of a reference). Values change, so the
client is told to fetch variables again (``invalidated``). Trees and maps (``rb_root``, ``xarray``…)
take the same choice; a map's entries are whole objects (``member`` ``""``).
"""

from __future__ import annotations

from typing import Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.structures import views
from vmcore_dap.errors import InvalidArguments, UserError
from vmcore_dap.handlers.dump_state import current_dump
from vmcore_dap.handlers.variables import VariablesState, value_variable

__all__: list[str] = []


def _list_variable(session: Session, args: Args) -> views.Variable:
    variable = value_variable(session.component(VariablesState), args.integer("variablesReference"))
    if views.list_view(variable) is None and views.tree_view(variable) is None:
        raise UserError(
            f"{variable.name}: not a list head, tree or map (View entries as… applies to list_head, "
            "hlist_head, hlist_nulls_head, llist_head, plist_head, rb_root, xarray, radix_tree_root, "
            "idr and maple_tree values)"
        )
    return variable


@registry.request("vmcore/entryTypes")
def entry_types(session: Session, args: Args) -> dict[str, Any]:
    """The entry types that fit a list: ``{key, current, candidates: [{type, member, source,
    detail, label}]}`` (``current`` is ``null`` while the entries are shown as raw nodes)."""
    variable = _list_variable(session, args)
    view = views.list_view(variable) or views.tree_view(variable)
    assert view is not None

    def shape(entry: views.EntryType) -> dict[str, Any]:
        return {
            "type": entry.type_name,
            "member": entry.member,
            "source": entry.source,
            "detail": entry.detail,
            "label": entry.label,
        }

    return {
        "key": views.choice_key(variable),
        "current": shape(view.entry) if view.entry is not None else None,
        "candidates": [shape(e) for e in views.entry_choices(variable)],
    }


@registry.request("vmcore/setEntryType")
def set_entry_type(session: Session, args: Args) -> dict[str, Any]:
    """Show the entries of a list (``variablesReference``), or of every list remembered by ``key``,
    as ``type`` linked through ``member``."""
    type_name = args.string("type")
    member = args.string("member")
    key = args.opt_string("key")
    if key is None:
        key = views.choice_key(_list_variable(session, args))
    if key is None:
        raise InvalidArguments("vmcore/setEntryType: this list has no place to remember a choice by")
    prog = current_dump(session).prog
    try:
        choice = views.choose_entry_type(prog, key, type_name, member)
    except (LookupError, ValueError) as exc:
        raise UserError(
            f"View entries as {type_name}.{member}: {exc} (pick one of the offered types)"
        ) from None
    if session.client.get("supportsInvalidatedEvent"):
        session.after_response(lambda: session.send_event("invalidated", {"areas": ["variables"]}))
    return {"key": key, "label": choice.label}
