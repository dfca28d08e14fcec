"""What a stack frame shows: Arguments, Locals, Registers and a Kernel scope, each computed lazily.

drgn's ``StackFrame.locals()`` mixes a function's parameters with its local variables. The split uses
the parameter names of the function's type (``prog.function(name).type_.parameters``), looked up in
the frame's source file first so that two ``static`` functions of the same name do not get confused.

Inline frames: drgn gives an inlined call its own frame whose ``locals()`` are the inlined
function's parameters and variables. Its parameters are found the same way when the function also
has an out-of-line copy or a declaration drgn can find; when it has none (an always-inlined
``static inline`` helper), the frame gets no Arguments scope and all its names are under Locals.

A frame that is only a label for an exception boundary (drgn has no ``StackFrame`` there, only the
saved ``struct pt_regs``) shows the saved registers as members of that ``pt_regs``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import drgn

from vmcore_dap.dump.stacks.service import FrameRef
from vmcore_dap.dump.values.render import Variable

__all__ = [
    "Scope",
    "ARGUMENTS",
    "LOCALS",
    "REGISTERS",
    "KERNEL",
    "frame_scopes",
    "scope_variables",
    "parameter_names",
    "frame_lookup",
]

log = logging.getLogger(__name__)

ARGUMENTS = "Arguments"
LOCALS = "Locals"
REGISTERS = "Registers"
KERNEL = "Kernel"


@dataclass(frozen=True)
class Scope:
    """One scope of a frame, as DAP's ``Scope`` needs it.

    :param presentation_hint: DAP's hint (``arguments``, ``locals``, ``registers``) or ``None``.
    :param expensive: whether a client should wait for the user before expanding it.
    """

    name: str
    presentation_hint: str | None
    expensive: bool = False


def parameter_names(prog: drgn.Program, frame: drgn.StackFrame) -> list[str] | None:
    """Return the parameter names of ``frame``'s function in order, or ``None`` if unknown."""
    name = frame.name
    if not name:
        return None
    filename: str | None = None
    try:
        filename = frame.source()[0]
    except LookupError:
        filename = None
    function: drgn.Object | None = None
    attempts: list[str | None] = [filename, None] if filename else [None]
    for attempt in attempts:
        try:
            function = prog.function(name, attempt) if attempt else prog.function(name)
            break
        except LookupError:
            continue
    if function is None:
        return None
    type_ = function.type_.unaliased()
    if type_.kind != drgn.TypeKind.FUNCTION:
        return None
    names = [p.name for p in type_.parameters if p.name]
    if not names:
        return [] if not type_.parameters else None
    return names


def _local_names(frame: drgn.StackFrame) -> list[str]:
    seen: set[str] = set()
    names: list[str] = []
    for name in frame.locals():
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _frame_object(frame: drgn.StackFrame, name: str, prog: drgn.Program) -> drgn.Object:
    try:
        return frame[name]
    except LookupError:
        return drgn.Object(prog, "int", absence_reason=drgn.AbsenceReason.OPTIMIZED_OUT)


def frame_scopes(prog: drgn.Program, ref: FrameRef) -> list[Scope]:
    """The scopes of a frame, in the order a client shows them."""
    scopes: list[Scope] = []
    if ref.frame is not None:
        if parameter_names(prog, ref.frame) is not None:
            scopes.append(Scope(ARGUMENTS, "arguments"))
        scopes.append(Scope(LOCALS, "locals"))
    if ref.frame is not None or ref.pt_regs is not None:
        scopes.append(Scope(REGISTERS, "registers"))
    scopes.append(Scope(KERNEL, None))
    return scopes


