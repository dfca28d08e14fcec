"""Go to definition and workspace symbols: from a name to a file and line on this machine.

Functions go through drgn's line table: the function's entry address has the line of its opening
brace, and the definition's name is found a few lines above it in the mapped file (the kernel style
puts the name, and perhaps the parameters, on the lines before ``{``). Types, globals (also those
a kernel macro or the linker script defines) and enumerators go through the ctags index
(:mod:`.ctags`), because drgn 0.3 exposes no declaration lines (no ``DW_AT_decl_file``/``decl_line``
on objects or types).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import drgn

from vmcore_dap.lsp.ctags import Tag
from vmcore_dap.lsp.dump_session import DumpSession
from vmcore_dap.lsp.identifiers import Identifier
from vmcore_dap.lsp.paths import code_location

__all__ = ["Definition", "find_definitions", "function_definition", "search_symbols", "SymbolHit"]

_SIGNATURE_LOOKBACK = 40
_MACRO_LOOKBACK = 8
_TAG_KINDS = {"struct": {"struct"}, "union": {"union"}, "enum": {"enum"}}
_MAX_DEFINITIONS = 20


@dataclass(frozen=True)
class Definition:
    """A place in a local file; ``line`` and ``column`` are 0-based (LSP positions)."""

    path: str
    line: int
    column: int
    length: int


@functools.lru_cache(maxsize=128)
def _read_lines(path: str) -> list[str]:
    """The lines of a source file (cached: sources do not change under a post-mortem session)."""
    try:
        return Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []


def _name_line(path: str, name: str, near: int) -> Definition:
    """Find ``name(`` at or above 1-based line ``near``; fall back to ``near`` itself."""
    lines = _read_lines(path)
    pattern = re.compile(rf"\b{re.escape(name)}\s*\(")
    last = min(near, len(lines))
    for number in range(last, max(last - _SIGNATURE_LOOKBACK, 0), -1):
        match = pattern.search(lines[number - 1])
        if match:
            return Definition(path, number - 1, match.start(), len(name))
    return Definition(path, max(near - 1, 0), 0, 0)


def function_definition(session: DumpSession, name: str) -> Definition | None:
    """Locate function ``name`` through its entry address and the line table."""
    prog = session.prog
    address: int | None = None
    try:
        obj = prog.function(name)
        address = obj.address_
    except (LookupError, ValueError):
        try:
            symbol = prog.symbol(name)
            if symbol.kind == drgn.SymbolKind.FUNC:
                address = symbol.address
        except LookupError:
            return None
    if address is None:
        return None
    location = code_location(prog, address)
    local = session.paths.local(location[0]) if location is not None else None
    if local is None or location is None:
        return None
    return _name_line(local, name, location[1])


def find_definitions(
    session: DumpSession, identifier: Identifier, wait_for_index: float = 0.0
) -> list[Definition]:
    """Return where ``identifier`` is defined (functions first through DWARF, then the ctags index)."""
    if identifier.is_keyword or identifier.is_member:
        return []
    if identifier.tag_keyword is None:
        found = function_definition(session, identifier.name)
        if found is not None:
            return [found]
    kinds = _TAG_KINDS.get(identifier.tag_keyword or "")
    tags = _prefer_arch_linker_script(session.find_tags(identifier.name, kinds, timeout=wait_for_index))
    if identifier.tag_keyword is None:
        # A typedef or variable definition beats a same-named struct tag when no keyword was written.
        tags.sort(key=lambda tag: tag.kind in ("struct", "union", "enum"))
    definitions: list[Definition] = []
    for tag in tags:
        definition = _tag_definition(tag)
        if definition not in definitions:
            definitions.append(definition)
    return definitions[:_MAX_DEFINITIONS]


def _prefer_arch_linker_script(tags: list[Tag]) -> list[Tag]:
    """Drop the generic linker-script header's definitions of a symbol the arch's script defines.

    ``include/asm-generic/vmlinux.lds.h`` only offers macros (``BSS_SECTION`` defines
    ``__bss_stop``) that an architecture's ``vmlinux.lds.S`` may or may not use; when that script
    assigns the symbol itself, the header's assignment is not the one linked.
    """
    if not any(tag.kind == "symbol" and tag.path.name == "vmlinux.lds.S" for tag in tags):
        return tags
    return [tag for tag in tags if not (tag.kind == "symbol" and tag.path.name == "vmlinux.lds.h")]


def _tag_definition(tag: Tag) -> Definition:
    """The tag's line, with the name's column; found a few lines up if ctags gave a later line.

    ctags reports a macro invocation spanning lines (``DEFINE_DEBUGFS_ATTRIBUTE(fops, …,\n …);``)
    on its last line, so the name is looked for from there upwards. A generated name
    (``DEFINE_SHOW_ATTRIBUTE(foo)`` defines ``foo_fops``) is not in the text: the tag's line stands.
    """
    path = str(tag.path)
    lines = _read_lines(path)
    pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(tag.name)}(?![A-Za-z0-9_])")
    last = min(tag.line, len(lines))
    for number in range(last, max(last - _MACRO_LOOKBACK, 0), -1):
        match = pattern.search(lines[number - 1])
        if match:
            return Definition(path, number - 1, match.start(), len(tag.name))
    return Definition(path, tag.line - 1, 0, 0)


@dataclass(frozen=True)
class SymbolHit:
    """A kernel or module symbol with where it is defined."""

    name: str
    is_function: bool
    module: str
    address: int
    definition: Definition


def _symbol_table(session: DumpSession) -> list[drgn.Symbol]:
    cache = session.prog.cache
    if "vmcore_dap_lsp_symbols" not in cache:
        symbols = [
            symbol
            for symbol in session.prog.symbols()
            if symbol.kind in (drgn.SymbolKind.FUNC, drgn.SymbolKind.OBJECT) and symbol.name
        ]
        cache["vmcore_dap_lsp_symbols"] = sorted(symbols, key=lambda s: s.name)
    table: list[drgn.Symbol] = cache["vmcore_dap_lsp_symbols"]
    return table


def search_symbols(session: DumpSession, query: str, limit: int = 100) -> list[SymbolHit]:
    """Find kernel and module symbols whose name contains ``query`` (case-insensitive), best first.

    Exact matches come first, then prefixes, then other substrings; symbols with no local source
    are left out (a workspace symbol must have a location).
    """
    needle = query.lower()
    if len(needle) < 2:
        return []
    ranked: list[tuple[int, int, drgn.Symbol]] = []
    for symbol in _symbol_table(session):
        lowered = symbol.name.lower()
        position = lowered.find(needle)
        if position < 0:
            continue
        rank = 0 if lowered == needle else 1 if position == 0 else 2
        ranked.append((rank, len(symbol.name), symbol))
    ranked.sort(key=lambda item: (item[0], item[1], item[2].name))
    hits: list[SymbolHit] = []
    seen: set[tuple[str, int]] = set()
    prog = session.prog
    for _rank, _length, symbol in ranked:
        if len(hits) >= limit:
            break
        is_function = symbol.kind == drgn.SymbolKind.FUNC
        definition: Definition | None = None
        if is_function:
            location = code_location(prog, symbol.address)
            local = session.paths.local(location[0]) if location is not None else None
            if local is not None and location is not None:
                definition = _name_line(local, re.sub(r"\..*$", "", symbol.name), location[1])
        else:
            tags = _prefer_arch_linker_script(session.find_tags(symbol.name, {"variable", "symbol"}))
            if tags:
                definition = _tag_definition(tags[0])
        if definition is None or (symbol.name, definition.line) in seen:
            continue
        seen.add((symbol.name, definition.line))
        try:
            module = prog.module(symbol.address).name
        except LookupError:
            module = "kernel"
        hits.append(SymbolHit(symbol.name, is_function, module, symbol.address, definition))
    return hits
