"""``scopes``, ``variables``, ``evaluate``, and the refused ``setVariable``/``setExpression``.

Every expandable value gets a number from one session table ``HandleTable("variablesReference")``
keyed by ``(parent handle, child key)``: expanding the same path twice gives the same number and the
table does not grow while a user clicks around. The table stores descriptors (a scope of a frame,
or a :class:`~vmcore_dap.dump.values.render.Variable`); children are computed only when asked.
Formatting (``format.hex``) is applied per request, so it never invalidates a handle. A value read
from a page an ELF dump left out (makedumpfile -E keeps it only as zeros) is followed by the reason,
since drgn reads it without a fault and ``0`` alone would look like the kernel's data.

``evaluate`` takes C for ``hover``, ``watch``, ``variables`` and ``clipboard``
(:mod:`vmcore_dap.dump.values.cexpr`) and drgn Python for ``repl`` (:mod:`vmcore_dap.dump.console.repl`).
Before Python, a ``repl`` line is offered to each function of :data:`REPL_INTERCEPTORS` (the crash
command console registers itself there); a line starting with ``%py`` always goes to Python.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import drgn

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.handles import HandleTable
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.stacks import scopes
from vmcore_dap.dump.stacks.service import FrameRef
from vmcore_dap.dump.structures import views
from vmcore_dap.dump.values import render
from vmcore_dap.dump.values.render import Variable
from vmcore_dap.dump.values.zero_fill import with_zero_fill_note, with_zero_fill_notes
from vmcore_dap.errors import InvalidArguments, ReadOnlyError, UserError
from vmcore_dap.handlers.dump_state import current_dump, lookup_frame

if TYPE_CHECKING:
    from vmcore_dap.dump.console.repl import PythonRepl

__all__ = ["REPL_INTERCEPTORS", "ReplInterceptor", "VariablesState", "PY_PREFIX", "value_variable"]

#: ``interceptor(session, expression, frame_id)`` returns an ``evaluate`` body if it handled the
#: line, or ``None`` to pass it on. Tried in order before drgn Python, for context ``repl`` only.
ReplInterceptor = Callable[[Session, str, "int | None"], "dict[str, Any] | None"]
REPL_INTERCEPTORS: list[ReplInterceptor] = []

#: A console line starting with this is drgn Python, whatever the interceptors would say.
PY_PREFIX = "%py"

#: Contexts whose expressions are C (everything but ``repl``).
_C_CONTEXTS = frozenset({"hover", "watch", "variables", "clipboard"})
#: ``clipboard`` copies may be long; other contexts show one line.
_CLIPBOARD_STRING = 16384


@dataclass(frozen=True)
class _ScopeEntry:
    frame_id: int
    scope: str


@dataclass(frozen=True)
class _ValueEntry:
    variable: Variable


class VariablesState:
    """Per-session variables references and the Python console's namespace."""

    def __init__(self) -> None:
        self.refs: HandleTable[_ScopeEntry | _ValueEntry] = HandleTable("variablesReference")
        self._repl: PythonRepl | None = None
        self.repl_results = itertools.count(1)

    def repl(self, prog: drgn.Program) -> PythonRepl:
        """The session's Python namespace (created on first use)."""
        if self._repl is None:
            from vmcore_dap.dump.console.repl import PythonRepl  # imported on first use: the start waits less

            self._repl = PythonRepl(prog)
        return self._repl


def value_variable(state: VariablesState, reference: int) -> Variable:
    """The value behind a ``variablesReference`` (not a scope).

    :raises InvalidArguments: for a scope's reference.
    """
    entry = state.refs.get(reference)
    if not isinstance(entry, _ValueEntry):
        raise InvalidArguments(f"variablesReference {reference} is a scope, not a value")
    return entry.variable


def _prog(session: Session) -> drgn.Program:
    return current_dump(session).prog


def _frame(session: Session, frame_id: int) -> FrameRef:
    return lookup_frame(session, frame_id)


# -- shaping ----------------------------------------------------------------------------------------


def _hex(args: Args) -> bool:
    fmt = args.obj("format")
    value = fmt.get("hex", False)
    if not isinstance(value, bool):
        raise InvalidArguments(f"{args.command}: 'format.hex' must be a boolean")
    return value


def _with_type(session: Session, body: dict[str, Any], key: str, type_text: str) -> None:
    if session.client.get("supportsVariableType"):
        body[key] = type_text


