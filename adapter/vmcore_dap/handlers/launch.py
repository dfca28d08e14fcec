"""``launch``: open the vmcore named in the launch configuration, with DAP progress events, then
answer and send ``initialized``.

Opening is checks, drgn, and the debug info (:func:`~vmcore_dap.dump.opening.opener.open_dump`).
While drgn indexes the debug info, which takes most of it and releases the GIL, another thread
imports the handlers the client asks for right at the stop (:func:`vmcore_dap.handlers.import_at_stop`):
they are not on the way to the first picture any more. The task list, the panic facts and the stop
itself are :mod:`.stop`'s.
"""

from __future__ import annotations

from typing import Any

# drgn's Linux helpers (30-40 ms to import), which the task and panic modules need: here, before the
# index, not with the stop's modules alongside it, where the first picture measured 12-51 ms slower
# by wall (bench/RESULTS.md, first-picture-4). drgn's plugins no longer import them at the open.
import drgn.helpers.linux  # noqa: F401

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.opening.opener import open_dump
from vmcore_dap.dump.stacks.idle_cpus import IdleMeter
from vmcore_dap.errors import SettingError, UserError
from vmcore_dap.handlers import import_at_stop
from vmcore_dap.handlers.dump_state import dump_state

__all__ = ["launch"]


@registry.request("launch")
def launch(session: Session, args: Args) -> dict[str, Any] | None:
    """Open the vmcore named in the launch configuration."""
    try:
        _launch(session, args)
    except SettingError as exc:  # the dump layer names the setting; the client wrote it in launch.json
        raise exc.located("launch.json") from None
    return None


def _launch(session: Session, args: Args) -> None:
    config = LaunchConfig.from_arguments(args.raw)
    state = dump_state(session)
    if state.dump is not None:
        raise UserError(
            f"launch: vmcore '{state.dump.config.vmcore}' is already open in this session "
            "(start a new debug session for another dump)"
        )
    with session.progress("Opening vmcore", message=str(config.vmcore)) as progress:
        meter = IdleMeter()  # whether a CPU is spare for the stack prefetch, seen while opening
        dump = open_dump(
            config,
            lambda message, percentage: progress.update(message, percentage),
            while_indexing=import_at_stop,
        )
        from vmcore_dap.handlers.stop import take_dump  # imported while drgn indexed

        take_dump(session, state, dump, progress, meter)
    session.after_response(lambda: session.send_event("initialized"))
