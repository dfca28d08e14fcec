"""A task's call stack as a person reads it: drgn's unwinding plus the boundaries drgn leaves implicit.

drgn gives a list of frames. What a kernel engineer wants to see on top of that:

* interrupt and exception boundaries as *label* frames, each carrying the saved ``struct pt_regs``
  (found in memory by matching the interrupted frame's ``ip`` and ``sp``);
* when the unwinding starts inside the panic/kexec path or an NMI handler (the dump was taken from
  there), those frames marked *subtle* and the frame that actually faulted marked as the focus;
* at the bottom, how the task got into the kernel: a label naming the system call with its
  arguments, ``write(fd=3, buf=0x7ffd…, count=64)``, from the user ``pt_regs`` at the top of the
  kernel stack; a task that was running in user mode shows its user RIP.

Nothing here formats for a protocol; :class:`StackFrameInfo` is plain data.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import drgn

from vmcore_dap.dump.arch import arch_of, known_dump_path_functions, syscall_wrapper_pattern
from vmcore_dap.dump.kernel.tasks import TaskInfo, is_kernel_thread, thread_size
from vmcore_dap.dump.memory.reading import read_prefix
from vmcore_dap.dump.memory.symbol_index import nearest_symbol
from vmcore_dap.dump.stacks.signature import StackWords

__all__ = [
    "StackFrameInfo",
    "TaskStack",
    "unwind_task",
    "present_trace",
    "share_stack",
    "DUMP_PATH_FUNCTIONS",
    "NO_KERNEL_STACK",
    "syscall_name",
]

log = logging.getLogger(__name__)

#: Functions that run only because the kernel is dying or being dumped: panic, oops, kexec, and the
#: NMI that stops the other CPUs (the architectures' own are in :mod:`vmcore_dap.dump.arch`). Frames in
#: them above the real fault are shown subtle.
DUMP_PATH_FUNCTIONS = (
    frozenset(
        {
            "crash_setup_regs",
            "__crash_kexec",
            "crash_kexec",
            "machine_kexec",
            "machine_crash_shutdown",
            "crash_save_cpu",
            "panic",
            "vpanic",
            "nmi_panic",
            "report_bug",
            "make_task_dead",
            "nmi_cpu_backtrace",
            "nmi_trigger_cpumask_backtrace",
            "panic_smp_self_stop",
            "smp_send_stop",
        }
    )
    | known_dump_path_functions()
)


@dataclass(slots=True)
class StackFrameInfo:
    """One row of a call stack.

    :param kind: ``"code"`` for a function frame, ``"label"`` for a boundary (interrupt, exception,
        system call, user mode, unwinding stopped).
    :param trace_index: index in drgn's :class:`~drgn.StackTrace`, ``None`` for labels.
    :param pt_regs: for labels of interrupts, exceptions and system calls: the saved registers as a
        ``struct pt_regs`` (an lvalue when found in memory, else a value rebuilt from the unwound
        registers).
    :param source_file: the file as DWARF names it (map it with
        :mod:`~vmcore_dap.dump.sources.source_map`), or ``None``.
    :param symbol_offset: ``function+0xoff`` from the symbol table, for frames without source
        (``None`` for a frame with a DWARF function and source: the symbol table is not asked).
    """

    kind: str
    name: str
    pc: int | None = None
    trace_index: int | None = None
    frame: drgn.StackFrame | None = None
    function: str | None = None
    symbol_offset: str | None = None
    is_inline: bool = False
    interrupted: bool = False
    source_file: str | None = None
    line: int = 0
    column: int = 0
    module: str | None = None
    subtle: bool = False
    pt_regs: drgn.Object | None = None


@dataclass(slots=True)
class TaskStack:
    """The presented stack of one task.

    :param focus: index in :attr:`frames` of the frame a debugger should select (the faulting frame
        when the unwinding started in the panic path).
    :param error: why unwinding stopped early, if it did.
    """

    trace: drgn.StackTrace | None
    frames: list[StackFrameInfo] = field(default_factory=list)
    focus: int = 0
    error: str | None = None
    #: How the bottom of the stack was formed, so :func:`share_stack` can redo just that for another
    #: task: ``("entry", fn)`` the last row is ``_entry_label(task, fn)``; ``("probe", fn)`` that
    #: call gave nothing; ``None`` anything else (user-mode label, unwinding stopped): not shareable.
    tail: tuple[str, str | None] | None = None
    #: Whether the rows were copied from another task's stack with the same stack signature: then
    #: :attr:`trace` is ``None`` and the rows' ``frame``/``pt_regs`` are ``None`` (unwind the task
    #: itself for those).
    shared: bool = False
    #: The rows other tasks reuse (without drgn ``frame``/``pt_regs``, bottom row excluded), built
    #: once by :func:`share_stack`: copying them per task was a quarter of its cost on 5,000 tasks.
    shareable_rows: list[StackFrameInfo] | None = None
    #: For a shared stack, the representative's :attr:`shareable_rows` (the same list object) that
    #: are its first rows: views keep what they derive from a row list per list, not per task.
    rows_from: list[StackFrameInfo] | None = None


def _symbol_offset(
    prog: drgn.Program, pc: int, nearest: bool = False, lookup_pc: int | None = None
) -> tuple[str | None, str | None]:
    """Return ``(symbol name, "name+0xoff")`` for ``pc``, or ``(None, None)``.

    :param lookup_pc: the address to find the symbol by, when it differs from ``pc`` (a return
        address can be just past the end of a ``noreturn`` caller).

    :param nearest: name assembly code the way the kernel's own backtraces do (kallsyms: the
        nearest preceding symbol, e.g. ``entry_SYSCALL_64_after_hwframe`` rather than the sized ELF
        symbol ``entry_SYSCALL_64`` that contains it; :func:`~vmcore_dap.dump.memory.symbol_index.
        nearest_symbol`).

    Answers are cached per program: ``prog.symbol()`` costs about 0.7 ms here, and the tasks of a
    dump share most of their return addresses (``__schedule``, ``schedule``…), so without the cache
    symbol lookups were 85% of unwinding every task of a 5,000-task dump.
    """
    cache: dict[tuple[int, bool, int | None], tuple[str | None, str | None]] = prog.cache.setdefault(
        "vmcore_dap_symbol_offsets", {}
    )
    key = (pc, nearest, lookup_pc)
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = _lookup_symbol_offset(prog, pc, nearest, lookup_pc)
    return hit


def _lookup_symbol_offset(
    prog: drgn.Program, pc: int, nearest: bool, lookup_pc: int | None
) -> tuple[str | None, str | None]:
    try:
        where = pc if lookup_pc is None else lookup_pc
        symbol = nearest_symbol(prog, where) if nearest else prog.symbol(where)
    except LookupError:
        return None, None
    return symbol.name, f"{symbol.name}+{pc - symbol.address:#x}"


def _module_name(prog: drgn.Program, pc: int) -> str | None:
    try:
        return prog.module(pc).name
    except LookupError:
        return None


def _code_frame(prog: drgn.Program, index: int, frame: drgn.StackFrame) -> StackFrameInfo:
    pc = frame.pc
    function = frame.function_name
    try:
        location = frame.source()
    except LookupError:
        location = None
    has_source = location is not None and bool(location.filename)
    # The symbol table names only a frame DWARF does not (assembly), or one without source: each
    # new address costs a scan of drgn's symbol table (about 0.7 ms), ten on the crashed task's stack.
    symbol_name, symbol_offset = (
        _symbol_offset(prog, pc, nearest=function is None, lookup_pc=pc if frame.interrupted else pc - 1)
        if not frame.is_inline and (function is None or not has_source)
        else (None, None)
    )
    name = function or symbol_name or f"{pc:#x}"
    info = StackFrameInfo(
        kind="code",
        name=name,
        pc=pc,
        trace_index=index,
        frame=frame,
        function=function or symbol_name,
        symbol_offset=symbol_offset,
        is_inline=frame.is_inline,
        interrupted=frame.interrupted,
        module=_module_name(prog, pc),
    )
    if has_source:
        assert location is not None
        info.source_file = location.filename
        info.line = location.line
        info.column = location.column
    elif not frame.is_inline:
        info.name = symbol_offset or name
        info.subtle = True
    return info


def _pt_regs_type(prog: drgn.Program) -> drgn.Type | None:
    """``struct pt_regs``, looked up once per program (``prog.type`` costs ~0.1 ms, twice a task)."""
    cache = prog.cache
    if "vmcore_dap_pt_regs_type" not in cache:
        try:
            cache["vmcore_dap_pt_regs_type"] = prog.type("struct pt_regs")
        except LookupError:
            cache["vmcore_dap_pt_regs_type"] = None
    ptype: drgn.Type | None = cache["vmcore_dap_pt_regs_type"]
    return ptype


def _find_pt_regs(prog: drgn.Program, near_sp: int, regs: dict[str, int]) -> drgn.Object | None:
    """Find the ``struct pt_regs`` saved on the stack near ``near_sp`` whose ip and sp match ``regs``.

    The entry stub passes its stack pointer as the ``pt_regs *`` argument, so the block is normally
    right at ``near_sp``; a small window is scanned to survive a few pushed words.
    """
    ptype = _pt_regs_type(prog)
    arch = arch_of(prog)
    ip, sp = arch.pt_regs_registers[arch.pt_regs_ip], arch.pt_regs_registers[arch.pt_regs_sp]
    if ptype is None or ip not in regs or sp not in regs:
        return None
    off_ip, off_sp = drgn.offsetof(ptype, arch.pt_regs_ip), drgn.offsetof(ptype, arch.pt_regs_sp)
    size = drgn.sizeof(ptype)
    # A stack ends at a page boundary with nothing mapped above it: the IRQ stack's pt_regs of an
    # exception taken in interrupt context lies within a few hundred bytes of its top, so the window
    # is read as far as it goes (seen on the irq-oops sample). It starts a pt_regs below ``near_sp``:
    # when that is the interrupted sp (arm64's vectors have no CFI, so the vector frame has no sp of
    # its own), kernel_entry saved the block just below it.
    start = max(near_sp - size - 128, 0) & ~7
    data = read_prefix(prog, start, 1024 + size, explain=False).data
    if not data:
        start = near_sp & ~7
        data = read_prefix(prog, start, 512, explain=False).data
    want_ip = regs[ip].to_bytes(8, "little")
    want_sp = regs[sp].to_bytes(8, "little")
    for base in range(0, len(data) - size + 1, 8):
        if (
            data[base + off_ip : base + off_ip + 8] == want_ip
            and data[base + off_sp : base + off_sp + 8] == want_sp
        ):
            return drgn.Object(prog, ptype, address=start + base)
    return None


def _regs_value(prog: drgn.Program, regs: dict[str, int]) -> drgn.Object | None:
    """Rebuild a ``struct pt_regs`` value from unwound registers (when none is found in memory)."""
    ptype = _pt_regs_type(prog)
    if ptype is None:
        return None
    registers = arch_of(prog).pt_regs_registers
    value = {field: regs[reg] for field, reg in registers.items() if reg in regs}
    members = {member.name for member in ptype.members or () if member.name}
    try:
        return drgn.Object(prog, ptype, value={k: v for k, v in value.items() if k in members})
    except (TypeError, ValueError, LookupError):
        return None


def _mark_dump_path(stack: TaskStack) -> None:
    """Make frames of the panic/kexec/NMI path subtle and focus the frame that faulted.

    Applies only when the unwinding *starts* in that path. With an interrupt/exception boundary
    below, everything above the boundary is the dying kernel's own work and the interrupted frame is
    the fault; without one (``panic()`` called directly, as sysrq-c does), the leading run of
    dump-path functions is subtle and the caller of ``panic`` is the focus.
    """
    frames = stack.frames
    code = [f for f in frames if f.kind == "code"]
    if not code or code[0].function not in DUMP_PATH_FUNCTIONS:
        return
    boundary = next((i for i, f in enumerate(frames) if f.kind == "label" and f.pt_regs is not None), None)
    if boundary is None:
        boundary = next((i for i, f in enumerate(frames) if f.kind == "label" and i > 0), None)
    if boundary is not None and boundary + 1 < len(frames):
        for f in frames[:boundary]:
            f.subtle = True
        stack.focus = boundary + 1
        return
    end = 0
    while end < len(frames) and frames[end].kind == "code" and frames[end].function in DUMP_PATH_FUNCTIONS:
        frames[end].subtle = True
        end += 1
    if end < len(frames):
        stack.focus = end


def syscall_name(prog: drgn.Program, nr: int) -> str | None:
    """Return the name of system call ``nr`` from the kernel's ``sys_call_table`` (``write``)."""
    cache: dict[int, str | None] = prog.cache.setdefault("vmcore_dap_syscall_names", {})
    if nr in cache:
        return cache[nr]
    name: str | None = None
    try:
        table = prog["sys_call_table"]
        length = len(table)
        if 0 <= nr < length:
            address = table[nr].value_()
            symbol = prog.symbol(address).name
            wrapper = syscall_wrapper_pattern().match(symbol)
            name = wrapper.group(1) if wrapper else symbol.removeprefix("sys_")
            if name == "ni_syscall":
                name = None
    except (LookupError, drgn.FaultError, TypeError):
        name = None
    cache[nr] = name
    return name