def _shape(
    session: Session, parent: int, variable: Variable, rendered: render.Rendered
) -> tuple[int, dict[str, Any]]:
    """Common fields of a ``Variable`` and an ``evaluate`` body; returns the reference too."""
    state = session.component(VariablesState)
    reference = 0
    fields: dict[str, Any] = {}
    if rendered.expandable:
        reference = state.refs.intern((parent, variable.stable_key), lambda: _ValueEntry(variable))
        if rendered.named:
            fields["namedVariables"] = rendered.named
        if rendered.indexed:
            fields["indexedVariables"] = rendered.indexed
    if rendered.memory_reference is not None:
        fields["memoryReference"] = rendered.memory_reference
    return reference, fields


def _variable_body(
    session: Session, parent: int, variable: Variable, hex_: bool, rendered: render.Rendered | None = None
) -> dict[str, Any]:
    if rendered is None:
        rendered = render.render(variable.obj, hex_=hex_ or variable.always_hex)
    rendered = views.present(variable, rendered)
    reference, fields = _shape(session, parent, variable, rendered)
    value = with_zero_fill_note(rendered.value, variable.obj)
    body: dict[str, Any] = {"name": variable.name, "value": value, "variablesReference": reference}
    _with_type(session, body, "type", rendered.type)
    if variable.expr is not None:
        body["evaluateName"] = variable.expr
    body.update(fields)
    body["presentationHint"] = {"attributes": ["readOnly"]}
    return body


def _scalar_page_bodies(
    session: Session, prog: drgn.Program, page: render.ScalarPage
) -> list[dict[str, Any]]:
    """The ``Variable`` bodies of an array page of scalars, field for field and in the same key order
    as :func:`_variable_body` makes them one at a time (none is expandable: ``variablesReference``
    0), built column by column."""
    columns: dict[str, Iterable[Any]] = {
        "name": page.names(),
        "value": with_zero_fill_notes(prog, page.address, page.size, page.values),
        "variablesReference": itertools.repeat(0),
    }
    if session.client.get("supportsVariableType"):
        columns["type"] = itertools.repeat(page.type)
    evaluate_names = page.evaluate_names()
    if evaluate_names is not None:
        columns["evaluateName"] = evaluate_names
    columns["memoryReference"] = page.memory_references()
    # One hint object for the whole page: bodies are only serialized, never changed.
    columns["presentationHint"] = itertools.repeat({"attributes": ["readOnly"]})
    keys = tuple(columns)
    rows = zip(*columns.values(), strict=False)  # the repeated columns are endless; the lists are not
    return [dict(zip(keys, row, strict=True)) for row in rows]


# -- requests ---------------------------------------------------------------------------------------


@registry.request("scopes")
def scopes_request(session: Session, args: Args) -> dict[str, Any]:
    """List a frame's scopes: Arguments, Locals, Registers, Kernel (their contents come later)."""
    frame_id = args.integer("frameId")
    ref = _frame(session, frame_id)
    prog = _prog(session)
    state = session.component(VariablesState)
    result = []
    for scope in scopes.frame_scopes(prog, ref):
        entry = _ScopeEntry(frame_id, scope.name)
        reference = state.refs.intern((0, f"scope:{frame_id}:{scope.name}"), lambda e=entry: e)  # type: ignore[misc]
        body: dict[str, Any] = {
            "name": scope.name,
            "variablesReference": reference,
            "expensive": scope.expensive,
        }
        if scope.presentation_hint:
            body["presentationHint"] = scope.presentation_hint
        result.append(body)
    return {"scopes": result}


@registry.request("variables")
def variables_request(session: Session, args: Args) -> dict[str, Any]:
    """Children of a scope or a value, with DAP paging (``start``/``count``) and ``filter``."""
    reference = args.integer("variablesReference")
    filter_ = args.opt_string("filter")
    if filter_ not in (None, "indexed", "named"):
        raise InvalidArguments(f"variables: 'filter' must be 'indexed' or 'named' (got '{filter_}')")
    start = args.integer("start", 0, minimum=0)
    count = args.integer("count", 0, minimum=0)
    hex_ = _hex(args)
    state = session.component(VariablesState)
    entry = state.refs.get(reference)
    noted = False
    if isinstance(entry, _ScopeEntry):
        if filter_ == "indexed":
            return {"variables": []}
        ref = _frame(session, entry.frame_id)
        children = scopes.scope_variables(_prog(session), ref, entry.scope)
        children = children[start : start + count] if count else children[start:]
        shown: list[tuple[Variable, render.Rendered | None]] = [(child, None) for child in children]
    else:
        structured = views.children(entry.variable, start=start, count=count or None, filter_=filter_)
        page = None
        if structured is None:
            page = render.scalar_page(
                entry.variable, start=start, count=count or None, filter_=filter_, hex_=hex_
            )
        if page is not None:
            session.check_cancelled()
            return {"variables": _scalar_page_bodies(session, entry.variable.obj.prog_, page)}
        if structured is not None:
            shown = [(child, None) for child in structured]
        else:
            kids = render.children(entry.variable, start=start, count=count or None, filter_=filter_)
            # Noted before they are rendered: a note remembers the symbol drgn found for a pointer,
            # which the value's ` <symbol>` would otherwise look up again (a scan of drgn's table).
            views.note_pointers(kid.obj for kid in kids)
            noted = True
            shown = list(
                render.render_children(
                    entry.variable, start=start, count=count or None, filter_=filter_, hex_=hex_, kids=kids
                )
            )
    if not noted:
        views.note_pointers(child.obj for child, _ in shown)  # one batch for the page's pointer notes
    result = []
    for index, (child, rendered) in enumerate(shown):
        if index % 256 == 0:
            session.check_cancelled()
        result.append(_variable_body(session, reference, child, hex_, rendered))
    return {"variables": result}


