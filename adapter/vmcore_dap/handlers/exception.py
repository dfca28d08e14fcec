"""``exceptionInfo``: the panic as an exception — panic string, oops line, taint, the oops report.

VS Code shows ``description`` in the exception widget and ``details`` (message, type, stack) in its
expandable part; the report's log lines go in ``details.stackTrace`` since that is where a person
expects the kernel's own backtrace.
"""

from __future__ import annotations

from typing import Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.errors import NotAvailable
from vmcore_dap.handlers.dump_state import dump_state, thread_task

__all__: list[str] = []


@registry.request("exceptionInfo")
def exception_info(session: Session, args: Args) -> dict[str, Any]:
    """Describe the panic for the crashed thread."""
    thread_id = args.integer("threadId")
    thread_task(session, thread_id)
    state = dump_state(session)
    panic = state.panic
    if panic is None or state.crashed_thread_id is None or (panic.panic is None and panic.oops is None):
        raise NotAvailable("exceptionInfo: the dump records no panic")
    if thread_id != state.crashed_thread_id:
        raise NotAvailable(f"exceptionInfo: thread {thread_id} is not the task that panicked")
    details: dict[str, Any] = {
        "message": panic.oops or panic.panic,
        "typeName": f"kernel panic ({panic.taint_description})",
        "fullTypeName": panic.taint_description,
    }
    if panic.report:
        details["stackTrace"] = "\n".join(panic.report)
    return {
        "exceptionId": panic.kind.label,
        "description": panic.panic or panic.oops,
        "breakMode": "always",
        "details": details,
    }