def _syscall_parameters(prog: drgn.Program, name: str) -> list[tuple[str, drgn.Type]] | None:
    """Return the declared parameters of a system call from its ``SYSCALL_DEFINE`` helpers' DWARF."""
    cache: dict[str, list[tuple[str, drgn.Type]] | None] = prog.cache.setdefault(
        "vmcore_dap_syscall_params", {}
    )
    if name in cache:
        return cache[name]
    params: list[tuple[str, drgn.Type]] | None = None
    for candidate in (f"__do_sys_{name}", f"__se_sys_{name}", f"ksys_{name}"):
        try:
            function = prog.function(candidate)
        except (LookupError, ValueError):
            continue
        ftype = function.type_
        if ftype.kind == drgn.TypeKind.FUNCTION:
            params = [(p.name or f"arg{i}", p.type) for i, p in enumerate(ftype.parameters)]
            break
    cache[name] = params
    return params


#: How to show a system call argument: ``None`` for hex, else ``(bits, signed)`` for a decimal.
ArgumentFormat = tuple[int, bool] | None


def _argument_format(ptype: drgn.Type | None) -> ArgumentFormat:
    """Decide once per parameter type how its values are shown (pointers and others in hex)."""
    if ptype is None:
        return None
    underlying = ptype
    while underlying.kind == drgn.TypeKind.TYPEDEF:
        underlying = underlying.type
    if underlying.kind not in (drgn.TypeKind.INT, drgn.TypeKind.ENUM, drgn.TypeKind.BOOL):
        return None
    signed = bool(getattr(underlying, "is_signed", False))
    if underlying.kind == drgn.TypeKind.ENUM and underlying.type is not None:
        signed = bool(underlying.type.is_signed)
    return 8 * drgn.sizeof(ptype), signed


