"""DAP request handlers, one module per area, and the table of which module answers which request.

Each handler parses its arguments, calls :mod:`vmcore_dap.dump`, and shapes the response body.
Camel-case keys exist only here, at the protocol boundary.

:data:`ROUTES` is read at start (:func:`install`); a handler module is imported on the first request
of one of its commands (:mod:`vmcore_dap.dap.registry`). The modules of :data:`AT_STOP` are imported
while drgn indexes the debug info during ``launch`` (:func:`import_at_stop`): a client asks for them
within milliseconds of the stop, and drgn releases the GIL while it indexes.
"""

from __future__ import annotations

import importlib

from vmcore_dap.dap import registry
from vmcore_dap.dap.registry import Route

__all__ = ["AT_STOP", "REFUSED_COMMANDS", "ROUTES", "import_at_stop", "install", "load_all"]

_P = __name__ + "."

#: Requests that would run or rewind the target: refused (:mod:`.lifecycle`), and advertising no
#: capability, so a client does not offer stepping at all.
REFUSED_COMMANDS = (
    "next",
    "stepIn",
    "stepOut",
    "stepBack",
    "continue",
    "reverseContinue",
    "pause",
    "goto",
    "restart",
    "restartFrame",
)

#: Every request the adapter answers: its module, its thread, the capabilities it makes true.
ROUTES: tuple[Route, ...] = (
    Route("initialize", _P + "session_requests", inline=True),
    Route("cancel", _P + "session_requests", inline=True, capabilities=("supportsCancelRequest",)),
    Route("launch", _P + "launch"),
    Route("configurationDone", _P + "stop", capabilities=("supportsConfigurationDoneRequest",)),
    Route("threads", _P + "threads", inline=True),
    Route("stackTrace", _P + "stack", capabilities=("supportsDelayedStackTraceLoading",), direct=True),
    Route("exceptionInfo", _P + "exception", capabilities=("supportsExceptionInfoRequest",)),
    Route("scopes", _P + "variables"),
    Route("variables", _P + "variables"),
    Route("evaluate", _P + "variables", capabilities=("supportsEvaluateForHovers",)),
    Route("setVariable", _P + "variables"),
    Route("setExpression", _P + "variables"),
    Route("completions", _P + "console", capabilities=("supportsCompletionsRequest",)),
    Route("source", _P + "source"),
    Route("disassemble", _P + "disassembly", capabilities=("supportsDisassembleRequest",)),
    Route("readMemory", _P + "memory", capabilities=("supportsReadMemoryRequest",)),
    Route("writeMemory", _P + "memory"),
    Route("modules", _P + "modules", capabilities=("supportsModulesRequest",)),
    Route("loadedSources", _P + "modules", capabilities=("supportsLoadedSourcesRequest",)),
    Route("vmcore/summary", _P + "kernel_view"),
    Route("vmcore/cpus", _P + "kernel_view"),
    Route("vmcore/stackGroups", _P + "kernel_view"),
    Route("vmcore/blocked", _P + "kernel_view"),
    Route("vmcore/tasksInFunction", _P + "kernel_view"),
    Route("vmcore/selectThread", _P + "kernel_view"),
    Route("vmcore/frameSource", _P + "kernel_view"),
    Route("vmcore/crashReport", _P + "kernel_view"),
    Route("vmcore/entryTypes", _P + "structures"),
    Route("vmcore/setEntryType", _P + "structures"),
    Route("terminate", _P + "lifecycle", capabilities=("supportsTerminateRequest",)),
    Route("disconnect", _P + "lifecycle", inline=True),
    *(Route(command, _P + "lifecycle") for command in REFUSED_COMMANDS),
)

#: Capabilities that describe how handlers behave: C values formatted in hex on request and copied
#: whole (:mod:`.variables`), and the characters after which the Debug Console completes (``.``,
#: ``->``: :mod:`.console`).
EXTRA_CAPABILITIES = {
    "supportsValueFormattingOptions": True,
    "supportsClipboardContext": True,
    "completionTriggerCharacters": [".", ">", "-"],
}

#: What a client asks for right at the stop (VS Code: ``threads``, ``stackTrace``, ``exceptionInfo``,
#: ``scopes``, ``variables``), the stop itself (``configurationDone``), and ``completions``, whose
#: module also prints the panic log at the stop and takes the Debug Console's crash commands.
AT_STOP = ("configurationDone", "threads", "stackTrace", "exceptionInfo", "variables", "completions")


def install() -> None:
    """Declare :data:`ROUTES` and :data:`EXTRA_CAPABILITIES` with the registry (idempotent)."""
    registry.route(ROUTES)
    for name, value in EXTRA_CAPABILITIES.items():
        registry.declare_capability(name, value)


def import_at_stop() -> None:
    """Import the modules of :data:`AT_STOP` now (``launch`` calls it while drgn indexes)."""
    for command in AT_STOP:
        registry.load(command)


def load_all() -> list[str]:
    """Install the routes and import every handler module (tests); return the modules' short names."""
    install()
    names = sorted({entry.module for entry in ROUTES})
    for name in names:
        importlib.import_module(name)
    return [name.rsplit(".", 1)[1] for name in names]


# Before any handler module registers (importing one imports this package first): a handler imported
# directly, as tests do, is checked against its route like one loaded on its first request.
install()
