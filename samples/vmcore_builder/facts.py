"""Read the facts a sample guarantees out of its dump's dmesg and its sources.

Everything here is pure text processing (no files, no subprocesses), so the
rules are unit-tested on fixed strings. Sources of truth:

- ``LABFACT <kind> key=value ...`` records the guest's programs wrote to /dev/kmsg;
- the kernel's own messages: the oops, ``CPU: N PID: P Comm: C``, ``RIP:``, the
  call trace, the panic line, and the labbug module's ``labbug: ...`` lines;
- the module source's ``LABBUG-FAULT`` marker and its enum definition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .common import BuildError

__all__ = [
    "CRASH_PANIC_PATTERNS",
    "NULL_DEREF_LINES",
    "Frame",
    "LabFact",
    "crash_context",
    "dmesg_texts",
    "enum_names",
    "find_line",
    "kv_pairs",
    "lab_facts",
    "panic_caller",
    "panic_string",
    "rip_frame",
]

#: The patterns crash's ``get_panicmsg()`` looks for, in its order: crash's
#: ``sys`` prints the first log line containing the earliest pattern found.
CRASH_PANIC_PATTERNS = (
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

_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\] ?")
_KV = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|\s*$)")
#: dump_stack's ``CPU: N PID: P Comm: C`` line; lib/dump_stack.c added ``UID: U`` after the CPU
#: between v6.6 and v6.12 (Debian's 6.12 and 7.x print it, 6.1 does not).
_CONTEXT = re.compile(r"CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (\S+)")
_FRAME = re.compile(r"(?P<func>[\w.]+)\+0x(?P<off>[0-9a-f]+)/0x(?P<size>[0-9a-f]+)(?: \[(?P<module>\w+)\])?")


@dataclass(frozen=True)
class LabFact:
    """One ``LABFACT <kind> k=v ...`` record."""

    kind: str
    values: dict[str, str]


@dataclass(frozen=True)
class Frame:
    """A ``func+0xoff/0xsize [module]`` location from an oops or call trace."""

    function: str
    offset: int
    size: int
    module: str | None


def dmesg_texts(dmesg: str) -> list[str]:
    """Strip the ``[ seconds.micro]`` prefix of each line (crash's ``log -t`` view)."""
    return [_TIMESTAMP.sub("", line).rstrip() for line in dmesg.splitlines()]


def kv_pairs(text: str) -> dict[str, str]:
    """Parse ``a=1 msg=walk 7 b=x`` into a dict; a value runs until the next ``key=``."""
    return {m.group(1): m.group(2).strip().strip('"') for m in _KV.finditer(text)}


def lab_facts(texts: list[str]) -> list[LabFact]:
    """Return the guest's LABFACT records in log order."""
    facts = []
    for line in texts:
        idx = line.find("LABFACT ")
        if idx < 0:
            continue
        kind, _, rest = line[idx + len("LABFACT ") :].partition(" ")
        facts.append(LabFact(kind, kv_pairs(rest)))
    return facts


def panic_string(texts: list[str]) -> str:
    """Reproduce crash's PANIC string: the first line with the earliest-listed pattern."""
    for pattern in CRASH_PANIC_PATTERNS:
        for line in texts:
            if pattern in line:
                return line.strip()
    raise BuildError("The dump's dmesg has no panic message (did the guest really crash?)")


def crash_context(texts: list[str], start: int = 0) -> tuple[int, int, str, int]:
    """Find the first ``CPU: N PID: P Comm: C`` line at or after ``start``.

    :returns: (cpu, pid, comm, line index)
    """
    for i in range(start, len(texts)):
        m = _CONTEXT.search(texts[i])
        if m:
            return int(m.group(1)), int(m.group(2)), m.group(3), i
    raise BuildError("The dump's dmesg has no 'CPU: N PID: P Comm: C' line after the crash")


def _frame(m: re.Match[str]) -> Frame:
    return Frame(m.group("func"), int(m.group("off"), 16), int(m.group("size"), 16), m.group("module"))


#: How an oops names the faulting instruction: x86-64's ``RIP: 0010:func+0x…`` and arm64's
#: ``pc : func+0x…`` (arch/arm64/kernel/process.c, __show_regs).
_PC_LABELS = ("RIP: ", "pc : ")

#: How an oops starts for a NULL dereference: x86-64's page-fault report and arm64's
#: (arch/arm64/mm/fault.c, die_kernel_fault).
NULL_DEREF_LINES = (
    "BUG: kernel NULL pointer dereference",
    "Unable to handle kernel NULL pointer dereference",
)


def rip_frame(texts: list[str], start: int = 0) -> Frame:
    """Return the ``RIP: 0010:func+0x../0x.. [mod]`` (arm64: ``pc : func+…``) of the first oops
    at or after ``start``."""
    for line in texts[start:]:
        label = next((lab for lab in _PC_LABELS if lab in line), None)
        if label:
            m = _FRAME.search(line.split(label, 1)[1])
            if m:
                return _frame(m)
    raise BuildError("The dump's dmesg has no symbolic 'RIP:' (or arm64 'pc :') line for the oops")


#: The function a call trace names for the panic: ``panic``, or the ``vpanic`` it calls since the
#: kernel split them (6.12's arm64 trace shows ``vpanic`` and, panic() having tail-called it, no
#: ``panic`` frame at all).
_PANIC_FRAMES = ("panic", "vpanic")


def panic_caller(texts: list[str], start: int = 0) -> Frame:
    """Return the reliable call-trace frame right below ``panic`` (e.g. sysrq_handle_crash).

    Unreliable entries (``? func+...``) and the ``<TASK>`` markers are skipped, and so is a
    return address at offset 0 of a function: the call was the last instruction of the function
    before it (``panic`` calling the noreturn ``vpanic``, shown as ``trace_suspend_resume+0x0``).
    """
    seen_panic = False
    for line in texts[start:]:
        stripped = line.strip()
        if stripped.startswith("?") or stripped.startswith("<"):
            continue
        m = _FRAME.match(stripped)
        if not m:
            continue
        if m.group("func") in _PANIC_FRAMES:
            seen_panic = True
        elif seen_panic and int(m.group("off"), 16) != 0:
            return _frame(m)
    raise BuildError("The dump's dmesg has no call trace through panic()")


def find_line(source: str, marker: str) -> int:
    """Return the 1-based line of the only line of ``source`` containing ``marker``."""
    hits = [n for n, line in enumerate(source.splitlines(), start=1) if marker in line]
    if len(hits) != 1:
        raise BuildError(f"Expected exactly one '{marker}' marker in the module source, found {len(hits)}")
    return hits[0]


def enum_names(source: str, enum: str) -> dict[int, str]:
    """Map values to enumerator names of ``enum <name> { ... }`` (plain or ``= N`` values)."""
    m = re.search(rf"enum {re.escape(enum)}\s*{{(.*?)}}", source, re.S)
    if not m:
        raise BuildError(f"No 'enum {enum}' in the module source")
    names: dict[int, str] = {}
    value = -1
    for item in m.group(1).split(","):
        item = re.sub(r"/\*.*?\*/", "", item).strip()
        if not item:
            continue
        name, _, explicit = item.partition("=")
        value = int(explicit.strip(), 0) if explicit.strip() else value + 1
        names[value] = name.strip()
    return names
