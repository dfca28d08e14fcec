"""Parse the text that the ``crash`` utility prints, so tests can compare it with ours.

crash is the oracle of every test that checks what the adapter says about a dump.  Its output is
made for people (aligned columns, banners, register dumps), so this module turns each command's
output into small records once, and every test compares records instead of re-parsing text.
Formats follow crash 8.0.6 (``task.c``'s ``show_ps_data``, ``kernel.c``'s module list,
``x86_64.c``'s back trace printer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

__all__ = [
    "BtException",
    "BtFrame",
    "DisLine",
    "KmemRow",
    "StructMember",
    "LogLine",
    "ModRow",
    "PsRow",
    "TaskBt",
    "parse_bt",
    "parse_dis",
    "parse_kmem_i",
    "parse_rd",
    "parse_struct_o",
    "parse_log",
    "parse_mod",
    "parse_ps",
    "parse_sys",
    "sys_panic_message",
    "split_tasks",
    "CRASH_STATE_TO_LETTER",
    "crash_state_letter",
]

# crash's two-letter task states and the one letter the adapter shows for each (docs/console.md,
# "Task states"): the only equivalences a comparison with crash accepts. crash's SW and EX do not
# exist on the kernels drgn opens, and its ?? (a state it cannot name) has no equivalent: a dump
# with either fails the comparison and says so. Written out here rather than imported from the
# adapter (vmcore_dap.dump.kernel.task_state) on purpose: this copy is the documented spec the adapter
# is checked against.
CRASH_STATE_TO_LETTER: dict[str, str] = {
    "RU": "R",
    "IN": "S",
    "UN": "D",
    "ID": "I",
    "ZO": "Z",
    "ST": "T",
    "TR": "t",
    "DE": "X",
    "PA": "P",
    "WA": "W",
    "NE": "N",
}


def crash_state_letter(state: str) -> str:
    """The letter the adapter shows for crash's two-letter ``state``; raise on any other text."""
    try:
        return CRASH_STATE_TO_LETTER[state]
    except KeyError:
        raise ValueError(
            f"crash's task state {state!r} has no documented equivalent (docs/console.md, Task states)"
        ) from None


@dataclass(frozen=True)
class PsRow:
    """One row of crash's ``ps``."""

    active: bool  # crash's ">" marker: the task is running on a CPU at the time of the dump
    pid: int
    ppid: int
    cpu: int
    task: int  # address of the task_struct
    state: str  # crash's two-letter state (RU, IN, UN, ID, ...)
    mem_percent: float
    vsz_kb: int
    rss_kb: int
    comm: str  # as printed: kernel threads in brackets, e.g. "[kworker/0:1]"

    @property
    def is_kernel_thread(self) -> bool:
        return self.comm.startswith("[") and self.comm.endswith("]")

    @property
    def name(self) -> str:
        """The task's comm without crash's brackets for kernel threads."""
        return self.comm[1:-1] if self.is_kernel_thread else self.comm


_PS_ROW = re.compile(
    r"^(?P<mark>[>\- ])\s*(?P<pid>\d+)\s+(?P<ppid>\d+)\s+(?P<cpu>\d+)\s+(?P<task>[0-9a-f]+)\s+"
    r"(?P<st>[A-Z?]{2}(?:EX)?)\s+(?P<mem>[\d.]+)\s+(?P<vsz>\d+)\s+(?P<rss>\d+)\s+(?P<comm>.*?)\s*$"
)


def parse_ps(text: str) -> list[PsRow]:
    """Parse crash's ``ps`` output into rows; raise ValueError on a line that is not a row."""
    rows: list[PsRow] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("PID"):
            continue
        m = _PS_ROW.match(line)
        if m is None:
            raise ValueError(f"not a crash ps row: {line!r}")
        rows.append(
            PsRow(
                active=m["mark"] == ">",
                pid=int(m["pid"]),
                ppid=int(m["ppid"]),
                cpu=int(m["cpu"]),
                task=int(m["task"], 16),
                state=m["st"],
                mem_percent=float(m["mem"]),
                vsz_kb=int(m["vsz"]),
                rss_kb=int(m["rss"]),
                comm=m["comm"],
            )
        )
    return rows


_SYS_FIELD = re.compile(r"^\s*(?P<key>[A-Z][A-Z ]*[A-Z]): (?P<value>.*)$")


