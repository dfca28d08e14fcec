"""Every task's stack, for every view that shows one: unwound once per distinct stack, normalised once.

The Call Stack (``stackTrace``), the Kernel view's groups and CPUs, the crash report, "tasks in this
function", ``loadedSources`` and the language server's code lenses, hovers and diagnostics all ask one
:class:`StackService`, so they cannot disagree about what is on a task's stack.

* A task's **presented stack** (:meth:`StackService.stack`) is what the Call Stack shows
  (:func:`~.frames.present_trace`). A sleeping task whose chain of return addresses
  (:mod:`.signature`) is that of a task already unwound is presented from that task's rows with its
  own bottom row
  (:func:`~.frames.share_stack`); drgn unwinds it only when one of its frames is inspected
  (:meth:`StackService.frame`), so a frame always carries the task's own drgn frame and registers.
* Views that only need *which* functions a task is in (grouping, the function index) read the rows of
  the task whose unwinding stands for it (its **basis**: its own presented stack, or the one its
  chain matched), so they cost one unwinding per distinct stack and, per task, one read of its stack
  and a walk along its return addresses. Per task the service keeps only which task stands for it.
* The one normalisation (:func:`~.normalize.normalize_rows`) turns a basis into the frames crash's
  ``bt`` would list; the one name rule (:func:`~.normalize.base_function_name`) turns a row's function
  into the name a function is known by in the source (``f.isra.0`` is ``f``).

Tasks are numbered 1, 2, … in the order given (the crashed task first, as
:func:`~vmcore_dap.dump.kernel.tasks.list_tasks` puts it): those numbers are the DAP thread ids, and
the language server numbers the same way. A service may start with the head of a
:class:`~vmcore_dap.dump.kernel.tasks.TaskListing` and be given the rest later
(:meth:`StackService.add_tasks`): the numbers are the same either way. Use a service from one
thread (drgn's ``Program`` is not meant for concurrent use); it holds plain data that other threads
may read once built.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import drgn

from vmcore_dap.dump.arch import arch_of
from vmcore_dap.dump.kernel.tasks import TaskInfo
from vmcore_dap.dump.opening.mapped_dump import mapped_dump_pages
from vmcore_dap.dump.stacks.frames import NO_KERNEL_STACK, StackFrameInfo, TaskStack, share_stack, unwind_task
from vmcore_dap.dump.stacks.groups import NO_STACK, UNWIND_FAILED, USER_MODE, StackGroups, group_by_stack
from vmcore_dap.dump.stacks.normalize import Frame, base_function_name, normalize_rows
from vmcore_dap.dump.stacks.prefetch import StackPrefetch, WalkedChain
from vmcore_dap.dump.stacks.signature import ChainTable, StackReader, StackWords, UsedStack

__all__ = ["CHECK_EVERY", "CheckCallback", "FrameRef", "FunctionIndex", "StackService"]

log = logging.getLogger(__name__)

#: How many tasks are unwound between two calls of a ``check`` callback.
CHECK_EVERY = 64

#: ``check(done, total)``: report progress; raise to cancel.
CheckCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class FrameRef:
    """One row of a task's stack together with the task's own drgn objects for it.

    :param key: the task's number (DAP thread id).
    :param index: the row's index in the task's presented stack.
    :param trace: the task's own drgn trace (``None`` when it could not be unwound).
    :param row: the row; its ``frame`` and ``pt_regs`` are the task's own.
    """

    key: int
    task: drgn.Object
    index: int
    trace: drgn.StackTrace | None
    row: StackFrameInfo

    @property
    def frame(self) -> drgn.StackFrame | None:
        """drgn's frame of the row (``None`` for a label)."""
        return self.row.frame

    @property
    def pt_regs(self) -> drgn.Object | None:
        """The saved ``struct pt_regs`` of an interrupt, exception or system-call label."""
        return self.row.pt_regs


