"""The one normalisation by which console output is compared with crash's, command by command.

The console runs drgn's crash-compatible commands (plus ours); crash is the oracle. What does not
count as a difference (listed for the README in ``docs/console.md``):

* column spacing (both sides are split on whitespace);
* task states: crash prints two letters (``RU``, ``IN``, ``UN``, ``ID``, ``WA`` …), our ``ps`` one
  letter (``R``, ``S``, ``D``, ``I``, ``W`` …): crash's are mapped to ours by the table of
  docs/console.md (:data:`~tests.helpers.crash_parse.CRASH_STATE_TO_LETTER`), and nothing else
  passes;
* paths: crash names the vmlinux/vmcore it was given and the build directory of sources; files are
  compared by their path suffix, the dump by its file name;
* stacks: :mod:`tests.helpers.stack_normalize` (cut at the exception, suffixes, inline frames);
* ``dis``: crash's operands are gdb's, ours capstone's written in gdb's style; addresses, mnemonics
  and source lines are compared, operands are not (``nopl 0x0(%rax,%rax,1)`` vs ``nopl (%rax,%rax)``);
* ``sys`` MEMORY: crash rounds to the unit it prints (``717 MB``), drgn prints one decimal.

Each function returns plain records; tests assert on them and show both sides on failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.helpers.crash_parse import crash_state_letter, parse_bt, parse_log, split_tasks
from tests.helpers.stack_normalize import Frame, normalize_crash_bt

__all__ = [
    "PsEntry",
    "bt_functions_by_pid",
    "dis_records",
    "kmem_i_figures",
    "log_records",
    "memory_bytes",
    "mod_records",
    "ps_entries",
    "rd_words",
    "squash",
    "stack_of",
    "state_letter",
    "struct_offsets",
    "sys_fields",
]


def squash(line: str) -> str:
    """Collapse runs of whitespace: column spacing never counts."""
    return " ".join(line.split())


def state_letter(state: str) -> str:
    """crash's two-letter state (``RU``) → our letter (``R``); our letter stays as it is."""
    return state if len(state) == 1 else crash_state_letter(state)


@dataclass(frozen=True)
class PsEntry:
    """The columns of ``ps`` that both tools compute from the same fields of the dump."""

    active: bool
    pid: int
    ppid: int
    cpu: int
    task: int
    state: str
    comm: str


_PS = re.compile(
    r"^(?P<mark>[> -])?\s*(?P<pid>\d+)\s+(?P<ppid>\d+)\s+(?P<cpu>\d+)\s+(?P<task>[0-9a-f]{8,})\s+"
    r"(?P<st>[A-Za-z?]{1,2})\s+[\d.]+\s+\d+\s+\d+\s+(?P<comm>.*?)\s*$"
)


def ps_entries(text: str) -> list[PsEntry]:
    """Rows of crash's or drgn's ``ps``; raise on a line that is neither a row nor the header."""
    rows: list[PsEntry] = []
    for line in text.splitlines():
        if not line.strip() or line.split()[0] == "PID":
            continue
        m = _PS.match(line)
        if m is None:
            raise ValueError(f"not a ps row: {line!r}")
        rows.append(
            PsEntry(
                active=m["mark"] == ">",
                pid=int(m["pid"]),
                ppid=int(m["ppid"]),
                cpu=int(m["cpu"]),
                task=int(m["task"], 16),
                state=state_letter(m["st"]),
                comm=m["comm"],
            )
        )
    return rows


_SYS_FIELD = re.compile(r"^\s*(?P<key>[A-Z][A-Z ]*[A-Z]): (?P<value>.*)$")


def sys_fields(text: str) -> dict[str, str]:
    """``sys`` as {FIELD: value} with spacing squashed (continuation lines joined with a space)."""
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        m = _SYS_FIELD.match(line)
        if m:
            last = m["key"]
            fields[last] = squash(m["value"])
        elif line.strip() and last is not None:
            fields[last] += " " + squash(line)
    return fields


_MEMORY = re.compile(r"^([\d.]+)\s*([KMGT])i?B?$", re.IGNORECASE)


def memory_bytes(value: str) -> float:
    """``717 MB`` / ``717.0M`` / ``1 GB`` → bytes, to compare ``sys`` MEMORY within rounding."""
    m = _MEMORY.match(value.strip())
    if m is None:
        raise ValueError(f"not a memory size: {value!r}")
    return float(m.group(1)) * 1024 ** "KMGT".index(m.group(2).upper()) * 1024


def log_records(text: str) -> list[tuple[str | None, str]]:
    """``log`` lines as (timestamp text, message); spacing around the message does not count.

    crash keeps the indentation of continuation lines, drgn's ``log`` does not.
    """
    return [(r.timestamp.strip() if r.timestamp else None, squash(r.text)) for r in parse_log(text)]


#: Two ELF symbols at one address: crash names the later alias, drgn the function.
SYMBOL_ALIASES = {
    "entry_SYSCALL_64_after_hwframe": "entry_SYSCALL_64",
    "secondary_startup_64_no_verify": "secondary_startup_64",
}
#: crash walks the NMI that stopped the other CPUs for kdump; drgn starts at the interrupted context.
NMI_PATH = frozenset({"crash_nmi_callback", "nmi_handle", "default_do_nmi", "exc_nmi", "asm_exc_nmi"})


