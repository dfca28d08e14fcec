"""All tasks grouped by identical kernel stack: the pile-ups a kernel engineer looks for first.

Two tasks are in one group when their stacks, normalised by :mod:`.stack_normalize` (the rules the
tests use against crash's ``bt``), list the same functions. A group carries its frames (from its
first member: function, pc, module), how many tasks share it, their state letters and the members'
keys (the caller's thread ids). Groups are sorted by size, biggest first.

Only drgn's unwinder and the frames' names are used (no source lookups). drgn's unwinding costs
about 4 ms a task (mostly its DWARF search for inlined scopes), which makes 5,000 tasks slow; but
tasks that sleep in the same place have the same return addresses at the same depths of their
stacks. So a sleeping task's stack is first reduced to a *signature*: the words of the used part of
the stack that point into the kernel image or modules (return addresses among them) and the
pointers into the stack itself, as offsets; drgn then unwinds one task per signature. Unwinding
reads nothing but such words (return addresses, and saved frame pointers), so equal signatures give
equal stacks.

One wrinkle: ``CONFIG_RANDOMIZE_KSTACK_OFFSET`` (on in Debian's kernels) makes ``do_syscall_64``
allocate a random gap, full of stale words, before calling the system call. The signature therefore
stops at the return address into the syscall entry (:data:`_RANDOMIZED_ENTRIES`); what lies above is
the same for every task relative to the top of the stack. That the word taken for the return address
really is one is checked on the first task of each signature against drgn's frame (else the
signature is not reused). Tasks on a CPU are always unwound, and ``exact=True`` unwinds every task
(the tests check that both ways give the same groups).

A ``check`` callback runs every few tasks so a client can cancel and see progress.
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import drgn

from vmcore_dap.target.stack_normalize import Frame, normalize_drgn_trace
from vmcore_dap.target.tasks import TaskInfo

__all__ = [
    "GroupedFrame",
    "StackGroup",
    "StackGroups",
    "StackSignature",
    "UNWIND_FAILED",
    "USER_MODE",
    "group_stacks",
    "signature_reusable",
    "stack_signature",
    "task_frames",
]

#: The one "function" of the group of tasks whose stack drgn could not unwind.
UNWIND_FAILED = "<cannot unwind>"
#: The one "function" of the group of tasks that were running in user mode (no kernel frames).
USER_MODE = "<user mode>"

#: How many tasks are unwound between two calls of the ``check`` callback.
CHECK_EVERY = 64

#: ``check(done, total)``: report progress; raise to cancel.
CheckCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class GroupedFrame:
    """One frame of a group's shared stack.

    :param module: ``vmlinux`` or the module's name, ``None`` when no module covers the pc.
    """

    function: str
    pc: int | None
    module: str | None


@dataclass
class StackGroup:
    """Tasks whose normalised stacks list the same functions.

    :param frames: innermost first, with the pcs of the first member.
    :param members: the callers' keys (thread ids), in the order the tasks were given.
    :param states: ``ps`` state letter -> number of members in that state.
    """

    frames: list[GroupedFrame]
    members: list[int] = field(default_factory=list)
    states: Counter[str] = field(default_factory=Counter)
    pids: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of tasks in the group."""
        return len(self.members)

    @property
    def functions(self) -> tuple[str, ...]:
        """The group's key: its functions, innermost first."""
        return tuple(f.function for f in self.frames)

    @property
    def state_letters(self) -> str:
        """The states of the members, most frequent first (``"DS"``)."""
        return "".join(letter for letter, _ in self.states.most_common())


@dataclass
class StackGroups:
    """Every task's group, and what it cost to compute."""

    groups: list[StackGroup]
    task_count: int
    seconds: float
    #: how many tasks drgn actually unwound (the others shared a stack signature).
    unwound: int = 0


def _module_name(prog: drgn.Program, pc: int, cache: dict[int, str | None]) -> str | None:
    if pc in cache:
        return cache[pc]
    try:
        module = prog.module(pc)
        name: str | None = "vmlinux" if isinstance(module, drgn.MainModule) else module.name
    except LookupError:
        name = None
    cache[pc] = name
    return name


#: Words at or above this address are kernel text, data or module space on x86-64 (the kernel image
#: is mapped from -2 GiB); below it lie user space, the direct map, vmalloc (kernel stacks) and so on.
_KERNEL_IMAGE_START = 0xFFFFFFFF80000000


def _thread_size(prog: drgn.Program) -> int:
    if "vmcore_dap_thread_size" not in prog.cache:
        try:
            size = drgn.sizeof(prog.type("union thread_union"))
        except LookupError:
            size = 16384  # x86-64 THREAD_SIZE without KASAN
        prog.cache["vmcore_dap_thread_size"] = size
    size_: int = prog.cache["vmcore_dap_thread_size"]
    return size_


#: Syscall entry functions that put a random gap on the stack before calling the handler
#: (``add_random_kstack_offset()``, v5.13+).
_RANDOMIZED_ENTRIES = ("do_syscall_64", "__do_fast_syscall_32", "do_int80_syscall_32")


def _entry_ranges(prog: drgn.Program) -> list[tuple[int, int]]:
    if "vmcore_dap_entry_ranges" not in prog.cache:
        ranges = []
        for name in _RANDOMIZED_ENTRIES:
            try:
                symbol = prog.symbol(name)
            except LookupError:
                continue
            ranges.append((symbol.address, symbol.address + symbol.size))
        prog.cache["vmcore_dap_entry_ranges"] = ranges
    result: list[tuple[int, int]] = prog.cache["vmcore_dap_entry_ranges"]
    return result