@dataclass
class FunctionIndex:
    """Which tasks have which function on their stack (every row of the Call Stack, inline ones too).

    :param by_function: function name (:func:`~.normalize.base_function_name`) → task keys, each
        task once, in task order.
    :param by_file: DWARF file name → function name → task keys: where each function's rows are.
    :param seconds: how long building it took (unwinding included).
    """

    by_function: dict[str, list[int]] = field(default_factory=dict)
    by_file: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    seconds: float = 0.0

    def tasks_in(self, function: str) -> list[int]:
        """The keys of the tasks with ``function`` on their stack (empty when none)."""
        return self.by_function.get(base_function_name(function), [])


class _Representatives:
    """Task key → the key of the task whose unwinding stands for its stack, ``None`` until found: one
    ``array`` of 4 bytes a task, not a dict of 50,000 entries (about 4 MB less at huge, where the
    grouping finds one for every task)."""

    def __init__(self) -> None:
        self._keys = array("I")

    def get(self, key: int) -> int | None:
        keys = self._keys
        return (keys[key] or None) if key < len(keys) else None

    def __setitem__(self, key: int, representative: int) -> None:
        keys = self._keys
        if key >= len(keys):
            keys.frombytes(bytes(keys.itemsize * (max(key + 1, 2 * len(keys)) - len(keys))))
        keys[key] = representative


@dataclass
class _Basis:
    """What every task whose stack a presented stack stands for shares (computed once per stack)."""

    normalized: tuple[Frame, ...]
    functions: tuple[str, ...]  # base names of the code rows, each once, innermost first
    places: tuple[tuple[str, str], ...]  # (DWARF file, function) of the code rows, each once