def parse_sys(text: str) -> dict[str, str]:
    """Parse crash's ``sys`` output into {FIELD: value}, e.g. ``{"TASKS": "335", ...}``.

    A line that is not ``KEY: value`` continues the previous field (joined with a newline).
    """
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        m = _SYS_FIELD.match(line)
        if m:
            last = m["key"]
            fields[last] = m["value"].strip()
        elif line.strip() and last is not None:
            fields[last] += "\n" + line.strip()
    return fields


def sys_panic_message(text: str) -> str:
    """The panic message of crash's ``sys`` PANIC field, without quotes and crash's remarks.

    ``PANIC: "Oops: 0000 [#1] PREEMPT SMP NOPTI" (check log for details)`` -> ``Oops: 0000 ...``
    """
    panic = parse_sys(text).get("PANIC")
    if panic is None:
        raise ValueError("crash sys output has no PANIC field")
    m = re.match(r'^"(.*)"', panic.splitlines()[0])
    return m.group(1) if m else panic.splitlines()[0].strip()


@dataclass(frozen=True)
class ModRow:
    """One row of crash's ``mod``."""

    module: int  # address of struct module
    name: str
    base: int  # TEXT_BASE (or BASE on kernels before module memory regions)
    size: int
    object_file: str | None  # None when crash printed "(not loaded)"


def parse_mod(text: str) -> list[ModRow]:
    """Parse crash's ``mod`` output into rows."""
    rows: list[ModRow] = []
    for line in text.splitlines():
        parts = line.split(None, 4)
        if len(parts) < 4 or parts[0] == "MODULE":
            continue
        try:
            module, base, size = int(parts[0], 16), int(parts[2], 16), int(parts[3])
        except ValueError as e:
            raise ValueError(f"not a crash mod row: {line!r}") from e
        rest = parts[4].strip() if len(parts) > 4 else ""
        obj = None if rest.startswith("(not loaded)") or not rest else rest
        rows.append(ModRow(module=module, name=parts[1], base=base, size=size, object_file=obj))
    return rows


@dataclass(frozen=True)
class LogLine:
    """One line of crash's ``log`` (or ``log -T``)."""

    timestamp: str | None  # the text between the brackets: "   12.345678" or a -T date
    text: str

    @property
    def seconds(self) -> float | None:
        """The timestamp in seconds since boot (plain ``log`` only)."""
        try:
            return float(self.timestamp) if self.timestamp is not None else None
        except ValueError:
            return None


_LOG_LINE = re.compile(r"^\[(?P<ts>[^\]]*)\] ?(?P<text>.*)$")


def parse_log(text: str) -> list[LogLine]:
    """Parse crash's ``log`` output.

    A line without a ``[timestamp]`` prefix continues a multi-line record: its timestamp is
    ``None`` and its text loses the indentation crash adds (as wide as the prefix, so it differs
    between ``log`` and ``log -T``).
    """
    out: list[LogLine] = []
    for line in text.splitlines():
        m = _LOG_LINE.match(line)
        if m:
            out.append(LogLine(timestamp=m["ts"], text=m["text"]))
        elif line:
            out.append(LogLine(timestamp=None, text=line.lstrip()))
    return out


@dataclass(frozen=True)
class BtFrame:
    """One ``#N [sp] function at address`` line of crash's ``bt``."""

    level: int
    sp: int
    symbol: str  # as crash prints it: may carry .cold/.isra.N suffixes
    address: int
    module: str | None  # "[labbug]" suffix
    file: str | None = None  # from ``bt -l``
    line: int | None = None


@dataclass(frozen=True)
class BtException:
    """An ``[exception RIP: symbol+offset]`` block, and where it sits among the frames."""

    symbol: str  # without the +offset
    offset: int
    before_level: int  # number of frames printed before this block
    registers: dict[str, int] = field(default_factory=dict)
    file: str | None = None  # from ``bt -l``, when crash prints a line after the block
    line: int | None = None


@dataclass(frozen=True)
class TaskBt:
    """The back trace of one task, as ``bt``, ``bt -a`` and ``foreach bt`` print it."""

    pid: int
    task: int
    cpu: int | None
    comm: str
    frames: list[BtFrame]
    exceptions: list[BtException]
    text: str

    @property
    def functions(self) -> list[str]:
        return [f.symbol for f in self.frames]