def _format_argument(form: ArgumentFormat, raw: int) -> str:
    if form is None:
        return f"{raw:#x}"
    bits, signed = form
    value = raw & ((1 << bits) - 1)
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return str(value)


def _syscall_argument_formats(prog: drgn.Program, name: str) -> list[tuple[str, ArgumentFormat]] | None:
    """:func:`_syscall_parameters` with each parameter's :data:`ArgumentFormat` (cached per program)."""
    cache: dict[str, list[tuple[str, ArgumentFormat]] | None] = prog.cache.setdefault(
        "vmcore_dap_syscall_formats", {}
    )
    if name not in cache:
        params = _syscall_parameters(prog, name)
        cache[name] = None if params is None else [(p, _argument_format(t)) for p, t in params[:6]]
    return cache[name]


def _entry_registers(prog: drgn.Program) -> tuple[str, ...]:
    """The ``struct pt_regs`` members :func:`_entry_label` reads: how the task entered, from where,
    and the system call's arguments."""
    arch = arch_of(prog)
    return (*arch.mode_registers, arch.pt_regs_ip, *arch.syscall_argument_registers)


@dataclass(frozen=True, slots=True)
class _UserRegs:
    """Where a task's user ``struct pt_regs`` lies and how to read :func:`_entry_registers` from it,
    worked out once per program: every task's bottom row (system call and arguments) needs them,
    50,000 times for ``stackTrace`` of every thread, and looking up the type, its size, the stack size
    and the members anew each time was a fifth of that row's cost.

    :param offset: from ``task->stack`` to the registers (``task_pt_regs()``: the top of the stack,
        less the architecture's padding, less the structure).
    :param names: the registers, in the order :attr:`unpack` returns them.
    :param unpack: unpacks them from the structure's bytes in one call (``struct`` format).
    """

    ptype: drgn.Type
    offset: int
    size: int
    names: tuple[str, ...]
    unpack: Callable[[bytes], tuple[int, ...]]

    def read(self, address: int, words: StackWords | None, prog: drgn.Program) -> dict[str, int]:
        """The registers of the structure at ``address``, sliced from ``words`` when they hold it.

        :raises drgn.FaultError: when the registers are not in the dump.
        """
        start = address - words.sp if words is not None else -1
        if words is not None and 0 <= start and start + self.size <= len(words.data):
            data = words.data[start : start + self.size]
        else:
            data = prog.read(address, self.size)
        return dict(zip(self.names, self.unpack(data), strict=True))


