"""Stacks read ahead on a second process (``dump/stacks/prefetch.py``) match as stacks read here.

The second process sends, per task, only the words of its used stack at or above the kernel image's
start; matching must not see the difference:

* for every task of a real dump, the chain the walk finds in the prefetched words is the chain it
  finds in the stack read on the drgn thread, and grouping and the function index are the same
  with the prefetch and without;
* when the second process dies half-way, the drgn thread reads the rest itself, with the same groups;
* the listing, with part of its ``task_struct`` blocks read there (:meth:`StackPrefetch.request`),
  lists every task exactly as without, also when that process dies half-way through the listing;
* through DAP (forced on with ``VMCORE_DAP_PREFETCH=1``), ``vmcore/stackGroups`` equals the answer
  of an adapter without it (``0``), on many-tasks and (``-m huge``) on huge.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import get_sample
from tests.e2e._session import config_for, open_sample_dump
from tests.helpers.dap_client import DapClient

from vmcore_dap.dump.kernel.panic import crashed_task, focus_task
from vmcore_dap.dump.kernel.tasks import TaskInfo, TaskListing
from vmcore_dap.dump.stacks.prefetch import (
    _WINDOW,
    MAX_SHARE,
    PREFETCH_ENV,
    StackPrefetch,
    WalkedChain,
    start_prefetch,
)
from vmcore_dap.dump.stacks.service import StackService
from vmcore_dap.dump.stacks.signature import KernelWords, StackReader, StackWords

pytestmark = pytest.mark.timeout(900)


def _service(sample: Any, prefetched: bool, monkeypatch: pytest.MonkeyPatch) -> StackService:
    """A stack service over a listing walked in the adapter's chunks, its tasks fed to a second
    process as they are listed when ``prefetched``."""
    monkeypatch.setenv(PREFETCH_ENV, "1" if prefetched else "0")
    dump = open_sample_dump(sample)
    crashed = crashed_task(dump.prog)
    listing = TaskListing(dump.prog, focus_task(dump.prog))
    prefetch = start_prefetch(dump.prog, sample.vmcore)
    assert (prefetch is not None) == prefetched
    if prefetch is not None:
        listing.on_listed = lambda tasks: prefetch.feed((t.address, t.stack) for t in tasks)
    done = listing.step(64)
    listing.blocks = prefetch  # after the first step, as the launch does
    while not done:
        done = listing.step(64)
    service = StackService(dump.prog, listing.tasks(), crashed.value_() if crashed else None)
    service.prefetch = prefetch
    return service


def _shape(service: StackService) -> list[tuple[object, ...]]:
    return [(g.functions, tuple(f.pc for f in g.frames), tuple(g.members)) for g in service.groups().groups]


def _taken(service: StackService) -> Iterator[tuple[TaskInfo, object, StackWords | None]]:
    """Each task the second process answered for: what :meth:`StackPrefetch.take` gives, and the
    task's own stack read here."""
    prefetch = service.prefetch
    assert isinstance(prefetch, StackPrefetch)
    reader = StackReader(service.prog)
    for info in service.tasks.values():
        ahead = prefetch.take(info.address)
        if ahead is not False:
            yield info, ahead, reader.read(info.address, info.stack)


