"""The C identifier under the cursor and what the text around it says it is.

No C parser: the few facts the server needs are read off the line. ``struct foo``/``union foo``/
``enum foo`` name a type, as does the name in 7.x's ``context_lock_struct(foo)``; a name after ``.``
or ``->`` is a member (never looked up as a global, so hovering ``dev->head`` does not show some
unrelated global ``head``); a name followed by ``(`` is used as a function.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Identifier", "identifier_at", "function_definitions"]

_WORD = re.compile(r"[A-Za-z_]\w*")
#: What changes the brace depth or ends a declaration (scanned with the regex engine: a loop over every
#: character of kernel/sched/core.c took 0.09 s, most of the first code lens's own work).
_BRACES = re.compile(r"[{};]")
_TAG_KEYWORD = re.compile(r"\b(struct|union|enum)\s+$")
#: The kernel's lock types are defined through ``context_lock_struct(name) {`` since Clang's context
#: analysis came in (7.x; include/linux/compiler-context-analysis.h): its first argument is a struct tag.
_STRUCT_MACRO = re.compile(r"\bcontext_lock_struct\(\s*$")
_MEMBER_ACCESS = re.compile(r"(?:\.|->)\s*$")
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline "
    "int long register restrict return short signed sizeof static struct switch typedef union "
    "unsigned void volatile while _Bool bool typeof __typeof__ asm __asm__".split()
)


@dataclass(frozen=True)
class Identifier:
    """A name in a document.

    :param tag_keyword: ``struct``, ``union`` or ``enum`` when the name follows one.
    :param is_member: the name follows ``.`` or ``->``.
    :param is_call: the name is followed by ``(``.
    :param start: character offset (UTF-16 code units equal code points for C identifiers).
    """

    name: str
    line: int
    start: int
    end: int
    tag_keyword: str | None = None
    is_member: bool = False
    is_call: bool = False

    @property
    def is_keyword(self) -> bool:
        """Whether the name is a C keyword (nothing to look up)."""
        return self.name in _C_KEYWORDS


def identifier_at(lines: Sequence[str], line: int, character: int) -> Identifier | None:
    """Return the identifier that covers (``line``, ``character``), or ``None``."""
    if not 0 <= line < len(lines):
        return None
    text = lines[line]
    for match in _WORD.finditer(text):
        if match.start() <= character <= match.end() and not text[: match.start()].endswith(("0x", "0X")):
            if match.start() > 0 and text[match.start() - 1].isdigit():
                return None
            before = text[: match.start()]
            keyword = _TAG_KEYWORD.search(before)
            tag = keyword.group(1) if keyword else "struct" if _STRUCT_MACRO.search(before) else None
            after = text[match.end() :]
            return Identifier(
                name=match.group(0),
                line=line,
                start=match.start(),
                end=match.end(),
                tag_keyword=tag,
                is_member=bool(_MEMBER_ACCESS.search(before)),
                is_call=after.lstrip().startswith("("),
            )
    return None


def function_definitions(lines: Sequence[str], names: set[str]) -> dict[str, int]:
    """Find the line where each function of ``names`` is defined in a C file, by the kernel's style.

    A definition is the name followed by ``(`` at depth 0 of braces, and the next ``{`` after its
    closing parenthesis comes before any ``;`` (a prototype ends with ``;``).
    """
    found: dict[str, int] = {}
    depth = 0
    pending: tuple[str, int] | None = None
    in_comment = False
    continued = False
    for number, text in enumerate(lines):
        if continued or text.lstrip().startswith("#"):  # preprocessor lines may hold braces
            continued = text.rstrip().endswith("\\")
            continue
        if in_comment:
            close = text.find("*/")
            if close < 0:
                continue
            text = " " * (close + 2) + text[close + 2 :]
            in_comment = False
        code = _strip_comments_and_strings(text)
        opened = code.find("/*")
        if opened >= 0:
            code = code[:opened]
            in_comment = True
        if depth == 0:
            for match in _WORD.finditer(code):
                if match.group(0) in names and code[match.end() :].lstrip().startswith("("):
                    pending = (match.group(0), number)
                    break
        for brace in _BRACES.finditer(code):
            char = brace.group()
            if char == "{":
                if depth == 0 and pending is not None and pending[0] not in found:
                    found[pending[0]] = pending[1]
                depth += 1
                pending = None
            elif char == "}":
                depth = max(depth - 1, 0)
            elif char == ";" and depth == 0:
                pending = None
    return found


_COMMENT_OR_STRING = re.compile(r'//.*$|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')


def _strip_comments_and_strings(text: str) -> str:
    return _COMMENT_OR_STRING.sub(" ", text)
