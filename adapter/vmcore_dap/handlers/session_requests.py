"""``initialize`` and ``cancel``: the requests about the conversation itself rather than the dump."""

from __future__ import annotations

from typing import Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.versions import INITIALIZE_KEY, running_versions

__all__: list[str] = []


@registry.request("initialize")
def initialize(session: Session, args: Args) -> dict[str, Any]:
    """Record the client's capabilities and answer with ours, computed from the registry, plus the
    versions of the adapter and drgn (the extension warns when they are not the ones it ships)."""
    session.client = dict(args.raw)
    return {**registry.capabilities(), INITIALIZE_KEY: running_versions().as_body()}


@registry.request("cancel")
def cancel(session: Session, args: Args) -> None:
    """Mark a queued or running request (or the request behind a progress report) as cancelled."""
    session.cancel(args.opt_integer("requestId"), args.opt_string("progressId"))
