"""Which tasks' stacks unwind alike: a sleeping task's chain of return addresses, read without drgn.

drgn's unwinding costs a few milliseconds a task (mostly its DWARF search for inlined scopes), which
makes 50,000 tasks slow; but tasks that sleep in the same place have the same return addresses at
the same depths of their stacks, and the rest of a sleeping task's stack (locals, saved registers,
words left over from earlier calls) does not change what unwinding finds. So drgn unwinds one task,
and :class:`ChainTable` learns from it, for each function on the way, how far its frame reaches and
where in it the return address into the caller is. Another task's stack is then walked with those
facts alone: read the return address where the first frame keeps it, jump by that function's frame
size to the next, and so on. Its *chain* — the positions and values of the return addresses read —
names a task unwound before exactly when the two would unwind alike: every word drgn reads to find
the frames is one of those, at the same place.

A walk stops where the stack stops being the same for every task:

* at a return address into an entry that puts a random gap below itself (``CONFIG_RANDOMIZE_KSTACK_
  OFFSET``: ``Arch.randomized_syscall_entries``, e.g. ``do_syscall_64``): above it every system call's
  stack is the entry's own frame and the user registers, laid out from the top of the stack; the
  task's own bottom row (its system call and arguments) is made from its own registers anyway;
* at a function that ended the representative's unwinding (``ret_from_fork`` of a kernel thread);
* at a function it does not know (or one seen with many frame sizes: a variable-length array): the
  task is then unwound by drgn, which teaches the table more. A function that realigns its stack to
  16 bytes (``do_sys_poll``, ``__mutex_lock``…) has one of two sizes, by its caller's alignment: the
  walk tries both; the wrong one puts every later slot a word off, where no registered chain goes on.

Words left over in a frame's unused slots (stale return addresses of earlier calls, which differ from
task to task) are never read, so they cannot keep two tasks apart. Tasks on a CPU and tasks whose
stack cannot be read are always unwound themselves.

The walk follows the x86-64 convention: a call pushes the return address, so a frame's return address
into its caller is the word right below the caller's frame; and the first frame's return address is
on the stack (``inactive_task_frame``). :meth:`ChainTable.register` checks both on every unwinding it
learns from, so an architecture that keeps them elsewhere (arm64's frame records and ``cpu_context``)
learns nothing and has every task unwound by drgn. On arm64 the walk is not even tried
(``Arch.stack_signatures`` is off: pointer authentication signs return addresses with the stack
pointer, so equal words need not mean equal stacks).

The architecture and the task listing are imported where a program is first asked about, not at
module level: the stack prefetch's second process (:mod:`.prefetch_child`) walks stacks with a
:class:`ChainTable` made from a snapshot and must start without them (they pull in
``drgn.helpers.linux``: 0.125 → 0.05 s of CPU to start and open the dump, where drgn alone takes
0.035 s; 6 Dec, many-tasks).
"""

from __future__ import annotations

import itertools
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import drgn

__all__ = [
    "ChainKey",
    "ChainTable",
    "KernelWords",
    "StackReader",
    "StackWords",
    "TableSnapshot",
    "UsedStack",
    "read_stack_words",
    "saved_sp_offset",
]

#: ``("entry", ((slot, return address), …))`` for a chain that reaches a randomizing entry, or
#: ``("end", chain, stack bytes used)`` for one that ended the representative's unwinding.
ChainKey = tuple[object, ...]
V = TypeVar("V")

#: How many frames a walk follows at most (a kernel stack holds fewer).
_MAX_FRAMES = 256
#: How many frame sizes one function may show (a function that realigns its stack to 16 bytes has
#: two, by the alignment of its caller's stack pointer); more make it one the walk does not follow.
_MAX_SIZES = 4
#: How many ways a walk tries at most (each function with two sizes doubles them).
_MAX_WAYS = 64


