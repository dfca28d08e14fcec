"""Where the per-dump work runs: a local process pool, or an existing Dask distributed cluster.

Both run :func:`~vmcore_dap.triage.analysis.triage_dump` (plain arguments in, a plain dict out) and
hand each report to ``on_result`` as soon as it is done, in completion order. One dump costs a
drgn program of a few hundred MB for a few seconds, so the local pool has one process per CPU.

A worker that dies (drgn is C; a damaged dump could crash it) must not end the run: the local pool
then re-runs each dump that was in flight alone, in a fresh process, so only the dump that kills its
process gets a report saying so; on Dask, the scheduler already retries elsewhere and a dump whose
task fails for good (``KilledWorker``) gets such a report too.

Dask is an optional dependency (``pip install 'vmcore-dap[triage]'``), imported only with
``--scheduler``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from vmcore_dap.errors import UserError
from vmcore_dap.triage.analysis import TriageOptions, triage_dump
from vmcore_dap.triage.report import new_report

__all__ = ["ResultCallback", "default_jobs", "run_dask", "run_local"]

log = logging.getLogger(__name__)

#: ``on_result(report)``, called in the caller's process for every dump.
ResultCallback = Callable[[dict[str, Any]], None]


def default_jobs() -> int:
    """One worker per CPU this process may run on."""
    return max(len(os.sched_getaffinity(0)), 1)


def _worker_died(vmcore: str, why: str) -> dict[str, Any]:
    report = new_report(Path(vmcore))
    report["error"] = {"kind": "worker-died", "message": f"The process reading '{vmcore}' died: {why}"}
    return report


def _worker_logging() -> None:
    """A spawned worker starts with Python's default logging, warnings with tracebacks to stderr, which
    would tear the progress bar apart. The report's ``error`` and ``problems`` carry what matters;
    the dump layer's own log goes to ``$VMCORE_DAP_LOG`` when it is set (as for the adapter)."""
    root = logging.getLogger()
    root.handlers.clear()
    path = os.environ.get("VMCORE_DAP_LOG")
    if path:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s: %(message)s"))
        root.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    root.addHandler(handler)


def _pool(jobs: int) -> ProcessPoolExecutor:
    # spawn: a fresh interpreter per worker, whatever threads the caller (a test runner, an IDE) has.
    return ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_logging
    )


def run_local(paths: Sequence[Path], options: TriageOptions, jobs: int, on_result: ResultCallback) -> None:
    """Triage ``paths`` on a pool of ``jobs`` local processes."""
    if not paths:
        return
    orphans: list[str] = []
    with _pool(min(jobs, len(paths))) as pool:
        pending: dict[Future[dict[str, Any]], str] = {}
        for path in paths:
            try:
                pending[pool.submit(triage_dump, str(path), options)] = str(path)
            except BrokenProcessPool:  # a worker died while the dumps were still being handed out
                orphans.append(str(path))
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                vmcore = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    orphans.append(vmcore)
                    continue
                on_result(result)
    for vmcore in orphans:  # alone, so the dump that kills its worker is the only one it costs
        with _pool(1) as single:
            try:
                result = single.submit(triage_dump, vmcore, options).result()
            except BrokenProcessPool as exc:
                result = _worker_died(vmcore, f"{exc} (drgn may have crashed on this dump)")
            on_result(result)


def run_dask(
    paths: Sequence[Path],
    options: TriageOptions,
    scheduler: str,
    on_result: ResultCallback,
    announce: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> None:
    """Triage ``paths`` on the Dask distributed cluster whose scheduler is at ``scheduler``.

    The workers must be able to import ``vmcore_dap`` and read the dumps and debug info at the same
    paths. ``announce`` receives where the cluster's dashboard is, for watching progress there.
    """
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise UserError(
            "--scheduler needs Dask distributed, which is not installed "
            "(pip install 'vmcore-dap[triage]', or run without --scheduler for the local pool)"
        ) from None
    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise UserError(
            f"Cannot reach the Dask scheduler at '{scheduler}': {exc} "
            "(check the address, e.g. tcp://host:8786, and that the scheduler is running)"
        ) from None
    with client:
        if client.dashboard_link:
            announce(f"Dask dashboard: {client.dashboard_link}")
        names = [str(p) for p in paths]
        futures = client.map(triage_dump, names, options=options, pure=False)
        which = {future.key: name for future, name in zip(futures, names, strict=True)}
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker and the like: that dump only
                result = _worker_died(which[future.key], f"{type(exc).__name__}: {exc}")
            on_result(result)
