"""Translate drgn's exceptions into the adapter's errors, once, with messages a person can act on."""

from __future__ import annotations

import drgn

from vmcore_dap.dump.memory.page_filter import explain_unreadable
from vmcore_dap.errors import AdapterError, NotAvailable, UserError

__all__ = ["translate_error", "describe_fault"]


def describe_fault(exc: drgn.FaultError, prog: drgn.Program | None = None) -> str:
    """Say which address could not be read, and why.

    :param prog: the program the read was made on. With it the reason is specific (excluded by
        makedumpfile's ``-d`` filtering, not mapped, not RAM, a truncated file: see
        :mod:`~vmcore_dap.dump.memory.page_filter`); without it only the likely causes can be listed.
    """
    if prog is not None:
        try:
            return f"cannot read memory at {exc.address:#x}: {explain_unreadable(prog, exc.address)}"
        except Exception:  # noqa: BLE001 - the diagnosis must not hide the fault it explains
            pass
    return (
        f"cannot read memory at {exc.address:#x}: not present in the dump "
        "(excluded by makedumpfile filtering, or not mapped)"
    )


def translate_error(exc: BaseException) -> AdapterError | None:
    """Return the user-facing error for a drgn exception, or ``None`` if ``exc`` is not one."""
    if isinstance(exc, drgn.FaultError):
        return UserError(describe_fault(exc))
    if isinstance(exc, drgn.ObjectAbsentError):
        return NotAvailable("<optimized out>")
    if isinstance(exc, drgn.MissingDebugInfoError):
        return UserError(
            f"missing debug info: {exc} (add the file to the launch setting 'debugInfo', or its "
            "directory to 'debugInfoDirectories')"
        )
    if isinstance(exc, drgn.OutOfBoundsError):
        return UserError(f"out of bounds: {exc}")
    return None
