"""What finding the tasks costs: the listing's PID-table walk against a walk of the kernel's task lists.

:class:`~vmcore_dap.dump.kernel.tasks.TaskListing` finds tasks through the PID table
(``idr_for_each(init_pid_ns.idr)`` → ``struct pid`` → task) and reads one ``task_struct`` block per
task. The kernel's own lists (``init_task.tasks`` for processes, ``signal->thread_head`` /
``thread_node`` for threads) link the ``task_struct``\\ s themselves: their ``next`` pointers lie in
the block the listing reads anyway, so walking them needs no ``struct pid`` at all. This script
measures both on one dump, in one process, alternating, in CPU time:

* *pid-table*: the listing's walk (:func:`~vmcore_dap.dump.kernel.tasks._pid_table_tasks`) plus the
  listing's block per task;
* *lists*: the block widened to ``task->signal`` (a thread list ends at ``&signal->thread_head``, so
  the ``signal_struct`` itself is never read), processes along ``tasks.next``, each one's threads
  along ``thread_node.next``;
* *idr only*: the PID table's radix tree and the link of each ``struct pid``, no block.

It also counts the reads made from Python (the PID table's own tree nodes, read by drgn's
``xa_for_each``, are not counted) and the distinct pages they touch, and checks that both
walks find the same tasks (``nr_threads`` of them). Run as ``python -m bench.task_walks [--elf]
SAMPLE_DIR...`` (``--elf``: each sample's ELF vmcore instead of its kdump file).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import drgn
from drgn.helpers.linux.idr import idr_for_each
from samples.sample_store import load_sample

from vmcore_dap.dump.kernel.tasks import _layout, _pid_table_tasks

_PAGE = 4096


@dataclass
class Walk:
    """One walk's tasks, the reads it made from Python and the distinct pages those touched."""

    tasks: set[int]
    reads: int
    pages: int


def _pages(address: int, size: int) -> range:
    return range(address // _PAGE, (address + size - 1) // _PAGE + 1)


def pid_table_walk(prog: drgn.Program) -> Walk:
    """The listing's walk: each ``struct pid``'s first task link, then the task's block (the pages
    of the ``struct pid``\\ s are counted apart, untimed: :func:`pid_pages`)."""
    layout = _layout(prog)
    assert layout is not None, "this kernel's task_struct has no block layout"
    tasks: set[int] = set()
    pages: set[int] = set()
    reads = 0
    for task in _pid_table_tasks(prog):
        address = task.value_()
        prog.read(address + layout.start, layout.size)
        pages.update(_pages(address + layout.start, layout.size))
        reads += 2  # the struct pid's link (in _pid_table_tasks) and the block
        tasks.add(address)
    return Walk(tasks, reads, len(pages))


def pid_pages(prog: drgn.Program) -> int:
    """The distinct pages of the PID table's ``struct pid``\\ s (each one's task link is read)."""
    return len({entry.value_() // _PAGE for _nr, entry in idr_for_each(prog["init_pid_ns"].idr)})


def list_walk(prog: drgn.Program) -> Walk:
    """Processes along ``init_task.tasks``, each one's threads along ``thread_node``, one block each
    (the listing's block widened to ``task->signal``)."""
    layout = _layout(prog)
    assert layout is not None, "this kernel's task_struct has no block layout"
    ttype = prog.type("struct task_struct")
    start = layout.start
    tasks_at = drgn.offsetof(ttype, "tasks") - start
    node_at = drgn.offsetof(ttype, "thread_node") - start
    signal_at = drgn.offsetof(ttype, "signal") - start
    size = max(layout.size, signal_at + 8)
    thread_head = drgn.offsetof(prog.type("struct signal_struct"), "thread_head")
    tasks_offset, node_offset = tasks_at + start, node_at + start

    def word(data: bytes, at: int) -> int:
        return int.from_bytes(data[at : at + 8], "little")

    found: set[int] = set()
    pages: set[int] = set()

    def block(task: int) -> bytes:
        found.add(task)
        pages.update(_pages(task + start, size))
        return prog.read(task + start, size)

    head = prog["init_task"].tasks.address_of_().value_()
    node = prog.read_u64(head)
    while node != head:
        data = block(node - tasks_offset)
        end = word(data, signal_at) + thread_head
        link = word(data, node_at)
        while link != end:
            link = word(block(link - node_offset), node_at)
        node = word(data, tasks_at)
    return Walk(found, len(found) + 1, len(pages))  # a block a task and init_task.tasks.next


def idr_only(prog: drgn.Program) -> Walk:
    """The PID table's tree and each ``struct pid``'s task link, no ``task_struct`` read."""
    return Walk({task.value_() for task in _pid_table_tasks(prog)}, 0, 0)


def _load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main(argv: list[str]) -> None:
    rounds = 4
    elf = "--elf" in argv
    for directory in (a for a in argv if a != "--elf"):
        sample = load_sample(Path(directory))
        vmcore = sample.vmcore_elf if elf else sample.vmcore
        prog = drgn.Program()
        prog.set_core_dump(str(vmcore))
        prog.load_debug_info([str(sample.vmlinux)])
        nr_threads = prog["nr_threads"].value_()
        print(f"{sample.dir.name} ({vmcore.name}): nr_threads {nr_threads}")
        walks: list[tuple[str, Callable[[drgn.Program], Walk]]] = [
            ("pid-table", pid_table_walk),
            ("lists", list_walk),
            ("idr only", idr_only),
        ]
        results: dict[str, Walk] = {}
        for round_ in range(rounds):
            # Alternate the order: a small dump fits in libkdumpfile's page cache, and the first walk
            # of a round would pay every page's decompression for the other.
            for name, walk in walks if round_ % 2 == 0 else walks[::-1]:
                begin = time.process_time()
                results[name] = walk(prog)
                cpu = time.process_time() - begin
                result = results[name]
                print(
                    f"  round {round_} {name:9}: {len(result.tasks)} tasks, {cpu:.3f} s CPU "
                    f"({cpu / max(1, len(result.tasks)) * 1e6:.1f} µs a task), {result.reads} reads, "
                    f"{result.pages} pages, load {_load()}",
                    flush=True,
                )
        print(f"  struct pid pages: {pid_pages(prog)} (on top of pid-table's task pages)")
        same = results["pid-table"].tasks == results["lists"].tasks
        print(f"  same tasks: {same}; both nr_threads: {len(results['lists'].tasks) == nr_threads}")


if __name__ == "__main__":
    main(sys.argv[1:])
