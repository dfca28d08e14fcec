"""binutils on a sample's module ``.ko`` files: a module function's section, extent and lines.

The oracle for module code where crash's is not to be trusted. On 6.12 amd64 crash 8.0.6's gdb lays
the line tables of a module's other code sections (``.text.unlikely``, ``.init.text``) over its
``.text`` (``samples/crash_choice.py``, ``module-lines``): ``dis -l`` and ``bt -l`` then name, for an
instruction at ``.text + n``, the line another section has at ``+ n``, and ``dis -l <function>``
stops where the overlaid ``.text.unlikely`` ends. ``objdump -t`` (the function's section, offset
and size, as the module's symbol table has them) and ``addr2line -j <section>`` (that section's
own line table) read the ``.ko`` without gdb, so they show both the right answer and crash's
mistake for what it is.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.crash_parse import DisLine

__all__ = [
    "KoFunction",
    "code_sections",
    "ko_function",
    "ko_line",
    "ko_mnemonic",
    "overlaid_lines",
    "truncated_listing",
]

#: The longest x86-64 instruction: a listing that ends further than this before its function's end
#: has left instructions out.
_MAX_INSN_BYTES = 15


@dataclass(frozen=True)
class KoFunction:
    """A function of a module, as the ``.ko``'s symbol table has it.

    :param offset: the symbol's value: its offset in ``section`` (a ``.ko`` is relocatable).
    """

    ko: Path
    name: str
    section: str
    offset: int
    size: int


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@functools.cache
def _functions(ko: Path) -> dict[str, KoFunction]:
    """Every function symbol of ``ko`` (``objdump -t``: value, flags, section, size, name)."""
    out: dict[str, KoFunction] = {}
    for row in _run("objdump", "-t", str(ko)).splitlines():
        words = row.split()
        # 0000000000000320 l     F .text	00000000000001c0 labbug_walk
        if len(words) >= 5 and words[-4] == "F" and words[-3].startswith("."):
            out[words[-1]] = KoFunction(ko, words[-1], words[-3], int(words[0], 16), int(words[-2], 16))
    return out


@functools.cache
def code_sections(ko: Path) -> tuple[str, ...]:
    """The sections of ``ko`` that hold code (``objdump -h``'s CODE flag), in file order."""
    lines = _run("objdump", "-h", str(ko)).splitlines()
    names = []
    for header, flags in zip(lines, lines[1:], strict=False):
        words = header.split()
        if len(words) >= 7 and words[0].isdigit() and "CODE" in flags:
            names.append(words[1])
    return tuple(names)


def ko_function(kos: Iterable[Path], name: str) -> KoFunction | None:
    """The function ``name`` of one of the modules ``kos``; None if none of them has it."""
    for ko in kos:
        if (function := _functions(Path(ko)).get(name)) is not None:
            return function
    return None


@functools.cache
def ko_line(ko: Path, section: str, offset: int) -> tuple[str, int] | None:
    """(file name, line) of ``section + offset`` in ``ko``'s line table (``addr2line -j``: the
    innermost inlined location); None where the table has no row."""
    out = _run("addr2line", "-e", str(ko), "-j", section, f"{offset:#x}").strip()
    where, _, _ = out.partition(" ")  # "…/labbug.c:134 (discriminator 1)"
    file, _, line = where.rpartition(":")
    if not line.isdigit() or int(line) == 0:
        return None
    return Path(file).name, int(line)


def ko_mnemonic(function: KoFunction, delta: int) -> str:
    """The mnemonic of the instruction at ``function + delta`` by ``objdump -d`` on the ``.ko``
    (GNU's AT&T names, as crash's gdb prints them; an instruction relocations or the kernel's
    boot-time patching change, a call or an ftrace NOP, keeps its length but not always its name)."""
    start = function.offset + delta
    out = _run(
        "objdump", "-d", "--no-show-raw-insn", "-j", function.section,
        f"--start-address={start:#x}", f"--stop-address={start + _MAX_INSN_BYTES:#x}", str(function.ko),
    )  # fmt: skip
    for row in out.splitlines():
        where, sep, instruction = row.partition(":\t")
        if sep and int(where, 16) == start:
            return instruction.split()[0]
    raise AssertionError(f"objdump shows no instruction at {function.section}+{start:#x} of {function.ko}")


def overlaid_lines(kos: Iterable[Path], listing: list[DisLine]) -> list[str]:
    """The instructions of crash's ``dis -l`` output ``listing`` that lie in a module function and
    carry the line another code section of its ``.ko`` has at the same offset, not their own
    section's: the overlay, described (``labbug_walk+35: labbug.c:348 = .text.unlikely+0x343's
    row; .text's is labbug.c:126``)."""
    kos = tuple(kos)
    found = []
    for insn in listing:
        function = ko_function(kos, insn.symbol)
        if function is None or insn.file is None or insn.line is None:
            continue
        offset = function.offset + insn.offset
        crash = (Path(insn.file).name, insn.line)
        own = ko_line(function.ko, function.section, offset)
        if crash == own:
            continue
        for other in code_sections(function.ko):
            if other != function.section and ko_line(function.ko, other, offset) == crash:
                found.append(
                    f"{insn.symbol}+{insn.offset}: {crash[0]}:{crash[1]} = {other}+{offset:#x}'s row; "
                    f"{function.section}'s is {own}"
                )
                break
    return found


def truncated_listing(kos: Iterable[Path], listing: list[DisLine]) -> str | None:
    """Whether crash's ``dis -l <function>`` output ``listing`` of a module function stops before
    the function's end (its size in the ``.ko``): the description, or None (whole, or no module
    function)."""
    if not listing:
        return None
    function = ko_function(kos, listing[0].symbol)
    if function is None:
        return None
    last = max(insn.offset for insn in listing if insn.symbol == function.name)
    if last + _MAX_INSN_BYTES >= function.size:
        return None
    return f"dis -l {function.name} ends at +{last} of {function.size} bytes"
