"""The one normalisation of a kernel stack: which differences between two walks of it do not count.

crash and drgn walk the same stack but print it differently. The rules below say, once, what makes
two stacks "the same"; the adapter groups tasks by them (:mod:`.groups`) and the tests compare
with crash's ``bt`` by them (``tests/helpers/stack_normalize.py`` adds crash's side). Each rule was
seen on the sample dumps (6.1 kernels, crash 8.0.6, drgn 0.3):

1. **Where the stack starts.** When the unwinding went through an exception, the stack starts at the
   first frame drgn unwound from exception registers (``StackFrame.interrupted``): crash starts at
   ``[exception RIP: f+off]``, listing the panic/kexec/NMI path above it. Without an exception
   (``panic()`` called directly, as SysRq-c does), the kdump machinery's own frames
   (:data:`CRASH_MACHINERY`) are cut from the top.
2. **Where it ends.** drgn continues into the user-space registers of a task in a system call (a
   frame with a user address, and sometimes more found through the user stack); crash prints those
   as a register block. The stack ends before the first frame outside the kernel's address space.
3. **Names.** GCC's clones and split parts (``f.cold``, ``f.isra.0``, ``f.constprop.0``, ``f.part.0``)
   are the source function ``f``. Assembly labels inside a function name the function
   (:data:`ASM_LABEL_ALIASES`). All ``__{x64,ia32,se,do}_sys_X`` are ``__do_sys_X``.
4. **Inline frames** merge into their physical frame, which takes the *innermost* source location
   (crash cannot see inlined calls).
5. **Caller lines.** With ``locations="return"`` each physical frame is looked up at its ``pc`` (the
   return address for callers), as crash's ``bt -l`` does; ``"call"`` keeps drgn's call-site lines;
   ``None`` skips source lookups (grouping needs functions only, and is faster without them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import drgn

from vmcore_dap.dump.arch import arch_of, known_crash_machinery, known_label_aliases, syscall_wrapper_pattern
from vmcore_dap.dump.stacks.frames import StackFrameInfo

__all__ = [
    "ASM_LABEL_ALIASES",
    "CRASH_MACHINERY",
    "Frame",
    "FrameTuple",
    "base_function_name",
    "cut_machinery",
    "normalize_drgn_trace",
    "normalize_frames",
    "normalize_rows",
]

_SUFFIX = re.compile(r"(?:\.(?:cold|isra|constprop|part|lto_priv|llvm)(?:\.\d+)?)+$")

#: Frames of the kdump machinery itself, cut from the top of a stack without an exception (with each
#: architecture's NMI path, :func:`~vmcore_dap.dump.arch.known_crash_machinery`).
CRASH_MACHINERY = (
    frozenset({"machine_kexec", "__crash_kexec", "crash_kexec", "crash_setup_regs"}) | known_crash_machinery()
)

#: Labels inside assembly functions that crash (kallsyms) names instead of the function (every
#: architecture's, :func:`~vmcore_dap.dump.arch.known_label_aliases`).
ASM_LABEL_ALIASES = known_label_aliases()

#: ``(function, file, line, is_inline, pc)``.
FrameTuple = tuple[str, str | None, int | None, bool, int | None]


@dataclass(frozen=True)
class Frame:
    """A normalised physical stack frame: a source function and, when known, where in it.

    :param pc: the faulting instruction for the first frame, else the return address.
    :param module: ``kernel`` or the module's name, when known (the Kernel view's groups show it).
    """

    function: str
    file: str | None = None
    line: int | None = None
    pc: int | None = None
    module: str | None = None

    def __str__(self) -> str:
        where = f" {self.file.rsplit('/', 1)[-1]}:{self.line}" if self.file else ""
        pc = f" {self.pc:#x}" if self.pc is not None else ""
        return f"{self.function}{where}{pc}"


def base_function_name(name: str) -> str:
    """Strip GCC clone/split suffixes and assembly labels: ``f.constprop.0.cold`` -> ``f``."""
    name = _SUFFIX.sub("", name)
    # SYSCALL_DEFINE0's __x64_sys_X is an ELF alias of __do_sys_X: crash names one, drgn the other.
    name = syscall_wrapper_pattern().sub(r"__do_sys_\1", name)
    return ASM_LABEL_ALIASES.get(name, name)


def normalize_frames(
    frames: Iterable[tuple[str, str | None, int | None, bool] | FrameTuple],
) -> list[Frame]:
    """Normalise (function, file, line, is_inline[, pc]) tuples, innermost first.

    Suffixes are stripped; inline frames merge into the next physical frame, which keeps the
    innermost location (rule 4). No frames are cut: see :func:`normalize_drgn_trace` for that.
    """
    out: list[Frame] = []
    carried: tuple[str | None, int | None] | None = None
    for t in frames:
        fn, file, line, is_inline = t[0], t[1], t[2], t[3]
        pc = t[4] if len(t) > 4 else None  # type: ignore[misc]
        if is_inline:
            if carried is None:
                carried = (file, line)
            continue
        if carried is not None:
            file, line = carried
            carried = None
        out.append(Frame(base_function_name(fn), file, line, pc))
    return out


def cut_machinery(frames: list[Frame]) -> list[Frame]:
    """Drop the kdump machinery's frames from the top of a stack (rule 1, no exception)."""
    i = 0
    while i < len(frames) and frames[i].function in CRASH_MACHINERY:
        i += 1
    return frames[i:]


