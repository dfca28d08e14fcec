"""How many of the machine's CPUs were spare over an interval, from the kernel's own counters.

The stack prefetch (:mod:`.prefetch`) puts a second process beside the drgn thread; it pays only
when that process gets a CPU of its own. With both CPUs of a two-CPU machine free it shortened the
Kernel view's first render at 50,910 tasks by a third, and where the CPUs were busy elsewhere it
made the listing slower (bench/RESULTS.md, "the listing kept on the drgn thread"). So the launch
asks how much CPU *other* processes used while the dump was being opened, and whether a CPU is left
beyond the one the adapter needs.

``/proc/stat``'s first line is the whole machine's time in USER_HZ ticks (100 a second on Linux):
user, nice, system, idle, iowait, irq, softirq, steal, …; idle + iowait is time no task wanted the
CPU; the rest, less this process's own ticks (``os.times``), is what others used. The load
average was not used: it trails by a minute, and a run of tests that just ended still weighs on
it. Where ``/proc/stat`` cannot be read (not Linux) nothing is reported spare.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["IdleMeter"]

_STAT = Path("/proc/stat")
#: The shortest interval :meth:`IdleMeter.idle_cpus` trusts: ticks are 10 ms, two CPUs give 20
#: ticks in 0.1 s. A shorter one (a dump opened very fast) is lengthened to this by waiting.
_MIN_INTERVAL = 0.1


def _idle_and_total() -> tuple[int, int] | None:
    """Idle (idle + iowait) and all ticks of every CPU so far, or ``None`` without ``/proc/stat``."""
    try:
        with _STAT.open() as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 6:
        return None
    ticks = [int(value) for value in fields[1:9]]
    return ticks[3] + ticks[4], sum(ticks)


def _own_ticks() -> int:
    """CPU ticks this process (every thread) used so far, in the same USER_HZ ticks."""
    times = os.times()
    return round((times.user + times.system) * os.sysconf("SC_CLK_TCK"))


class IdleMeter:
    """Counts from its creation: :meth:`spare_cpus` is how many CPUs, on average, neither this
    process nor any other used since, beyond the one this process needs for itself."""

    def __init__(self) -> None:
        self._start = _idle_and_total()
        self._own = _own_ticks()
        self._since = time.monotonic()

    def spare_cpus(self) -> float:
        """CPUs left over since this meter was made (0.0 when it cannot be told): all CPUs, less
        what other processes kept busy, less one for this process. This process's own use is
        taken out rather than assumed to be one CPU: drgn indexes debug info on every CPU."""
        left = _MIN_INTERVAL - (time.monotonic() - self._since)
        if left > 0:
            time.sleep(left)
        end = _idle_and_total()
        own = _own_ticks() - self._own
        if self._start is None or end is None:
            return 0.0
        idle, total = end[0] - self._start[0], end[1] - self._start[1]
        if total <= 0:
            return 0.0
        cpus = os.cpu_count() or 1
        others = max(0, total - idle - own)
        return max(0.0, cpus - 1 - cpus * others / total)
