"""Every task of the dump, as ``ps`` (and crash's ``ps``) would list it.

drgn's ``prog.threads()`` omits PID 0, but each CPU has its own idle task (``swapper/N``), and a crash
engineer expects to see them, especially the ones that were running. So the list is: the crashed
task, the task each other CPU was running, each CPU's idle task (``idle_task`` of every CPU that
was up, :func:`~vmcore_dap.dump.kernel.cpus.dumped_cpus`, not only the online ones: arm64's crash
IPI takes the stopped CPUs offline), then every other task reachable through the PID hash by PID,
each with its state letter
(:mod:`~vmcore_dap.dump.kernel.task_state`: ``ps``'s letters, plus ``W`` and ``N`` for the waking and
new tasks crash tells apart) and, for tasks that were on a CPU when the dump was taken, that CPU.

The first part (the *head*: a handful of tasks found from the CPUs) costs a few reads; the walk of the
PID hash grows with the dump (50,000 tasks take seconds). :class:`TaskListing` does the walk in steps,
so a debugger can show the crash before the whole list is read.

The listing is also the program's index of tasks by kernel stack (:meth:`TaskListing.stack_owner`):
a pointer into a stack is named from it (:mod:`~vmcore_dap.dump.kernel.task_stacks`), so naming one
does not walk every task again.

The PID table is a tree read from the dump; a damaged one can loop. The walk stops at the first task
seen twice (each task has exactly one PID) or after ``pid_max`` entries, and says so. Names are
escaped (:func:`~vmcore_dap.dump.values.render.escape_bytes`): a ``comm`` may hold control characters or
bytes that are not UTF-8.

Reading 5,000 tasks costs what decompressing their pages costs (about 13 µs a task in a compressed
kdump); on top of that, drgn member access and ``string_()`` cost another 10–15 µs a task. So the
fields a thread list shows are read as one block per task (:class:`_Layout`: from ``__state`` to
``comm``) and decoded from bytes; a task whose block is unreadable, or a kernel whose
``task_struct`` lacks one of those members, takes the member-by-member path (:func:`task_info`).
Where a second process reads ahead (:class:`BlockSource`: :mod:`~vmcore_dap.dump.stacks.prefetch`),
it reads part of the blocks and sends back only the listed fields' bytes (:class:`BlockPlan`), which
are decoded here as a block read here is: the layout stays in this module.

Why the PID table and not the kernel's task lists (``init_task.tasks``, ``thread_node``), whose
links lie in that block: the table is what crash's ``ps`` reads, its page left out of a lossy dump
is found only by walking it (:func:`unreadable_pid_table`), and it costs 2 µs a task against the
block's 16 (``bench/task_walks.py``: 0.08 s of 1.2 s at 50,902 tasks; bench/RESULTS.md).
"""

from __future__ import annotations

import operator
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import drgn
from drgn.helpers.linux.idr import idr_for_each
from drgn.helpers.linux.sched import cpu_curr, idle_task, task_cpu

from vmcore_dap.dump.arch import arch_of
from vmcore_dap.dump.kernel.block_plan import BlockPlan
from vmcore_dap.dump.kernel.cpus import dumped_cpus
from vmcore_dap.dump.kernel.lists import ListWalk, bounded_list_entries
from vmcore_dap.dump.kernel.task_state import StateBits, state_bits, state_letter, task_state_letter
from vmcore_dap.dump.memory.page_filter import explain_unreadable
from vmcore_dap.dump.opening.mapped_dump import mapped_dump_pages
from vmcore_dap.dump.values.render import escape_bytes

__all__ = [
    "PF_KTHREAD",
    "BlockPlan",
    "BlockSource",
    "block_plan",
    "TaskInfo",
    "TaskListing",
    "is_kernel_thread",
    "list_tasks",
    "listing_of",
    "program_listing",
    "running_tasks",
    "unreadable_pid_table",
    "task_info",
    "tasks_on_lists",
    "thread_size",
]