class _Unwound(Protocol):
    """What rule 1 reads of a frame (drgn's ``StackFrame`` and the presented rows both have it)."""

    @property
    def interrupted(self) -> bool: ...

    @property
    def is_inline(self) -> bool: ...

    @property
    def pc(self) -> int | None: ...


_F = TypeVar("_F", bound=_Unwound)


def _exception_start(frames: Sequence[_F], name: Callable[[_F], str]) -> int | None:
    """Rule 1: where a stack that went through an exception starts (the first frame unwound from
    exception registers, with the inline frames at its pc), or ``None`` when it did not."""
    for i, frame in enumerate(frames):
        if frame.interrupted and not frame.is_inline and name(frame) not in CRASH_MACHINERY:
            start = i
            # Inline frames of the same physical frame come just before it.
            while start > 0 and frames[start - 1].is_inline and frames[start - 1].pc == frame.pc:
                start -= 1
            return start
    return None


def normalize_rows(rows: Sequence[StackFrameInfo]) -> list[Frame]:
    """Normalise a presented stack (the Call Stack's rows, :func:`~.frames.present_trace`) by the rules
    of this module, without source lines (rule 5's ``None``).

    The rows already end where the kernel stack ends (rule 2) and name code without DWARF as kallsyms
    does, which rule 3 maps to the names of :func:`normalize_drgn_trace`; labels are dropped.
    """
    code = [row for row in rows if row.kind == "code" and row.pc is not None]
    start = _exception_start(code, _row_name)
    out = [
        Frame(base_function_name(_row_name(row)), pc=row.pc, module=row.module)
        for row in code[start or 0 :]
        if not row.is_inline
    ]
    return cut_machinery(out) if start is None else out


def _row_name(row: StackFrameInfo) -> str:
    return row.function or f"{row.pc:#x}"


def _drgn_name(frame: drgn.StackFrame) -> str:
    name = frame.name
    if name is None:
        try:
            name = frame.symbol().name
        except LookupError:
            name = hex(frame.pc)
    return name


def _location(
    prog: drgn.Program, frame: drgn.StackFrame, locations: Literal["return", "call"] | None
) -> tuple[str | None, int | None]:
    if locations is None:
        return None, None
    if locations == "return" and not frame.is_inline:
        try:
            loc = prog.source_location(frame.pc)[0]
            return loc.filename, loc.line
        except LookupError:
            return None, None
    try:
        file, line, _column = frame.source()
        return file, line
    except LookupError:
        return None, None


def normalize_drgn_trace(
    trace: drgn.StackTrace | Sequence[Any],
    *,
    prog: drgn.Program | None = None,
    start_at_exception: bool = True,
    crash_lines: bool = True,
    locations: Literal["return", "call"] | None | Literal["default"] = "default",
    name_cache: dict[int, str] | None = None,
) -> list[Frame]:
    """Normalise a drgn ``StackTrace`` by the rules of this module, innermost frame first.

    :param prog: the program, when ``trace`` is a plain list of frames.
    :param crash_lines: shorthand for ``locations="return"`` (True) or ``"call"`` (False).
    :param locations: how frames get their source lines (rule 5); ``None`` for none at all.
    :param name_cache: pc -> name of physical frames, shared between calls (naming a frame costs a
        DWARF lookup; the tasks of a dump share most of their pcs).
    """
    prog = prog if prog is not None else trace.prog  # type: ignore[union-attr]
    assert prog is not None
    where: Literal["return", "call"] | None
    if locations == "default":
        where = "return" if crash_lines else "call"
    else:
        where = locations
    arch = arch_of(prog)
    frames = []
    for f in trace:
        if not arch.is_kernel_address(f.pc):
            break  # drgn goes on into the user program; what it finds there is not the kernel's stack
        frames.append(f)
    start = _exception_start(frames, _drgn_name) if start_at_exception else None
    tuples: list[FrameTuple] = []
    for f in frames[start or 0 :]:
        if where != "call" and f.is_inline:
            continue  # the physical frame looks its pc up itself, innermost location first
        file, line = _location(prog, f, where)
        if name_cache is not None and not f.is_inline:
            name = name_cache.get(f.pc)
            if name is None:
                name = name_cache[f.pc] = _drgn_name(f)
        else:
            name = _drgn_name(f)
        tuples.append((name, file, line, f.is_inline, f.pc))
    out = normalize_frames(tuples)
    if start_at_exception and start is None:
        out = cut_machinery(out)
    return out
