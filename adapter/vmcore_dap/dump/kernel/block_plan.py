"""What another process reads of each ``task_struct`` for the task listing (:class:`BlockPlan`).

Apart from :mod:`.tasks`, which makes the plan (:func:`~.tasks.block_plan`) and decodes what is kept,
because the stack prefetch's second process (:mod:`vmcore_dap.dump.stacks.prefetch_child`) reads by
it and must start without :mod:`.tasks` (which imports ``drgn.helpers.linux``): this module imports
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BlockPlan"]


@dataclass(frozen=True)
class BlockPlan:
    """What another process reads of each task for the listing, without debug info of its own: the
    block ``[address + start, address + start + size)``, of which it keeps only the listed fields'
    bytes (``slices``, relative to the block, put end to end); ``task->stack`` (a pointer) lies at
    ``stack_at`` of what it keeps. The listing decodes those bytes
    (:meth:`~vmcore_dap.dump.kernel.tasks.TaskListing.step`)."""

    start: int
    size: int
    slices: tuple[tuple[int, int], ...]
    stack_at: int