def _user_regs(prog: drgn.Program) -> _UserRegs | None:
    """The program's :class:`_UserRegs` (``None`` when ``struct pt_regs`` lacks one of the
    registers or is unknown)."""
    cache = prog.cache
    if "vmcore_dap_user_regs" not in cache:
        cache["vmcore_dap_user_regs"] = _make_user_regs(prog)
    found: _UserRegs | None = cache["vmcore_dap_user_regs"]
    return found


def _make_user_regs(prog: drgn.Program) -> _UserRegs | None:
    ptype = _pt_regs_type(prog)
    if ptype is None:
        return None
    try:
        layout = sorted(
            (drgn.offsetof(ptype, name), _member_size(ptype, name), name) for name in _entry_registers(prog)
        )
    except (LookupError, TypeError, ValueError):
        return None
    little = bool(prog.platform is None or prog.platform.flags & drgn.PlatformFlags.IS_LITTLE_ENDIAN)
    codes = {1: "B", 2: "H", 4: "I", 8: "Q"}
    size = drgn.sizeof(ptype)
    fmt, at = "<" if little else ">", 0
    for offset, width, _name in layout:
        if width not in codes or offset < at:
            return None
        fmt += f"{offset - at}x{codes[width]}"
        at = offset + width
    unpack = struct.Struct(fmt).unpack_from
    offset = thread_size(prog) - arch_of(prog).stack_top_padding(prog) - size
    return _UserRegs(ptype, offset, size, tuple(name for _o, _w, name in layout), unpack)


