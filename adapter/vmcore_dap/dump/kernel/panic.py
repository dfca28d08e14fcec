"""Why the kernel died, in the words of its own log, and which task to look at first.

The panic string is chosen the way crash's ``sys`` chooses its PANIC line (``get_panicmsg()``: the
first log line containing the earliest of a fixed list of patterns), so the adapter and crash name a
dump's panic identically. The oops line is the first line of the report (``BUG: …``,
``kernel BUG at file:line``, ``Oops: …``); the report's lines run from there to the end of the log.
:func:`panic_log_lines` finds the last report in the kernel log's text (as the console prints it at
the stop), and :attr:`PanicInfo.kind` names the kind of crash (:mod:`.panic_kind`).

The task a debugger shows first (:func:`focus_task`) is the one that panicked, or CPU 0's current
task in a dump taken without a panic: the stop, the console's current context and the language
server's fault all follow that one rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import drgn
from drgn.helpers.linux.panic import tainted
from drgn.helpers.linux.printk import PrintkRecord, get_printk_records
from drgn.helpers.linux.sched import cpu_curr

from vmcore_dap.dump.kernel.panic_kind import PanicKind, classify

__all__ = [
    "PanicInfo",
    "crashed_task",
    "describe_taint",
    "dmesg_text",
    "focus_task",
    "kernel_log_lines",
    "panic_info",
    "panic_log_lines",
    "panic_string",
    "printk_records",
]

#: crash's ``get_panicmsg()`` patterns, in its order of preference. The sample builder keeps its own
#: copy (samples/vmcore_builder/facts.py) on purpose: the samples' expected facts are derived without
#: the code they test, and the builder needs only the standard library.
_PANIC_PATTERNS = (
    "SysRq : Crash",
    "SysRq : Trigger a crash",
    "SysRq : Netdump",
    "Kernel panic: ",
    "Kernel panic - ",
    "Kernel BUG at",
    "kernel BUG at",
    "Unable to handle kernel paging request",
    "Unable to handle kernel NULL pointer dereference",
    "BUG: unable to handle kernel ",
    "general protection fault: ",
    "double fault: ",
    "divide error: ",
    "stack segment: ",
    "[Hardware Error]: ",
    "Bad mode in ",
    "Oops: ",
)

#: How the lines that open an oops report begin (arch/x86/mm/fault.c, lib/bug.c,
#: arch/x86/kernel/dumpstack.c, drivers/tty/sysrq.c, kernel/panic.c).
_REPORT_OPENERS = (
    r"BUG: |kernel BUG at |Kernel BUG at |Oops: |general protection fault|stack segment: |"
    r"divide error: |double fault: |Unable to handle kernel |sysrq: Trigger a crash|SysRq : Trigger a crash|"
    r"Kernel panic - not syncing"
)
_REPORT_START = re.compile(rf"^({_REPORT_OPENERS})")
#: The same anywhere in a printed log line (after its timestamp), and a WARN/BUG's "cut here" line.
_PRINTED_REPORT_START = re.compile(rf"{_REPORT_OPENERS}|------------\[ cut here \]------------")
_OOPS_LINE = re.compile(
    r"^(BUG: |kernel BUG at |Kernel BUG at |Oops: |general protection fault|Unable to handle|"
    r"sysrq: Trigger a crash|SysRq : Trigger a crash)"
)

# kernel/panic.c taint_flags[], by letter.
_TAINT_MEANINGS = {
    "P": "proprietary module loaded",
    "F": "module force-loaded",
    "S": "running on out-of-spec hardware",
    "R": "module force-unloaded",
    "M": "machine check",
    "B": "bad page referenced",
    "U": "taint requested by user",
    "D": "kernel died recently (oops or BUG)",
    "A": "ACPI table overridden",
    "W": "kernel warning issued",
    "C": "staging driver loaded",
    "I": "firmware bug worked around",
    "O": "out-of-tree module loaded",
    "E": "unsigned module loaded",
    "L": "soft lockup occurred",
    "K": "kernel live-patched",
    "X": "auxiliary taint",
    "T": "built with struct randomization",
    "N": "in-kernel test run",
}


@dataclass
class PanicInfo:
    """What the log says about the crash.

    :param panic: crash-style panic string, ``None`` if the log shows no panic.
    :param oops: the first line of the oops/BUG report, or SysRq's "Trigger a crash" line (the panic
        string when there is neither).
    :param taint: the taint letters as the kernel prints them (``G           OE``), stripped.
    :param report: the log lines of the report, from its first line to the end of the log.
    """

    panic: str | None
    oops: str | None
    taint: str
    report: list[str] = field(default_factory=list)

    @property
    def kind(self) -> PanicKind:
        """What kind of crash this was (:mod:`.panic_kind`): its ``label`` heads the exception widget,
        its ``name`` starts a triage signature, so both views always name a crash alike."""
        return classify(self.oops, self.panic, self.report)

    @property
    def taint_description(self) -> str:
        """``"Tainted: G OE (O: out-of-tree module loaded, E: unsigned module loaded)"``."""
        return describe_taint(self.taint)


def describe_taint(flags: str) -> str:
    """Spell out a taint string for people."""
    if not flags.strip():
        return "Not tainted"
    letters = [c for c in flags if c not in " G"]
    meanings = ", ".join(f"{c}: {_TAINT_MEANINGS.get(c, 'unknown taint')}" for c in letters)
    return f"Tainted: {flags.rstrip()}" + (f" ({meanings})" if meanings else "")


_RECORDS_KEY = "vmcore_dap_printk_records"


def printk_records(prog: drgn.Program) -> list[PrintkRecord]:
    """drgn's ``get_printk_records``, read once per program: the launch's panic facts and the log the
    console prints at the stop come from the same records (about 4 ms each time on a small dump,
    on the way to the first picture). A dump does not change; a failed read is not kept."""
    records: list[PrintkRecord] | None = prog.cache.get(_RECORDS_KEY)
    if records is None:
        records = prog.cache[_RECORDS_KEY] = get_printk_records(prog)
    return records


def dmesg_text(prog: drgn.Program) -> str:
    """The kernel log as drgn's ``get_dmesg`` prints it (and the console's ``log``): one
    ``[seconds.micros] text`` line a record (the format its docstring gives), from
    :func:`printk_records`."""
    lines = [
        b"[% 5d.%06d] %s" % (r.timestamp // 1_000_000_000, r.timestamp % 1_000_000_000 // 1000, r.text)
        for r in printk_records(prog)
    ]
    lines.append(b"")
    return b"\n".join(lines).decode(errors="replace")


def kernel_log_lines(prog: drgn.Program) -> list[str]:
    """Return the kernel log as text lines without timestamps (continuation lines split)."""
    lines: list[str] = []
    for record in printk_records(prog):
        text = record.text.decode("utf-8", "replace")
        lines.extend(text.split("\n"))
    return lines


def panic_string(lines: list[str]) -> str | None:
    """The PANIC line crash's ``sys`` prints: the first line holding the earliest known pattern."""
    for pattern in _PANIC_PATTERNS:
        panic = next((line.strip() for line in lines if pattern in line), None)
        if panic is not None:
            return panic
    return None