_BT_HEADER = re.compile(
    r"^PID:\s*(?P<pid>\d+)\s+TASK:\s*(?P<task>[0-9a-f]+)\s+(?:CPU:\s*(?P<cpu>\d+|-)?\s+)?"
    r"COMMAND:\s*\"(?P<comm>.*)\""
)
_BT_FRAME = re.compile(
    r"^\s*#(?P<level>\d+)\s+\[\s*(?P<sp>[0-9a-f]+)\]\s+(?P<sym>\S+)\s+at\s+(?P<addr>[0-9a-f]+)"
    r"(?:\s+\[(?P<mod>[^\]]+)\])?"
)
_BT_EXCEPTION = re.compile(r"^\s*\[exception RIP: (?P<sym>[^\]+]+)(?:\+(?P<off>(?:0x)?[0-9a-f]+))?\]")
_BT_SOURCE = re.compile(r"^\s+(?P<file>/\S+|\S+\.[chS]): (?P<line>\d+)\s*$")
_BT_REGS = re.compile(r"([A-Z0-9_]+):\s+([0-9a-f]+)")
_BT_KERNEL_RIP = re.compile(r"^\s+RIP: ffff[89a-f][0-9a-f]{11}\s")


def split_tasks(text: str) -> list[str]:
    """Split ``bt -a`` / ``foreach bt`` output into one chunk of text per task (header first)."""
    chunks: list[list[str]] = []
    for line in text.splitlines():
        if _BT_HEADER.match(line):
            chunks.append([line])
        elif chunks:
            chunks[-1].append(line)
    return ["\n".join(c).rstrip() + "\n" for c in chunks]


def _parse_offset(s: str | None) -> int:
    if not s:
        return 0
    return int(s, 16) if s.startswith("0x") else int(s)


def _parse_one_task(chunk: str) -> TaskBt:
    lines = chunk.splitlines()
    header = _BT_HEADER.match(lines[0])
    if header is None:
        raise ValueError(f"not a crash bt header: {lines[0]!r}")
    frames: list[BtFrame] = []
    exceptions: list[BtException] = []
    # What the next "file: line" line of bt -l belongs to.
    last: str | None = None
    for line in lines[1:]:
        if m := _BT_FRAME.match(line):
            frames.append(
                BtFrame(
                    level=int(m["level"]),
                    sp=int(m["sp"], 16),
                    symbol=m["sym"],
                    address=int(m["addr"], 16),
                    module=m["mod"],
                )
            )
            if exceptions and not exceptions[-1].symbol:
                # drgn's bt: the register block came first; the frame it unwinds into names it.
                if frames[-1].address == exceptions[-1].registers.get("RIP"):
                    exceptions[-1] = replace(exceptions[-1], symbol=frames[-1].symbol)
                else:
                    exceptions.pop()
            last = "frame"
        elif m := _BT_EXCEPTION.match(line):
            exceptions.append(
                BtException(symbol=m["sym"], offset=_parse_offset(m["off"]), before_level=len(frames))
            )
            last = "exception"
        elif m := _BT_SOURCE.match(line):
            where, lineno = m["file"], int(m["line"])
            if last == "frame" and frames[-1].file is None:
                frames[-1] = replace(frames[-1], file=where, line=lineno)
            elif last in ("exception", "regs") and exceptions and exceptions[-1].file is None:
                exceptions[-1] = replace(exceptions[-1], file=where, line=lineno)
        elif exceptions and last in ("exception", "regs") and _BT_REGS.search(line):
            exceptions[-1].registers.update((k, int(v, 16)) for k, v in _BT_REGS.findall(line))
            last = "regs"
        elif last != "regs" and _BT_KERNEL_RIP.match(line):
            # drgn's crash-style bt prints the registers of an interrupted kernel frame as a bare
            # block ("--- <IRQ stack> ---", "RIP: …") before that frame, with no [exception RIP:].
            exceptions.append(BtException(symbol="", offset=0, before_level=len(frames)))
            exceptions[-1].registers.update((k, int(v, 16)) for k, v in _BT_REGS.findall(line))
            last = "regs"
    if exceptions and not exceptions[-1].symbol:
        exceptions.pop()  # a bare block no frame followed
    cpu = header["cpu"]
    return TaskBt(
        pid=int(header["pid"]),
        task=int(header["task"], 16),
        cpu=int(cpu) if cpu and cpu != "-" else None,
        comm=header["comm"],
        frames=frames,
        exceptions=exceptions,
        text=chunk,
    )


def parse_bt(text: str) -> list[TaskBt]:
    """Parse the output of ``bt``, ``bt -l``, ``bt -a`` or ``foreach bt`` into one TaskBt per task."""
    chunks = split_tasks(text)
    if not chunks:
        raise ValueError("no 'PID: ... TASK: ...' header in crash bt output")
    return [_parse_one_task(c) for c in chunks]