def _member_size(ptype: drgn.Type, designator: str) -> int:
    """The size of member ``designator`` of ``ptype``: a member's name, or ``name[i]`` for an element."""
    name, _, element = designator.partition("[")
    mtype = ptype.member(name).type
    if element:
        mtype = mtype.unaliased().type
    return drgn.sizeof(mtype)


def _user_task_stack(task: drgn.Object, known: TaskInfo | None) -> int | None:
    """``task->stack`` of a task with user memory; ``None`` for kernel threads (and tasks without).

    :param known: the task's thread-list entry, which usually read these fields already.
    """
    if known is not None and known.stack is not None and known.mm is not None:
        return None if known.is_kernel_thread or not known.mm else known.stack
    if is_kernel_thread(task) or not task.mm.value_():
        return None
    stack: int = task.stack.value_()
    return stack


def _entry_label(
    prog: drgn.Program,
    task: drgn.Object,
    last_function: str | None,
    known: TaskInfo | None = None,
    words: StackWords | None = None,
) -> StackFrameInfo | None:
    """Describe how a user task entered the kernel: the system call and its arguments.

    :param words: the task's used stack when already read: the user ``pt_regs`` lie at the top of
        the stack, inside these words, so slicing them saves one of the three reads of the dump
        that ``stackTrace`` of a task with a shared stack made.
    """
    arch = arch_of(prog)
    layout = _user_regs(prog)
    if layout is None:
        return None
    try:
        stack = _user_task_stack(task, known)
        if not stack:
            return None
        address = stack + layout.offset
        saved = layout.read(address, words, prog)
        if not arch.from_user_mode(saved):
            return None
        user_ip = saved[arch.pt_regs_ip]
        nr = arch.syscall_number(saved)
    except drgn.FaultError:
        return None
    regs = drgn.Object(prog, layout.ptype, address=address)
    # A number past any system call table, seen from a task that did not come in through the
    # system-call entry: the slot holds something else.
    if nr is None or (last_function is not None and last_function not in arch.syscall_entries and nr > 1024):
        return StackFrameInfo(
            kind="label",
            name=f"── entered from user mode at {user_ip:#x} (interrupt or exception) ──",
            pc=user_ip,
            pt_regs=regs,
        )
    name = syscall_name(prog, nr) or f"syscall_{nr}"
    params = _syscall_argument_formats(prog, name) if not name.startswith("syscall_") else None
    values = [saved[reg] for reg in arch.syscall_argument_registers]
    if params is None:
        args = ", ".join(f"{v:#x}" for v in values[:3]) + ", …"
    else:
        args = ", ".join(
            f"{pname}={_format_argument(form, value)}"
            for (pname, form), value in zip(params, values, strict=False)
        )
    return StackFrameInfo(
        kind="label",
        name=f"{name}({args})",
        pc=user_ip,
        pt_regs=regs,
    )


