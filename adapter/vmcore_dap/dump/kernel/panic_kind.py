"""What kind of death a dump shows: NULL dereference, bad memory access, BUG, lockup, OOM, SysRq…

One table for every view that names the kind of crash: the exception widget (``exceptionInfo``'s
``exceptionId``, from :attr:`~vmcore_dap.dump.kernel.panic.PanicInfo.kind`), and triage, whose
crash signatures start with the kind's ``name``. Each kind has a stable ``name`` (it goes into
signatures, so existing reports and caches depend on it: never rename one) and a ``label`` for
people (the exception widget's headline, the start of a signature's title).

The kind is read from the words the kernel itself prints: the oops line, then the panic string,
then the rest of the report. Rules are tried in order against each of those lines; the first rule
that matches the earliest line wins, so a NULL dereference that ended in "Fatal exception in
interrupt" is a NULL dereference, not a generic panic.

Where the words differ by architecture or kernel version, the rule's comment says whose words they
are and since when; the rest (lib/bug.c, kernel/watchdog*.c, kernel/hung_task.c, mm/oom_kill.c,
drivers/tty/sysrq.c, kernel/rcu/tree_stall.h, kernel/panic.c, arch/x86/kernel/traps.c) has printed
the same text in every kernel the project supports (5.10 … 7.x).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["HUNG_TASK", "LOCKUP_KINDS", "NO_PANIC", "PanicKind", "classify"]


@dataclass(frozen=True)
class PanicKind:
    """A kind of crash: ``name`` is stable (it goes into signatures), ``label`` is for people."""

    name: str
    label: str


NO_PANIC = PanicKind("no-panic", "dump without a panic")
HUNG_TASK = PanicKind("hung-task", "hung task")
#: panic() called with a reason no rule knows, and no oops before it.
_PANIC = PanicKind("panic", "kernel panic")
#: An oops or BUG report no rule knows ("BUG: scheduling while atomic", "BUG: KASAN: …").
_OOPS = PanicKind("oops", "oops")

# A kernel-mode fault on an address nothing maps is worded per architecture:
# - x86-64, arch/x86/mm/fault.c show_fault_oops(): "BUG: kernel NULL pointer dereference, address:
#   …" below PAGE_SIZE, "BUG: unable to handle page fault for address: …" above, since v5.1 (commit
#   f28b11a2abd9 "x86/fault: Reword initial BUG message for unhandled page faults"); before it
#   "BUG: unable to handle kernel NULL pointer dereference at …" / "… kernel paging request at …",
#   which these patterns still match.
# - arm64, arch/arm64/mm/fault.c die_kernel_fault(): "Unable to handle kernel NULL pointer
#   dereference at virtual address …" below PAGE_SIZE, "Unable to handle kernel paging request at
#   virtual address …" above (the same text in the 5.10, 6.1, 6.12 and 7.2 sources the samples are
#   built from). A permission fault (__do_kernel_fault(): "… write to read-only memory", "… execute
#   from non-executable memory", "… read from unreadable memory", in all four) and, in the 7.2
#   source (not 6.12's), "… access to hypervisor-protected memory" are bad memory accesses too, as
#   x86-64 words the same faults "unable to handle page fault".
_NULL_DEREF = r"NULL pointer dereference"
_BAD_ADDRESS = (
    r"unable to handle (?:page fault|kernel paging request)"
    r"|Unable to handle kernel (?:paging request|write to read-only memory|execute from non-executable"
    r" memory|read from unreadable memory|access to hypervisor-protected memory)"
)

_RULES: tuple[tuple[PanicKind, re.Pattern[str]], ...] = tuple(
    (PanicKind(name, label), re.compile(pattern))
    for name, label, pattern in (
        ("null-deref", "NULL pointer dereference", _NULL_DEREF),
        ("bad-address", "bad memory access", _BAD_ADDRESS),
        ("bug", "BUG()", r"kernel BUG at|Kernel BUG at"),
        ("soft-lockup", "soft lockup", r"soft lockup|softlockup"),
        ("hard-lockup", "hard lockup", r"hard LOCKUP|hardlockup"),
        (HUNG_TASK.name, HUNG_TASK.label, r"hung_task|blocked for more than \d+ seconds"),
        ("rcu-stall", "RCU stall", r"rcu.*(?:self-detected stall|detected stalls?)"),
        ("oom", "out of memory", r"Out of memory|out of memory|deadlocked on memory"),
        # drivers/tty/sysrq.c: "sysrq: Trigger a crash" (its pr_fmt, in the 5.10 … 7.2 sources);
        # older kernels printed "SysRq : Trigger a crash", which crash's patterns still know.
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

#: Kinds whose crashed stack is the watchdog's: the stuck code is what it interrupted.
LOCKUP_KINDS = frozenset({"soft-lockup", "hard-lockup", "rcu-stall"})


def classify(oops: str | None, panic: str | None, report: Iterable[str] = ()) -> PanicKind:
    """Name the kind of crash from the oops line, the panic string and the report's log lines.

    :param oops: the first line of the oops/BUG report (``PanicInfo.oops``).
    :param panic: crash's PANIC string (``PanicInfo.panic``).
    :param report: the report's log lines, tried after the two above.
    """
    lines = [line for line in (oops, panic, *report) if line]
    if not lines:
        return NO_PANIC
    for line in lines:
        for kind, pattern in _RULES:
            if pattern.search(line):
                return kind
    if panic and not panic.startswith("Oops") and oops in (None, panic):
        return _PANIC
    return _OOPS
