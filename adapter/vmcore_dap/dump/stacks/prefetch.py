"""Sleeping tasks' used stacks read on a second process while the drgn thread lists the tasks.

At 50,000 tasks, matching every task's stack (:mod:`.signature`) costs about 20 µs a task in reads
alone: ``thread.sp`` and the used stack, each a page of the dump the drgn thread has not read yet,
which a compressed kdump must decompress (zlib). drgn's ``Program.read`` holds the GIL, so a thread
cannot overlap that work; a second process can. :class:`StackPrefetch` starts one (``python -m
vmcore_dap.dump.stacks.prefetch_child <vmcore>``, :mod:`.prefetch_child`, which starts on drgn alone)
with a drgn ``Program`` of its own on the same file — no debug info, only the dump's own address
translation, opened in about a millisecond — and hands it
each task as the listing names it (:meth:`StackPrefetch.feed`: address and ``task->stack``). It sends
back, per task, the saved stack pointer, the used stack's length and only the words of the used
stack at or above the kernel image's start (about 19 of 170 words), with their slots. The answers
wait there and are sent in the order the tasks were, :data:`_WINDOW` beyond the last one the
grouping took (the adapter keeps a window, not 7 MB at 50,000 tasks), into one blob.

The grouping learns a :class:`~.signature.ChainTable` as it goes (the first few thousand tasks of a
dump hold nearly every distinct stack), and sends it along when it asks for the next window
(:attr:`StackPrefetch.chains`): the process then walks each stack there before sending it, and sends
only the number of the chain it found (:class:`WalkedChain`), or the words where it found none. A
walk with a table sent earlier finds a chain the adapter registered, followed by this task's own
words at the same places: the premise of :mod:`.signature` (not a different answer from the walk the
adapter would make, save where the newer table tries more frame sizes first; the groups are the same,
``tests/e2e/test_stack_prefetch.py``). The drgn thread then does a lookup per task instead of
unpacking the words and walking them (grouping CPU at 50,910 tasks 0.69–0.75 → 0.43 s, 6 Dec).

A chain walk over those words is the walk over the whole stack: a word below the kernel image ends
the walk either way, and every word the chain table registers or looks up (return addresses, frame
ends, entries) lies in the kernel image. So :meth:`StackPrefetch.take` gives a task's
:class:`~.signature.KernelWords` (every other word reads zero), for matching only (the grouping and
the function index): a ``stackTrace`` reads the task's own stack, whose top holds the user registers
of its bottom row.

The same process can also read part of the listing's ``task_struct`` blocks
(:meth:`StackPrefetch.request`, the :class:`~vmcore_dap.dump.kernel.tasks.BlockSource` of the
listing): the last tasks of each batch the listing walks, so that the drgn thread reads the first
ones meanwhile and finds the rest answered. It keeps only the listed fields' bytes of each block
(:class:`~vmcore_dap.dump.kernel.block_plan.BlockPlan`, about 70 of 2,972 bytes), sends them, then reads
that task's stack as above. By default it does not: the listing is the critical path (the Kernel
view's summary waits for it; the stacks are needed only after it), and a block asked for is read
only after every stack sent before it, so the listing waited (:attr:`StackPrefetch.fixed_share`;
:meth:`StackPrefetch.share` can tune it from the lag instead; bench/RESULTS.md, "the listing kept
on the drgn thread").

Anything that goes wrong on the second process (it cannot start, read, or dies) only means the drgn
thread reads the blocks and stacks itself, as without it.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, NamedTuple

import drgn

from vmcore_dap.dump.arch import arch_of
from vmcore_dap.dump.kernel.block_plan import BlockPlan
from vmcore_dap.dump.kernel.tasks import block_plan, thread_size
from vmcore_dap.dump.stacks.idle_cpus import IdleMeter
from vmcore_dap.dump.stacks.prefetch_child import (
    _BLOCK,
    _BLOCK_HEAD,
    _CHAIN,
    _CONTROL,
    _CONTROL_HEAD,
    _COUNT,
    _HEAD,
    _INDEX,
    _KIND,
    _LOW_WORD,
    _NO_BLOCK,
    _WINDOW,
    _WORD,
    _kernel_words,
    _low_words,
    _plan_argument,
)
from vmcore_dap.dump.stacks.signature import ChainTable, KernelWords, saved_sp_offset

__all__ = ["FREE_CPU", "MAX_SHARE", "PREFETCH_ENV", "StackPrefetch", "WalkedChain", "start_prefetch"]

log = logging.getLogger(__name__)

#: How many windows ahead the process is asked for once the table stopped changing.
_STEADY_AHEAD = 8
#: Places taken between two tables sent while the table keeps changing (the first few thousand tasks
#: of a dump: kernel threads with stacks of their own).
_TABLE_EVERY = 256
#: The most of a listing batch the second process is given the blocks of (:meth:`StackPrefetch.
#: request`), and only while it keeps up with the stacks: it reads a block and a stack in about
#: 40 µs a task, the drgn thread a block and describes it in about 24 µs. A fixed 3/8 made the
#: listing wait for it on two free CPUs (summary 2.3 s against 1.3 s at huge, 6 Dec 02:10): the
#: listing is on the Kernel view's critical path, the stacks only after it. The share can be tuned
#: at run time from how far the second process lags (:meth:`StackPrefetch.share`: none while more
#: than a batch of stacks is unanswered), but even so the listing waited, so by default none is
#: handed over (:attr:`StackPrefetch.fixed_share` 0.0).
MAX_SHARE = 3 / 8
#: Seconds :meth:`StackPrefetch.take` waits without any answer before it stops using the process.
_PATIENCE = 10.0
#: Bytes each pipe holds, and the most taken from the answers' pipe at once.
_PIPE_SIZE = 1 << 20
#: Seconds between two reads of the answers while nobody waits for one.
_POLL = 0.05
#: Every how many answers taken in order the ones before are let go (:meth:`StackPrefetch.take`).
_DROP_EVERY = 1024


#: ``1``: read stacks ahead on a second process where stacks are walked; ``0``: never; unset or
#: anything else: where a CPU was spare while the dump was opened (:data:`FREE_CPU`). With a CPU of
#: its own it takes the Kernel view's first render at huge from 3.4–4.0 s to 2.3–2.6 s (6 Dec
#: 05:24, both CPUs free); where every CPU is busy it only takes time from the drgn thread (at load
#: 5 on 2 CPUs the listing took 2.7–3.8 s of wall time with it, 1.8–2.5 s without).
PREFETCH_ENV = "VMCORE_DAP_PREFETCH"
#: How many CPUs must have been spare, on average, while the dump was opened (all, less what other
#: processes used, less one for the adapter: :class:`~.idle_cpus.IdleMeter`) for the second process
#: to start on its own. A two-CPU machine with nothing else running shows 0.96–1.00; one where
#: another process keeps a CPU busy about 0.
FREE_CPU = 0.75


class WalkedChain(NamedTuple):
    """A task's stack as the second process walked it with a table sent from here: it follows the
    chain the table registered ``registered``-th (:meth:`~.signature.ChainTable.value_at`)."""

    registered: int


def start_prefetch(prog: drgn.Program, vmcore: Path, meter: IdleMeter | None = None) -> StackPrefetch | None:
    """A second process reading the stacks of ``prog`` (opened on ``vmcore``), or ``None``: where
    the stacks are not matched by walking them (``Arch.stack_signatures``: arm64), where
    :data:`PREFETCH_ENV` is ``0``, where it is unset and ``meter`` (running since the dump began
    to open; none: not measured) saw less than :data:`FREE_CPU` spare, or when the process cannot
    be started."""
    arch = arch_of(prog)
    setting = os.environ.get(PREFETCH_ENV)
    if not arch.stack_signatures or setting == "0":
        return None
    if setting != "1":
        spare = meter.spare_cpus() if meter is not None else 0.0
        if spare < FREE_CPU:
            log.info("stack prefetch: off (%.2f CPUs spare while the dump was opened)", spare)
            return None
        log.info("stack prefetch: %.2f CPUs spare while the dump was opened", spare)
    try:
        return StackPrefetch(
            vmcore, saved_sp_offset(prog), thread_size(prog), arch.kernel_image_start, block_plan(prog)
        )
    except (OSError, LookupError) as exc:
        log.warning("stack prefetch: cannot start the second process: %s", exc)
        return None


class StackPrefetch:
    """The second process and what it has sent back (see the module docstring).

    Only the drgn thread calls :meth:`feed`, :meth:`take` and :meth:`close`. It writes the tasks to
    the process itself, without blocking (the pipe holds 1 MiB: 65,000 tasks); one thread reads the
    answers, every :data:`_POLL` s or at once when :meth:`take` waits, so that it takes the GIL from
    the drgn thread a few times a second rather than once per batch.

    :param vmcore: the dump file the program was opened on.
    :param sp_offset: ``offsetof(struct task_struct, thread.sp)``.
    :param stack_size: ``THREAD_SIZE``.
    :param kernel_start: the kernel image's lowest address (``Arch.kernel_image_start``).
    :param plan: what to read of a task's block for the listing (``None``: no blocks).
    """

    def __init__(
        self, vmcore: Path, sp_offset: int, stack_size: int, kernel_start: int, plan: BlockPlan | None = None
    ) -> None:
        self._lock = threading.Condition()
        #: The stack answers, laid end to end in the order the tasks were sent (the process answers
        #: in that order), and where each starts: one blob and an array, not a ``bytes`` object and
        #: a dict entry per task (about 8 MiB less at 50,000 tasks, most of them answered before the
        #: grouping takes the first).
        self._answers = bytearray()
        self._starts = array("I")
        #: How far :meth:`_parse` has indexed :attr:`_answers`; how many bytes were let go from
        #: its front (:attr:`_starts` counts from before them).
        self._parsed = 0
        self._dropped = 0
        self._in_order = True
        self._blocks: dict[int, bytes | None] = {}
        #: Tasks sent whose answer :meth:`take` has not taken, and every task in the order sent
        #: (an answer's place; :meth:`take` asks in nearly that order: :attr:`_next` is where it
        #: looks first). Not a dict of places: 4 MiB more at 50,000 tasks, over 0.8× crash's peak.
        self._fed: set[int] = set()
        self._order = array("Q")
        self._next = 0
        self._requested: set[int] = set()
        self._plan = plan
        #: How each word of a stack answer is sent (:func:`_low_words`).
        self._word = _LOW_WORD if _low_words(kernel_start) else _WORD
        #: How many of the listing's blocks this process has given (:meth:`take_block`).
        self.blocks_read = 0
        #: The share of each listing batch to hand over; ``None``: tuned from the lag (:meth:`share`).
        #: 0.0 by default: with both CPUs free the listing still waited for the blocks, which the
        #: process reads after every stack sent before them (summary 2.4–2.8 s tuned, 1.6 s with
        #: none; bench/RESULTS.md, "the listing kept on the drgn thread").
        self.fixed_share: float | None = 0.0
        #: How many tasks were sent (each gets one stack answer, in the order sent).
        self._asked = 0
        #: The table the matching learns (set by the stack service): sent to the process with each
        #: window asked for, so that it walks the stacks there (:meth:`take` gives a
        #: :class:`WalkedChain`); ``None``: it sends the words.
        self.chains: ChainTable[int] | None = None
        #: Up to which place the process was asked to answer, the table version sent last, and
        #: the place taken when it was.
        self._window_end = _WINDOW
        self._table_version = -1
        self._table_place = 0
        #: The table version seen last, and the place taken when it was first seen.
        self._seen_version = -1
        self._changed_place = 0
        self._unsent = bytearray()
        self._alive = True
        self._wanted = threading.Event()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vmcore_dap.dump.stacks.prefetch_child",
                str(vmcore),
                str(sp_offset),
                str(stack_size),
                str(kernel_start),
                _plan_argument(plan),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert self._proc.stdin is not None
        self._stdin = self._proc.stdin.fileno()
        _grow_pipe(self._stdin)
        os.set_blocking(self._stdin, False)
        self._reader = threading.Thread(target=self._read, name="vmcore-dap-prefetch", daemon=True)
        self._reader.start()
        log.info("stack prefetch: reading stacks ahead on a second process (pid %d)", self._proc.pid)

    def feed(self, tasks: Iterable[tuple[int, int | None]]) -> None:
        """Have the second process read these tasks' stacks: ``(address, task->stack)`` each (a task
        whose ``stack`` is unknown is left to the drgn thread; one :meth:`request` took is skipped:
        its stack is read after its block)."""
        if not self._alive:
            return
        fed = self._fed
        flat = [
            value for address, stack in tasks if stack and address not in fed for value in (address, stack)
        ]
        if not flat:
            return
        fed.update(flat[::2])
        self._order.extend(flat[::2])
        self._asked += len(flat) // 2
        self._unsent += struct.pack(f"<I{len(flat)}Q", len(flat) // 2, *flat)
        self._send()

    def _send(self) -> None:
        """Write what the pipe takes now; the rest waits for the next :meth:`feed` or :meth:`take`."""
        try:
            while self._unsent:
                written = os.write(self._stdin, self._unsent)
                del self._unsent[:written]
        except BlockingIOError:
            pass
        except OSError as exc:  # the process is gone: the drgn thread reads the stacks itself
            log.info("stack prefetch: cannot write to the second process: %s", exc)
            self._unsent.clear()
            self._alive = False

    def share(self, batch: int) -> float:
        """The share of a listing batch of ``batch`` tasks to hand over now: :attr:`fixed_share` if
        set, else :data:`MAX_SHARE` when every stack asked for has been answered, falling to none as
        the unanswered stacks reach two batches (the answers are counted every :data:`_POLL` s, so
        a process that keeps up still shows up to a poll's worth of them)."""
        if self.fixed_share is not None:
            return self.fixed_share
        with self._lock:
            self._parse()
        lag = min(self._asked, self._window_end) - len(self._starts)
        return MAX_SHARE * max(0.0, 1.0 - lag / (2 * batch))

    def request(self, addresses: list[int]) -> list[int]:
        """Read the blocks (and then the stacks) of the last :meth:`share` of these tasks, in walk
        order; return their addresses (none when there is no block plan or the process failed)."""
        if not self._alive or self._plan is None or not addresses:
            return []
        share = addresses[len(addresses) - int(len(addresses) * self.share(len(addresses))) :]
        if not share:
            return []
        self._fed.update(share)
        self._order.extend(share)
        self._asked += len(share)
        self._requested.update(share)
        self._unsent += struct.pack(f"<I{2 * len(share)}Q", len(share), *(v for a in share for v in (a, 0)))
        self._send()
        return share

    def take_block(self, address: int) -> bytes | None:
        """The kept bytes of the block of a task :meth:`request` took, waiting for them; ``None``
        when it has none (unreadable there, or the process failed): read it yourself."""
        if address not in self._requested:
            return None
        self._requested.discard(address)
        with self._lock:
            self._parse()
            while address not in self._blocks and self._alive:
                self._send()
                self._wanted.set()
                if not self._lock.wait(_PATIENCE):
                    log.warning("stack prefetch: no block in %s s, reading tasks here", _PATIENCE)
                    self._alive = False
                    self._proc.kill()
                self._parse()
            kept = self._blocks.pop(address, None)
        if kept is not None:
            self.blocks_read += 1
        return kept

    def take(self, address: int) -> KernelWords | WalkedChain | None | Literal[False]:
        """The used stack of the task at ``address`` for matching (waiting for it if it was fed),
        then forgotten: the chain of :attr:`chains` it follows, as the process walked it
        (:class:`WalkedChain`), else its kernel-image words (:class:`~.signature.KernelWords`);
        ``None`` when the stack is not readable as a sleeping task's (as
        :meth:`.signature.StackReader.read` would say); ``False`` when this process has no answer
        (not fed, a read failed there, or the second process failed): read it yourself."""
        if address not in self._fed:
            return False
        self._fed.discard(address)
        place = self._place(address)
        self._ask_up_to(place)
        starts = self._starts
        with self._lock:
            self._parse()
            deadline = time.monotonic() + _PATIENCE
            while len(starts) <= place and self._alive:
                # Progress is an answer, or more of what waits to be written taken by the process:
                # asked for a window it has not reached, it reads the tasks sent before silently.
                unsent = len(self._unsent)
                self._send()
                self._wanted.set()
                answered = len(starts)
                self._lock.wait(_POLL if self._unsent else _PATIENCE)
                self._parse()
                if len(starts) > answered or len(self._unsent) < unsent:
                    deadline = time.monotonic() + _PATIENCE
                elif time.monotonic() > deadline:  # nothing at all came meanwhile: give up on it
                    log.warning("stack prefetch: no answer in %s s, reading stacks here", _PATIENCE)
                    self._alive = False
                    self._proc.kill()
            if len(starts) <= place:
                return False
            answers, at = self._answers, starts[place] - self._dropped
            if at < 0:  # taken out of order after its bytes were let go: read it yourself
                return False
            if self._in_order and not place % _DROP_EVERY:
                # Every answer taken so far came in the order sent, so those before this one are
                # taken: let their bytes go, so that the blob shrinks as the grouping goes (del
                # from the front of a bytearray is cheap).
                del answers[: at - 1]
                self._dropped += at - 1
                self._parsed -= at - 1
                at = 1
            if answers[at - 1] == _CHAIN:
                return WalkedChain(_INDEX.unpack_from(answers, at)[0])
            return _kernel_words(answers, at, self._word)

    def _ask_up_to(self, place: int) -> None:
        """Have the process answer stacks beyond ``place``, walked with the newest :attr:`chains`
        (sent again while it changes, every :data:`_TABLE_EVERY` places at most): :data:`_WINDOW`
        of them while the table changes (what is walked with an older one may come as words), then,
        once it stayed the same over a window's places, :data:`_STEADY_AHEAD` windows, so that the
        process walks on while the grouping takes what it sent (asked for a window ahead only, each
        side waited for the other: 0.1 s of the grouping at huge, 6 Dec)."""
        chains = self.chains
        news = (
            chains is not None
            and chains.version != self._table_version
            and place >= self._table_place + _TABLE_EVERY
        )
        if chains is not None and chains.version != self._seen_version:
            self._seen_version, self._changed_place = chains.version, place
        steady = chains is not None and place >= self._changed_place + _WINDOW
        ahead = _WINDOW * (_STEADY_AHEAD if steady else 1)
        if not self._alive or (place + ahead // 2 < self._window_end and not news):
            return
        self._window_end = max(self._window_end, place + ahead)
        table = b""
        snapshot = chains.snapshot() if chains is not None and news else None
        if chains is not None and snapshot is not None:
            table = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
            self._table_version, self._table_place = chains.version, place
        self._unsent += _COUNT.pack(_CONTROL) + _CONTROL_HEAD.pack(self._window_end, len(table)) + table
        self._send()

    def _place(self, address: int) -> int:
        """Where the answer for a task sent (``address``) lies in the order sent: the grouping takes
        them in task order, which is the PID table's walk order, so nearly always at :attr:`_next`."""
        order, at = self._order, self._next
        if at < len(order) and order[at] == address:
            self._next = at + 1
            return at
        self._in_order = False  # some answer is taken out of order: none is let go any more
        try:
            place = order.index(address, at)
        except ValueError:
            return order.index(address)
        self._next = place + 1
        return place

    def _parse(self) -> None:
        """Index the answers appended since the last call (under :attr:`_lock`, on the drgn
        thread): each stack answer's offset in order, each block's kept bytes by address."""
        answers, at, word_size = self._answers, self._parsed, self._word.size
        size = len(answers)
        starts, blocks = self._starts, self._blocks
        while size - at > _KIND.size:
            if answers[at] == _BLOCK:
                if size - at - 1 < _BLOCK_HEAD.size:
                    break
                address, length = _BLOCK_HEAD.unpack_from(answers, at + 1)
                begin = at + 1 + _BLOCK_HEAD.size
                end = begin + (0 if length == _NO_BLOCK else length)
                if end > size:
                    break
                blocks[address] = None if length == _NO_BLOCK else bytes(answers[begin:end])
            elif answers[at] == _CHAIN:
                end = at + 1 + _INDEX.size
                if end > size:
                    break
                starts.append(at + 1 + self._dropped)
            else:
                if size - at - 1 < _HEAD.size:
                    break
                end = at + 1 + _HEAD.size + _HEAD.unpack_from(answers, at + 1)[3] * word_size
                if end > size:
                    break
                starts.append(at + 1 + self._dropped)
            at = end
        self._parsed = at

    def close(self) -> None:
        """Stop the second process (what it has not answered is read by the drgn thread)."""
        self._alive = False
        with self._lock:
            self._fed.clear()
            self._order = array("Q")
            self._requested.clear()
            self._blocks.clear()
            self._answers = bytearray()
            self._parsed = 0
            self._dropped = 0
        # Through the file object that owns the descriptor: closing the bare number would leave that
        # object to close it again when collected, by then perhaps another pipe's (a later process's).
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        self._proc.kill()
        self._wanted.set()

    def _read(self) -> None:
        # Whatever the pipe holds is appended as it is, every _POLL s unless take() waits: one
        # bytearray append under the GIL, no parsing here. (Parsing each answer on this thread
        # held the GIL for ~0.3 s at huge, and the drgn thread, handing it over and waiting to get
        # it back, lost 0.8 s of the listing: the drgn thread parses what it takes instead.)
        stdout = self._proc.stdout
        assert stdout is not None
        fd = stdout.fileno()
        _grow_pipe(fd)
        try:
            while chunk := os.read(fd, _PIPE_SIZE):
                with self._lock:
                    self._answers += chunk
                    self._lock.notify_all()
                if self._wanted.wait(_POLL):
                    self._wanted.clear()
        except OSError as exc:
            log.info("stack prefetch: cannot read from the second process: %s", exc)
        finally:
            with self._lock:
                self._alive = False
                self._lock.notify_all()
            log.info("stack prefetch: the second process ended (%s)", self._proc.poll())


def _grow_pipe(fd: int) -> None:
    """Let the second process run up to :data:`_PIPE_SIZE` bytes (about 5,000 tasks) ahead of the
    reading thread (Linux's default pipe holds 64 KiB)."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)
    except (ImportError, OSError):
        pass
