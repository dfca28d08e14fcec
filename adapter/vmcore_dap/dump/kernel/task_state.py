"""A task's state, named as crash's ``ps`` names it, and the one letter every view shows for it.

crash is what kernel engineers compare us with, and it distinguishes more than the kernel's own
``ps`` letter does: a task caught in ``try_to_wake_up()`` at the instant of the dump is ``WA`` to
crash but ``R`` to ``/proc`` (``TASK_WAKING`` is outside ``TASK_REPORT``), a task being forked is
``NE`` but ``R``. Every view (thread names, the console's ``ps``, the Kernel view, the crash report)
shows the letter of this module, so each of crash's states has exactly one letter:

=====  ========================================  ======  ============================================
crash  kernel state (``__state | exit_state``)  letter  note
=====  ========================================  ======  ============================================
RU     0 (``TASK_RUNNING``)                      R
IN     ``TASK_INTERRUPTIBLE`` set                S
UN     ``TASK_UNINTERRUPTIBLE`` set              D       ``TASK_KILLABLE`` too
ID     ``TASK_UNINTERRUPTIBLE|TASK_NOLOAD`` set  I       ``TASK_IDLE``; the kernel's ``I`` since v4.14
ZO     ``EXIT_ZOMBIE`` set                       Z
ST     ``__TASK_STOPPED`` set                    T
TR     ``__TASK_TRACED`` set                     t
DE     ``EXIT_DEAD``/``TASK_DEAD``, none above  X
PA     exactly ``TASK_PARKED``                   P
WA     exactly ``TASK_WAKING``                   W       ``/proc`` says R
NE     exactly ``TASK_NEW``                      N       ``/proc`` says R
??     ``TASK_RTLOCK_WAIT`` or ``TASK_FROZEN``   D       crash names neither; ``/proc`` shows D
??     anything else                             ?
=====  ========================================  ======  ============================================

The rows are tested in crash's order and a later one wins, as in crash 8.0.6's
``task_state_string()``: a zombie that also has ``TASK_DEAD`` is ``ZO``, an ``IN`` task that is also
being traced is ``TR``; ``DE`` only when no earlier row matched. crash's ``SW`` (swapping) and
``EX`` (exclusive) exist only for kernels without ``task_state_array`` (before 2.6), which drgn
does not open.

The bit values are read from the dump, as crash reads them: ``task_state_array`` (fs/proc/array.c)
gives the reportable ones (its index ``i`` is bit ``i - 1``); the others follow ``TASK_PARKED`` in
the order the kernel has kept since v4.14 (commit 8ef9925b02c2, "sched/debug: Add explicit
TASK_PARKED printing", which added ``P`` to the array): ``TASK_DEAD``, ``TASK_WAKEKILL``,
``TASK_WAKING``, ``TASK_NOLOAD``, ``TASK_NEW`` (v4.8), ``TASK_RTLOCK_WAIT`` (v5.15, PREEMPT_RT's
sleeping spinlocks) and, three bits later, ``TASK_FROZEN`` (v6.1, "freezer,sched: Rewrite core
freezer logic", f5d39b020809). A kernel without ``P`` in the array (before v4.14) gets only the
array's letters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import drgn

__all__ = ["CRASH_STATE_LETTERS", "StateBits", "state_bits", "task_state_letter", "state_letter"]

#: crash's two-letter state → the letter every view shows (the table above).
CRASH_STATE_LETTERS: dict[str, str] = {
    "RU": "R",
    "IN": "S",
    "UN": "D",
    "ID": "I",
    "ZO": "Z",
    "ST": "T",
    "TR": "t",
    "DE": "X",
    "PA": "P",
    "WA": "W",
    "NE": "N",
}

_CACHE_KEY = "vmcore_dap_task_state_bits"


@dataclass(frozen=True)
class StateBits:
    """This kernel's task state bits (0 where the kernel has no such state)."""

    interruptible: int
    uninterruptible: int
    stopped: int
    traced: int
    exit_dead: int
    exit_zombie: int
    parked: int = 0
    dead: int = 0
    waking: int = 0
    noload: int = 0
    new: int = 0
    rtlock_wait: int = 0
    frozen: int = 0


def _array_letters(prog: drgn.Program) -> str:
    array = prog["task_state_array"]
    return "".join(chr(prog.read_u8(array[i].value_())) for i in range(len(array)))


def state_bits(prog: drgn.Program) -> StateBits:
    """The state bits of the dump's kernel, from ``task_state_array`` (cached per program).

    :raises LookupError: the kernel has no ``task_state_array`` (or it lacks ``R``, ``S``, ``D``).
    """
    cached = prog.cache.get(_CACHE_KEY)
    if isinstance(cached, StateBits):
        return cached
    letters = _array_letters(prog)
    bit = {c: (1 << (i - 1) if i else 0) for i, c in reversed(list(enumerate(letters)))}
    if letters[:1] != "R" or "S" not in bit or "D" not in bit:
        raise LookupError(f"task_state_array holds {letters!r}, not the kernel's state letters")
    extra: dict[str, int] = {}
    if "P" in bit:
        parked = bit["P"]
        extra = {
            "parked": parked,
            "dead": parked << 1,
            "waking": parked << 3,
            "noload": parked << 4,
            "new": parked << 5,
            "rtlock_wait": parked << 6,
            "frozen": parked << 9,
        }
    bits = StateBits(
        interruptible=bit["S"],
        uninterruptible=bit["D"],
        stopped=bit.get("T", 0),
        traced=bit.get("t", 0),
        exit_dead=bit.get("X", 0),
        exit_zombie=bit.get("Z", 0),
        **extra,
    )
    prog.cache[_CACHE_KEY] = bits
    return bits


def state_letter(bits: StateBits, state: int, exit_state: int) -> str:
    """The letter of the table above for a task whose ``__state`` and ``exit_state`` are given.

    Kept free of drgn objects: the thread list decodes 5,000 tasks from raw bytes and calls this
    (a dump holds a handful of distinct values, so each is named once).
    """
    return _letter(bits, state | exit_state)


@functools.lru_cache(maxsize=1024)
def _letter(bits: StateBits, value: int) -> str:
    letter = "?"
    matched = False  # crash's "set": a sleeping, exiting or stopped row matched
    if value == 0:
        letter = "R"
    for mask, name in (
        (bits.interruptible, "S"),
        (bits.uninterruptible, "D"),
        (bits.exit_zombie, "Z"),
        (bits.stopped, "T"),
        (bits.traced, "t"),
    ):
        if mask and value & mask:
            letter, matched = name, True
            if name == "D" and bits.noload and value & bits.noload:
                letter = "I"
    if not matched and value & (bits.exit_dead | bits.dead):
        letter = "X"
    for exact, name in ((bits.parked, "P"), (bits.waking, "W"), (bits.new, "N")):
        if exact and value == exact:
            letter = name
    if letter == "?" and value & (bits.rtlock_wait | bits.frozen):
        letter = "D"  # what /proc reports for both (include/linux/sched.h __task_state_index)
    return letter


def task_state_letter(task: drgn.Object) -> str:
    """The letter of the table above for one task.

    :param task: ``struct task_struct *``.
    """
    prog = task.prog_
    # task_struct.state became __state in v5.14 (commit 2f064a59a11f, "sched: Change
    # task_struct::state").
    try:
        state = task.member_("__state").value_()
    except LookupError:
        state = task.member_("state").value_()
    return state_letter(state_bits(prog), state, task.exit_state.value_())
