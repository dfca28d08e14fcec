"""Where the per-dump work runs: local processes, or an existing Dask distributed cluster.

Both run :func:`~vmcore_dap.triage.analysis.triage_dump` (plain arguments in, a plain dict out) and
hand each report to ``on_result`` as soon as it is done, in completion order. One dump costs a
drgn program of a few hundred MB for a few seconds, so locally at most one process per CPU runs.

A process that dies (drgn is C; a damaged dump could crash it; the OOM killer or a resource limit
can end it) must cost its own dump only, whatever instant it dies at. Locally, each dump is
therefore read in a process of its own, spawned for it and ended after it, its report coming back
on a pipe only that process writes to: a death shows as the end of that pipe and the process's
exit status, and nothing is shared with the other dumps' processes. (A ``ProcessPoolExecutor``
shares a call queue, its lock and a feeder thread among its workers, and CPython has had deadlocks
there when a worker dies at the wrong instant, gh-94777 among them (this venv's 3.11.7 has that
fix); with one, killing workers as they started was seen to leave a whole run hanging, once in
three tries. And once the pool was broken, every dump in flight had to be read again.) A new
interpreter per dump costs about 0.1 s of CPU (measured: start and imports), little next to the
0.5 s to several seconds drgn spends on a dump. On Dask, the scheduler already retries elsewhere
and a dump whose task fails for good (``KilledWorker``) gets a report saying so.

Dask is an optional dependency (``pip install 'vmcore-dap[triage]'``), imported only with
``--scheduler``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any

from vmcore_dap.errors import UserError
from vmcore_dap.triage.analysis import TriageOptions, triage_dump
from vmcore_dap.triage.report import new_report

__all__ = ["ResultCallback", "default_jobs", "run_dask", "run_local"]

log = logging.getLogger(__name__)

#: ``on_result(report)``, called in the caller's process for every dump.
ResultCallback = Callable[[dict[str, Any]], None]

#: Seconds a process whose report (or the end of its pipe) came gets to exit, e.g. dropping a drgn
#: program of a few hundred MB, before it is killed: its dump's outcome is known by then.
EXIT_GRACE = 30.0


def default_jobs() -> int:
    """One process per CPU this process may run on."""
    return max(len(os.sched_getaffinity(0)), 1)


def _worker_died(
    vmcore: str, why: str, pid: int | None = None, exitcode: int | None = None
) -> dict[str, Any]:
    """The report of a dump whose process ended without sending one (``pid`` and ``exitcode``, in
    :attr:`multiprocessing.Process.exitcode`'s form, when known: locally)."""
    report = new_report(Path(vmcore))
    who = "The process reading" if pid is None else f"Process {pid} reading"
    report["error"] = {"kind": "worker-died", "message": f"{who} '{vmcore}' died: {why}"}
    if pid is not None:
        report["error"].update(pid=pid, exitcode=exitcode)
    return report


def _death(exitcode: int | None) -> str:
    """How a process ended, and what a person can do about it, for a ``worker-died`` report."""
    if exitcode is None or exitcode >= 0:
        return (
            f"it exited with status {exitcode} before sending its report (what it printed, if "
            "anything, is on this command's standard error; the next run reads this dump again)"
        )
    number = -exitcode
    name = signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"
    hints: dict[int, str] = {
        signal.SIGKILL: "killed from outside, e.g. by the kernel's OOM killer: check dmesg, and give "
        "each process more memory with a lower --jobs",
        signal.SIGXCPU: "its CPU time limit was reached: raise 'ulimit -t'",
        signal.SIGTERM: "terminated from outside",
    }
    hint = hints.get(number, "drgn may have crashed on this dump: open it alone in the debugger")
    return f"killed by {name} ({hint}; the next run reads this dump again)"


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


def _read_one(vmcore: str, options: TriageOptions, results: Connection) -> None:
    """In the dump's own process: read it and send its report back (then the process ends)."""
    # Ctrl-C reaches the whole process group; the parent answers it by ending its children, and
    # a KeyboardInterrupt traceback from each of them would only bury its message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_logging()
    results.send(triage_dump(vmcore, options))
    results.close()
    logging.shutdown()


@dataclass
class _Reading:
    """One dump being read in its own process, and the pipe its report comes back on."""

    vmcore: str
    process: SpawnProcess
    results: Connection

    def finish(self) -> dict[str, Any]:
        """The dump's report, once its pipe or process says it is over (the process has ended after)."""
        try:
            report: dict[str, Any] | None = self.results.recv()
        except (EOFError, OSError):  # the process ended before, or while, sending its report
            report = None
        finally:
            self.results.close()
        self.process.join(EXIT_GRACE)
        if self.process.exitcode is None:
            log.warning("the process that read %s did not exit: killed", self.vmcore)
            self.process.kill()
            self.process.join()
        pid, exitcode = self.process.pid, self.process.exitcode
        self.process.close()  # its sentinel's file descriptor, now rather than at garbage collection
        if report is None:
            return _worker_died(self.vmcore, _death(exitcode), pid, exitcode)
        return report

    def stop(self) -> None:
        """End the process now (the run is being abandoned)."""
        self.results.close()
        if self.process.pid is not None:
            self.process.kill()
            self.process.join()


def _spawn(context: SpawnContext, vmcore: str, options: TriageOptions) -> _Reading | dict[str, Any]:
    """Start reading ``vmcore`` in a new process; a report instead if no process could be started."""
    receiver, sender = context.Pipe(duplex=False)
    # spawn: a fresh interpreter, whatever threads the caller (a test runner, an IDE) has. daemon:
    # multiprocessing's exit handler ends it if this interpreter exits past run_local's cleanup.
    process = context.Process(target=_read_one, args=(vmcore, options, sender), daemon=True)
    reading = _Reading(vmcore, process, receiver)
    try:
        process.start()
    except OSError as exc:
        receiver.close()
        report = new_report(Path(vmcore))
        report["error"] = {
            "kind": "worker-died",
            "message": f"Cannot start a process to read '{vmcore}': {exc} (too many processes or too "
            "little memory? run again with a lower --jobs)",
        }
        return report
    finally:
        # The child has its own copy now; with this one closed, the pipe ends when the child does.
        sender.close()
    return reading


def run_local(paths: Sequence[Path], options: TriageOptions, jobs: int, on_result: ResultCallback) -> None:
    """Triage ``paths`` in local processes, one per dump, at most ``jobs`` at a time."""
    context = multiprocessing.get_context("spawn")
    waiting = deque(str(path) for path in paths)
    running: list[_Reading] = []
    try:
        while waiting or running:
            while waiting and len(running) < max(jobs, 1):
                started = _spawn(context, waiting.popleft(), options)
                if isinstance(started, _Reading):
                    running.append(started)
                else:
                    on_result(started)
            if not running:
                continue
            # The pipe is ready when the report (or its end) is there, the sentinel when the process
            # has ended: a death before, while or after sending is seen either way.
            ready = set(wait([r.results for r in running] + [r.process.sentinel for r in running]))
            for reading in [r for r in running if r.results in ready or r.process.sentinel in ready]:
                running.remove(reading)
                on_result(reading.finish())
    finally:
        for reading in running:  # only on an exception (Ctrl-C, a full disk in on_result)
            reading.stop()


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