@registry.request("evaluate")
def evaluate_request(session: Session, args: Args) -> dict[str, Any]:
    """Evaluate C (hover, watch, variables, clipboard) or drgn Python (repl) in a frame."""
    expression = args.string("expression")
    frame_id = args.opt_integer("frameId")
    context = args.opt_string("context") or "repl"
    hex_ = _hex(args)
    if context not in _C_CONTEXTS:
        return _evaluate_repl(session, expression, frame_id, hex_)
    prog = _prog(session)
    ref = _frame(session, frame_id) if frame_id is not None else None
    text = expression.strip()
    lookup = scopes.frame_lookup(ref)
    # The C expression parser (14 dataclasses: 6-12 ms of the start) and container_of support are
    # imported on the first C expression: the first picture (stop, stack, variables) needs neither.
    from vmcore_dap.dump.structures.entry_types import container_of_expression
    from vmcore_dap.dump.values import cexpr

    try:
        obj = cexpr.evaluate(prog, text, lookup)
    except drgn.FaultError as exc:
        raise UserError(f"{text}: {render.fault_text(prog, exc.address)[1:-1]}") from None
    container = container_of_expression(prog, text, lambda left: cexpr.evaluate(prog, left, lookup))
    variable = Variable(text, obj, text, container=container)
    return _evaluate_body(session, frame_id, variable, hex_, context)


def _evaluate_body(
    session: Session, frame_id: int | None, variable: Variable, hex_: bool, context: str
) -> dict[str, Any]:
    rendered = views.present(variable, render.render(variable.obj, hex_=hex_))
    key = f"evaluate:{frame_id}:{variable.expr if variable.expr is not None else id(variable.obj)}"
    keyed = Variable(key, variable.obj, variable.expr, container=variable.container)
    reference, fields = _shape(session, 0, keyed, rendered)
    result = with_zero_fill_note(rendered.value, variable.obj)
    if context == "clipboard":
        result = render.full_string(variable.obj, rendered, _CLIPBOARD_STRING)
    body: dict[str, Any] = {"result": result, "variablesReference": reference}
    _with_type(session, body, "type", rendered.type)
    body.update(fields)
    return body


def _evaluate_repl(session: Session, expression: str, frame_id: int | None, hex_: bool) -> dict[str, Any]:
    stripped = expression.lstrip()
    forced_python = stripped == PY_PREFIX or stripped.startswith(PY_PREFIX + " ")
    if forced_python:
        expression = stripped[len(PY_PREFIX) :].strip()
    else:
        for interceptor in REPL_INTERCEPTORS:
            handled = interceptor(session, expression, frame_id)
            if handled is not None:
                return handled
    if not expression.strip():
        return {"result": "", "variablesReference": 0}
    prog = _prog(session)
    ref = _frame(session, frame_id) if frame_id is not None else None
    state = session.component(VariablesState)
    result = state.repl(prog).run(expression, ref)
    if result.obj is None:
        return {"result": result.text, "variablesReference": 0}
    if result.text:
        session.output(result.text if result.text.endswith("\n") else result.text + "\n")
    rendered = views.present(Variable("", result.obj), render.render(result.obj, hex_=hex_))
    # Python state changes between inputs: each result gets its own handle.
    key = f"repl:{next(state.repl_results)}"
    reference, fields = _shape(session, 0, Variable(key, result.obj), rendered)
    body: dict[str, Any] = {"result": rendered.value, "variablesReference": reference}
    _with_type(session, body, "type", rendered.type)
    body.update(fields)
    return body


@registry.request("setVariable")
def set_variable(session: Session, args: Args) -> None:
    """Refuse: a crash dump is read-only (the capability is not advertised)."""
    raise ReadOnlyError("setVariable")


@registry.request("setExpression")
def set_expression(session: Session, args: Args) -> None:
    """Refuse: a crash dump is read-only (the capability is not advertised)."""
    raise ReadOnlyError("setExpression")
