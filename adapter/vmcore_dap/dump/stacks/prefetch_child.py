"""The stack prefetch's second process (``python -m vmcore_dap.dump.stacks.prefetch_child``) and the
records it exchanges with :class:`~.prefetch.StackPrefetch`.

The process starts beside the stop and VS Code's first requests, on a large dump, so its start-up
competes with them for the CPUs: it imports only the standard library, drgn and :mod:`.signature`'s
:class:`~.signature.ChainTable` (which imports nothing of the adapter at module level). Started as
``python -m vmcore_dap.dump.stacks.prefetch``, whose :func:`~.prefetch.start_prefetch` needs the
architecture and the task listing (``vmcore_dap.dump.kernel.tasks`` → ``drgn.helpers.linux``), it
took 0.12–0.13 s of CPU to open the dump; from here 0.05 s, where a bare ``import drgn`` and the same
open take 0.035 s (6 Dec, many-tasks; ``tests/unit/test_start_imports.py`` keeps it so). The
record formats live here, and the adapter's side imports them, so both ends read one definition;
the task block's plan comes from :mod:`vmcore_dap.dump.kernel.block_plan`, which imports nothing.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from collections.abc import Callable
from typing import Literal

import drgn

from vmcore_dap.dump.kernel.block_plan import BlockPlan
from vmcore_dap.dump.stacks.signature import ChainTable, KernelWords, StackWords, TableSnapshot

__all__ = ["main"]


#: A batch sent to the second process: the number of tasks, then (address, task->stack) each;
#: ``task->stack`` 0 asks for the task's block first (:class:`BlockPlan`), the stack then.
_COUNT = struct.Struct("<I")
_TASK = struct.Struct("<QQ")
#: Each answer starts with its kind: :data:`_STACK`, :data:`_CHAIN` or :data:`_BLOCK`.
_KIND = struct.Struct("<B")
_STACK, _CHAIN, _BLOCK = 0x53, 0x43, 0x42
#: A :data:`_CHAIN` answer: the task's stack follows the chain registered this many chains after
#: the first of the table sent (:class:`~.prefetch.WalkedChain`).
_INDEX = struct.Struct("<I")
#: A batch whose count is this is a control message instead: :data:`_CONTROL_HEAD`, then that many
#: bytes of a pickled :class:`~.signature.TableSnapshot` (none: the table did not change).
_CONTROL = 0xFFFFFFFF
#: Answer every stack up to this place in the order sent; the length of the table that follows.
_CONTROL_HEAD = struct.Struct("<QI")
#: How many stack answers the second process sends beyond the last one taken (the first ones
#: unasked): the rest wait there, not in the adapter (7 MB at 50,000 tasks), and are walked with the
#: newest table sent when their turn comes.
_WINDOW = 2048
#: A task's stack: address, saved sp, used length (``_UNREAD``: not a sleeping task's stack,
#: ``_FAULT``: a read failed, read it yourself), word count; then (slot, word) for each word at or
#: above the kernel image's start.
_HEAD = struct.Struct("<QQIH")
_WORD = struct.Struct("<HQ")
#: The same where the kernel image lies in the top 4 GiB (x86-64): a word at or above its start has
#: an upper half of all ones, so only the lower half is sent (6 bytes a word instead of 10: the
#: answers waiting for the grouping take 4 MiB less at 50,000 tasks).
_LOW_WORD = struct.Struct("<HI")
_UPPER_ONES = 0xFFFFFFFF << 32
_UNREAD, _FAULT = 0xFFFFFFFF, 0xFFFFFFFE
#: A task's block: address, length of the kept bytes that follow (``_NO_BLOCK``: unreadable).
_BLOCK_HEAD = struct.Struct("<QH")
_NO_BLOCK = 0xFFFF
_QWORD = struct.Struct("<Q")


def _kernel_words(
    answers: bytes | bytearray, at: int, word: struct.Struct
) -> KernelWords | None | Literal[False]:
    """The :data:`_STACK` answer at ``at`` (its :data:`_HEAD`) as
    :meth:`~.prefetch.StackPrefetch.take` gives it."""
    sp, length, count = _HEAD.unpack_from(answers, at)[1:]
    if length == _FAULT:
        return False
    if length == _UNREAD:
        return None
    at += _HEAD.size
    words = word.iter_unpack(answers[at : at + count * word.size])
    if word is _LOW_WORD:
        return KernelWords(sp, length, ((slot, _UPPER_ONES | low) for slot, low in words))
    return KernelWords(sp, length, words)


def _plan_argument(plan: BlockPlan | None) -> str:
    """``start:size:stack_at:offset/size,offset/size,...``, or ``-`` without a plan."""
    if plan is None:
        return "-"
    slices = ",".join(f"{offset}/{size}" for offset, size in plan.slices)
    return f"{plan.start}:{plan.size}:{plan.stack_at}:{slices}"


def _parse_plan(text: str) -> BlockPlan | None:
    if text == "-":
        return None
    start, size, stack_at, slices = text.split(":")
    pairs = tuple((int(o), int(n)) for o, n in (item.split("/") for item in slices.split(",")))
    return BlockPlan(int(start), int(size), pairs, int(stack_at))


def _low_words(kernel_start: int) -> bool:
    """Whether the words at or above ``kernel_start`` are sent as :data:`_LOW_WORD` records."""
    return kernel_start & _UPPER_ONES == _UPPER_ONES


def _kernel_words_filter(kernel_start: int) -> Callable[[bytes], list[bytes]]:
    """What keeps a used stack's words at or above ``kernel_start`` (:data:`_WORD` records, or
    :data:`_LOW_WORD` ones where :func:`_low_words`).

    Where the kernel image lies in the top 2 GiB (x86-64: ``0xffffffff80000000``), such a word's
    upper half is all ones: ``bytes.find`` over the upper halves finds the ~19 candidates of ~170
    words (7.8 against 10.6 µs a task for a Python loop over every word, 6 Dec). Elsewhere, or on a
    big-endian host (whose ``I`` is not the dump's ``<I``), every word is compared.
    """
    if not _low_words(kernel_start) or sys.byteorder != "little":
        low = _low_words(kernel_start)

        def every_word(data: bytes) -> list[bytes]:
            return [
                _LOW_WORD.pack(slot, word & 0xFFFFFFFF) if low else _WORD.pack(slot, word)
                for slot, (word,) in enumerate(_QWORD.iter_unpack(data))
                if word >= kernel_start
            ]

        return every_word
    ones = b"\xff\xff\xff\xff"

    def upper_halves(data: bytes) -> list[bytes]:
        words = memoryview(data).cast("Q")
        upper = bytes(memoryview(data).cast("I")[1::2])
        found = []
        at = upper.find(ones)
        while at >= 0:
            if at & 3:  # straddles two upper halves: go on from the next one
                at = upper.find(ones, (at | 3) + 1)
                continue
            slot = at >> 2
            word = words[slot]
            if word >= kernel_start:
                found.append(_LOW_WORD.pack(slot, word & 0xFFFFFFFF))
            at = upper.find(ones, at + 4)
        return found

    return upper_halves


class _Inbox:
    """The second process's end of the tasks' pipe, read in whole messages."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()

    def read(self, size: int) -> bytes | None:
        """The next ``size`` bytes (waiting for them), or ``None`` once the pipe is closed."""
        buffer = self._buffer
        while len(buffer) < size:
            chunk = os.read(self._fd, max(size - len(buffer), 1 << 16))
            if not chunk:
                return None
            buffer += chunk
        data = bytes(buffer[:size])
        del buffer[:size]
        return data


#: A stack not sent yet, on the second process: its answer (:data:`_HEAD` and words) not walked
#: with the newest table, the same walked with table ``version`` to no chain ``(version, answer)``,
#: or the number of the chain it follows.
_Pending = bytes | tuple[int, bytes] | int | None


class _Server:
    """The second process (:func:`main`): reads each batch's blocks
    (a task sent with stack 0) and stacks, answers each block at once (:data:`_BLOCK`) and each stack
    in the order sent up to the place asked for (:data:`_CONTROL`): :data:`_CHAIN` where the newest
    table sent finds its chain, :data:`_STACK` with the words where not. A stack read once a table
    came is walked as read, over all its words (no words kept where it follows a chain). The stacks
    are not walked ahead of the window: the table changes while the grouping learns it, and walking
    every stack again with each new one cost the process a third more CPU at huge (0.41 against
    0.31 s, 6 Dec)."""

    def __init__(
        self, vmcore: str, sp_offset: int, stack_size: int, kernel_start: int, plan: BlockPlan | None
    ) -> None:
        self.prog = drgn.Program()
        self.prog.set_core_dump(vmcore)
        self.sp_offset, self.stack_size, self.plan = sp_offset, stack_size, plan
        self.kernel_words = _kernel_words_filter(kernel_start)
        self.word = _LOW_WORD if _low_words(kernel_start) else _WORD
        self.inbox = _Inbox(sys.stdin.fileno())
        self.pending: list[_Pending] = []
        #: The first of :attr:`pending` not sent, and the place up to which they are to be sent.
        self.sent = 0
        self.window_end = _WINDOW
        self.table: ChainTable[int] | None = None
        self.version = 0

    def run(self) -> None:
        inbox = self.inbox
        while True:
            head = inbox.read(_COUNT.size)
            if head is None:
                return
            count = _COUNT.unpack(head)[0]
            out: list[bytes] = []
            if count == _CONTROL:
                if not self._control():
                    return
            else:
                body = inbox.read(count * _TASK.size)
                if body is None or not self._batch(body, out):
                    return
            self._flush(out)
            if out:
                sys.stdout.buffer.write(b"".join(out))
                sys.stdout.buffer.flush()

    def _control(self) -> bool:
        control = self.inbox.read(_CONTROL_HEAD.size)
        if control is None:
            return False
        self.window_end, length = _CONTROL_HEAD.unpack(control)
        if length:
            data = self.inbox.read(length)
            if data is None:
                return False
            snapshot = pickle.loads(data)
            if isinstance(snapshot, TableSnapshot):
                self.table = ChainTable.from_snapshot(snapshot)
                self.version += 1
        return True

    def _batch(self, body: bytes, out: list[bytes]) -> bool:
        """Read a batch's blocks and stacks: blocks into ``out``, stacks into :attr:`pending`."""
        read, read_u64, plan, pending = self.prog.read, self.prog.read_u64, self.plan, self.pending
        sp_offset, stack_size, table = self.sp_offset, self.stack_size, self.table
        block = _KIND.pack(_BLOCK)
        for address, base in _TASK.iter_unpack(body):
            if not base:
                if plan is None:
                    return False
                try:
                    data = read(address + plan.start, plan.size)
                except drgn.FaultError:
                    out += (block, _BLOCK_HEAD.pack(address, _NO_BLOCK))
                    pending.append(_HEAD.pack(address, 0, _FAULT, 0))
                    continue
                kept = b"".join(data[offset : offset + size] for offset, size in plan.slices)
                out += (block, _BLOCK_HEAD.pack(address, len(kept)), kept)
                base = _QWORD.unpack_from(kept, plan.stack_at)[0]
                if not base:
                    pending.append(_HEAD.pack(address, 0, _FAULT, 0))
                    continue
            try:
                sp = read_u64(address + sp_offset)
                if not base <= sp < base + stack_size or (base + stack_size - sp) % 8:
                    pending.append(_HEAD.pack(address, sp, _UNREAD, 0))
                    continue
                data = read(sp, base + stack_size - sp)
            except drgn.FaultError:
                pending.append(_HEAD.pack(address, 0, _FAULT, 0))
                continue
            index = table.find(StackWords(sp, data)) if table is not None else None
            if index is not None:
                pending.append(index)
                continue
            found = self.kernel_words(data)
            answer = b"".join((_HEAD.pack(address, sp, len(data), len(found)), *found))
            pending.append((self.version, answer) if table is not None else answer)
        return True

    def _settle(self, item: _Pending) -> _Pending:
        """``item`` walked with the newest table (as it is where that was done or cannot be)."""
        table = self.table
        if table is None or isinstance(item, int) or item is None:
            return item
        if isinstance(item, tuple):
            if item[0] == self.version:
                return item
            item = item[1]
        words = _kernel_words(item, 0, self.word)
        index = table.find(words) if words else None
        return index if index is not None else (self.version, item)

    def _flush(self, out: list[bytes]) -> None:
        """Put the stacks up to :attr:`window_end` into ``out``, in order."""
        pending, stack, chain = self.pending, _KIND.pack(_STACK), _KIND.pack(_CHAIN)
        while self.sent < self.window_end and self.sent < len(pending):
            item = self._settle(pending[self.sent])
            pending[self.sent] = None
            self.sent += 1
            if isinstance(item, int):
                out += (chain, _INDEX.pack(item))
            elif isinstance(item, tuple):
                out += (stack, item[1])
            elif item is not None:
                out += (stack, item)


def main(argv: list[str]) -> None:
    """Serve the adapter on stdin/stdout: ``argv`` is ``vmcore sp_offset stack_size kernel_start plan``
    (:class:`~.prefetch.StackPrefetch` starts it so)."""
    vmcore, sp_offset, stack_size, kernel_start, plan = argv
    _Server(vmcore, int(sp_offset), int(stack_size), int(kernel_start), _parse_plan(plan)).run()


if __name__ == "__main__":
    main(sys.argv[1:])
