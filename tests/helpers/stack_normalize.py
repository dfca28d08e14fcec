"""The one rule by which every test compares a kernel stack with crash's ``bt``.

The rules and drgn's side live in the adapter (``vmcore_dap.dump.stacks.normalize``: the Kernel
view groups tasks by them); this module adds crash's side and the comparison, and re-exports the rest.

crash and drgn walk the same stack but print it differently; this module states, once, which
differences do not count.  Each rule was seen on the sample dumps (6.1 kernels, crash 8.0.6,
drgn 0.3):

1. **Where the stack starts.**  If crash prints ``[exception RIP: f+off]``, both stacks start at
   ``f``: crash lists the panic/kexec path above it (machine_kexec, __crash_kexec, oops_end,
   page_fault_oops, exc_page_fault, asm_exc_page_fault, or the NMI handler on the other CPUs);
   drgn starts at the first frame it unwound from exception registers
   (``StackFrame.interrupted``).  After an NMI's stack switch crash prints the interrupted frame
   a second time (same address as the RIP); the repeat is dropped.  Without an exception
   (``panic()`` called directly, as SysRq-c does), the kdump machinery's own frames
   (``CRASH_MACHINERY``) are cut from the top of both: crash shows ``machine_kexec``, drgn the
   inlined ``crash_setup_regs``.
   A *later* exception block (an interrupt the task took before the fault, e.g. ``[exception RIP:
   labbug_irq_wait+41]`` below ``--- <IRQ stack> ---`` and ``asm_sysvec_apic_timer_interrupt``)
   names the interrupted function only inside the block: crash's next numbered frame is its
   caller, while drgn unwinds the block's registers into a frame of their own. The block's RIP is
   inserted as that frame (unless crash repeats it, as after an NMI).
2. **Where it ends.**  drgn continues into the user-space registers of a task in a system call
   (one frame with a user address); crash prints those as a register block.  User frames are
   dropped.
3. **Names.**  GCC's clones and split parts (``f.cold``, ``f.isra.0``, ``f.constprop.0``,
   ``f.part.0``) are the source function ``f``: crash names ELF symbols, drgn DWARF functions.
   crash names the nearest symbol, which in assembly can be a label inside a function
   (``entry_SYSCALL_64_after_hwframe``); drgn names the function (``ASM_LABEL_ALIASES``).
   ``SYSCALL_DEFINE0`` makes ``__x64_sys_pause`` an ELF alias of ``__do_sys_pause``: crash names
   the first, drgn the second; all ``__{x64,ia32,se,do}_sys_X`` compare as ``__do_sys_X``.
4. **Inline frames.**  drgn lists inlined calls as frames of their own (``is_inline``); crash
   cannot see them.  They are merged into their physical frame, which takes the *innermost*
   source location, as crash's ``bt -l`` does.
5. **Caller lines.**  crash's ``bt -l`` looks up the return address; a debugger shows the call.
   ``normalize_drgn_trace`` looks up the return address too (``Program.source_location(pc)``), so
   lines compare exactly, with ``CALLER_LINE_SLACK``.  Stacks whose caller lines are call sites
   (a DAP ``stackTrace``) compare with ``check_lines="first"`` and, better, by ``pc``: crash's
   frame address and drgn's ``StackFrame.pc`` are both the return address.
6. **Files** compare by path suffix (crash prints the build directory, drgn the DWARF name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tests.helpers.crash_parse import BtException, TaskBt, parse_bt
from vmcore_dap.dump.stacks.normalize import (
    ASM_LABEL_ALIASES,
    CRASH_MACHINERY,
    Frame,
    FrameTuple,
    base_function_name,
    cut_machinery,
    normalize_drgn_trace,
    normalize_frames,
)

__all__ = [
    "ASM_LABEL_ALIASES",
    "CALLER_LINE_SLACK",
    "CRASH_MACHINERY",
    "Frame",
    "FrameTuple",
    "assert_stacks_match",
    "base_function_name",
    "normalize_crash_bt",
    "normalize_crash_task",
    "normalize_drgn_trace",
    "normalize_frames",
    "stack_differences",
]

# Lines of callers may differ by this much (the brief's call-vs-return-address allowance).
CALLER_LINE_SLACK = 1

_cut_machinery = cut_machinery


def normalize_crash_task(
    bt: TaskBt,
    *,
    start_at_exception: bool = True,
    pc_bias: int = 0,
    exception_entries: frozenset[str] = frozenset(),
) -> list[Frame]:
    """Normalise one task of parsed crash ``bt`` output (rules 1, 3, 6).

    :param pc_bias: added to the address crash prints for each frame to get its return address
        (arm64's crash prints the call instruction's: ``samples/crash_choice.py`` ``CrashRow.pc_bias``).
    :param exception_entries: exception vectors after which crash lists the interrupted function as
        a plain frame, with no ``[exception RIP: …]`` block (arm64's ``el1h_64_*``): the stack starts
        at that frame (rule 1), or is empty when user mode was interrupted (``el0t_64_irq``).
    """
    frames = [Frame(base_function_name(f.symbol), f.file, f.line, f.address + pc_bias) for f in bt.frames]
    if not start_at_exception:
        return frames
    entered = [i for i, f in enumerate(bt.frames) if f.symbol in exception_entries]
    if entered and not bt.exceptions:
        return frames[entered[0] + 1 :]
    if bt.exceptions:
        exc = bt.exceptions[0]
        rip = exc.registers.get("RIP")
        top = Frame(base_function_name(exc.symbol), exc.file, exc.line, rip)
        first = exc.before_level
        if first < len(frames) and frames[first].pc == rip:
            # After "--- <NMI exception stack> ---" crash repeats the RIP's frame; drgn's bt always
            # does, and prints the source line (bt -l) under that frame rather than the registers.
            if top.file is None:
                top = Frame(top.function, frames[first].file, frames[first].line, rip)
            first += 1
        return [top] + _with_later_exceptions(frames[first:], bt.exceptions[1:], first)
    return _cut_machinery(frames)


def _with_later_exceptions(frames: list[Frame], later: Sequence[BtException], offset: int) -> list[Frame]:
    """Insert the interrupted frame of each later exception block (rule 1)."""
    out = list(frames)
    for exc in reversed(later):  # from the bottom, so earlier positions stay valid
        rip = exc.registers.get("RIP")
        at = exc.before_level - offset
        if 0 <= at <= len(out) and not (at < len(out) and out[at].pc == rip):
            out.insert(at, Frame(base_function_name(exc.symbol), exc.file, exc.line, rip))
    return out


def normalize_crash_bt(
    text: str, *, start_at_exception: bool = True, exception_entries: frozenset[str] = frozenset()
) -> list[Frame]:
    """Normalise the output of crash's ``bt`` / ``bt -l`` for one task.

    :param text: the output for exactly one task (split ``bt -a`` with ``crash_parse.split_tasks``).
    :param exception_entries: as for :func:`normalize_crash_task`.
    """
    tasks = parse_bt(text)
    if len(tasks) != 1:
        raise ValueError(f"expected the bt of one task, got {len(tasks)} (use split_tasks first)")
    return normalize_crash_task(
        tasks[0], start_at_exception=start_at_exception, exception_entries=exception_entries
    )


def _same_file(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return True  # one side does not know: nothing to compare
    pa = [p for p in a.split("/") if p not in ("", ".")]
    pb = [p for p in b.split("/") if p not in ("", ".")]
    n = min(len(pa), len(pb))
    return n > 0 and pa[-n:] == pb[-n:]


def stack_differences(
    ours: Sequence[Frame],
    crash: Sequence[Frame],
    *,
    check_lines: Literal["all", "first", "none"] = "all",
) -> list[str]:
    """List why two normalised stacks differ (empty when they match by the rules above)."""
    problems: list[str] = []
    if [f.function for f in ours] != [f.function for f in crash]:
        problems.append("function lists differ")
    for i, (a, b) in enumerate(zip(ours, crash, strict=False)):
        if a.function != b.function:
            continue
        if a.pc is not None and b.pc is not None and a.pc != b.pc:
            problems.append(f"#{i} {a.function}: pc {a.pc:#x} != crash's {b.pc:#x}")
        if check_lines == "none" or (check_lines == "first" and i > 0):
            continue
        if not _same_file(a.file, b.file):
            problems.append(f"#{i} {a.function}: file {a.file} != crash's {b.file}")
        if a.line is not None and b.line is not None:
            slack = 0 if i == 0 else CALLER_LINE_SLACK
            if abs(a.line - b.line) > slack:
                problems.append(f"#{i} {a.function}: line {a.line} != crash's {b.line}")
    return problems


def _table(ours: Sequence[Frame], crash: Sequence[Frame]) -> str:
    rows = [f"    {'ours':<60} crash"]
    for i in range(max(len(ours), len(crash))):
        a = str(ours[i]) if i < len(ours) else "-"
        b = str(crash[i]) if i < len(crash) else "-"
        same = i < len(ours) and i < len(crash) and ours[i].function == crash[i].function
        rows.append(f"{' ' if same else '!'}#{i:<2} {a:<60.60} {b}")
    return "\n".join(rows)


def assert_stacks_match(
    ours: Sequence[Frame],
    crash: Sequence[Frame],
    *,
    check_lines: Literal["all", "first", "none"] = "all",
) -> None:
    """Assert two normalised stacks match; the failure shows both side by side."""
    problems = stack_differences(ours, crash, check_lines=check_lines)
    if problems:
        raise AssertionError(
            "stack differs from crash's bt:\n  " + "\n  ".join(problems) + "\n" + _table(ours, crash)
        )
