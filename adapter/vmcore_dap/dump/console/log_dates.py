"""The console's ``log -T``: drgn's ``log``, with wall-clock dates counted from crash's boot date.

A ``log -T`` date is a boot date plus the record's timestamp. drgn takes the boot date from the
timekeeper (coarse real time minus coarse monotonic time), crash from ``sys``'s DATE minus its
UPTIME, which counts jiffies. The two differ when the kernel's jiffies lag its clock at the instant
of the dump: on an irq-oops sample built on a loaded host they were 1.25 s apart, and every date
differed from crash's by two seconds. The console's ``sys`` already counts UPTIME crash's way
(:func:`~vmcore_dap.dump.console.extra_commands.crash_uptime_seconds`), so ``log -T`` counts from
the same boot date, with crash's arithmetic (whole boot seconds plus the record's whole seconds):
``sys`` DATE, UPTIME and every ``log -T`` date agree with each other and with crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import drgn
from drgn.helpers.linux.printk import get_printk_records
from drgn.helpers.linux.timekeeping import ktime_get_real_seconds

from vmcore_dap.dump.console.extra_commands import crash_uptime_seconds
from vmcore_dap.dump.console.namespace import ReworkedDrgnCommand

__all__ = ["crash_boot_seconds"]


def crash_boot_seconds(prog: drgn.Program) -> int:
    """The boot date crash's ``log -T`` counts from: the timekeeper's wall-clock seconds (``sys``
    DATE) minus the jiffies uptime (``sys`` UPTIME)."""
    return int(ktime_get_real_seconds(prog).value_()) - crash_uptime_seconds(prog)


class _LogCommand(ReworkedDrgnCommand):
    """drgn's ``log``; ``-T`` dates from crash's boot date."""

    name = "log"
    note = "-T dates count from sys's DATE minus its UPTIME (jiffies), as crash's do."

    def run(self, prog: drgn.Program, name: str, words: Sequence[str], **kwargs: Any) -> None:
        if "-T" not in words or "--drgn" in words:
            self._drgn.run(prog, name, words, **kwargs)
            return
        boot = crash_boot_seconds(prog)
        lines = []
        for record in get_printk_records(prog):
            date = datetime.fromtimestamp(boot + record.timestamp // 1_000_000_000).astimezone()
            lines.append(f"[{date.strftime('%a %b %e %T %Z %Y')}] {record.text.decode(errors='replace')}")
        print("\n".join(lines))


_LogCommand.register()