#: ``task_struct.flags`` of a kernel thread (include/linux/sched.h, unchanged since v2.6).
PF_KTHREAD = 0x00200000
_LAYOUT_KEY = "vmcore_dap_task_layout"
_LISTING_KEY = "vmcore_dap_task_listing"
#: Tasks walked, then described, at a time: a second process is asked for its share of each batch
#: before the drgn thread reads its own (:meth:`TaskListing.step`).
_BATCH = 1024


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """What a thread list shows about one task.

    A dump may hold 50,000 of these for as long as it is open: they are slotted plain data, and the
    ``struct task_struct *`` object is made when asked for (:attr:`task`), not kept.

    :param cpu: the CPU the task last ran on (``task_cpu``).
    :param on_cpu: whether it was the current task of ``cpu`` when the dump was taken.
    """

    prog: drgn.Program
    address: int
    pid: int
    tgid: int
    comm: str
    state: str
    cpu: int
    on_cpu: bool
    is_idle: bool
    is_kernel_thread: bool
    #: ``task->stack`` and ``task->mm`` when they were read with the rest (``None`` if not): a
    #: task's stack and system-call row need them, once per task of a dump.
    stack: int | None = None
    mm: int | None = None

    @property
    def task(self) -> drgn.Object:
        """``struct task_struct *`` of the task."""
        return drgn.Object(self.prog, _task_pointer_type(self.prog), self.address)

    @property
    def display_name(self) -> str:
        """``PID 123 labbug-writer [R] CPU1`` (the CPU only for tasks that were running)."""
        where = f" CPU{self.cpu}" if self.on_cpu else ""
        return f"PID {self.pid} {self.comm} [{self.state}]{where}"


def _task_pointer_type(prog: drgn.Program) -> drgn.Type:
    found: drgn.Type | None = prog.cache.get("vmcore_dap_task_pointer")
    if found is None:
        found = prog.cache["vmcore_dap_task_pointer"] = prog.pointer_type(prog.type("struct task_struct"))
    return found


def is_kernel_thread(task: drgn.Object) -> bool:
    """Whether ``task`` (``struct task_struct *``) is a kernel thread (:data:`PF_KTHREAD`)."""
    return bool(task.flags.value_() & PF_KTHREAD)


def thread_size(prog: drgn.Program) -> int:
    """``THREAD_SIZE``, a kernel stack's size: ``sizeof(union thread_union)``, else the
    architecture's default (cached per program)."""
    size: int | None = prog.cache.get("vmcore_dap_thread_size")
    if size is None:
        try:
            size = drgn.sizeof(prog.type("union thread_union"))
        except LookupError:
            size = arch_of(prog).default_thread_size
        prog.cache["vmcore_dap_thread_size"] = size
    return size


def running_tasks(prog: drgn.Program) -> dict[int, int]:
    """Map the address of each CPU's current task to that CPU (stopped CPUs included, as crash's
    ``ps`` marks their tasks ``>``)."""
    result: dict[int, int] = {}
    for cpu in dumped_cpus(prog):
        try:
            result[cpu_curr(prog, cpu).value_()] = cpu
        except drgn.FaultError:
            continue
    return result


def task_info(task: drgn.Object, running: dict[int, int], is_idle: bool = False) -> TaskInfo:
    """Describe one task.

    :param task: ``struct task_struct *``.
    :param running: :func:`running_tasks`.
    """
    address = task.value_()
    try:
        comm = escape_bytes(task.comm.string_())
    except drgn.FaultError:
        comm = "<unreadable>"
    try:
        state = task_state_letter(task)
    except (drgn.FaultError, LookupError):
        state = "?"
    try:
        cpu = task_cpu(task)
    except drgn.FaultError:
        cpu = -1
    try:
        flags = task.flags.value_()
    except drgn.FaultError:
        flags = 0
    on_cpu = address in running
    if on_cpu:
        cpu = running[address]
    return TaskInfo(
        prog=task.prog_,
        address=address,
        pid=task.pid.value_(),
        tgid=task.tgid.value_(),
        comm=comm,
        state=state,
        cpu=cpu,
        on_cpu=on_cpu,
        is_idle=is_idle,
        is_kernel_thread=bool(flags & PF_KTHREAD) or is_idle,
    )


#: ``struct`` codes of unsigned integers by size.
_UNSIGNED = {1: "B", 2: "H", 4: "I", 8: "Q"}
#: The integer fields of the block, in the order :attr:`_Layout.fields` unpacks them.
_INT_FIELDS = ("state", "exit_state", "flags", "pid", "tgid", "cpu", "stack", "mm")