@dataclass(frozen=True)
class StackWords:
    """The used part of a sleeping task's kernel stack: from its saved stack pointer to the top."""

    sp: int
    data: bytes

    @property
    def top(self) -> int:
        return self.sp + len(self.data)

    @property
    def size(self) -> int:
        """Bytes used, from ``sp`` to the top."""
        return len(self.data)

    @property
    def slots(self) -> _Slots:
        """The words from ``sp`` up, by index (on a little-endian host a view: nothing is copied)."""
        if _LITTLE_HOST and not len(self.data) % 8:
            return memoryview(self.data).cast("Q")
        return [word for (word,) in _WORD.iter_unpack(self.data[: len(self.data) // 8 * 8])]

    def word(self, index: int) -> int | None:
        """The word ``index`` words above ``sp``, or ``None`` past the top."""
        at = index * 8
        if at < 0 or at + 8 > len(self.data):
            return None
        value: int = _WORD.unpack_from(self.data, at)[0]
        return value


_WORD = struct.Struct("<Q")
#: Whether a native ``Q`` is the dump's ``<Q`` (stacks are walked on x86-64 dumps only).
_LITTLE_HOST = sys.byteorder == "little"


class _Slots(Protocol):
    """Words by index above the saved stack pointer."""

    def __getitem__(self, index: int, /) -> int: ...


class _ZeroElsewhere(dict[int, int]):
    """Slot → word, reading 0 at every slot not held (indexing stays a C-level dict lookup)."""

    def __missing__(self, key: int) -> int:
        return 0


class KernelWords:
    """A sleeping task's used stack with only its words at or above the kernel image's start, the
    rest reading 0: what a second process sends (:mod:`.prefetch`), about 19 of 170 words. Enough to
    match: :class:`ChainTable` reads and learns only words in the kernel image (a walk ends at the
    first word below it), so it walks and registers these exactly as the whole stack."""

    __slots__ = ("size", "slots", "sp")

    def __init__(self, sp: int, size: int, words: Iterable[tuple[int, int]]) -> None:
        """:param words: ``(slot, word)`` pairs, slot = index above ``sp``."""
        self.sp = sp
        self.size = size
        self.slots: _Slots = _ZeroElsewhere(words)

    @property
    def top(self) -> int:
        return self.sp + self.size

    def word(self, index: int) -> int | None:
        """The word ``index`` words above ``sp`` (0 where not held), or ``None`` past the top."""
        if index < 0 or index * 8 + 8 > self.size:
            return None
        return self.slots[index]


#: A used stack as :class:`ChainTable` reads it: all of it, or its kernel-image words.
UsedStack = StackWords | KernelWords


def saved_sp_offset(prog: drgn.Program) -> int:
    """``offsetof(struct task_struct, thread.sp)``: the stack pointer a sleeping task saved."""
    found: int | None = prog.cache.get("vmcore_dap_thread_sp_offset")
    if found is None:
        found = prog.cache["vmcore_dap_thread_sp_offset"] = drgn.offsetof(
            prog.type("struct task_struct"), "thread.sp"
        )
    return found


class StackReader:
    """Reads sleeping tasks' used stacks (:class:`StackWords`) for one program, 50,000 times in a row:
    what every read needs (whether the architecture's stacks are walked, where ``thread.sp`` is,
    ``THREAD_SIZE``) is looked up once, not per task."""

    def __init__(self, prog: drgn.Program) -> None:
        from vmcore_dap.dump.arch import arch_of

        self.prog = prog
        self._walked = arch_of(prog).stack_signatures
        self._sp_offset: int | None = None
        self._size: int | None = None

    def read(self, task: drgn.Object | int, stack: int | None = None) -> StackWords | None:
        """Read the used part of a sleeping task's kernel stack (one read: a page or two).

        :param task: ``struct task_struct *``, or its address (with ``stack``).
        :param stack: ``task->stack`` when already known (:attr:`TaskInfo.stack`).
        :return: ``None`` when the stack cannot be read or the architecture's stacks are not walked
            (:attr:`Arch.stack_signatures`); then the task is unwound on its own.
        """
        if not self._walked:
            return None
        prog = self.prog
        try:
            if self._sp_offset is None or self._size is None:
                from vmcore_dap.dump.kernel.tasks import thread_size

                self._sp_offset = saved_sp_offset(prog)
                self._size = thread_size(prog)
            if isinstance(task, int):
                address = task
                base = (
                    stack
                    if stack is not None
                    else drgn.Object(prog, "struct task_struct *", address).stack.value_()
                )
            else:
                address = task.value_()
                base = task.stack.value_() if stack is None else stack
            sp = prog.read_u64(address + self._sp_offset)  # one word, no member objects
            size = self._size
            if not base or not base <= sp < base + size or (base + size - sp) % 8:
                return None
            return StackWords(sp, prog.read(sp, base + size - sp))
        except (drgn.FaultError, LookupError, AttributeError, ValueError):
            return None


def read_stack_words(prog: drgn.Program, task: drgn.Object, stack: int | None = None) -> StackWords | None:
    """Read the used part of a sleeping task's kernel stack (:meth:`StackReader.read`, once)."""
    return StackReader(prog).read(task, stack)


def _entry_ranges(prog: drgn.Program) -> list[tuple[int, int]]:
    from vmcore_dap.dump.arch import arch_of

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


@dataclass(frozen=True)
class TableSnapshot:
    """What a :class:`ChainTable` learnt, as plain data another process can walk stacks with
    (:meth:`ChainTable.snapshot`, :meth:`ChainTable.from_snapshot`): a chain it finds is named by its
    place in ``keys``, the registration order (:meth:`ChainTable.value_at`)."""

    kernel_start: int
    start: int
    sizes: dict[int, tuple[int, ...]]
    ends: frozenset[int]
    entries: list[tuple[int, int]]
    keys: list[ChainKey]


class ChainTable(Generic[V]):
    """Stacks unwound by drgn, found again by their chain of return addresses (module docstring).

    :meth:`register` learns from each unwinding; :meth:`find` walks another task's stack with what
    was learnt. The table is per program and used from one thread.
    """

    def __init__(self, prog: drgn.Program | None) -> None:
        self._prog = prog
        #: The randomizing entries' address ranges, found on the first chain walked: three symbol
        #: lookups by name (about 1 ms each in drgn's table) a session with no stack to match (a
        #: first picture) need not pay.
        self._entries: list[tuple[int, int]] | None = None
        self._kernel_start = 0
        if prog is not None:
            from vmcore_dap.dump.arch import arch_of

            self._kernel_start = arch_of(prog).kernel_image_start
        #: Where the first frame's return address is, in words above the saved stack pointer.
        self._start: int | None = None
        #: Return address → the sizes in bytes seen for the frame it returns into (from its stack
        #: pointer to its caller's); ``()`` once more than :data:`_MAX_SIZES` were seen.
        self._sizes: dict[int, tuple[int, ...]] = {}
        #: Return addresses of frames that ended a representative's unwinding (no caller here).
        self._ends: set[int] = set()
        self._by_chain: dict[ChainKey, V] = {}
        #: The chains registered, in the order they were (:meth:`value_at`).
        self._keys: list[ChainKey] = []
        self._entry_pcs: dict[int, bool] = {}
        #: Counts the registrations that taught the table something (:meth:`snapshot` is stale once
        #: it moved on).
        self.version = 0

    @classmethod
    def from_snapshot(cls, snapshot: TableSnapshot) -> ChainTable[int]:
        """A table that walks stacks as the one :meth:`snapshot` was taken of did then, without a
        program (on another process): :meth:`find` gives a chain's place in ``snapshot.keys``."""
        table: ChainTable[int] = ChainTable.__new__(ChainTable)
        ChainTable.__init__(table, None)
        table._entries = list(snapshot.entries)
        table._kernel_start = snapshot.kernel_start
        table._start = snapshot.start
        table._sizes = dict(snapshot.sizes)
        table._ends = set(snapshot.ends)
        table._keys = list(snapshot.keys)
        table._by_chain = {key: index for index, key in enumerate(snapshot.keys)}
        return table

    def snapshot(self) -> TableSnapshot | None:
        """What the table learnt so far (``None`` before its first chain)."""
        if self._start is None or self._entries is None or not self._keys:
            return None
        return TableSnapshot(
            self._kernel_start,
            self._start,
            dict(self._sizes),
            frozenset(self._ends),
            list(self._entries),
            list(self._keys),
        )

    def value_at(self, index: int) -> V:
        """What was registered under the chain registered ``index``-th (0 first)."""
        return self._by_chain[self._keys[index]]

    def _in_entry(self, pc: int) -> bool:
        """Whether ``pc`` returns into a randomizing entry (asked once per address)."""
        found = self._entry_pcs.get(pc)
        if found is None:
            if self._entries is None:
                assert self._prog is not None  # a table from a snapshot has its entries
                self._entries = _entry_ranges(self._prog)
            found = self._entry_pcs[pc] = any(lo < pc <= hi for lo, hi in self._entries)
        return found

    def find(self, words: UsedStack) -> V | None:
        """What was registered for a stack whose chain equals that of ``words``, or ``None``."""
        key = self.chain_of(words)
        return self._by_chain[key] if key is not None else None

    def chain_of(self, words: UsedStack) -> ChainKey | None:
        """The registered chain that ``words`` follows, or ``None``.

        The walk follows every size seen for a function's frame; a wrong one puts the next slots off
        by a word, where no registered chain continues.
        """
        if self._start is None or not self._by_chain:
            return None
        return self._walk(words, self._start, (), [_MAX_WAYS])

    def _walk(
        self, words: UsedStack, slot: int, chain: tuple[tuple[int, int], ...], ways: list[int]
    ) -> ChainKey | None:
        # Runs once per task of the dump (50,000 times for a large one): the table's attributes are
        # locals and the chain a list, made a tuple only for a lookup.
        slots = words.slots
        count = words.size // 8
        kernel_start = self._kernel_start
        entry_pcs = self._entry_pcs
        ends = self._ends
        sizes_of = self._sizes
        by_chain = self._by_chain
        links = list(chain)
        for _ in range(_MAX_FRAMES):
            if slot < 0 or slot >= count:
                return None
            pc = slots[slot]
            if pc < kernel_start:
                return None
            links.append((slot, pc))
            in_entry = entry_pcs.get(pc)
            if in_entry is None:
                in_entry = self._in_entry(pc)
            if in_entry:
                key: ChainKey = ("entry", tuple(links))
                return key if key in by_chain else None
            if pc in ends:
                key = ("end", tuple(links), words.size)
                if key in by_chain:
                    return key
            sizes = sizes_of.get(pc)
            if not sizes:
                return None
            if len(sizes) > 1:
                prefix = tuple(links)
                for size in sizes:
                    ways[0] -= 1
                    if ways[0] < 0:
                        return None
                    found = self._walk(words, slot + size // 8, prefix, ways)
                    if found is not None:
                        return found
                return None
            slot += sizes[0] // 8
        return None

    def register(self, words: UsedStack, trace: drgn.StackTrace | None, value: V) -> bool:
        """Learn the frames of ``trace`` (drgn's unwinding of the task whose stack is ``words``) and
        record ``value`` under its chain; return whether it has one (an unwinding that leaves the
        stack or finds a return address elsewhere than at its frame's end, e.g. in an interrupt's
        saved registers, has none, and is not shared)."""
        if trace is None:
            return False
        frames = [(f.pc, f.sp) for f in trace if not f.is_inline and f.sp is not None]
        kernel = []
        for pc, sp in frames:
            if pc < self._kernel_start or not words.sp < sp <= words.top:
                break
            kernel.append((pc, sp))
        chain: list[tuple[int, int]] = []
        kind = "end"
        for pc, sp in kernel:
            slot = (sp - 8 - words.sp) // 8
            if words.word(slot) != pc:
                return False
            chain.append((slot, pc))
            if self._in_entry(pc):
                kind = "entry"
                break
        if not chain:
            return False
        if self._start is None:
            self._start = chain[0][0]
        elif self._start != chain[0][0]:
            return False
        for (slot, pc), (next_slot, _next_pc) in itertools.pairwise(chain):
            self._learn(pc, (next_slot - slot) * 8)
        key: ChainKey
        if kind == "entry":
            key = ("entry", tuple(chain))
        else:
            self._ends.add(chain[-1][1])
            key = ("end", tuple(chain), words.size)
        if key not in self._by_chain:
            self._by_chain[key] = value
            self._keys.append(key)
        self.version += 1
        return True

    def _learn(self, pc: int, size: int) -> None:
        sizes = self._sizes.get(pc)
        if sizes is None:
            self._sizes[pc] = (size,)
        elif sizes and size not in sizes:
            self._sizes[pc] = (*sizes, size) if len(sizes) < _MAX_SIZES else ()
