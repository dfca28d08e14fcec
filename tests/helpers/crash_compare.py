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
from datetime import UTC, datetime
from typing import Any

from tests.helpers.crash_parse import crash_state_letter, parse_bt, parse_log, split_tasks
from tests.helpers.stack_normalize import Frame, normalize_crash_bt, normalize_crash_task

__all__ = [
    "PsEntry",
    "bt_functions_by_pid",
    "canonical_mnemonic",
    "crash_date",
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
    "sys_differences",
    "sys_fields",
    "uptime_seconds",
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


#: The ``sys`` fields compared with crash's, as crash names them.
SYS_COMPARED = ("CPUS", "DATE", "UPTIME", "LOAD AVERAGE", "TASKS", "NODENAME", "RELEASE", "VERSION")

#: How far a clock may be from the dump's own: the crash happens within a second of the last log
#: line, and VMCOREINFO's CRASHTIME is taken with it (as tests/samples/test_oracle.py measures).
_CLOCK_SLACK_S = 5


def crash_date(text: str) -> float | None:
    """``Fri Dec  4 23:25:39 UTC 2026`` (``sys``'s DATE, a ``log -T`` stamp, brackets or not) in
    seconds since the epoch; None for what is no date."""
    try:
        parsed = datetime.strptime(" ".join(text.strip("[] ").split()), "%a %b %d %H:%M:%S %Z %Y")
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC).timestamp()


def uptime_seconds(text: str) -> int:
    """crash's UPTIME, ``00:03:48`` or ``2 days, 01:02:03``, in seconds."""
    days, _, clock = text.rpartition(" days, ")
    hours, minutes, seconds = (int(n) for n in clock.split(":"))
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


def sys_differences(
    ours: dict[str, str], answers: Any, vmcoreinfo: dict[str, str], jiffies_uptime: int
) -> dict[str, str]:
    """Each ``sys`` field of :data:`SYS_COMPARED` that differs from its oracle, with both sides.

    The oracle is crash's ``sys`` (``answers``, a ``CrashAnswers``) where the oracle table trusts
    the field on this dump; where it does not, the dump itself: DATE is VMCOREINFO's CRASHTIME
    (crash prints 1970 on 7.x), within a few seconds; UPTIME is ``jiffies_uptime`` (crash counts
    jiffies at HZ 1000 on kernels built with 250: ``tests/helpers/kernel_config.py``).
    """
    theirs = sys_fields(answers["sys"])
    found = {}
    for key in SYS_COMPARED:
        if answers.trusts("sys", key):
            if ours.get(key) != theirs.get(key):
                found[key] = f"ours {ours.get(key)!r}, crash {theirs.get(key)!r}"
        elif key == "DATE":
            date, crashtime = crash_date(ours.get(key, "")), int(vmcoreinfo["CRASHTIME"])
            if date is None or abs(date - crashtime) > _CLOCK_SLACK_S:
                found[key] = f"ours {ours.get(key)!r}, VMCOREINFO CRASHTIME {crashtime} (crash's distrusted)"
        elif key == "UPTIME":
            if uptime_seconds(ours.get(key, "0:0:0")) != jiffies_uptime:
                found[key] = f"ours {ours.get(key)!r}, jiffies at CONFIG_HZ: {jiffies_uptime} s"
        else:
            raise AssertionError(f"no oracle for sys {key} where crash's is distrusted: add one")
    return found


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


def stack_of(
    text: str, *, start_at_exception: bool = True, exception_entries: frozenset[str] = frozenset()
) -> list[Frame]:
    """The normalised stack of the one task of a ``bt``/``bt -l`` output (crash's or ours).

    :param exception_entries: as for :func:`bt_functions_by_pid` (arm64's vectors, after which
        crash lists the interrupted function with no register block).
    """
    return _canonical(
        normalize_crash_bt(text, start_at_exception=start_at_exception, exception_entries=exception_entries)
    )


#: What the adapter's groups call a task without a kernel stack (crash's ``(no stack)``).
NO_STACK = "<no stack>"


def bt_functions_by_pid(
    text: str, *, exception_entries: frozenset[str] = frozenset()
) -> dict[tuple[int, int], list[str]]:
    """``bt -a`` / ``foreach bt``: {(pid, task address): normalised function list} per task; an exited
    task's ``(no stack)`` is ``[NO_STACK]``.

    :param exception_entries: crash's exception vectors after which its back trace lists the
        interrupted function without a register block (arm64: the oracle's ``site_rule``); a stack
        starts after the first, as it starts after crash's first ``[exception RIP: …]``.
    """
    out: dict[tuple[int, int], list[str]] = {}
    for chunk in split_tasks(text):
        task = parse_bt(chunk)[0]
        if "\n(no stack)" in chunk:
            out[(task.pid, task.task)] = [NO_STACK]
            continue
        frames = normalize_crash_task(task, exception_entries=exception_entries)
        out[(task.pid, task.task)] = [f.function for f in _canonical(frames)]
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
            mnemonic = canonical_mnemonic(row.strip()[m.start("mnemonic") :])
            out.append((int(m["addr"], 16), mnemonic, file, line))
    return out


def canonical_mnemonic(instruction: str) -> str:
    """The mnemonic of an instruction's text (gdb's or capstone's), by one name for both."""
    words = instruction.split()
    while len(words) > 1 and words[0] in _GDB_PREFIXES:
        words = words[1:]
    if words[:2] == ["xchg", "%ax,%ax"]:  # 66 90: gdb's name for the 2-byte NOP (5.10's padding)
        return "nop"
    return _SAME_MNEMONIC.get(words[0], words[0])


#: Prefixes gdb prints as words of their own before the mnemonic (``data16 cs nopw 0x0(%rax,%rax,1)``,
#: the 10-byte NOP padding of 5.10's functions); capstone folds them into the operands.
_GDB_PREFIXES = frozenset({"data16", "addr32", "cs", "ds", "es", "fs", "gs", "ss", "rex", "rex.W"})
#: One instruction under gdb's (binutils') and capstone's names: AT&T size suffixes of calls, returns
#: and NOPs; A64's condition codes HS and LO, which the Arm ARM defines as other names of CS and CC
#: (binutils prints ``b.cs``, capstone 6 ``b.hs``); and a word that is no instruction (on arm64, the
#: ftrace ops pointer between two functions: gdb's ``.inst``, capstone's ``(bad)``).
_SAME_MNEMONIC = {
    "callq": "call",
    "retq": "ret",
    "jmpq": "jmp",
    "nopw": "nop",
    "nopl": "nop",
    "b.hs": "b.cs",
    "b.lo": "b.cc",
    ".inst": "(bad)",
}


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