class StackService:
    """The stacks of a dump's tasks (see the module docstring).

    :param tasks: the tasks, in display order (numbered from 1).
    :param crashed: the address of the task that panicked, if any: it is always unwound itself (its
        stack starts in the panic path).
    """

    def __init__(self, prog: drgn.Program, tasks: Sequence[TaskInfo], crashed: int | None = None) -> None:
        self.prog = prog
        #: key → task, in display order.
        self.tasks: dict[int, TaskInfo] = dict(enumerate(tasks, start=1))
        self._by_address = {info.address: key for key, info in self.tasks.items()}
        self.crashed_key: int | None = self._by_address.get(crashed) if crashed is not None else None
        self._stacks: dict[int, TaskStack] = {}
        self._own: dict[int, TaskStack] = {}
        self._chains: ChainTable[int] = ChainTable(prog)
        self._reader = StackReader(prog)
        self._pages = mapped_dump_pages(prog)
        #: task key → the key of the unwound task whose stack it shares.
        self._representative_of = _Representatives()
        self._bases: dict[int, _Basis] = {}  # id(presented stack) → what its tasks share
        self._index: FunctionIndex | None = None
        self._members_of: dict[int, tuple[_Basis, list[int]]] | None = None
        #: Tasks already put under their basis (keys 1 … ``_matched``), for a :meth:`match_stacks`
        #: begun before every task was asked for.
        self._matched = 0
        self._partial: dict[int, tuple[_Basis, list[int]]] = {}
        self._prefetch: StackPrefetch | None = None
        self._groups: StackGroups | None = None
        self._names: dict[str, str] = {}
        #: How many tasks drgn unwound so far (the rest shared a stack signature).
        self.unwound = 0

    @property
    def prefetch(self) -> StackPrefetch | None:
        """Stacks read ahead on a second process, for matching (closed once every task is matched).
        It is given :attr:`chains` as the matching learns it, and walks the stacks there with it."""
        return self._prefetch

    @prefetch.setter
    def prefetch(self, prefetch: StackPrefetch | None) -> None:
        if prefetch is not None:
            prefetch.chains = self._chains
        self._prefetch = prefetch

    # -- tasks --------------------------------------------------------------------------------------

    def add_tasks(self, tasks: Sequence[TaskInfo]) -> None:
        """Number ``tasks`` after those already known (the rest of a listing finished later).

        :raises RuntimeError: once a view of every task (groups, the function index) was built: it
            would not include them.
        """
        if self._members_of is not None or self._groups is not None or self._index is not None:
            raise RuntimeError("tasks added after every task's stacks were read")
        start = len(self.tasks) + 1
        for key, info in enumerate(tasks, start=start):
            self.tasks[key] = info
            self._by_address[info.address] = key

    def match_stacks(self, count: int) -> bool:
        """Put up to ``count`` more tasks under the basis their stack shares (in task order), as
        the grouping and the function index do on first use; return whether every task is done.

        A step of work no request waits for: a debugger calls it between requests right after the
        stop, so a Kernel view or function index asked for a moment later finds the stacks read
        (reading 50,000 stacks of a compressed dump takes seconds). Whatever asks for every task's
        stack later continues from where the steps stopped; the answers are the same either way.
        """
        if self._members_of is not None:
            return True
        total = len(self.tasks)
        stop = min(self._matched + count, total)
        partial = self._partial
        for key in range(self._matched + 1, stop + 1):
            basis = self._basis(key)
            partial.setdefault(id(basis), (basis, []))[1].append(key)
            self._matched = key
        if self._matched < total:
            return False
        self._members_of, self._partial = partial, {}
        if self._prefetch is not None:
            self._prefetch.close()
            self._prefetch = None
        return True

    @property
    def matched(self) -> int:
        """How many tasks (from key 1 on) are already under their basis (:meth:`match_stacks`)."""
        return len(self.tasks) if self._members_of is not None else self._matched

    def representative(self, key: int) -> int | None:
        """The key of the unwound task whose stack task ``key``'s stack was found to share (its chain
        of return addresses), or ``None`` when it is unwound itself or not looked at yet."""
        found = self._representative_of.get(key)
        return found if found != key else None

    @property
    def chains(self) -> ChainTable[int]:
        """What the service learnt about stacks from the tasks it unwound (:mod:`.signature`)."""
        return self._chains

    def key_of(self, address: int) -> int | None:
        """The key of the task at ``address`` (``struct task_struct *``), if it is listed."""
        return self._by_address.get(address)

    def task(self, key: int) -> TaskInfo:
        """The task of ``key``.

        :raises KeyError: for a key that is not a task of this service.
        """
        return self.tasks[key]

    # -- the Call Stack -------------------------------------------------------------------------------

    def stack(self, key: int) -> TaskStack:
        """The presented stack of task ``key``: a matching sleeping task's rows with this task's own
        bottom row (made anew each time: a list and one row, not kept for 50,000 tasks), else its own
        unwinding (kept)."""
        stack = self._stacks.get(key)
        if stack is not None:
            return stack
        info = self.tasks[key]
        words = None
        representative = self._representative_of.get(key)
        if representative is None:
            words = self._words(key)
            representative = self._chains.find(words) if words is not None else None
        if representative is not None:
            shared = share_stack(self.prog, self._stacks[representative], info.task, info, words)
            if shared is not None:
                self._representative_of[key] = representative
                return shared
        return self._unwind_own(key, words)

    def own_stack(self, key: int) -> TaskStack:
        """The task's own unwinding: its presented stack, unwound again if that was shared."""
        stack = self.stack(key)
        if not stack.shared:
            return stack
        own = self._own.get(key)
        if own is None:
            own = self._own[key] = self._unwind(self.tasks[key])
        return own

    def frame(self, key: int, index: int) -> FrameRef:
        """Row ``index`` of task ``key``'s presented stack, with the task's own drgn frame.

        :raises IndexError: when the task's own unwinding has no such row (a shared stack that the
            task's own unwinding does not reproduce).
        """
        stack = self.own_stack(key)
        if index >= len(stack.frames):
            raise IndexError(f"row {index} is not in the own unwinding of task {key}")
        return FrameRef(key, self.tasks[key].task, index, stack.trace, stack.frames[index])

    # -- what views derive from the stacks ------------------------------------------------------------

    def normalized(self, key: int) -> tuple[Frame, ...]:
        """Task ``key``'s stack by the one normalisation (what crash's ``bt`` lists): a single
        :data:`~.groups.USER_MODE`, :data:`~.groups.NO_STACK` or :data:`~.groups.UNWIND_FAILED`
        frame when it has no kernel frames."""
        return self._basis(key).normalized

    def functions(self, key: int) -> tuple[str, ...]:
        """The functions on task ``key``'s stack (every code row, inline ones too), each once."""
        return self._basis(key).functions

    def code_rows(self, key: int) -> list[StackFrameInfo]:
        """The code rows of task ``key``'s stack (no labels), without drgn objects needed."""
        return [row for row in self._basis_stack(key).frames if row.kind == "code"]

    def groups(self, check: CheckCallback | None = None, *, exact: bool = False) -> StackGroups:
        """Every task grouped by its normalised stack, biggest group first.

        :param check: called with ``(done, total)`` every :data:`CHECK_EVERY` tasks; may raise to stop.
        :param exact: unwind every task on its own instead of once per stack signature (not cached;
            the tests compare both ways).
        """
        if self._groups is not None and not exact:
            return self._groups
        start = time.monotonic()
        unwound_before = self.unwound
        total = len(self.tasks)
        stacks = []
        if exact:
            for done, (key, info) in enumerate(self.tasks.items()):
                if check is not None and done % CHECK_EVERY == 0:
                    check(done, total)
                stacks.append((key, info, _normalized(self._unwind(info), arch_of(self.prog).stack_roots)))
            if check is not None:
                check(total, total)
        else:
            for basis, keys in self._members(check).values():
                stacks += [(key, self.tasks[key], basis.normalized) for key in keys]
            stacks.sort(key=lambda item: item[0])
        result = StackGroups(
            group_by_stack(stacks),
            task_count=total,
            seconds=time.monotonic() - start,
            unwound=self.unwound - unwound_before if exact else self.unwound,
        )
        if not exact:
            self._groups = result
        return result

    def function_index(self, check: CheckCallback | None = None) -> FunctionIndex:
        """Which tasks have which function on their stack (built on first use, then kept).

        :param check: as for :meth:`groups`.
        """
        if self._index is not None:
            return self._index
        start = time.monotonic()
        index = FunctionIndex()
        for basis, keys in self._members(check).values():
            for function in basis.functions:
                index.by_function.setdefault(function, []).extend(keys)
            for file, function in basis.places:
                index.by_file.setdefault(file, {}).setdefault(function, []).extend(keys)
        for keys in index.by_function.values():
            keys.sort()
        for functions in index.by_file.values():
            for keys in functions.values():
                keys.sort()
        index.seconds = time.monotonic() - start
        log.info(
            "function index of %d tasks in %.2fs (%d unwound)", len(self.tasks), index.seconds, self.unwound
        )
        self._index = index
        return index

    def tasks_in(self, function: str) -> list[int]:
        """The keys of the tasks with ``function`` (any of its names: ``f.isra.0`` is ``f``) on their
        stack, in task order."""
        return self.function_index().tasks_in(function)

    def distinct_stacks(self) -> Iterator[TaskStack]:
        """One presented stack per distinct stack of the dump (what the function index read)."""
        self.function_index()
        seen: set[int] = set()
        for key in self.tasks:
            stack = self._basis_stack(key)
            if id(stack) not in seen:
                seen.add(id(stack))
                yield stack

    def base_name(self, function: str) -> str:
        """:func:`~.normalize.base_function_name`, remembered (it runs for every row)."""
        name = self._names.get(function)
        if name is None:
            name = self._names[function] = base_function_name(function)
        return name

    # -- internals ------------------------------------------------------------------------------------

    def _members(self, check: CheckCallback | None) -> dict[int, tuple[_Basis, list[int]]]:
        """Every task under the basis its stack shares, in task order: ``id(basis stack)`` →
        (basis, keys). Built once; what grouping and the function index read per task."""
        if self._members_of is None:
            total = len(self.tasks)
            # Keys are 1 … total in task order (:meth:`add_tasks`): go on from what
            # :meth:`match_stacks` already did, a chunk between two checks.
            while True:
                if check is not None:
                    check(self._matched, total)
                if self.match_stacks(CHECK_EVERY - self._matched % CHECK_EVERY):
                    break
            if check is not None:
                check(total, total)
        assert self._members_of is not None
        return self._members_of

    def _unwind(self, info: TaskInfo) -> TaskStack:
        self.unwound += 1
        return unwind_task(self.prog, info.task)

    def _unwind_own(self, key: int, words: UsedStack | None) -> TaskStack:
        """Unwind task ``key`` itself, keep its presented stack, and teach the chain table from it.

        :param words: its stack, when already read.
        """
        stack = self._unwind(self.tasks[key])
        self._stacks[key] = stack
        if words is None:
            words = self._words(key)
        if words is not None:
            self._chains.register(words, stack.trace, key)
        return stack

    def _words(self, key: int) -> StackWords | None:
        """Task ``key``'s used stack; ``None`` for tasks always unwound themselves (on a CPU, the
        crashed task) or whose stack cannot be read."""
        info = self.tasks[key]
        if info.on_cpu or key == self.crashed_key:
            return None
        if self._pages is not None:
            self._pages.note_reads()
        if info.stack is None:  # listed member by member: read task->stack through drgn
            return self._reader.read(info.task)
        return self._reader.read(info.address, info.stack)

    def _basis_stack(self, key: int) -> TaskStack:
        """The presented stack whose rows (bottom label aside) are task ``key``'s rows."""
        stack = self._stacks.get(key)
        if stack is not None:
            return stack
        representative = self._representative_of.get(key)
        if representative is None:
            words = self._matching_words(key)
            if isinstance(words, WalkedChain):
                # Walked on the second process with a table sent from here: a chain registered
                # here, followed by this task's own stack words (:meth:`StackPrefetch.take`).
                representative = self._chains.value_at(words.registered)
            else:
                representative = self._chains.find(words) if words is not None else None
                if representative is None:
                    return self._unwind_own(key, words)
            self._representative_of[key] = representative
        return self._stacks[representative]

    def _matching_words(self, key: int) -> UsedStack | WalkedChain | None:
        """Task ``key``'s used stack for matching only: read ahead by :attr:`prefetch` when it was
        (its kernel-image words only, or the chain they follow), else read here (:meth:`_words`)."""
        if self._prefetch is not None:
            info = self.tasks[key]
            if not info.on_cpu and key != self.crashed_key:
                words = self._prefetch.take(info.address)
                if words is not False:
                    return words
        return self._words(key)

    def _basis(self, key: int) -> _Basis:
        stack = self._basis_stack(key)
        basis = self._bases.get(id(stack))
        if basis is None:
            code = [row for row in stack.frames if row.kind == "code"]
            functions = tuple(dict.fromkeys(self.base_name(row.function or row.name) for row in code))
            places = tuple(
                dict.fromkeys(
                    (row.source_file, self.base_name(row.function or row.name))
                    for row in code
                    if row.source_file
                )
            )
            normalized = _normalized(stack, arch_of(self.prog).stack_roots)
            basis = self._bases[id(stack)] = _Basis(normalized, functions, places)
        return basis


def _normalized(stack: TaskStack, roots: frozenset[str]) -> tuple[Frame, ...]:
    frames = tuple(normalize_rows(stack.frames, roots))
    if frames:
        return frames
    if stack.error == NO_KERNEL_STACK:
        return (Frame(NO_STACK),)
    return (Frame(USER_MODE if stack.trace is not None else UNWIND_FAILED),)
