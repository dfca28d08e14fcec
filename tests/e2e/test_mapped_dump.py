"""The dump file's pages that libkdumpfile maps are given back during task walks
(``dump/opening/mapped_dump.py``): what is read afterwards must be what was read before."""

from __future__ import annotations

from typing import Any

from tests.e2e._session import open_sample_dump

from vmcore_dap.dump.kernel.tasks import list_tasks
from vmcore_dap.dump.opening.mapped_dump import mapped_dump_pages, watch_dump_file


def test_released_pages_of_the_dump_read_back_the_same(sample_many: Any) -> None:
    """After a release no page of the compressed file is resident in the process, and every task's
    ``task_struct`` reads back byte for byte (each page faults back in from the page cache)."""
    dump = open_sample_dump(sample_many)
    prog = dump.prog
    pages = mapped_dump_pages(prog)
    assert pages is not None, "a kdump-compressed vmcore is watched when it is opened"
    tasks = list_tasks(prog)
    assert len(tasks) > 5000
    before = [prog.read(info.address, 256) for info in tasks]
    assert pages.resident_kib() > 0, "reading every task left none of the file mapped: nothing to test"
    assert pages.release() > 0
    assert pages.resident_kib() == 0
    assert [prog.read(info.address, 256) for info in tasks] == before


def test_listing_is_the_same_when_pages_are_released_after_every_read(sample_many: Any) -> None:
    """The thread list does not depend on how often the file's pages are given back: released after
    every task, it equals a listing that keeps them mapped."""
    kept = open_sample_dump(sample_many)
    watch_dump_file(kept.prog, sample_many.vmcore, every=1 << 40)
    released = open_sample_dump(sample_many)
    watch_dump_file(released.prog, sample_many.vmcore, every=1)

    def rows(prog: Any) -> list[tuple[Any, ...]]:
        return [(t.address, t.pid, t.tgid, t.comm, t.state, t.cpu, t.stack, t.mm) for t in list_tasks(prog)]

    expected = rows(kept.prog)
    assert rows(released.prog) == expected
    pages = mapped_dump_pages(released.prog)
    assert pages is not None and pages.released > 0
