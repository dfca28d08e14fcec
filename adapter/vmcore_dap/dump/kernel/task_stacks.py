"""Which task a kernel stack belongs to, answered from the adapter's own task listing.

drgn's ``identify_address_all`` names an address inside a task's kernel stack ("task stack: PID
…"). To find the task, it maps every task's ``task->stack`` on its first stack question (drgn 0.3's
``_identify_task_stack``: a walk of every task through drgn objects, 2 s at 50,000 tasks). It asks
that question for every vmalloc address that is not a symbol when stacks are vmapped
(``CONFIG_VMAP_STACK``, x86-64 and arm64 since v4.9), and for every page-allocator address when
they come from the page allocator. A session's first Variables page (the crashed frame's
arguments, which point into the crashed task's own stack) paid it before anything was shown.

:class:`StackOwners` answers the same question from the task listing the session already has
(:meth:`~vmcore_dap.dump.kernel.tasks.TaskListing.stack_owner`): the crashed and running tasks at
once, any other task once the listing is whole. An area that cannot be a stack is told apart
before that (:func:`_may_be_stack`), so a plain vmalloc address does not make the whole list
either. drgn takes it through its lookup cache: the cache entry ``"stack_to_task"``, a mapping from
a stack's base (``addr & ~(THREAD_SIZE - 1)``) to its ``struct task_struct *``, which drgn reads
with ``[]`` and ``KeyError`` (drgn 0.3, ``drgn/helpers/linux/common.py``; pyproject pins
``drgn<0.4``). A drgn that no longer reads that entry walks the tasks itself: slower, still right.
"""

from __future__ import annotations

import drgn
from drgn.helpers.linux.mm import find_vmap_area, in_direct_map

from vmcore_dap.dump.kernel.tasks import listing_of

__all__ = ["STACK_TO_TASK", "StackOwners"]

#: The key of drgn's ``identify_address_all`` cache that maps a stack's base to its task.
STACK_TO_TASK = "stack_to_task"

_VMAP_STACKS_KEY = "vmcore_dap_vmap_stacks"


class StackOwners:
    """``stack base → struct task_struct *`` for drgn's lookup cache, looked up as asked.

    :param prog: the dump; its task listing is :func:`~vmcore_dap.dump.kernel.tasks.listing_of`.
    """

    def __init__(self, prog: drgn.Program) -> None:
        self.prog = prog

    def __getitem__(self, stack: int) -> drgn.Object:
        listing = listing_of(self.prog)
        owner = listing.stack_owner(stack, whole=False)
        if owner is None and _may_be_stack(self.prog, stack):
            owner = listing.stack_owner(stack)
        if owner is None:
            raise KeyError(stack)
        return owner.task


def _vmap_stacks(prog: drgn.Program) -> bool:
    """Whether kernel stacks are vmalloc areas: ``task_struct.stack_vm_area`` exists exactly with
    ``CONFIG_VMAP_STACK`` (v4.9 and later; drgn tells the cases apart the same way)."""
    known: bool | None = prog.cache.get(_VMAP_STACKS_KEY)
    if known is None:
        known = prog.cache[_VMAP_STACKS_KEY] = prog.type("struct task_struct").has_member("stack_vm_area")
    return known


def _may_be_stack(prog: drgn.Program, stack: int) -> bool:
    """Whether a task's stack may start at ``stack``. A vmapped stack is a vmalloc area of its own,
    starting at its base and ``THREAD_SIZE`` long, plus the guard page vmalloc adds after it
    (``__get_vm_area_node``, unless ``VM_NO_GUARD``); any other area cannot be one. Elsewhere (stacks
    from the page allocator or a slab cache, or a read that fails) nothing rules it out."""
    try:
        if not _vmap_stacks(prog) or in_direct_map(prog, stack):
            return True
        area = find_vmap_area(prog, stack)
        if not area:
            return False
        start = area.va_start.value_()
        size = area.va_end.value_() - start
        # drgn's own THREAD_SIZE, which it aligned the address down to.
        thread_size = prog["THREAD_SIZE"].value_()
        page = prog["PAGE_SIZE"].value_()
    except (drgn.FaultError, LookupError, NotImplementedError, ValueError):
        return True
    return start == stack and size in (thread_size, thread_size + page)
