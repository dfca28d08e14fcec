"""The one rule by which every test compares a kernel stack with crash's ``bt``.

crash and drgn walk the same stack but print it differently; this module states, once, which
differences do not count:

* Start at the first exception: crash prints the panic/kexec path above ``[exception RIP: f+off]``
  (machine_kexec, __crash_kexec, oops_end, page_fault_oops, exc_page_fault, asm_exc_page_fault).
  drgn's stack for the crashed CPU also begins in the panic path (the registers crash_kexec saved),
  and its first frame *after* frame 0 that was interrupted (``StackFrame.interrupted``) is the
  faulting function.  Both sides are cut there.  A stack without an exception (a sleeping task)
  is compared whole.
* Compiler suffixes: GCC's clones and split-off parts (``f.cold``, ``f.isra.0``, ``f.constprop.0``,
  ``f.part.0``) are the same source function; crash names the ELF symbol, drgn the DWARF function.
* Inline frames: drgn lists functions inlined into a frame as frames of their own
  (``StackFrame.is_inline``); crash cannot see them, so they are dropped.
* Caller lines: for every frame but the first, crash looks up the return address and drgn the call
  instruction, so their lines may differ by one.
* Files are compared by path suffix (crash prints the build directory, drgn the DWARF name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.helpers.crash_parse import TaskBt, parse_bt

if TYPE_CHECKING:
    import drgn

__all__ = [
    "Frame",
    "assert_stacks_match",
    "base_function_name",
    "normalize_crash_bt",
    "normalize_drgn_trace",
    "normalize_frames",
    "stack_differences",
]

_SUFFIX = re.compile(r"(?:\.(?:cold|isra|constprop|part|lto_priv|llvm)(?:\.\d+)?)+$")
# Lines of callers may differ by this much (return address vs call instruction).
CALLER_LINE_SLACK = 1


@dataclass(frozen=True)
class Frame:
    """A normalised stack frame: a source function and, when known, where in it."""

    function: str
    file: str | None = None
    line: int | None = None
    is_inline: bool = False

    def __str__(self) -> str:
        where = f" {self.file}:{self.line}" if self.file else ""
        return f"{self.function}{where}{' (inline)' if self.is_inline else ''}"


def base_function_name(name: str) -> str:
    """Strip GCC clone/split suffixes: ``f.cold`` / ``f.isra.0`` / ``f.constprop.0.cold`` -> ``f``."""
    return _SUFFIX.sub("", name)


def normalize_frames(frames: Iterable[tuple[str, str | None, int | None, bool]]) -> list[Frame]:
    """Normalise (function, file, line, is_inline) tuples: strip suffixes, drop inline frames."""
    return [
        Frame(base_function_name(fn), file, line, False)
        for fn, file, line, is_inline in frames
        if not is_inline
    ]


def _crash_task_frames(
    bt: TaskBt, start_at_exception: bool
) -> list[tuple[str, str | None, int | None, bool]]:
    frames = [(f.symbol, f.file, f.line, False) for f in bt.frames]
    if start_at_exception and bt.exceptions:
        exc = bt.exceptions[0]
        return [(exc.symbol, exc.file, exc.line, False)] + frames[exc.before_level :]
    return frames


def normalize_crash_bt(text: str, *, start_at_exception: bool = True) -> list[Frame]:
    """Normalise the output of crash's ``bt`` / ``bt -l`` for one task.

    :param text: the output for exactly one task (split ``bt -a`` with ``crash_parse.split_tasks``).
    """
    tasks = parse_bt(text)
    if len(tasks) != 1:
        raise ValueError(f"expected the bt of one task, got {len(tasks)} (use split_tasks first)")
    return normalize_frames(_crash_task_frames(tasks[0], start_at_exception))


def _drgn_frame_tuple(frame: drgn.StackFrame) -> tuple[str, str | None, int | None, bool]:
    name = frame.name
    if name is None:
        try:
            name = frame.symbol().name
        except LookupError:
            name = hex(frame.pc)
    try:
        file, line, _column = frame.source()
    except LookupError:
        file, line = None, None
    return name, file, line, frame.is_inline


def normalize_drgn_trace(
    trace: drgn.StackTrace | Sequence[Any], *, start_at_exception: bool = True
) -> list[Frame]:
    """Normalise a drgn ``StackTrace`` by the same rule as ``normalize_crash_bt``.

    The cut: the first frame after frame 0 whose registers come from an exception
    (``interrupted``).  Inline frames that belong to that physical frame (listed before it) are
    dropped with the rest of the panic path.
    """
    frames = list(trace)
    start = 0
    if start_at_exception:
        for i, frame in enumerate(frames):
            if i > 0 and frame.interrupted and not frame.is_inline:
                # Inline frames of the interrupted physical frame come just before it.
                start = i
                while start > 0 and frames[start - 1].is_inline and frames[start - 1].pc == frame.pc:
                    start -= 1
                break
    return normalize_frames(_drgn_frame_tuple(f) for f in frames[start:])


def _same_file(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return True  # one side does not know: nothing to compare
    pa = [p for p in a.split("/") if p not in ("", ".")]
    pb = [p for p in b.split("/") if p not in ("", ".")]
    n = min(len(pa), len(pb))
    return n > 0 and pa[-n:] == pb[-n:]


def stack_differences(
    ours: Sequence[Frame], crash: Sequence[Frame], *, check_lines: bool = True
) -> list[str]:
    """List why two normalised stacks differ (empty when they match by the rule above)."""
    problems: list[str] = []
    if [f.function for f in ours] != [f.function for f in crash]:
        problems.append("function lists differ")
    for i, (a, b) in enumerate(zip(ours, crash, strict=False)):
        if a.function != b.function:
            continue
        if not _same_file(a.file, b.file):
            problems.append(f"#{i} {a.function}: file {a.file} != crash's {b.file}")
        if check_lines and a.line is not None and b.line is not None:
            slack = 0 if i == 0 else CALLER_LINE_SLACK
            if abs(a.line - b.line) > slack:
                problems.append(f"#{i} {a.function}: line {a.line} != crash's {b.line} (slack {slack})")
    return problems


def _table(ours: Sequence[Frame], crash: Sequence[Frame]) -> str:
    rows = ["   ours" + " " * 53 + "crash"]
    for i in range(max(len(ours), len(crash))):
        a = str(ours[i]) if i < len(ours) else "-"
        b = str(crash[i]) if i < len(crash) else "-"
        mark = " " if i < len(ours) and i < len(crash) and ours[i].function == crash[i].function else "!"
        rows.append(f"{mark}#{i:<2} {a:<56.56} {b}")
    return "\n".join(rows)


def assert_stacks_match(ours: Sequence[Frame], crash: Sequence[Frame], *, check_lines: bool = True) -> None:
    """Assert two normalised stacks match; the failure shows both side by side."""
    problems = stack_differences(ours, crash, check_lines=check_lines)
    if problems:
        raise AssertionError(
            "stack differs from crash's bt:\n  " + "\n  ".join(problems) + "\n" + _table(ours, crash)
        )
