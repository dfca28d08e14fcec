"""Completions for the console: crash command names, their flags, symbols, and member paths.

One function, :func:`complete`, answers "what can follow the text before the cursor?". It works on
types only (a member path like ``task->mm->`` is resolved through DWARF types, never by reading
memory), so it is fast and cannot fault on a partial dump.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass

import drgn
from drgn import Type, TypeKind

from vmcore_dap.dump.console.commands import command_flags, command_names

__all__ = ["Completion", "complete", "member_names", "SymbolIndex"]

#: At most this many items go back to the client (VS Code filters further as the user types).
MAX_ITEMS = 200

_MEMBER_PATH = re.compile(r"([A-Za-z_]\w*(?:\s*(?:\.|->)\s*[A-Za-z_]\w*)*)\s*(\.|->)\s*(\w*)$")
_WORD = re.compile(r"[\w$.]*$")


@dataclass(frozen=True)
class Completion:
    """One completion item.

    :param label: the text to insert.
    :param kind: DAP ``CompletionItemType`` (``keyword``, ``property``, ``function``, ``variable``).
    :param start: 0-based offset in the line where the replaced text starts.
    :param length: how many characters of the line it replaces.
    """

    label: str
    kind: str
    start: int
    length: int
    detail: str | None = None


class SymbolIndex:
    """A sorted list of the program's symbol names, for prefix search (built once per program)."""

    def __init__(self, prog: drgn.Program) -> None:
        names: set[str] = set()
        try:
            for symbol in prog.symbols():
                if symbol.name:
                    names.add(symbol.name)
        except (LookupError, ValueError):
            pass
        self.names = sorted(names)

    def with_prefix(self, prefix: str, limit: int = MAX_ITEMS) -> list[str]:
        """Names starting with ``prefix``, at most ``limit`` of them."""
        i = bisect.bisect_left(self.names, prefix)
        out: list[str] = []
        while i < len(self.names) and self.names[i].startswith(prefix) and len(out) < limit:
            out.append(self.names[i])
            i += 1
        return out


def _struct_of(t: Type) -> Type | None:
    """The struct/union that ``.`` or ``->`` on a value of type ``t`` reaches (through one pointer)."""
    t = t.unaliased()
    if t.kind == TypeKind.POINTER:
        t = t.type.unaliased()
    if t.kind in (TypeKind.STRUCT, TypeKind.UNION, TypeKind.CLASS):
        return t
    return None


def member_names(t: Type) -> list[str]:
    """Member names of a struct/union, with anonymous members' members flattened in (as C allows)."""
    out: list[str] = []
    for member in t.members or ():
        if member.name is None:
            inner = _struct_of(member.type)
            if inner is not None:
                out.extend(member_names(inner))
        else:
            out.append(member.name)
    return out


def _root_type(prog: drgn.Program, name: str, frame: drgn.StackFrame | None) -> Type | None:
    if frame is not None:
        try:
            return frame[name].type_
        except (KeyError, LookupError, drgn.ObjectAbsentError):
            pass
    try:
        return prog[name].type_
    except (KeyError, LookupError):
        pass
    for spelled in (f"struct {name}", f"union {name}", name):  # `struct task_struct.` in crash's syntax
        try:
            return prog.type(spelled)
        except LookupError:
            continue
    return None


def _path_type(prog: drgn.Program, path: str, frame: drgn.StackFrame | None) -> Type | None:
    parts = re.split(r"\s*(?:\.|->)\s*", path)
    t = _root_type(prog, parts[0], frame)
    for part in parts[1:]:
        if t is None:
            return None
        struct = _struct_of(t)
        if struct is None:
            return None
        try:
            t = struct.member(part).type
        except LookupError:
            return None
    return t


def _items(labels: Iterable[str], kind: str, start: int, length: int) -> list[Completion]:
    return [Completion(label, kind, start, length) for label in labels]


def complete(
    prog: drgn.Program,
    line: str,
    column: int,
    *,
    frame: drgn.StackFrame | None = None,
    symbols: SymbolIndex | None = None,
) -> list[Completion]:
    """Complete the console line at ``column`` (0-based offset of the cursor in ``line``).

    :param frame: the selected stack frame (its locals complete member paths first).
    :param symbols: a :class:`SymbolIndex` of ``prog``, kept by the caller between requests.
    """
    before = line[:column]
    # 1. A member path: task->mm->  /  init_task.comm  /  struct task_struct.
    m = _MEMBER_PATH.search(before)
    if m is not None:
        t = _path_type(prog, m.group(1), frame)
        struct = _struct_of(t) if t is not None else None
        if struct is not None:
            prefix = m.group(3)
            start = column - len(prefix)
            names = [n for n in member_names(struct) if n.startswith(prefix)]
            return _items(names[:MAX_ITEMS], "property", start, len(prefix))
    word = _WORD.search(before)
    prefix = word.group(0) if word else ""
    start = column - len(prefix)
    head = before[:start]
    # 2. The first word: a command name.
    if not head.strip():
        names = [n for n in command_names(prog) if n.startswith(prefix) and n != "*"]
        if "%py".startswith(prefix) and prefix:
            names.append("%py")
        return _items(names, "keyword", start, len(prefix))
    # 3. A flag of the command.
    command = head.split()[0] if not head.lstrip().startswith("%py") else None
    flag = re.search(r"(?:^|\s)(-[\w-]*)$", before)
    if command is not None and flag is not None:
        text = flag.group(1)
        return _items(
            (f for f in command_flags(prog, command) if f.startswith(text)),
            "keyword",
            column - len(text),
            len(text),
        )
    # 4. Locals of the selected frame, then symbols.
    out: list[Completion] = []
    if frame is not None and prefix:
        try:
            local_names = [n for n in frame.locals() if n.startswith(prefix)]
        except (LookupError, ValueError):
            local_names = []
        out.extend(_items(sorted(set(local_names)), "variable", start, len(prefix)))
    if len(prefix) >= 2:
        index = symbols if symbols is not None else SymbolIndex(prog)
        seen = {c.label for c in out}
        out.extend(
            _items((n for n in index.with_prefix(prefix) if n not in seen), "function", start, len(prefix))
        )
    return out[:MAX_ITEMS]