@dataclass(frozen=True)
class _Layout:
    """Where the listed fields of ``struct task_struct`` are, relative to one block read per task.

    :param fields: unpacks :data:`_INT_FIELDS` (unsigned) from the block.
    :param bits: the kernel's task state bits, to name the state.
    """

    start: int
    size: int
    fields: struct.Struct
    order: tuple[int, ...]
    comm_offset: int
    comm_size: int
    bits: StateBits
    #: The listed fields' bytes within the block (offset, size): the integers in address order, then
    #: ``comm``; :attr:`packed` unpacks them once put end to end (:class:`BlockPlan`).
    slices: tuple[tuple[int, int], ...]
    packed: struct.Struct
    stack_offset: int
    #: :data:`_INT_FIELDS` in their order from the unpacked integers (:attr:`order` in C).
    pick: Callable[[Sequence[int]], tuple[int, ...]] = field(compare=False, repr=False)
    #: ``comm``'s bytes → its name, and ``__state | exit_state`` → its letter, for the tasks listed so
    #: far: 50,000 tasks hold a few hundred names and a handful of states, and looking one up costs
    #: less than making it (0.1 s of the listing at 50,910 tasks, 6 Dec). The names stop being
    #: remembered past :data:`_NAMES_KEPT`, for a dump where every task is named differently.
    names: dict[bytes, str] = field(default_factory=dict, compare=False, repr=False)
    letters: dict[int, str] = field(default_factory=dict, compare=False, repr=False)


#: The most ``comm`` names a :class:`_Layout` remembers (:attr:`_Layout.names`).
_NAMES_KEPT = 4096


class BlockSource(Protocol):
    """Another process reading ``task_struct`` blocks as :func:`block_plan` says."""

    def request(self, addresses: list[int]) -> list[int]:
        """Take a share of these tasks (in walk order); return the addresses taken (the last ones)."""
        ...

    def take_block(self, address: int) -> bytes | None:
        """The kept bytes of a task :meth:`request` took (waiting for them), or ``None``: read it
        yourself (its block was unreadable, or the other process failed)."""
        ...


def block_plan(prog: drgn.Program) -> BlockPlan | None:
    """The block another process reads of each task, or ``None`` where tasks are read member by
    member (no :class:`_Layout` for this kernel)."""
    layout = _layout(prog)
    if layout is None:
        return None
    kept = 0
    for offset, size in layout.slices:
        if offset == layout.stack_offset:
            return BlockPlan(layout.start, layout.size, layout.slices, kept)
        kept += size
    return None


def _layout(prog: drgn.Program) -> _Layout | None:
    """The block layout for this kernel, or ``None`` to read member by member (cached per program)."""
    if _LAYOUT_KEY in prog.cache:
        cached: _Layout | None = prog.cache[_LAYOUT_KEY]
        return cached
    layout: _Layout | None = None
    try:
        ttype = prog.type("struct task_struct")
        # task_struct.state became __state in v5.14; the CPU moved between task and thread_info.
        state = "__state" if ttype.has_member("__state") else "state"
        cpu = next(
            (m for m in ("cpu", "thread_info.cpu") if _has_member_path(ttype, m)),
            None,
        )
        if cpu is not None:
            names = {
                "state": state,
                "exit_state": "exit_state",
                "flags": "flags",
                "pid": "pid",
                "tgid": "tgid",
                "cpu": cpu,
                "comm": "comm",
                "stack": "stack",
                "mm": "mm",
            }
            where = {
                k: (drgn.offsetof(ttype, m), drgn.sizeof(_member_type(ttype, m))) for k, m in names.items()
            }
            start = min(o for o, _ in where.values())
            end = max(o + n for o, n in where.values())
            platform = prog.platform
            little = platform is None or bool(platform.flags & drgn.PlatformFlags.IS_LITTLE_ENDIAN)
            # One struct format over the integer fields in address order ("x" skips the gaps).
            by_offset = sorted(_INT_FIELDS, key=lambda k: where[k][0])
            code, at = "<" if little else ">", start
            packed = code
            for name in by_offset:
                offset, size = where[name]
                if offset < at or size not in _UNSIGNED:
                    raise ValueError(f"task_struct.{name} overlaps or has an odd size")
                code += f"{offset - at}x{_UNSIGNED[size]}"
                packed += _UNSIGNED[size]
                at = offset + size
            comm_offset, comm_size = where["comm"]
            layout = _Layout(
                start=start,
                size=end - start,
                fields=struct.Struct(code),
                order=tuple(by_offset.index(k) for k in _INT_FIELDS),
                comm_offset=comm_offset - start,
                comm_size=comm_size,
                bits=state_bits(prog),
                slices=tuple((where[k][0] - start, where[k][1]) for k in (*by_offset, "comm")),
                packed=struct.Struct(f"{packed}{comm_size}s"),
                stack_offset=where["stack"][0] - start,
                pick=operator.itemgetter(*(by_offset.index(k) for k in _INT_FIELDS)),
            )
    except (LookupError, ValueError, TypeError, drgn.FaultError):
        layout = None
    prog.cache[_LAYOUT_KEY] = layout
    return layout


