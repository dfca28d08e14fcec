"""``threads``: the task table built at launch, served from the reader thread.

It runs inline (never queued behind a long request) and touches no drgn object: the rows are plain
``(id, name)`` pairs published whole by ``launch``. Before launch the list is empty, as DAP allows.
"""

from __future__ import annotations

from typing import Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.handlers.dump_state import dump_state

__all__: list[str] = []


@registry.request("threads", inline=True)
def threads(session: Session, args: Args) -> dict[str, Any]:
    """List every task, crashed task first, named ``PID 123 comm [S] CPU1``."""
    rows = dump_state(session).thread_rows
    return {"threads": [{"id": thread_id, "name": name} for thread_id, name in rows]}
