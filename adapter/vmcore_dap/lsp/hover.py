"""Hover text for a name in kernel source: its value in the dump, its layout, or who is in it.

Three kinds of answer, each Markdown with a C code block a person can read like crash output:

* a global or static variable: ``name = value`` as the Variables view shows it (:mod:`.values`);
  a struct (or a pointer to one) is summarised one member per line, nested structs one level deep;
* a struct, union or enum type: its size and members with offsets, exactly crash's ``struct -o``;
* a function: address, module, and how many tasks have it on their stack, by state.
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter

import drgn

from vmcore_dap.dump.console.extra_commands import format_struct_offsets
from vmcore_dap.dump.values.render import Variable, children, render
from vmcore_dap.lsp.dump_session import DumpSession
from vmcore_dap.lsp.features import describe_counts
from vmcore_dap.lsp.identifiers import Identifier

__all__ = ["hover_text", "WATCH_COMMAND", "MAX_MEMBERS"]

#: Client command that adds an expression to the Watch view (registered by the extension's client).
WATCH_COMMAND = "vmcore-dap.watchExpression"
#: Members shown in a struct summary before "… N more".
MAX_MEMBERS = 24
_INLINE_MEMBERS = 4
_INLINE_WIDTH = 80
_STRUCTLIKE = (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION)


def _command_link(title: str, command: str, argument: str) -> str:
    args = urllib.parse.quote(json.dumps([argument]))
    return f"[{title}](command:{command}?{args})"


def _module_of(prog: drgn.Program, address: int) -> str:
    try:
        return prog.module(address).name
    except LookupError:
        return "?"


def _inline_struct(obj: drgn.Object) -> str | None:
    """``{.counter = 0}`` for a small struct of scalars (atomic_t, refcount_t, kuid_t …)."""
    members = children(Variable("", obj, None))
    if len(members) > _INLINE_MEMBERS:
        return None
    parts = []
    for member in members:
        if member.obj.type_.unaliased_kind() in (*_STRUCTLIKE, drgn.TypeKind.ARRAY):
            nested = _inline_struct(member.obj) if member.obj.type_.unaliased_kind() in _STRUCTLIKE else None
            if nested is None:
                return None
            parts.append(f".{member.name} = {nested}")
        else:
            parts.append(f".{member.name} = {render(member.obj).value}")
    text = "{" + ", ".join(parts) + "}"
    return text if len(text) <= _INLINE_WIDTH else None


def _member_lines(obj: drgn.Object) -> list[str]:
    lines = []
    members = children(Variable("", obj, None))
    for member in members[:MAX_MEMBERS]:
        kind = member.obj.type_.unaliased_kind()
        text = None
        if kind in _STRUCTLIKE and not member.obj.absent_:
            try:
                text = _inline_struct(member.obj)
            except drgn.FaultError:
                text = None
        if text is None:
            text = render(member.obj).value
            if text == "{...}":
                text = "{…}"
        name = member.name if member.name.startswith("<") else f".{member.name}"
        lines.append(f"  {name} = {text},")
    if len(members) > MAX_MEMBERS:
        lines.append(f"  /* … {len(members) - MAX_MEMBERS} more members */")
    return lines


def variable_value_lines(name: str, obj: drgn.Object) -> list[str]:
    """C-like lines for the value of variable ``name``: ``name = 1`` or ``name = {`` … ``}``; for a
    per-CPU variable, each CPU's value as crash's ``p name:a`` shows it (``per_cpu(name, 0) = …``)."""
    from vmcore_dap.dump.structures.percpu import is_percpu_variable, per_cpu_values

    if is_percpu_variable(obj):
        lines = []
        for cpu, value in per_cpu_values(obj):
            lines += variable_value_lines(f"per_cpu({name}, {cpu})", value)
        return lines
    rendered = render(obj)
    kind = obj.type_.unaliased_kind()
    if kind in _STRUCTLIKE and rendered.named and not rendered.value.startswith("<"):
        return [f"{name} = {{", *_member_lines(obj), "}"]
    if kind == drgn.TypeKind.POINTER and rendered.named:
        target = obj.type_.unaliased().type
        if target.unaliased_kind() in _STRUCTLIKE:
            return [f"{name} = {rendered.value}", f"*{name} = {{", *_member_lines(obj[0]), "}"]
    return [f"{name} = {rendered.value}"]


def _variable_hover(session: DumpSession, name: str, obj: drgn.Object) -> str:
    prog = session.prog
    address = obj.address_
    where = ""
    if address is not None:
        where = f" at `{address:#x}` (module {_module_of(prog, address)})"
    header = f"**{name}**: `{obj.type_.type_name()}`{where}"
    body = "\n".join(variable_value_lines(name, obj))
    link = _command_link("Add to Watch", WATCH_COMMAND, name)
    return f"{header}\n\n```c\n{body}\n```\n\n{link}"


def _type_hover(session: DumpSession, type_: drgn.Type) -> str:
    prog = session.prog
    unaliased = type_.unaliased()
    size = drgn.sizeof(unaliased) if unaliased.is_complete() else None
    title = f"**{type_.type_name()}**"
    if type_.kind == drgn.TypeKind.TYPEDEF:
        title += f" → `{unaliased.type_name()}`"
    if unaliased.kind in _STRUCTLIKE:
        if not unaliased.is_complete():
            return f"{title}: incomplete type (no definition in the debug info)"
        kind = "union" if unaliased.kind == drgn.TypeKind.UNION else "struct"
        spelled = unaliased.tag or (type_.type_name() if type_.kind == drgn.TypeKind.TYPEDEF else None)
        if spelled is None:
            return f"{title}: size {size} bytes (anonymous {kind})"
        layout = format_struct_offsets(prog, spelled, kind)
        return f"{title}: size {size} bytes\n\n```c\n{layout.rstrip()}\n```"
    if unaliased.kind == drgn.TypeKind.ENUM:
        lines = [f"{unaliased.type_name()} {{"]
        for enumerator in unaliased.enumerators or ():
            lines.append(f"  {enumerator.name} = {enumerator.value},")
        lines.append("}")
        lines.append(f"SIZE: {size}")
        return f"{title}: size {size} bytes\n\n```c\n" + "\n".join(lines) + "\n```"
    return f"{title}: size {size} bytes" if size is not None else title


def _function_hover(session: DumpSession, name: str, address: int | None) -> str:
    prog = session.prog
    parts = [f"**{name}**()"]
    if address is not None:
        parts[0] += f" at `{address:#x}` (module {_module_of(prog, address)})"
    tasks = session.tasks_in(name)
    counts = Counter(task.state for task in tasks)
    total = len(tasks)
    if total:
        pids = ", ".join(f"{t.pid} {t.comm}" for t in tasks[:8]) + (" …" if len(tasks) > 8 else "")
        parts.append(
            f"On the stack of **{total}** task{'s' if total != 1 else ''} ({describe_counts(counts)}): {pids}"
        )
    else:
        parts.append("On the stack of no task.")
    return "\n\n".join(parts)


def _find_type(prog: drgn.Program, identifier: Identifier, hint: str | None) -> drgn.Type | None:
    spellings = (
        [f"{identifier.tag_keyword} {identifier.name}"]
        if identifier.tag_keyword
        else [
            identifier.name,
            f"struct {identifier.name}",
            f"union {identifier.name}",
            f"enum {identifier.name}",
        ]
    )
    for spelled in spellings:
        for filename in (hint, None) if hint else (None,):
            try:
                return prog.type(spelled, filename) if filename else prog.type(spelled)
            except LookupError:
                continue
    return None


def _find_object(prog: drgn.Program, name: str, hint: str | None) -> drgn.Object | None:
    for filename in (hint, None) if hint else (None,):
        try:
            return prog.object(name, drgn.FindObjectFlags.ANY, filename)
        except LookupError:
            continue
        except ValueError:
            continue
    return None


def hover_text(session: DumpSession, identifier: Identifier, document_path: str | None) -> str | None:
    """Return the Markdown hover for ``identifier`` in the document at ``document_path``, or ``None``."""
    if identifier.is_keyword or identifier.is_member:
        return None
    prog = session.prog
    hint = session.paths.dwarf_hint(document_path) if document_path else None
    if identifier.tag_keyword:
        type_ = _find_type(prog, identifier, hint)
        return _type_hover(session, type_) if type_ is not None else None
    obj = _find_object(prog, identifier.name, hint)
    if obj is not None:
        kind = obj.type_.kind
        if kind == drgn.TypeKind.FUNCTION:
            return _function_hover(session, identifier.name, obj.address_)
        if obj.address_ is None and not obj.absent_:  # an enumerator or other constant
            value = obj.value_() if obj.type_.unaliased_kind() == drgn.TypeKind.ENUM else render(obj).value
            return f"**{identifier.name}** = `{value}` ({obj.type_.type_name()})"
        return _variable_hover(session, identifier.name, obj)
    if session.tasks_in(identifier.name):  # assembly, or a function without DWARF
        try:
            address: int | None = prog.symbol(identifier.name).address
        except LookupError:
            address = None
        return _function_hover(session, identifier.name, address)
    type_ = _find_type(prog, identifier, hint)
    if type_ is not None:
        return _type_hover(session, type_)
    return None