def _has_member_path(ttype: drgn.Type, path: str) -> bool:
    try:
        _member_type(ttype, path)
    except LookupError:
        return False
    return True


def _member_type(ttype: drgn.Type, path: str) -> drgn.Type:
    current = ttype
    for name in path.split("."):
        current = current.member(name).type
    return current


def _fast_task_info(
    layout: _Layout, prog: drgn.Program, address: int, running: dict[int, int], is_idle: bool
) -> TaskInfo | None:
    """:func:`task_info` from one block read; ``None`` when the block is unreadable."""
    try:
        data = prog.read(address + layout.start, layout.size)
    except drgn.FaultError:
        return None
    values = layout.fields.unpack_from(data)
    comm = data[layout.comm_offset : layout.comm_offset + layout.comm_size]
    return _block_task_info(layout, prog, address, values, comm, running, is_idle)


def _kept_task_info(
    layout: _Layout, prog: drgn.Program, address: int, kept: bytes, running: dict[int, int]
) -> TaskInfo:
    """:func:`task_info` from the listed fields' bytes another process kept of the block
    (:class:`BlockPlan`)."""
    *values, comm = layout.packed.unpack(kept)
    return _block_task_info(layout, prog, address, values, comm, running, False)


def _block_task_info(
    layout: _Layout,
    prog: drgn.Program,
    address: int,
    values: Sequence[int],
    comm: bytes,
    running: dict[int, int],
    is_idle: bool,
) -> TaskInfo:
    """:func:`task_info` from the block's integers (address order) and ``comm``'s bytes.

    Runs once per task of the dump (50,000 times for a large one): the name and the state letter
    come from :attr:`_Layout.names` and :attr:`_Layout.letters` once seen.
    """
    state, exit_state, flags, pid, tgid, cpu, stack, mm = layout.pick(values)
    on_cpu = address in running
    name = layout.names.get(comm)
    if name is None:
        # Threads of one process share a name: one string each, not one per task (50,000 at huge).
        name = sys.intern(escape_bytes(comm.split(b"\0", 1)[0]))
        if len(layout.names) < _NAMES_KEPT:
            layout.names[comm] = name
    letter = layout.letters.get(state | exit_state)
    if letter is None:
        letter = layout.letters[state | exit_state] = state_letter(layout.bits, state, exit_state)
    return TaskInfo(
        prog,
        address,
        pid,
        tgid,
        name,
        letter,
        running[address] if on_cpu else cpu,
        on_cpu,
        is_idle,
        bool(flags & PF_KTHREAD) or is_idle,
        stack,
        mm,
    )


def _describe(
    layout: _Layout | None, prog: drgn.Program, address: int, running: dict[int, int], is_idle: bool = False
) -> TaskInfo:
    if layout is not None:
        info = _fast_task_info(layout, prog, address, running, is_idle)
        if info is not None:
            return info
    return task_info(drgn.Object(prog, _task_pointer_type(prog), address), running, is_idle=is_idle)


def _pid_limit(prog: drgn.Program) -> int:
    """More PID-table entries than a sane kernel can hold: ``pid_max`` (default 4,194,304)."""
    try:
        return int(prog["pid_max"].value_()) + 1
    except (LookupError, drgn.FaultError):
        return 1 << 22


