"""Notes for values read from pages an ELF dump left out, which read as zeros rather than failing.

makedumpfile ``-E`` writes an ELF vmcore whose excluded pages lie in a segment's zero-filled tail:
drgn reads them without a fault, and ``0`` alone would look like the kernel's data. A value shown
from such a page is followed by the reason (:func:`~vmcore_dap.dump.memory.page_filter.
zero_filled_reason`). Costs nothing on dumps that are not such ELF files.
"""

from __future__ import annotations

from collections.abc import Sequence

import drgn

from vmcore_dap.dump.memory.page_filter import page_filter_for, zero_filled_reason

__all__ = ["with_zero_fill_note", "with_zero_fill_notes"]


def _reason(prog: drgn.Program, address: int) -> str | None:
    try:
        return zero_filled_reason(prog, address)
    except Exception:  # noqa: BLE001 - the value itself is still right to show
        return None


def with_zero_fill_note(text: str, obj: drgn.Object) -> str:
    """``text`` (how ``obj`` is shown) followed by ``<why it reads as zeros>`` when ``obj`` lies in a
    page the dump left out."""
    address = obj.address_
    if address is None:
        return text
    reason = _reason(obj.prog_, address)
    return f"{text} <{reason}>" if reason else text


def with_zero_fill_notes(prog: drgn.Program, address: int, size: int, texts: Sequence[str]) -> list[str]:
    """:func:`with_zero_fill_note` for consecutive elements of ``size`` bytes from ``address``,
    asking once per memory page (the reason depends only on the page an element lies in).

    :param texts: how each element is shown.
    """
    out = list(texts)
    pf = page_filter_for(prog)
    if pf is None or not pf.file.zero_filled:
        return out
    page = pf.file.page_size
    i = 0
    while i < len(out):
        element = address + i * size
        next_page = (element // page + 1) * page
        j = min(len(out), i + (next_page - element + size - 1) // size)  # first element on the next page
        reason = _reason(prog, element)
        if reason:
            out[i:j] = [f"{text} <{reason}>" for text in out[i:j]]
        i = j
    return out
