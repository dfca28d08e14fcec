"""All tasks grouped by identical kernel stack: the pile-ups a kernel engineer looks for first.

Two tasks are in one group when their stacks, normalised by :mod:`.normalize` (the rules the
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
the same for every task relative to the top of the stack. Which word that return address is cannot
be told before unwinding: the handler's uninitialised stack slots below it often hold stale return
addresses into the same entry (on the many-tasks sample, 309 of 5,067 tasks). So every such word,
innermost first, gives a candidate key; after unwinding the first task of a stack, only the candidate
cut where drgn found the return address is registered, and a later task shares that stack when any
of its candidates equals a registered key — equal keys mean equal words wherever unwinding reads.
Tasks on a CPU are always unwound, and ``exact=True`` unwinds every task (the tests check that both
ways give the same groups).

A ``check`` callback runs every few tasks so a client can cancel and see progress.
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import drgn

from vmcore_dap.dump.kernel.tasks import TaskInfo
from vmcore_dap.dump.stacks.normalize import Frame, normalize_drgn_trace

__all__ = [
    "GroupedFrame",
    "StackGroup",
    "StackGroups",
    "SignatureKey",
    "SignatureTable",
    "StackSignature",
    "UNWIND_FAILED",
    "USER_MODE",
    "group_stacks",
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


#: At most this many words pointing into a randomizing entry are tried as the cut (stale ones can
#: lie below the real return address, in the syscall handler's uninitialised slots).
MAX_CUT_CANDIDATES = 4

SignatureKey = tuple[object, ...]
V = TypeVar("V")


class StackSignature:
    """What unwinding a sleeping task reads (see the module docstring).

    Candidate keys, innermost cut first, are built only as far as a caller iterates :meth:`keys`
    (most tasks match on the first or second): this runs for every task of a dump.
    """

    def __init__(
        self, base: int, sp: int, words: tuple[int, ...], kernel: list[tuple[int, int]], cuts: list[int]
    ) -> None:
        """:param base: the stack's lowest address; ``words`` are the stack from ``sp`` to its top.
        :param kernel: ``(index, word)`` of the words pointing into the kernel image or modules.
        :param cuts: positions in ``kernel`` of the words pointing into a randomizing entry (at most
            :data:`MAX_CUT_CANDIDATES`); empty when there is none.
        """
        self._base, self._sp, self._words, self._kernel, self._cuts = base, sp, words, kernel, cuts
        self._built: list[tuple[SignatureKey, int | None]] = []

    def candidate_count(self) -> int:
        """How many candidate keys there are (one when the stack has no cut)."""
        return max(1, len(self._cuts))

    def keys(self) -> Iterator[SignatureKey]:
        """Every candidate key, innermost cut first, to look up in a table filled with
        :meth:`reusable_key`."""
        for number in range(self.candidate_count()):
            yield self._candidate(number)[0]

    def reusable_key(self, trace: drgn.StackTrace | None) -> SignatureKey | None:
        """The key under which other tasks may reuse ``trace``, this task's own unwinding.

        Without a cut that is the one key; with cuts, the candidate whose cut is where drgn found
        the return address into the entry, or ``None`` when no candidate is (then the trace is not
        shared).
        """
        if not self._cuts:
            return self._candidate(0)[0]
        slot = _entry_return_slot(trace) if trace is not None else None
        for number in range(len(self._cuts)):
            key, cut = self._candidate(number)
            if cut == slot:
                return key
        return None

    def _candidate(self, number: int) -> tuple[SignatureKey, int | None]:
        while len(self._built) <= number:
            self._built.append(self._build(len(self._built)))
        return self._built[number]

    def _build(self, number: int) -> tuple[SignatureKey, int | None]:
        base, sp, words = self._base, self._sp, self._words
        top = sp + 8 * len(words)
        if not self._cuts:
            inside = tuple((i, w - sp) for i, w in enumerate(words) if base <= w < top)
            return (top - sp, tuple(self._kernel), inside), None
        position = self._cuts[number]
        index = self._kernel[position][0]
        cut = sp + 8 * index
        # Pointers above the cut (into the entry's frame) are the same relative to the top of the stack.
        relative = tuple(
            (i, w - sp if w <= cut else w - top) for i, w in enumerate(words[:index]) if base <= w < top
        )
        return ("cut", index, tuple(self._kernel[: position + 1]), relative), cut


class SignatureTable(Generic[V]):
    """Stacks already unwound, under their reusable signature keys (:meth:`StackSignature.reusable_key`).

    A task any of whose candidate keys is in the table unwinds like the task registered there: the
    one rule both the ``stackTrace`` stack sharing and the stack grouping follow.
    """

    def __init__(self) -> None:
        self._by_key: dict[SignatureKey, V] = {}

    def find(self, signature: StackSignature) -> V | None:
        """What was registered for a task with the same stack, or ``None``."""
        return next((self._by_key[k] for k in signature.keys() if k in self._by_key), None)

    def register(self, signature: StackSignature, trace: drgn.StackTrace | None, value: V) -> None:
        """Record ``value`` for ``trace``, the unwinding of a task with ``signature``, if reusable."""
        key = signature.reusable_key(trace)
        if key is not None:
            self._by_key.setdefault(key, value)


def stack_signature(prog: drgn.Program, task: drgn.Object, stack: int | None = None) -> StackSignature | None:
    """Reduce a sleeping task's kernel stack to what unwinding it reads.

    :param stack: ``task->stack`` when already known (:attr:`TaskInfo.stack`).
    :return: ``None`` when the stack cannot be read (then the task is unwound on its own).
    """
    try:
        base = task.stack.value_() if stack is None else stack
        sp = task.thread.sp.value_()
        size = _thread_size(prog)
        if not base or not base <= sp < base + size or (base + size - sp) % 8:
            return None
        data = prog.read(sp, base + size - sp)
    except (drgn.FaultError, LookupError, AttributeError, ValueError):
        return None
    words = struct.unpack(f"<{len(data) // 8}Q", data)
    entries = _entry_ranges(prog)
    lowest = min((lo for lo, _ in entries), default=0)
    highest = max((hi for _, hi in entries), default=0)
    kernel = [(index, word) for index, word in enumerate(words) if word >= _KERNEL_IMAGE_START]
    # A return address is just past its call, hence ``lo < word <= hi``.
    cuts = [
        position
        for position, (_, word) in enumerate(kernel)
        if lowest < word <= highest and any(lo < word <= hi for lo, hi in entries)
    ][:MAX_CUT_CANDIDATES]
    return StackSignature(base, sp, words, kernel, cuts)


def _entry_return_slot(trace: drgn.StackTrace) -> int | None:
    """Where the unwinding found the return address into a randomizing entry, if it passed one."""
    for frame in trace:
        if not frame.is_inline and frame.name in _RANDOMIZED_ENTRIES:
            slot: int = frame.sp - 8
            return slot
    return None


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
    by_signature: SignatureTable[tuple[str, ...]] = SignatureTable()
    frames_of: dict[tuple[str, ...], list[Frame]] = {}
    names: dict[int, str] = {}  # pc -> name of the physical frame there
    unwound = 0
    for done, (key, info) in enumerate(items):
        if check is not None and done % CHECK_EVERY == 0:
            check(done, total)
        signature = None if exact or info.on_cpu else stack_signature(prog, info.task, info.stack)
        functions = None
        if signature is not None:
            functions = by_signature.find(signature)
        if functions is None:
            frames, trace = _unwind(prog, info.task, names)
            unwound += 1
            functions = tuple(f.function for f in frames) or (
                USER_MODE if trace is not None else UNWIND_FAILED,
            )
            frames_of.setdefault(functions, frames)
            if signature is not None:
                by_signature.register(signature, trace, functions)
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