def _canonical(frames: list[Frame]) -> list[Frame]:
    return [
        # SYSCALL_DEFINE: crash names the ELF symbol __x64_sys_X, drgn the function __do_sys_X in it.
        Frame(re.sub(r"^__x64_sys_", "__do_sys_", SYMBOL_ALIASES.get(f.function, f.function)), f.file, f.line)
        for f in frames
        if f.function not in NMI_PATH
    ]


def stack_of(text: str, *, start_at_exception: bool = True) -> list[Frame]:
    """The normalised stack of the one task of a ``bt``/``bt -l`` output (crash's or ours)."""
    return _canonical(normalize_crash_bt(text, start_at_exception=start_at_exception))


#: What the adapter's groups call a task without a kernel stack (crash's ``(no stack)``).
NO_STACK = "<no stack>"


def bt_functions_by_pid(text: str) -> dict[tuple[int, int], list[str]]:
    """``bt -a`` / ``foreach bt``: {(pid, task address): normalised function list} per task; an exited
    task's ``(no stack)`` is ``[NO_STACK]``."""
    out: dict[tuple[int, int], list[str]] = {}
    for chunk in split_tasks(text):
        task = parse_bt(chunk)[0]
        if "\n(no stack)" in chunk:
            out[(task.pid, task.task)] = [NO_STACK]
            continue
        out[(task.pid, task.task)] = [f.function for f in _canonical(normalize_crash_bt(chunk))]
    return out


_DIS_INSN = re.compile(r"^(?:=>\s*)?0x(?P<addr>[0-9a-f]+) <(?P<sym>[^>]+)>:\s+(?P<mnemonic>\S+)")
_DIS_SOURCE = re.compile(r"^(?P<file>\S+): (?P<line>\d+)\s*$")


def dis_records(text: str) -> list[tuple[int, str, str | None, int | None]]:
    """``dis [-l]`` as (address, mnemonic, source file, line) per instruction.

    The file and line are those of the latest ``file: line`` line printed before the instruction.
    Mnemonics lose gdb's/capstone's optional AT&T size suffix disagreement only where both name
    the same instruction (``callq``/``call``, ``retq``/``ret``).
    """
    out: list[tuple[int, str, str | None, int | None]] = []
    file: str | None = None
    line: int | None = None
    for row in text.splitlines():
        if m := _DIS_SOURCE.match(row):
            file, line = m["file"], int(m["line"])
        elif m := _DIS_INSN.match(row.strip()):
            mnemonic = {"callq": "call", "retq": "ret", "jmpq": "jmp"}.get(m["mnemonic"], m["mnemonic"])
            out.append((int(m["addr"], 16), mnemonic, file, line))
    return out


_STRUCT_MEMBER = re.compile(r"^\s*\[(?P<off>(?:0x)?[0-9a-f]+)\]\s+(?P<decl>.*?);?\s*$")


def struct_offsets(text: str) -> list[tuple[int, str]]:
    """``struct -o`` as (offset, member name) per member line, anonymous members expanded."""
    out: list[tuple[int, str]] = []
    for row in text.splitlines():
        m = _STRUCT_MEMBER.match(row)
        if m is None:
            continue
        decl = re.sub(r"\s*:\s*\d+$", "", m["decl"])  # bit-field width
        decl = re.sub(r"\[[^\]]*\]", "", decl)  # array dimensions
        fn = re.search(r"\(\s*\*+\s*(\w+)\s*\)", decl)  # function pointer: (*name)(...)
        name = fn.group(1) if fn else re.findall(r"\w+", decl)[-1]
        off = m["off"]
        out.append((int(off, 16) if off.startswith("0x") else int(off), name))
    return out


_RD = re.compile(r"^(?P<addr>[0-9a-f]+):\s+(?P<words>(?:[0-9a-f]{16}\s*)+)")


def rd_words(text: str) -> dict[int, int]:
    """``rd -64``: {address: 64-bit word}."""
    out: dict[int, int] = {}
    for row in text.splitlines():
        m = _RD.match(row.strip())
        if m is None:
            continue
        base = int(m["addr"], 16)
        for i, word in enumerate(m["words"].split()):
            out[base + 8 * i] = int(word, 16)
    return out


def mod_records(text: str) -> list[tuple[int, str, int, int]]:
    """``mod`` rows as (struct module address, name, text base, size); object files not compared."""
    out: list[tuple[int, str, int, int]] = []
    for row in text.splitlines():
        parts = row.split()
        if len(parts) < 4 or parts[0] == "MODULE":
            continue
        out.append((int(parts[0], 16), parts[1], int(parts[2], 16), int(parts[3])))
    return out


_KMEM = re.compile(r"^\s*(?P<label>[A-Z][A-Z ]*[A-Z])\s+(?P<pages>\d+)\s+(?P<size>\S+(?: \S+)?)")


def kmem_i_figures(text: str) -> dict[str, int]:
    """``kmem -i``: {row label: pages}; the size and percentage columns derive from the pages."""
    out: dict[str, int] = {}
    for row in text.splitlines():
        m = _KMEM.match(row)
        if m is not None and m["label"] not in ("PAGES",):
            out[squash(m["label"])] = int(m["pages"])
    return out