def scope_variables(prog: drgn.Program, ref: FrameRef, scope: str) -> list[Variable]:
    """Compute the variables of one scope of ``ref`` (only when the client expands it)."""
    if scope == KERNEL:
        return _kernel_variables(prog, ref.task)
    if scope == REGISTERS:
        return _registers(prog, ref)
    frame = ref.frame
    if frame is None:
        return []
    params = parameter_names(prog, frame)
    if scope == ARGUMENTS:
        if params is None:
            return []
        return [Variable(name, _frame_object(frame, name, prog), name) for name in params]
    if scope == LOCALS:
        skip = set(params or ())
        return [
            Variable(name, _frame_object(frame, name, prog), name)
            for name in _local_names(frame)
            if name not in skip
        ]
    raise ValueError(f"unknown scope {scope!r}")


def _registers(prog: drgn.Program, ref: FrameRef) -> list[Variable]:
    if ref.frame is not None:
        registers = ref.frame.registers()
        return [
            Variable(name, drgn.Object(prog, "unsigned long", value), always_hex=True)
            for name, value in registers.items()
        ]
    regs = ref.pt_regs
    if regs is None:
        return []
    if regs.type_.unaliased_kind() == drgn.TypeKind.POINTER:
        regs = regs[0]
    address = regs.address_
    prefix = f"((struct pt_regs *){address:#x})->" if address is not None else None
    result: list[Variable] = []
    for member in regs.type_.unaliased().members or ():
        if member.name is None:
            continue
        expr = f"{prefix}{member.name}" if prefix else None
        result.append(Variable(member.name, regs.member_(member.name), expr, always_hex=True))
    return result


def _kernel_variables(prog: drgn.Program, task: drgn.Object) -> list[Variable]:
    """The current task, its CPU, the panic CPU, jiffies and the kernel's uname."""
    result: list[Variable] = [Variable("task", task, "current")]
    task_type = task.type_.unaliased().type.unaliased()
    # task_struct.cpu exists since v5.16 (before, thread_info.cpu with THREAD_INFO_IN_TASK).
    if task_type.has_member("cpu"):
        result.append(Variable("cpu", task.cpu, "current->cpu"))
    else:
        from drgn.helpers.linux.sched import task_cpu

        result.append(Variable("cpu", drgn.Object(prog, "int", task_cpu(task))))
    for name, get in _GLOBALS:
        try:
            obj, expr = get(prog)
        except LookupError:
            log.debug("kernel scope: %s not found", name)
            continue
        result.append(Variable(name, obj, expr))
    return result


def _panic_cpu(prog: drgn.Program) -> tuple[drgn.Object, str]:
    obj = prog["panic_cpu"]
    # panic_cpu is an atomic_t since v4.3.
    if obj.type_.unaliased_kind() == drgn.TypeKind.STRUCT:
        return obj.counter, "panic_cpu.counter"
    return obj, "panic_cpu"


_GLOBALS: list[tuple[str, Callable[[drgn.Program], tuple[drgn.Object, str]]]] = [
    ("panic_cpu", _panic_cpu),
    ("jiffies", lambda prog: (prog["jiffies"], "jiffies")),
    ("init_uts_ns.name", lambda prog: (prog["init_uts_ns"].name, "init_uts_ns.name")),
]


def frame_lookup(ref: FrameRef | None) -> Callable[[str], drgn.Object | None]:
    """Name resolution for C expressions in ``ref``: the frame's scope, then ``current``."""
    frame = ref.frame if ref is not None else None

    local_names: set[str] | None = None

    def lookup(name: str) -> drgn.Object | None:
        nonlocal local_names
        if frame is not None:
            try:
                obj = frame[name]
            except LookupError:
                obj = None
            if obj is not None:
                if not obj.absent_:
                    return obj
                # drgn's frame scope includes the compilation unit's declarations: an ``extern``
                # global such as __per_cpu_offset is absent there, while the kernel's definition
                # has an address. Only a real local or parameter is "<optimized out>".
                if local_names is None:
                    local_names = set(frame.locals())
                if name in local_names:
                    return obj
                try:
                    return obj.prog_[name]
                except LookupError:
                    return obj
        if name == "current" and ref is not None:
            return ref.task
        return None

    return lookup
