"""The Debug Console's Python: drgn expressions and statements against the dump.

Each session has one :class:`PythonRepl` whose namespace persists between inputs (so ``t = ...`` then
``t.comm`` works). Every input also sees ``prog``, ``drgn`` and its public names, the names of
``drgn.helpers.linux``, and for the selected frame ``frame``, ``task``, and the frame's locals by name;
a name the user assigns takes precedence over a local of the same name, and Python's builtins over
both (a C parameter called ``len`` is ``frame['len']``). Printed output is captured and returned with
the value, so nothing reaches the adapter's stdout (which carries DAP).
"""

from __future__ import annotations

import builtins
import contextlib
import io
import traceback
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import drgn

from vmcore_dap.dump.stacks.service import FrameRef
from vmcore_dap.errors import UserError

__all__ = ["PythonRepl", "ReplResult"]

#: Python's builtins win over C locals of the same name (``len``, ``list``, ``type``): the frame's
#: ``len`` is still there as ``frame['len']``.
_BUILTIN_NAMES = frozenset(dir(builtins))
#: Longest text returned for one input; the rest is cut with a note.
_MAX_OUTPUT = 200_000


@dataclass(frozen=True)
class ReplResult:
    """What one input produced: printed text plus the value, if it was an expression.

    :param obj: the value when it is a drgn ``Object`` (so the client can expand it).
    """

    text: str
    obj: drgn.Object | None = None


class _FrameScope(MutableMapping[str, Any]):
    """Exec's local mapping: frame locals on read, writes go to the persistent globals."""

    def __init__(self, globals_: dict[str, Any], assigned: set[str], frame: drgn.StackFrame | None) -> None:
        self._globals = globals_
        self._assigned = assigned
        self._frame = frame

    def __getitem__(self, name: str) -> Any:
        if name in self._assigned or self._frame is None or name in _BUILTIN_NAMES:
            raise KeyError(name)
        try:
            return self._frame[name]
        except LookupError:
            raise KeyError(name) from None

    def __setitem__(self, name: str, value: Any) -> None:
        self._globals[name] = value
        self._assigned.add(name)

    def __delitem__(self, name: str) -> None:
        self._assigned.discard(name)
        del self._globals[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._frame.locals() if self._frame is not None else ())

    def __len__(self) -> int:
        return len(self._frame.locals()) if self._frame is not None else 0


class PythonRepl:
    """A persistent drgn Python namespace for one program.

    :param prog: the dump's program.
    """

    def __init__(self, prog: drgn.Program) -> None:
        import drgn.helpers.linux as linux_helpers

        self.prog = prog
        self.globals: dict[str, Any] = {"__name__": "__vmcore_dap_repl__", "__builtins__": __builtins__}
        for name in getattr(linux_helpers, "__all__", ()):
            self.globals[name] = getattr(linux_helpers, name)
        for name in getattr(drgn, "__all__", ()):  # as drgn's own console: Object, cast, FaultError...
            self.globals[name] = getattr(drgn, name)
        self.globals.update({"drgn": drgn, "prog": prog})
        self._assigned: set[str] = set()

    def run(self, source: str, ref: FrameRef | None = None) -> ReplResult:
        """Run one input: an expression's value is returned, a statement's output is.

        :raises UserError: for a syntax error or an exception, with Python's own one-line summary.
        """
        frame = ref.frame if ref is not None else None
        if ref is not None:
            self.globals["task"] = ref.task
            self.globals["frame"] = frame
        scope = _FrameScope(self.globals, self._assigned, frame)
        try:
            code = compile(source, "<repl>", "eval")
            is_expression = True
        except SyntaxError:
            try:
                code = compile(source, "<repl>", "exec")
            except SyntaxError as exc:
                raise UserError(
                    f"Python syntax error: {exc.msg} (line {exc.lineno}, column {exc.offset})"
                ) from None
            is_expression = False
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                value = eval(code, self.globals, scope)  # noqa: S307 - this is the user's debugger console
        except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
            summary = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            printed = out.getvalue()
            raise UserError(f"{printed}{summary}") from None
        text = out.getvalue()
        if len(text) > _MAX_OUTPUT:
            text = text[:_MAX_OUTPUT] + f"\n... ({len(text) - _MAX_OUTPUT} more characters not shown)"
        if not is_expression or value is None:
            return ReplResult(text.rstrip("\n"))
        self.globals["_"] = value
        if isinstance(value, drgn.Object):
            return ReplResult(text, value)
        return ReplResult(text + repr(value))