def tasks_on_lists(prog: drgn.Program) -> Iterator[drgn.Object]:
    """Every task the kernel's own lists reach, for when the PID table cannot be read: processes on
    ``init_task.tasks`` and each one's threads on ``signal->thread_head`` (``thread_node``, Linux
    v3.14 and later), each list walked from both ends so an unreadable node hides only what lies
    between its neighbours. A task may come more than once."""
    leaders = prog["init_task"].tasks.address_of_()
    for link in ("next", "prev"):
        for leader in bounded_list_entries(leaders, "struct task_struct", "tasks", ListWalk(), link=link):
            yield leader
            try:
                threads = leader.signal.thread_head.address_of_()
            except drgn.FaultError:
                continue
            for thread_link in ("next", "prev"):
                yield from bounded_list_entries(
                    threads, "struct task_struct", "thread_node", ListWalk(), link=thread_link
                )


def unreadable_pid_table(prog: drgn.Program, address: int, before: int, found: int, lost: int) -> str:
    """Say that (and why) the PID table could not be read, and what the task lists recovered:
    not "corrupt", since the usual cause is a dump that left its pages out."""
    why = explain_unreadable(prog, address)
    lost_text = f"; {lost} more tasks on those lists are unreadable themselves" if lost else ""
    return (
        f"the kernel's PID table cannot be read at {address:#x}: {why}. Listed {before} tasks from the "
        f"PID table and {found} more from the kernel's task lists (init_task.tasks, each process's "
        f"threads){lost_text}; tasks reachable only through the PID table are missing"
    )


def _pid_table_tasks(prog: drgn.Program) -> Iterator[drgn.Object]:
    """Every task of the initial PID namespace's table (drgn's ``for_each_task``), as
    ``struct task_struct *`` (:func:`_pid_table_addresses`)."""
    pointer = _task_pointer_type(prog)
    for address in _pid_table_addresses(prog):
        yield drgn.Object(prog, pointer, address)


def _pid_table_addresses(prog: drgn.Program) -> Iterator[int]:
    """The address of every task of the initial PID namespace's table, reading each ``struct pid``'s
    first task link as one word (the listing makes no drgn object per task: 50,000 of them cost
    about 0.1 s).

    drgn's ``pid_task`` helper costs about 0.8 KB of memory a task that is never given back (40 MB
    for 50,000 tasks): a plain read of ``pid->tasks[PIDTYPE_PID].first`` gives the same task.
    """
    links = prog.type("struct pid").member("tasks").offset  # tasks[PIDTYPE_PID], PIDTYPE_PID = 0
    node = drgn.offsetof(prog.type("struct task_struct"), "pid_links")  # pid_links[PIDTYPE_PID]
    read_u64 = prog.read_u64
    for _nr, entry in idr_for_each(prog["init_pid_ns"].idr):
        first = read_u64(entry.value_() + links)
        if first:
            yield first - node