@dataclass(frozen=True)
class StackSignature:
    """What unwinding a sleeping task reads (see the module docstring).

    :param cut: address of the return address into a randomizing syscall entry, or ``None``.
    """

    key: tuple[object, ...]
    cut: int | None


def stack_signature(prog: drgn.Program, task: drgn.Object) -> StackSignature | None:
    """Reduce a sleeping task's kernel stack to what unwinding it reads.

    :return: ``None`` when the stack cannot be read (then the task is unwound on its own).
    """
    try:
        base = task.stack.value_()
        sp = task.thread.sp.value_()
        size = _thread_size(prog)
        if not base or not base <= sp < base + size:
            return None
        data = prog.read(sp, base + size - sp)
    except (drgn.FaultError, LookupError, AttributeError, ValueError):
        return None
    words = struct.unpack(f"<{len(data) // 8}Q", data[: len(data) // 8 * 8])
    top = base + size
    entries = _entry_ranges(prog)
    kernel: list[tuple[int, int]] = []
    inside: list[tuple[int, int]] = []
    cut_index: int | None = None
    for index, word in enumerate(words):
        if word >= _KERNEL_IMAGE_START:
            kernel.append((index, word))
            if any(lo < word <= hi for lo, hi in entries):  # a return address is past the call
                cut_index = index
                break
        elif base <= word < top:
            inside.append((index, word - sp))
    if cut_index is None:
        return StackSignature((top - sp, tuple(kernel), tuple(inside)), None)
    cut = sp + 8 * cut_index
    # Pointers above the cut (into the entry's frame) are the same relative to the top of the stack.
    inside = [(i, offset if sp + offset <= cut else offset + sp - top) for i, offset in inside]
    return StackSignature(("cut", cut_index, tuple(kernel), tuple(inside)), cut)


def _cut_is_return_slot(trace: drgn.StackTrace, cut: int) -> bool:
    """Whether the word at ``cut`` is where the unwinding found a return address into the entry."""
    for frame in trace:
        if not frame.is_inline and frame.name in _RANDOMIZED_ENTRIES:
            return bool(frame.sp - 8 == cut)
    return False


def signature_reusable(signature: StackSignature, trace: drgn.StackTrace | None) -> bool:
    """Whether other tasks with ``signature`` may reuse ``trace``, the unwinding of its first task.

    A signature cut at a syscall entry is reusable only if the word taken for the return address
    into the entry really is where drgn found it.
    """
    if signature.cut is None:
        return True
    return trace is not None and _cut_is_return_slot(trace, signature.cut)


def _unwind(
    prog: drgn.Program, task: drgn.Object, names: dict[int, str]
) -> tuple[list[Frame], drgn.StackTrace | None]:
    try:
        trace = prog.stack_trace(task)
        return normalize_drgn_trace(trace, prog=prog, locations=None, name_cache=names), trace
    except (drgn.FaultError, ValueError, LookupError):
        return [], None


def task_frames(prog: drgn.Program, task: drgn.Object) -> list[Frame]:
    """Return the normalised frames of ``task`` (``struct task_struct *``), without source lines."""
    return _unwind(prog, task, {})[0]


def group_stacks(
    prog: drgn.Program,
    tasks: Iterable[tuple[int, TaskInfo]],
    check: CheckCallback | None = None,
    *,
    exact: bool = False,
) -> StackGroups:
    """Group ``tasks`` (``(key, TaskInfo)`` pairs) by identical normalised stack.

    :param check: called with ``(done, total)`` every :data:`CHECK_EVERY` tasks; may raise to stop.
    :param exact: unwind every task with drgn instead of once per stack signature.
    """
    start = time.monotonic()
    items = list(tasks)
    total = len(items)
    by_key: dict[tuple[str, ...], StackGroup] = {}
    module_cache: dict[int, str | None] = {}
    # Modules cover address ranges: look each function's module up once, by its first pc seen.
    function_module: dict[str, str | None] = {}
    by_signature: dict[tuple[object, ...], tuple[str, ...]] = {}
    frames_of: dict[tuple[str, ...], list[Frame]] = {}
    names: dict[int, str] = {}  # pc -> name of the physical frame there
    unwound = 0
    for done, (key, info) in enumerate(items):
        if check is not None and done % CHECK_EVERY == 0:
            check(done, total)
        signature = None if exact or info.on_cpu else stack_signature(prog, info.task)
        functions = by_signature.get(signature.key) if signature is not None else None
        if functions is None:
            frames, trace = _unwind(prog, info.task, names)
            unwound += 1
            functions = tuple(f.function for f in frames) or (
                USER_MODE if trace is not None else UNWIND_FAILED,
            )
            frames_of.setdefault(functions, frames)
            if signature is not None and (
                signature.cut is None or (trace is not None and _cut_is_return_slot(trace, signature.cut))
            ):
                by_signature[signature.key] = functions
        frames = frames_of[functions]
        group = by_key.get(functions)
        if group is None:
            grouped = []
            for f in frames:
                if f.function not in function_module and f.pc is not None:
                    function_module[f.function] = _module_name(prog, f.pc, module_cache)
                grouped.append(GroupedFrame(f.function, f.pc, function_module.get(f.function)))
            if not grouped:
                grouped = [GroupedFrame(functions[0], None, None)]
            group = by_key[functions] = StackGroup(grouped)
        group.members.append(key)
        group.pids.append(info.pid)
        group.states[info.state] += 1
    if check is not None:
        check(total, total)
    groups = sorted(by_key.values(), key=lambda g: (-g.count, g.functions))
    return StackGroups(groups=groups, task_count=total, seconds=time.monotonic() - start, unwound=unwound)
