"""What kind of death a dump shows: BUG, oops, NULL dereference, lockup, hung task, OOM, SysRq…

The class is the first half of a crash signature (:mod:`.signature`), so it is read from the words
the kernel itself prints, which have stayed the same across the releases users bring (5.10 … 7.x):
the oops line, then the panic string, then the rest of the report. Rules are tried in order against
each of those lines; the first rule that matches the earliest line wins, so a NULL dereference that
ended in "Fatal exception in interrupt" is a NULL dereference, not a generic panic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vmcore_dap.dump.kernel.panic import PanicInfo

__all__ = ["PanicClass", "classify_panic", "NO_PANIC", "LOCKUP_CLASSES", "HUNG_TASK"]


@dataclass(frozen=True)
class PanicClass:
    """A kind of crash: ``name`` is stable (it goes into signatures), ``label`` is for people."""

    name: str
    label: str


NO_PANIC = PanicClass("no-panic", "dump without a panic")
HUNG_TASK = PanicClass("hung-task", "hung task")
_PANIC = PanicClass("panic", "kernel panic")
_OOPS = PanicClass("oops", "oops")

# Message texts: mm/fault.c (page_fault_oops), lib/bug.c, kernel/watchdog*.c, kernel/hung_task.c,
# mm/oom_kill.c, drivers/tty/sysrq.c, kernel/rcu/tree_stall.h, kernel/panic.c, arch/*/kernel/traps.c.
_RULES: tuple[tuple[PanicClass, re.Pattern[str]], ...] = tuple(
    (PanicClass(name, label), re.compile(pattern))
    for name, label, pattern in (
        ("null-deref", "NULL pointer dereference", r"NULL pointer dereference"),
        (
            "bad-address",
            "bad memory access",
            r"unable to handle (?:page fault|kernel paging request)|Unable to handle kernel paging request",
        ),
        ("bug", "BUG()", r"kernel BUG at|Kernel BUG at"),
        ("soft-lockup", "soft lockup", r"soft lockup|softlockup"),
        ("hard-lockup", "hard lockup", r"hard LOCKUP|hardlockup"),
        (HUNG_TASK.name, HUNG_TASK.label, r"hung_task|blocked for more than \d+ seconds"),
        ("rcu-stall", "RCU stall", r"rcu.*(?:self-detected stall|detected stalls?)"),
        ("oom", "out of memory", r"Out of memory|out of memory|deadlocked on memory"),
        ("sysrq", "SysRq crash", r"[Ss]ys[Rr]q ?: Trigger a crash|sysrq triggered crash"),
        ("stack-protector", "stack corruption", r"stack-protector|stack guard page|corrupted stack end"),
        ("gpf", "general protection fault", r"general protection fault"),
        ("divide-error", "divide error", r"divide error"),
        ("double-fault", "double fault", r"double fault"),
        ("machine-check", "machine check", r"Machine check|\[Hardware Error\]"),
        ("invalid-opcode", "invalid opcode", r"invalid opcode"),
        ("warning", "WARNING with panic_on_warn", r"panic_on_warn|^WARNING: "),
        ("init-killed", "init killed", r"Attempted to kill init"),
        ("no-root", "no root file system", r"Unable to mount root fs|VFS: Unable to mount"),
    )
)

#: Classes whose crashed stack is the watchdog's: the stuck code is what it interrupted.
LOCKUP_CLASSES = frozenset({"soft-lockup", "hard-lockup", "rcu-stall"})


def classify_panic(panic: PanicInfo | None) -> PanicClass:
    """Name the kind of crash ``panic`` describes (``None``: the dump has no panic)."""
    if panic is None or (panic.panic is None and panic.oops is None and not panic.report):
        return NO_PANIC
    lines = [line for line in (panic.oops, panic.panic, *panic.report) if line]
    for line in lines:
        for kind, pattern in _RULES:
            if pattern.search(line):
                return kind
    if panic.panic and not panic.panic.startswith("Oops") and panic.oops in (None, panic.panic):
        return _PANIC  # panic() called with a reason no rule knows, no oops before it
    return _OOPS
