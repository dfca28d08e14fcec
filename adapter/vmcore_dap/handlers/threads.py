"""``threads``: the task table built at launch, served from the reader thread.

It runs inline (never queued behind a long request) and touches no drgn object: the body is the JSON
of the rows ``launch`` published, encoded once (50,000 tasks are 2 MB of it). Before launch the list
is empty, as DAP allows. A large dump stops before all its tasks are listed: the list then holds the
crashed task, the tasks on the CPUs and the idle tasks, and grows once (a ``thread`` event says when).
"""

from __future__ import annotations

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.dap.transport import EncodedBody
from vmcore_dap.handlers.dump_state import dump_state

__all__: list[str] = []


@registry.request("threads")
def threads(session: Session, args: Args) -> EncodedBody:
    """List every task, crashed task first, named ``PID 123 comm [S] CPU1``."""
    return dump_state(session).threads_body
