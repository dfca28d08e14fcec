"""``readMemory`` for the memory inspector; ``writeMemory`` refused (a dump is read-only).

``readMemory`` returns the readable prefix and ``unreadableBytes`` for the rest, so a view across a
page makedumpfile excluded shows the bytes before it and marks the hole instead of failing whole.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.memory.reading import read_prefix
from vmcore_dap.errors import InvalidArguments, ReadOnlyError
from vmcore_dap.handlers.disassembly import parse_memory_reference
from vmcore_dap.handlers.dump_state import current_dump

__all__: list[str] = []

log = logging.getLogger(__name__)

#: Bounds one response (base64 grows it by a third); VS Code's hex editor asks for a few KiB at a time.
_MAX_READ = 16 << 20


@registry.request("readMemory")
def read_memory(session: Session, args: Args) -> dict[str, Any]:
    """Read ``count`` bytes at ``memoryReference`` + ``offset``: readable prefix + unreadable count."""
    prog = current_dump(session).prog
    address = parse_memory_reference(prog, "readMemory", args.string("memoryReference"))
    address += args.integer("offset", 0)
    count = args.integer("count", minimum=0)
    if count > _MAX_READ:
        raise InvalidArguments(f"readMemory: count {count} is too large (at most {_MAX_READ} bytes at once)")
    if not 0 <= address < 1 << 64:
        raise InvalidArguments(f"readMemory: address {address:#x} is outside the 64-bit address space")
    read = read_prefix(prog, address, count)
    body: dict[str, Any] = {"address": f"{address:#x}", "data": base64.b64encode(read.data).decode()}
    if read.unreadable:
        body["unreadableBytes"] = read.unreadable
        if read.reason:
            log.debug("readMemory: %s", read.reason)
    return body


@registry.request("writeMemory")
def write_memory(session: Session, args: Args) -> None:
    """Refuse: nothing in a crash dump can be changed (the capability is not advertised)."""
    raise ReadOnlyError("writeMemory")
