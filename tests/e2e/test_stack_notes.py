"""Pointers into kernel stacks are named from the adapter's task listing, as crash's ``kmem`` names them.

On ``many-tasks`` (5,067 tasks, more than the adapter lists before the stop) a session starts with
only the head of its task list: the crashed task, the tasks the CPUs were running, the idle tasks.
The crashed frame's arguments point into the crashed task's own stack, and their notes must come
without listing the other 5,000 tasks (issue 18's first picture). A pointer into any other task's
stack still names that task (the listing is finished for it), and a vmalloc area that cannot be a
stack does not make the whole list. The task (PID and command) and the area's range come from
crash's ``kmem ADDR`` on the same dump; the addresses asked about are read from the dump.
"""

from __future__ import annotations

import re
from typing import Any

import drgn
import pytest
from drgn.helpers.linux.mm import for_each_vmap_area
from tests.e2e._session import open_sample_dump
from tests.helpers.crash_batch import run_crash

from vmcore_dap.dump.kernel.panic import crashed_task, focus_task
from vmcore_dap.dump.kernel.tasks import TaskListing, list_tasks
from vmcore_dap.dump.structures.pointer_notes import pointer_note

pytestmark = pytest.mark.timeout(1800)

#: Where inside a stack (or area) the addresses asked about lie.
OFFSET = 0x100


def _crash_task(kmem: str) -> tuple[int, str]:
    """PID and command of the task ``kmem ADDR`` says the address's stack belongs to."""
    pid = re.search(r"^\s+PID: (\d+)$", kmem, re.M)
    command = re.search(r'^COMMAND: "(.*)"$', kmem, re.M)
    assert pid and command, kmem
    return int(pid[1]), command[1]


def _crash_vmap_range(kmem: str) -> tuple[int, int]:
    """The ``ADDRESS RANGE`` of the ``VMAP_AREA`` row of ``kmem ADDR``."""
    found = re.search(r"^[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+) - ([0-9a-f]+)\s+\d+$", kmem, re.M)
    assert found, kmem
    return int(found[1], 16), int(found[2], 16)


def _plain_vmalloc_area(prog: drgn.Program) -> tuple[int, int]:
    """A vmalloc area that is no task's stack (not THREAD_SIZE plus a guard page long), holds no
    symbol and is in the dump: drgn asks for a stack owner on any such address."""
    stack_size = prog["THREAD_SIZE"].value_() + prog["PAGE_SIZE"].value_()
    for area in for_each_vmap_area(prog):
        start, end = area.va_start.value_(), area.va_end.value_()
        if not area.vm.read_() or end - start == stack_size:
            continue
        try:
            prog.symbol(start + OFFSET)
            continue
        except LookupError:
            pass
        try:
            prog.read(start + OFFSET, 1)
        except drgn.FaultError:  # an I/O mapping, or a page the dump left out
            continue
        return start, end
    raise AssertionError("the dump has no vmalloc area without symbols but the stacks")


@pytest.fixture(scope="module")
def facts(sample_many: Any) -> dict[str, Any]:
    """The dump opened in this process, the addresses to ask about, and crash's ``kmem`` of each."""
    prog = open_sample_dump(sample_many).prog
    crashed = crashed_task(prog)
    assert crashed is not None
    # A thread of labmany that no CPU was running: never in the head of the list.
    other = max(
        (t for t in list_tasks(prog) if t.comm == sample_many.expected["many_comm"] and not t.on_cpu),
        key=lambda t: t.pid,
    )
    addresses = {
        "crashed": crashed.stack.value_() + OFFSET,
        "other": other.task.stack.value_() + OFFSET,
        "vmalloc": _plain_vmalloc_area(prog)[0] + OFFSET,
    }
    kmem = run_crash(sample_many, [f"kmem {address:x}" for address in addresses.values()])
    return {"prog": prog, "addresses": addresses, "kmem": dict(zip(addresses, kmem, strict=False))}


def _note_from_the_stop(prog: drgn.Program, address: int) -> tuple[str, bool]:
    """The note of ``address`` as a session just stopped on a large dump gives it (the task list's
    head known, its walk not begun, as ``launch`` leaves it), and whether it needed the whole list."""
    listing = TaskListing(prog, focus_task(prog))
    assert not listing.done
    note = pointer_note(prog, address)
    assert note is not None
    return note.text, listing.done


def test_the_crashed_tasks_stack_is_named_without_listing_every_task(facts: dict[str, Any]) -> None:
    pid, command = _crash_task(facts["kmem"]["crashed"])
    text, listed = _note_from_the_stop(facts["prog"], facts["addresses"]["crashed"])
    assert text == f"→ stack of PID {pid} {command} +{OFFSET:#x}"
    assert not listed, "naming the crashed task's stack walked the whole task list"


def test_a_plain_vmalloc_address_does_not_list_every_task(facts: dict[str, Any]) -> None:
    start, end = _crash_vmap_range(facts["kmem"]["vmalloc"])
    text, listed = _note_from_the_stop(facts["prog"], facts["addresses"]["vmalloc"])
    assert text.startswith(f"→ vmalloc area {start:#x}-{end:#x}"), text
    assert not listed, "a vmalloc area of the wrong size for a stack walked the whole task list"


def test_another_tasks_stack_is_named_from_the_whole_list(facts: dict[str, Any]) -> None:
    """Also shows that drgn asks the session's listing (only that finishes it): with the two tests
    above, drgn never walks the tasks itself for a stack."""
    pid, command = _crash_task(facts["kmem"]["other"])
    text, listed = _note_from_the_stop(facts["prog"], facts["addresses"]["other"])
    assert text == f"→ stack of PID {pid} {command} +{OFFSET:#x}"
    assert listed, "the stack's task was found without the session's task list"