class TaskListing:
    """The tasks of a dump, listed in steps: the head at once, the PID hash walked on demand.

    :param first: ``struct task_struct *`` to put at the head of the list (the crashed task), or
        ``None``.
    :param problems: where to append what is wrong with the dump's PID table, if anything.

    :attr:`head` is known on construction: ``first``, then the task current on each other CPU (by
    CPU), then each CPU's idle task. :meth:`step` walks the PID hash a chunk at a time;
    :meth:`tasks` finishes the walk and returns the whole list, the head first and in the same
    order, so a task's position never changes once it is known.

    A new listing becomes the program's listing (:func:`listing_of`): what else needs a task by its
    stack asks it (:meth:`stack_owner`) instead of walking the tasks a second time.
    """

    def __init__(
        self, prog: drgn.Program, first: drgn.Object | None = None, problems: list[str] | None = None
    ) -> None:
        self.prog = prog
        self._problems = problems
        self._running = running_tasks(prog)
        self._layout = _layout(prog)
        self.head: list[TaskInfo] = []
        self._seen: set[int] = set()
        if first is not None:
            self._add_head(first, first.value_())
        for address, cpu in sorted(self._running.items(), key=lambda item: item[1]):
            if address != idle_task(prog, cpu).value_():
                self._add_head(drgn.Object(prog, "struct task_struct *", address), address)
        idle_addresses = set()
        for cpu in dumped_cpus(prog):
            idle = idle_task(prog, cpu)
            idle_addresses.add(idle.value_())
            self._add_head(idle, idle.value_(), is_idle=True)
        self._idle_addresses = frozenset(idle_addresses)
        self._walk = enumerate(_pid_table_addresses(prog))
        self._pages = mapped_dump_pages(prog)
        self._listed: set[int] = set()
        self._others: list[TaskInfo] = []
        self._limit = _pid_limit(prog)
        self._rest: list[TaskInfo] | None = None
        self._head_stacks: dict[int, TaskInfo] | None = None
        self._rest_stacks: dict[int, TaskInfo] | None = None
        #: How many tasks the PID table holds (each with its own PID), once the walk read all of it
        #: without a fault, a cycle or running past ``pid_max``; ``None`` until then, and for ever
        #: when it could not (drgn's ``for_each_task`` would not agree with it then).
        self.pid_table_tasks: int | None = None
        #: The CPUs' idle tasks that the PID table holds too (none in a sane kernel: PID 0 is not in
        #: it), so a count of "every idle task, then every other task of the table" can be made.
        self.pid_table_idle: frozenset[int] = frozenset()
        #: Called with the tasks each :meth:`step` adds after the head (e.g. to have their stacks read
        #: ahead on another process: :mod:`~vmcore_dap.dump.stacks.prefetch`).
        self.on_listed: Callable[[list[TaskInfo]], None] | None = None
        #: Another process reading part of the tasks' blocks (set after the first :meth:`step`, so
        #: the stop never waits for it to start), or ``None``.
        self.blocks: BlockSource | None = None
        prog.cache[_LISTING_KEY] = self

    def _add_head(self, task: drgn.Object, address: int, is_idle: bool = False) -> None:
        if address not in self._seen:
            self._seen.add(address)
            self.head.append(_describe(self._layout, self.prog, address, self._running, is_idle=is_idle))

    @property
    def done(self) -> bool:
        """Whether the PID hash has been walked to its end."""
        return self._rest is not None

    @property
    def listed(self) -> int:
        """How many tasks are known so far (the head included)."""
        return len(self.head) + len(self._others) if self._rest is None else len(self.head) + len(self._rest)

    def expected(self) -> int:
        """About how many tasks the whole list will hold: the kernel's ``nr_threads`` plus the idle
        tasks (for progress reports; the walk itself decides)."""
        try:
            return int(self.prog["nr_threads"].value_()) + sum(1 for t in self.head if t.is_idle)
        except (LookupError, drgn.FaultError):
            return self.listed

    def step(self, count: int) -> bool:
        """Walk up to ``count`` more entries of the PID hash; return whether the walk is done.

        The entries are walked :data:`_BATCH` at a time, then described in walk order; where
        :attr:`blocks` is set, it is asked for its share of each batch before the drgn thread reads
        the rest, and what it cannot give is read here as without it.
        """
        if self._rest is not None:
            return True
        problem = None
        faulted = False
        before = len(self._others)
        left = count
        ended = False
        try:
            while left > 0 and not ended and problem is None:
                walked: list[int] = []
                fault: drgn.FaultError | None = None
                try:
                    for _ in range(min(left, _BATCH)):
                        try:
                            number, address = next(self._walk)
                        except StopIteration:
                            ended = True
                            break
                        if address in self._listed:
                            problem = (
                                f"task {address:#x} appears twice (a cycle): stopped after {number} entries"
                            )
                            break
                        if number >= self._limit:
                            problem = f"more than pid_max ({self._limit - 1}) entries: stopped"
                            break
                        self._listed.add(address)
                        if address not in self._seen:
                            self._seen.add(address)
                            walked.append(address)
                except drgn.FaultError as exc:
                    fault = exc
                left -= _BATCH
                self._describe_walked(walked)
                if fault is not None:
                    raise fault
            if not ended and problem is None:
                self._report(before)
                return False
        except drgn.FaultError as exc:
            faulted = True
            self._list_from_task_lists(exc.address)
        self._report(before)
        if problem is None and not faulted:
            self.pid_table_tasks = len(self._listed)
            self.pid_table_idle = self._idle_addresses & self._listed
        if problem is not None and self._problems is not None:
            self._problems.append(
                f"the kernel's PID table is corrupt: {problem}; the thread list may be incomplete"
            )
        self._others.sort(key=lambda t: (t.pid, t.address))
        self._rest, self._others = self._others, []
        # Only the walk needs these (two sets of every task's address: MBs at 50,000 tasks).
        self._seen, self._listed, self._walk = set(), set(), enumerate(())
        return True

    def _describe_walked(self, walked: list[int]) -> None:
        """Describe newly walked tasks (their addresses) in walk order, :attr:`blocks`' share from
        what it sends.

        A task that cannot be described raises :class:`drgn.FaultError` as the walk would (the
        table is then left for the task lists): the tasks walked after it are forgotten again so
        that those lists can still name them.
        """
        layout, pages, blocks = self._layout, self._pages, self.blocks
        prog, running = self.prog, self._running
        taken: set[int] = set()
        if blocks is not None and layout is not None and walked:
            taken = set(blocks.request(walked))
        others = self._others
        done = 0
        try:
            for address in walked:
                info = None
                if address in taken:
                    kept = blocks.take_block(address) if blocks is not None else None
                    if kept is not None and layout is not None:
                        info = _kept_task_info(layout, prog, address, kept, running)
                if info is None:
                    info = _describe(layout, prog, address, running)
                others.append(info)
                done += 1
        except drgn.FaultError:
            for address in walked[done + 1 :]:
                self._seen.discard(address)
            raise
        finally:
            if pages is not None:
                pages.note_reads(done)  # about one read a task, counted once a batch

    def _report(self, before: int) -> None:
        if self.on_listed is not None and len(self._others) > before:
            self.on_listed(self._others[before:])

    def _list_from_task_lists(self, address: int) -> None:
        """The PID table cannot be read at ``address`` (a lossy dump left its page out): list what
        the kernel's own task lists reach instead, and say so (:func:`unreadable_pid_table`)."""
        before = len(self._others)
        lost = 0
        for task in tasks_on_lists(self.prog):
            task_address = task.value_()
            if task_address in self._seen:
                continue
            self._seen.add(task_address)
            try:
                self._others.append(_describe(self._layout, self.prog, task_address, self._running))
            except drgn.FaultError:
                lost += 1
        if self._problems is not None:
            self._problems.append(
                unreadable_pid_table(self.prog, address, before, len(self._others) - before, lost)
            )

    def rest(self) -> list[TaskInfo]:
        """The tasks after the head, by PID (the walk is finished first)."""
        while not self.step(1 << 30):
            pass
        assert self._rest is not None
        return self._rest

    def tasks(self) -> list[TaskInfo]:
        """Every task: the head, then the rest by PID (the walk is finished first)."""
        return self.head + self.rest()

    def stack_owner(self, stack: int, whole: bool = True) -> TaskInfo | None:
        """The task whose kernel stack starts at ``stack`` (its ``task->stack``), if any.

        The head is asked first: the crashed task and the ones the CPUs were running are the stacks
        a stopped kernel's frames point into, and knowing them costs nothing more. Any other stack
        needs every task: the walk is finished first (a debugger lists them all anyway), then
        indexed once.

        :param whole: ``False`` to look in the head only (never walk).
        """
        if self._head_stacks is None:
            self._head_stacks = _by_stack(self.head)
        found = self._head_stacks.get(stack)
        if found is not None or not whole:
            return found
        if self._rest_stacks is None:
            self._rest_stacks = _by_stack(self.rest())
        return self._rest_stacks.get(stack)


