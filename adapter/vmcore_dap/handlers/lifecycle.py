"""Ending the session, and refusing everything that would resume or change a frozen dump.

The refusals advertise no capability: a client should not offer stepping at all; one that sends the
request anyway gets the read-only message.
"""

from __future__ import annotations

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.errors import ReadOnlyError
from vmcore_dap.handlers import REFUSED_COMMANDS

__all__ = ["REFUSED_COMMANDS"]


@registry.request("terminate")
def terminate(session: Session, args: Args) -> None:
    """There is nothing to kill: report the session as terminated after the response."""
    session.after_response(lambda: session.send_event("terminated"))


@registry.request("disconnect")
def disconnect(session: Session, args: Args) -> None:
    """End the session once the response is sent (the adapter process then exits)."""
    session.close()


def _refuse(session: Session, args: Args) -> None:
    raise ReadOnlyError(args.command)


for _command in REFUSED_COMMANDS:
    registry.request(_command)(_refuse)
