"""The CPUs a dump's thread list and CPU table cover: every CPU that was up, not only the online ones.

When the kernel crashes, it stops the other CPUs before it dumps. On arm64 since v6.9 (the crash
stop goes through ``smp_send_stop()``, which waits for the other CPUs to leave ``cpu_online_mask``:
"arm64: smp: smp_send_stop() and crash_smp_send_stop() should try non-NMI first"), each CPU stopped
by the crash IPI marks itself offline in ``ipi_cpu_crash_stop()`` (arch/arm64/kernel/smp.c; 6.1's
did not). A CPU stopped by a panic without kdump does the same on every version
(``local_cpu_stop()``). Measured on Debian 13's 6.12.118 arm64 kdump: online {0}, present {0, 1},
crash says "CPUS: 2 [OFFLINE: 1]" and lists CPU 1's idle task and its current task (``>``) in
``ps``. The present mask is left alone by every stop path, so the walk is over present CPUs (the
online mask where a kernel has no present mask to read).
"""

from __future__ import annotations

import drgn
from drgn.helpers.linux.cpumask import for_each_online_cpu, for_each_present_cpu

__all__ = ["dumped_cpus"]

_CACHE_KEY = "vmcore_dap_dumped_cpus"


def dumped_cpus(prog: drgn.Program) -> list[int]:
    """The CPUs whose idle and current tasks the dump holds: the present CPUs (cached per program)."""
    cpus: list[int] | None = prog.cache.get(_CACHE_KEY)
    if cpus is None:
        try:
            cpus = list(for_each_present_cpu(prog))
        except (LookupError, drgn.FaultError):
            cpus = []
        if not cpus:
            cpus = list(for_each_online_cpu(prog))
        prog.cache[_CACHE_KEY] = cpus
    return list(cpus)