def _by_stack(tasks: list[TaskInfo]) -> dict[int, TaskInfo]:
    """``task->stack`` → task (read now for a task listed member by member; skipped if unreadable)."""
    result: dict[int, TaskInfo] = {}
    for info in tasks:
        stack = info.stack
        if stack is None:
            try:
                stack = info.task.stack.value_()
            except drgn.FaultError:
                continue
        result.setdefault(stack, info)
    return result


def listing_of(prog: drgn.Program) -> TaskListing:
    """The program's task listing: the last one made for it (a debug session's, which the session
    finishes after the stop), else a new one without a task to put first."""
    listing = program_listing(prog)
    return listing if listing is not None else TaskListing(prog)


def program_listing(prog: drgn.Program) -> TaskListing | None:
    """The program's task listing if one was made (:func:`listing_of` without making one)."""
    listing: TaskListing | None = prog.cache.get(_LISTING_KEY)
    return listing


def list_tasks(
    prog: drgn.Program, first: drgn.Object | None = None, problems: list[str] | None = None
) -> list[TaskInfo]:
    """List every task: ``first`` (the crashed task), the tasks other CPUs were running, each CPU's
    idle task, then the rest by PID (:class:`TaskListing` in one go).

    :param first: ``struct task_struct *`` to put at the head of the list, or ``None``.
    :param problems: where to append what is wrong with the dump's PID table, if anything.
    """
    return TaskListing(prog, first, problems).tasks()