def panic_info(prog: drgn.Program) -> PanicInfo:
    """Read the panic string, oops line, taint and report lines from the dump."""
    try:
        lines = kernel_log_lines(prog)
    except (drgn.FaultError, LookupError, ValueError):
        lines = []
    panic = panic_string(lines)
    oops_index = next((i for i, line in enumerate(lines) if _OOPS_LINE.match(line)), None)
    start = next((i for i, line in enumerate(lines) if _REPORT_START.match(line)), None)
    oops = lines[oops_index].strip() if oops_index is not None else panic
    report = [line.rstrip() for line in lines[start:]] if start is not None else []
    while report and not report[-1]:
        report.pop()
    try:
        taint = tainted(prog).rstrip()
    except (LookupError, drgn.FaultError):
        taint = ""
    return PanicInfo(panic=panic, oops=oops, taint=taint, report=report)


def panic_log_lines(log_text: str, max_lines: int) -> list[str]:
    """The last oops/panic report of a printed kernel log (as crash's ``log`` prints it), to its end.

    The report starts at the last line opening a report (``BUG:``, ``Oops:``, ``sysrq: Trigger a
    crash``, a WARN's "cut here"…) that is not the ``Kernel panic`` line itself, moved back over report
    lines printed just before it (``BUG:`` precedes ``Oops:``). At most ``max_lines`` lines from there;
    the log of a kdump ends at the panic. Without a report: the log's last ``max_lines`` lines.
    """
    lines = log_text.splitlines()

    def starts_report(i: int) -> bool:
        return bool(_PRINTED_REPORT_START.search(lines[i])) and "Kernel panic" not in lines[i]

    start = next((i for i in range(len(lines) - 1, -1, -1) if starts_report(i)), None)
    if start is None:
        return lines[-max_lines:]
    moved = True
    while moved:
        moved = False
        for j in range(start - 1, max(-1, start - 6), -1):
            if starts_report(j):
                start, moved = j, True
                break
    return lines[start : start + max_lines]


def crashed_task(prog: drgn.Program) -> drgn.Object | None:
    """The ``struct task_struct *`` that panicked, or ``None`` for a dump taken without a panic."""
    try:
        task = prog.crashed_thread().object
    except (LookupError, ValueError, drgn.FaultError):
        return None
    return task if task.value_() else None


def focus_task(prog: drgn.Program, *, prefer_crashed: bool = True) -> drgn.Object | None:
    """The task a debugger shows first: the one that panicked (unless ``prefer_crashed`` is false, as
    with the launch setting ``stopOnPanic: false``), else CPU 0's current task (a dump taken without a
    panic, e.g. by QEMU's ``dump-guest-memory``). ``None`` when neither can be read.
    """
    task = crashed_task(prog) if prefer_crashed else None
    if task is not None:
        return task
    try:
        return cpu_curr(prog, 0)
    except (LookupError, ValueError, drgn.FaultError):
        return None