@dataclass(frozen=True)
class DisLine:
    """One instruction of crash's ``dis [-l]``, with the source line printed above it (``-l``)."""

    address: int
    symbol: str
    offset: int
    mnemonic: str
    operands: str
    file: str | None
    line: int | None


_DIS_INSN = re.compile(
    r"^0x(?P<addr>[0-9a-f]+) <(?P<sym>[^>+]+)(?:\+(?P<off>\d+))?>:\s*(?P<mn>\S+)?\s*(?P<ops>.*?)\s*$"
)
_DIS_SOURCE = re.compile(r"^(?P<file>\S+): (?P<line>\d+)$")


def parse_dis(text: str) -> list[DisLine]:
    """Parse crash's ``dis``/``dis -l``/``dis -rl`` output into instructions.

    Each instruction carries the last ``file: line`` that crash printed before it.
    """
    out: list[DisLine] = []
    file: str | None = None
    line: int | None = None
    for raw in text.splitlines():
        if m := _DIS_INSN.match(raw):
            out.append(
                DisLine(
                    address=int(m["addr"], 16),
                    symbol=m["sym"],
                    offset=int(m["off"] or 0),
                    mnemonic=m["mn"] or "",
                    operands=m["ops"],
                    file=file,
                    line=line,
                )
            )
        elif m := _DIS_SOURCE.match(raw.strip()):
            file, line = m["file"], int(m["line"])
        elif raw.strip():
            raise ValueError(f"not a crash dis line: {raw!r}")
    return out


@dataclass(frozen=True)
class StructMember:
    """One member line of crash's ``struct -o``: ``[offset] declaration;``."""

    offset: int
    declaration: str  # e.g. "const char *name"

    @property
    def name(self) -> str:
        """The member's name (last identifier before any array bounds or bit-field width)."""
        decl = re.sub(r"\[[^\]]*\]|:\s*\d+$", "", self.declaration).strip()
        m = re.search(r"(\w+)\s*(?:\)\s*\(.*\))?$", decl)
        return m.group(1) if m else decl


_STRUCT_MEMBER = re.compile(r"^\s*\[(?P<off>0x[0-9a-f]+|\d+)\]\s+(?P<decl>.*?);\s*$")


def parse_struct_o(text: str) -> tuple[str, list[StructMember], int | None]:
    """Parse ``struct -o <type>``: (type name, top-level members, SIZE)."""
    header = re.search(r"^(struct|union) (\S+) \{", text, re.MULTILINE)
    if header is None:
        raise ValueError(f"no 'struct X {{' in crash struct -o output: {text[:200]!r}")
    members = [
        StructMember(offset=_parse_offset(m["off"]), declaration=m["decl"])
        for m in map(_STRUCT_MEMBER.match, text.splitlines())
        if m
    ]
    size = re.search(r"^SIZE: (\d+|0x[0-9a-f]+)", text, re.MULTILINE)
    return f"{header[1]} {header[2]}", members, _parse_offset(size[1]) if size else None


def parse_rd(text: str) -> dict[int, int]:
    """Parse ``rd -64`` output into {address: 64-bit word}."""
    words: dict[int, int] = {}
    for raw in text.splitlines():
        m = re.match(r"^([0-9a-f]+):\s+((?:[0-9a-f]{16}\s+)+)", raw)
        if m is None:
            continue
        base = int(m[1], 16)
        for i, w in enumerate(m[2].split()):
            words[base + 8 * i] = int(w, 16)
    return words


@dataclass(frozen=True)
class KmemRow:
    """One row of crash's ``kmem -i``: a figure in pages and as crash prints the total."""

    name: str
    pages: int
    total: str  # e.g. "717 MB", "0"
    percentage: str  # e.g. "87% of TOTAL MEM", "----"


def parse_kmem_i(text: str) -> dict[str, KmemRow]:
    """Parse ``kmem -i`` into {row name: KmemRow}, e.g. ``rows["TOTAL MEM"].pages``."""
    rows: dict[str, KmemRow] = {}
    pat = re.compile(
        r"^\s*(?P<name>[A-Z][A-Z ]*?)\s+(?P<pages>\d+)\s+(?P<total>[\d.]+(?: [KMGT]B)?)\s+(?P<pct>.*)$"
    )
    for raw in text.splitlines():
        if m := pat.match(raw):
            rows[m["name"]] = KmemRow(m["name"], int(m["pages"]), m["total"], m["pct"].strip())
    return rows
