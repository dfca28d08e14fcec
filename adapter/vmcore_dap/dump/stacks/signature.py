"""Which tasks' stacks unwind alike: a sleeping task's stack reduced to what unwinding it reads.

drgn's unwinding costs about 4 ms a task (mostly its DWARF search for inlined scopes), which makes
5,000 tasks slow; but tasks that sleep in the same place have the same return addresses at the same
depths of their stacks. So a sleeping task's stack is first reduced to a *signature*: the words of
the used part of the stack that point into the kernel image or modules (return addresses among them)
and the pointers into the stack itself, as offsets; drgn then unwinds one task per signature
(:class:`~.service.StackService`). Unwinding reads nothing but such words (return addresses, and
saved frame pointers), so equal signatures give equal stacks.

One wrinkle: ``CONFIG_RANDOMIZE_KSTACK_OFFSET`` (on in Debian's kernels) makes ``do_syscall_64``
allocate a random gap, full of stale words, before calling the system call. The signature therefore
stops at the return address into the syscall entry (``Arch.randomized_syscall_entries``); what lies
above is the same for every task relative to the top of the stack. Which word that return address is
cannot be told before unwinding: the handler's uninitialised stack slots below it often hold stale
return addresses into the same entry (on the many-tasks sample, 309 of 5,067 tasks). So every such
word, innermost first, gives a candidate key; after unwinding the first task of a stack, only the
candidate cut where drgn found the return address is registered, and a later task shares that stack
when any of its candidates equals a registered key — equal keys mean equal words wherever unwinding
reads. Tasks on a CPU are always unwound.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Generic, TypeVar

import drgn

from vmcore_dap.dump.arch import arch_of
from vmcore_dap.dump.kernel.tasks import thread_size

__all__ = ["MAX_CUT_CANDIDATES", "SignatureKey", "SignatureTable", "StackSignature", "stack_signature"]


def _entry_ranges(prog: drgn.Program) -> list[tuple[int, int]]:
    if "vmcore_dap_entry_ranges" not in prog.cache:
        ranges = []
        for name in arch_of(prog).randomized_syscall_entries:
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
        size = thread_size(prog)
        if not base or not base <= sp < base + size or (base + size - sp) % 8:
            return None
        data = prog.read(sp, base + size - sp)
    except (drgn.FaultError, LookupError, AttributeError, ValueError):
        return None
    words = struct.unpack(f"<{len(data) // 8}Q", data)
    entries = _entry_ranges(prog)
    lowest = min((lo for lo, _ in entries), default=0)
    highest = max((hi for _, hi in entries), default=0)
    image = arch_of(prog).kernel_image_start
    kernel = [(index, word) for index, word in enumerate(words) if word >= image]
    # A return address is just past its call, hence ``lo < word <= hi``.
    cuts = [
        position
        for position, (_, word) in enumerate(kernel)
        if lowest < word <= highest and any(lo < word <= hi for lo, hi in entries)
    ][:MAX_CUT_CANDIDATES]
    return StackSignature(base, sp, words, kernel, cuts)


def _entry_return_slot(trace: drgn.StackTrace) -> int | None:
    """Where the unwinding found the return address into a randomizing entry, if it passed one."""
    entries = arch_of(trace.prog).randomized_syscall_entries
    for frame in trace:
        if not frame.is_inline and frame.name in entries:
            slot: int = frame.sp - 8
            return slot
    return None