def test_prefetched_words_walk_the_same_chains(sample_many: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task's prefetched words give the chain its own stack gives, and the groups and the
    function index are those without the prefetch."""
    plain = _service(sample_many, False, monkeypatch)
    groups = _shape(plain)
    prefetched = _service(sample_many, True, monkeypatch)
    chains = plain.chains  # learnt from every distinct stack of the dump
    compared = 0
    for info, ahead, own in _taken(prefetched):
        if ahead is None or own is None:
            assert ahead is None and own is None, info.display_name
            continue
        assert isinstance(ahead, KernelWords)  # no table was given to the process
        assert (ahead.sp, ahead.size) == (own.sp, own.size)
        assert chains.chain_of(ahead) == chains.chain_of(own), info.display_name
        compared += 1
    assert compared > len(prefetched.tasks) * 0.9  # nearly every task was read ahead
    # ... by the lean entry point (tests/unit/test_start_imports.py: it imports no drgn helper).
    assert isinstance(prefetched.prefetch, StackPrefetch)
    assert prefetched.prefetch._proc.args[1:3] == ["-m", "vmcore_dap.dump.stacks.prefetch_child"]
    # A fresh service with the prefetch matches like the plain one.
    again = _service(sample_many, True, monkeypatch)
    assert _shape(again) == groups
    assert again.prefetch is None  # closed once every task was matched
    assert again.function_index().by_function == plain.function_index().by_function


def test_stacks_walked_on_the_second_process_follow_the_chains_their_own_stacks_do(
    sample_many: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the table learnt from every distinct stack of the dump, the second process names the
    chain each task's stack follows (no words sent): the one the task's own stack, read and walked
    here, is found under."""
    plain = _service(sample_many, False, monkeypatch)
    plain.groups()
    chains = plain.chains
    prefetched = _service(sample_many, True, monkeypatch)
    assert prefetched.prefetch is not None
    prefetched.prefetch.chains = chains  # as the service hands over the table it learns
    walked = 0
    for info, ahead, own in _taken(prefetched):
        if isinstance(ahead, WalkedChain):
            assert own is not None, info.display_name
            assert chains.value_at(ahead.registered) == chains.find(own), info.display_name
            walked += 1
        elif ahead is not None:
            assert own is not None and chains.find(own) is None or walked < _WINDOW, info.display_name
    # The first window goes out before any table; after it, every stack there is a known chain.
    assert walked > len(prefetched.tasks) - 2 * _WINDOW


def test_a_second_process_that_dies_leaves_the_stacks_to_the_drgn_thread(
    sample_many: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = _shape(_service(sample_many, False, monkeypatch))
    service = _service(sample_many, True, monkeypatch)
    assert service.prefetch is not None
    total = len(service.tasks)
    assert not service.match_stacks(total // 3)
    service.prefetch._proc.kill()  # half-way: the rest is read on the drgn thread
    assert _shape(service) == groups


def _rows(tasks: list[TaskInfo]) -> list[tuple[object, ...]]:
    """Every field of each task but its program."""
    return [tuple(getattr(t, f.name) for f in dataclasses.fields(t) if f.name != "prog") for t in tasks]


def _listing(sample: Any, prefetched: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[TaskListing, Any]:
    monkeypatch.setenv(PREFETCH_ENV, "1" if prefetched else "0")
    dump = open_sample_dump(sample)
    listing = TaskListing(dump.prog, focus_task(dump.prog), problems=[])
    prefetch = start_prefetch(dump.prog, sample.vmcore)
    if prefetch is not None:
        prefetch.fixed_share = MAX_SHARE  # blocks there whether or not it keeps up
        listing.on_listed = lambda tasks: prefetch.feed((t.address, t.stack) for t in tasks)
    listing.step(64)
    listing.blocks = prefetch
    return listing, prefetch


def test_blocks_read_on_the_second_process_list_the_same_tasks(
    sample_many: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Part of the listing's blocks come from the second process; every field of every task is the
    one read on the drgn thread, and the stacks of the tasks it listed are still read ahead."""
    plain, _ = _listing(sample_many, False, monkeypatch)
    expected = _rows(plain.tasks())
    listing, prefetch = _listing(sample_many, True, monkeypatch)
    assert isinstance(prefetch, StackPrefetch)
    tasks = listing.tasks()
    assert _rows(tasks) == expected
    assert prefetch.blocks_read > len(tasks) // 4, prefetch.blocks_read
    ahead = sum(1 for t in tasks[len(listing.head) :] if prefetch.take(t.address) is not False)
    assert ahead > len(tasks) * 0.9, ahead
    prefetch.close()


def test_a_second_process_that_dies_mid_listing_leaves_the_blocks_to_the_drgn_thread(
    sample_many: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, _ = _listing(sample_many, False, monkeypatch)
    expected = _rows(plain.tasks())
    listing, prefetch = _listing(sample_many, True, monkeypatch)
    assert isinstance(prefetch, StackPrefetch)
    while listing.listed < len(expected) // 3:
        assert not listing.step(64)
    served = prefetch.blocks_read
    assert served > 0
    prefetch._proc.kill()  # half-way: the rest is read on the drgn thread
    assert _rows(listing.tasks()) == expected
    assert listing.pid_table_tasks == plain.pid_table_tasks


def test_a_closed_second_process_never_closes_a_later_ones_pipe(
    sample_many: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once one second process is closed and forgotten, the next one still answers (closing the
    first's pipe by its bare number let the collected file object close the number again: the
    second's pipe by then)."""
    monkeypatch.setenv(PREFETCH_ENV, "1")
    dump = open_sample_dump(sample_many)
    first = start_prefetch(dump.prog, sample_many.vmcore)
    assert first is not None
    first.close()
    first._proc.wait()
    first._reader.join(10)  # it ends once its process is gone
    second = start_prefetch(dump.prog, sample_many.vmcore)
    assert second is not None
    second.fixed_share = MAX_SHARE
    del first
    gc.collect()  # the first's file objects go now, after the second's pipes were made
    listing = TaskListing(dump.prog, focus_task(dump.prog))
    listing.step(64)
    listing.blocks = second
    listing.tasks()
    assert second.blocks_read > 0
    second.close()


def test_the_share_of_blocks_follows_how_far_the_second_process_lags(
    sample_many: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tuned from the lag (not the default): no blocks while thousands of stacks are unanswered
    (the listing would wait for them); the most once every stack asked for is answered."""
    listing, prefetch = _listing(sample_many, True, monkeypatch)
    assert isinstance(prefetch, StackPrefetch)
    tasks = listing.tasks()
    others = [t for t in tasks if t.stack]
    # Listed with share MAX_SHARE: ask for every stack again on a fresh process, all at once.
    prefetch.close()
    fresh = start_prefetch(listing.prog, sample_many.vmcore)
    assert fresh is not None
    assert fresh.fixed_share == 0.0  # none unless asked for (bench/RESULTS.md)
    fresh.fixed_share = None  # tuned from the lag
    fresh.feed((t.address, t.stack) for t in others)
    assert len(others) > 4 * 1024
    assert fresh.share(1024) == 0.0  # 5,000 stacks asked for, none answered yet
    assert fresh.request([t.address for t in others[:1024]]) == []
    answered = sum(1 for t in others if fresh.take(t.address) is not False)
    assert answered == len(others)
    assert fresh.share(1024) == MAX_SHARE  # every stack answered: it keeps up
    fresh.close()


def _dap_groups_with_and_without(sample: Any, tmp_path: Path) -> None:
    bodies = []
    for value in ("0", "1"):
        (tmp_path / value).mkdir()
        with DapClient(tmp_path / value, env={PREFETCH_ENV: value}) as client:
            client.launch_and_stop(config_for(sample), timeout=600, whole_thread_list=False)
            body = client.call("vmcore/stackGroups", timeout=600)
            bodies.append([(g["frames"], g["threadIds"], g["stateLetters"]) for g in body["groups"]])
            assert client.schema_errors == []
            log = client.log_path.read_text() if client.log_path is not None else ""
            assert ("reading stacks ahead on a second process" in log) == (value == "1")
    assert bodies[0] == bodies[1]


def _many_tasks_kernels() -> list[Any]:
    """The default kernel's many-tasks sample, and in ``make test-matrix`` every other kernel's (Debian
    13's 6.12: the second process then reads another kernel's task_struct layout and stacks)."""
    from samples.sample_store import DEFAULT_KERNEL, samples_under_test

    return [pytest.param(None, id="many-tasks")] + [
        pytest.param(spec.kernel, id=f"many-tasks@{spec.kernel}", marks=pytest.mark.other_kernel)
        for spec in samples_under_test()
        if spec.scenario == "many-tasks" and spec.kernel != DEFAULT_KERNEL and spec.variant is None
    ]


@pytest.mark.parametrize("kernel", _many_tasks_kernels())
def test_dap_groups_equal_with_and_without_the_prefetch(kernel: str | None, tmp_path: Path) -> None:
    _dap_groups_with_and_without(get_sample("many-tasks", kernel), tmp_path)


@pytest.mark.huge
def test_dap_groups_equal_with_and_without_the_prefetch_at_50000_tasks(
    sample_huge: Any, tmp_path: Path
) -> None:
    _dap_groups_with_and_without(sample_huge, tmp_path)