def _stack_pointer(frame: drgn.StackFrame) -> int | None:
    """``frame.sp``, or ``None`` for a frame drgn unwound by its frame record alone (arm64 above an
    exception vector without CFI: it knows only ``fp`` and ``lr``)."""
    try:
        return frame.sp
    except LookupError:
        return None


def _user_mode_label(pc: int) -> StackFrameInfo:
    return StackFrameInfo(kind="label", name=f"── user mode at {pc:#x} ──", pc=pc)


#: :attr:`TaskStack.error` of a task without a kernel stack.
NO_KERNEL_STACK = "the task has exited: its kernel stack was freed (task->stack is NULL)"


def unwind_task(prog: drgn.Program, task: drgn.Object) -> TaskStack:
    """Build the presented stack of ``task`` (``struct task_struct *``).

    An exited task (a zombie) keeps its ``task_struct`` but not its stack: since v4.9
    (CONFIG_THREAD_INFO_IN_TASK) ``release_task_stack()`` frees it and sets ``task->stack`` to NULL,
    and its saved stack pointer then points into memory another task may use. drgn would unwind that
    memory; such a task gets one label instead, as crash prints ``(no stack)``.
    """
    try:
        has_stack = bool(task.stack.value_())
    except (drgn.FaultError, LookupError, AttributeError):
        has_stack = True  # let the unwinding say what is wrong
    if not has_stack:
        stack = TaskStack(trace=None, error=NO_KERNEL_STACK)
        stack.frames.append(StackFrameInfo(kind="label", name="── no kernel stack: the task has exited ──"))
        return stack
    try:
        trace = prog.stack_trace(task)
    except (drgn.FaultError, ValueError, LookupError) as exc:
        stack = TaskStack(trace=None, error=str(exc))
        stack.frames.append(StackFrameInfo(kind="label", name=f"── cannot unwind this task: {exc} ──"))
        return stack
    return present_trace(prog, trace, task)


