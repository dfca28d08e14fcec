"""A real Dask distributed cluster on this machine, as the triage tests and ``make bench`` use it.

Two worker processes with one thread each (drgn programs are per process; a 2-core machine), a
dashboard on a free port, and Dask's own logs silenced: at shutdown a worker may log a failed
heartbeat to the scheduler that just closed, which says nothing about the run.
"""

from __future__ import annotations

import logging
from typing import Any


def local_cluster(workers: int = 2) -> Any:
    """A started ``dask.distributed.LocalCluster`` (use it as a context manager)."""
    from dask.distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    )