def present_trace(prog: drgn.Program, trace: drgn.StackTrace, task: drgn.Object) -> TaskStack:
    """Build the presented stack from a drgn trace of ``task`` (from the task, or from saved registers)."""
    stack = TaskStack(trace=trace)
    arch = arch_of(prog)
    frames = stack.frames
    previous: drgn.StackFrame | None = None
    previous_function: str | None = None
    trace_frames: Iterable[drgn.StackFrame] = trace
    count = 0
    try:
        for index, frame in enumerate(trace_frames):
            count += 1
            starts_physical = previous is None or not previous.is_inline
            if not arch.is_kernel_address(frame.pc):
                # drgn unwinds through the entry code into user space: say how the task got in.
                entry = None
                if previous_function in arch.syscall_entries:
                    entry = _entry_label(prog, task, previous_function)
                if entry is not None:
                    stack.tail = ("entry", previous_function)
                frames.append(entry or _user_mode_label(frame.pc))
                break
            if index > 0 and frame.interrupted and starts_physical:
                try:
                    regs = dict(frame.registers())
                except (LookupError, ValueError):
                    regs = {}
                # drgn's AArch64 registers have no pc; the interrupted frame's pc is the saved one.
                regs.setdefault(arch.pt_regs_registers[arch.pt_regs_ip], frame.pc)
                sp = arch.pt_regs_registers[arch.pt_regs_sp]
                near = _stack_pointer(previous) if previous is not None else None
                if near is None:
                    near = regs.get(sp, 0)
                pt_regs = _find_pt_regs(prog, near, regs)
                if pt_regs is None:  # drgn Objects have no truth value
                    pt_regs = _regs_value(prog, regs)
                frames.append(
                    StackFrameInfo(
                        kind="label",
                        name=f"── {arch.boundary_name(previous_function)} ──",
                        pc=frame.pc,
                        pt_regs=pt_regs,
                    )
                )
            info = _code_frame(prog, index, frame)
            frames.append(info)
            previous = frame
            if not frame.is_inline:
                previous_function = info.function
    except (drgn.FaultError, ValueError) as exc:
        stack.error = str(exc)
        frames.append(StackFrameInfo(kind="label", name=f"── unwinding stopped: {exc} ──"))
    last_function = next((f.function for f in reversed(frames) if f.kind == "code"), None)
    if not frames or frames[-1].kind != "label":
        entry = _entry_label(prog, task, last_function)
        stack.tail = ("probe" if entry is None else "entry", last_function)
        if entry is not None:
            frames.append(entry)
    _mark_dump_path(stack)
    log.debug("unwound task %#x: %d drgn frames, %d shown", task.value_(), count, len(frames))
    return stack


def share_stack(
    prog: drgn.Program,
    representative: TaskStack,
    task: drgn.Object,
    known: TaskInfo | None = None,
    words: StackWords | None = None,
) -> TaskStack | None:
    """Present ``task``'s stack from the stack of a task with the same stack signature.

    Equal signatures give equal unwound frames (:mod:`~vmcore_dap.dump.stacks.signature`), so every row is the
    representative's except the bottom one, which reads the task's own user ``pt_regs`` (system
    call, arguments, user RIP) and is rebuilt here. Rows carry no drgn ``frame``/``pt_regs``: those
    belong to the task and come from unwinding it when a frame is inspected.

    :param words: ``task``'s used stack when already read: its bottom row's registers are taken
        from it instead of read again.
    :return: ``None`` when the representative's stack cannot be reused (its bottom was not formed
        from the user ``pt_regs`` alone, or it starts in the panic path); unwind the task then.
    """
    tail = representative.tail
    if tail is None or representative.trace is None or representative.error is not None:
        return None
    code = next((f for f in representative.frames if f.kind == "code"), None)
    if code is not None and code.function in DUMP_PATH_FUNCTIONS:
        return None
    how, last_function = tail
    rows = representative.frames[:-1] if how == "entry" else representative.frames
    entry = _entry_label(prog, task, last_function, known, words)
    if how == "entry" and entry is None:
        return None
    if representative.shareable_rows is None:
        # Read-only from here on: the rows are the same objects in every task that shares them.
        representative.shareable_rows = [replace(f, frame=None, pt_regs=None) for f in rows]
    frames = list(representative.shareable_rows)
    if entry is not None:
        frames.append(entry)
    return TaskStack(
        trace=None,
        frames=frames,
        focus=representative.focus,
        tail=None,
        shared=True,
        rows_from=representative.shareable_rows,
    )
