"""What the adapter imports at start, at ``launch`` before drgn indexes, and by the first picture: not
the modules only a later request needs.

At start the adapter reads the table of routes (:data:`vmcore_dap.handlers.ROUTES`), not the handler
modules: each is imported on the first request of one of its commands. ``launch`` imports its own
module and what opening needs; the handlers a client asks for right at the stop are imported while drgn
indexes the debug info (:func:`vmcore_dap.handlers.import_at_stop`), off the way to the first picture
(issue 18: first picture ≤ 1.2× a plain drgn script). The rest loads on its first use. A fresh
interpreter does exactly what ``cli._serve`` and those requests do, then lists ``sys.modules``: a real
import check, not a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ADAPTER = Path(__file__).resolve().parents[2] / "adapter"

#: Imported while drgn indexes, not before: the stop, the task list and panic facts, the stack and
#: variables handlers and the dump modules behind them.
IMPORTED_WHILE_INDEXING = (
    "vmcore_dap.handlers.stop",
    "vmcore_dap.handlers.threads",
    "vmcore_dap.handlers.stack",
    "vmcore_dap.handlers.variables",
    "vmcore_dap.handlers.exception",
    "vmcore_dap.handlers.console",
    "vmcore_dap.dump.kernel.tasks",
    "vmcore_dap.dump.kernel.panic",
    "vmcore_dap.dump.stacks.service",
    "vmcore_dap.dump.stacks.frames",
    "vmcore_dap.dump.values.render",
)

#: Loaded on first use only: the handlers of the Kernel view, the structures pane, the disassembler,
#: memory and modules, the C-expression evaluator and the console's command sets (the Debug Console's
#: first line), the Kernel view's lock, summary and crash-report modules (its first request), the
#: disassembler and its listings (the first ``disassemble``, or a frame whose source file is missing).
LOADED_ON_FIRST_USE = (
    "vmcore_dap.handlers.kernel_view",
    "vmcore_dap.handlers.structures",
    "vmcore_dap.handlers.disassembly",
    "vmcore_dap.handlers.memory",
    "vmcore_dap.handlers.modules",
    "vmcore_dap.dump.values.cexpr",
    "vmcore_dap.dump.console.commands",
    "vmcore_dap.dump.console.completions",
    "vmcore_dap.dump.kernel.locks",
    "vmcore_dap.dump.stacks.waits",
    "vmcore_dap.dump.report.summary",
    "vmcore_dap.dump.report.crash_report",
    "vmcore_dap.dump.disassembly.disasm",
    "vmcore_dap.dump.disassembly.listing",
)

_AT_START = """\
import json, sys
import vmcore_dap.cli
from vmcore_dap.dap import registry
from vmcore_dap.dap.channel import Channel
from vmcore_dap.dap.transport import Transport
from vmcore_dap.dump.errors import translate_error
from vmcore_dap.handlers import ROUTES, import_at_stop, install
install()
steps = {"start": sorted(sys.modules)}
registry.load("initialize")
registry.load("launch")
steps["launch"] = sorted(sys.modules)
import_at_stop()
steps["stop"] = sorted(sys.modules)
steps["routed"] = sorted({route.module for route in ROUTES})
print(json.dumps(steps))
"""


def _modules() -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(ADAPTER)}
    out = subprocess.run(
        [sys.executable, "-c", _AT_START], env=env, capture_output=True, text=True, check=True
    ).stdout
    steps: dict[str, list[str]] = json.loads(out)
    return steps


def test_start_imports_no_handler_module() -> None:
    steps = _modules()
    assert "vmcore_dap.handlers.kernel_view" in steps["routed"], steps["routed"]
    imported = [name for name in steps["routed"] if name in steps["start"]]
    assert imported == [], f"imported at start: {imported}"


def test_launch_leaves_the_stop_s_modules_to_the_index_and_the_rest_to_first_use() -> None:
    steps = _modules()
    assert "vmcore_dap.handlers.launch" in steps["launch"]
    early = [name for name in IMPORTED_WHILE_INDEXING if name in steps["launch"]]
    assert early == [], f"imported by launch before drgn indexes: {early}"
    # drgn's helpers (30-40 ms; drgn's plugins no longer load them at the open: drgn_plugins.py)
    # are imported by launch before the index: alongside it they made the first picture slower.
    assert "drgn.helpers.linux" in steps["launch"]
    missing = [name for name in IMPORTED_WHILE_INDEXING if name not in steps["stop"]]
    assert missing == [], f"not imported while drgn indexes: {missing}"
    loaded = [name for name in LOADED_ON_FIRST_USE if name in steps["stop"]]
    assert loaded == [], f"imported before their first use: {loaded}"


def test_the_listed_modules_exist() -> None:
    """A renamed module would make the checks above pass for nothing."""
    for name in IMPORTED_WHILE_INDEXING + LOADED_ON_FIRST_USE:
        path = ADAPTER / Path(*name.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), name


#: What the stack prefetch's second process may import of the adapter: it starts beside the stop and
#: the first requests (issue 18), so not the architecture or the task listing (``drgn.helpers.linux``).
_CHILD_MODULES = {
    "vmcore_dap",
    "vmcore_dap.dump",
    "vmcore_dap.dump.kernel",
    "vmcore_dap.dump.kernel.block_plan",
    "vmcore_dap.dump.stacks",
    "vmcore_dap.dump.stacks.prefetch_child",
    "vmcore_dap.dump.stacks.signature",
}


def test_the_prefetch_child_imports_drgn_and_the_chain_table_only() -> None:
    """The module :class:`~vmcore_dap.dump.stacks.prefetch.StackPrefetch` starts, imported in a fresh
        interpreter: no drgn helper, and of the adapter only the light modules it reads by (that it is
    the module started: ``tests/e2e/test_stack_prefetch.py``)."""
    code = "import json, sys, vmcore_dap.dump.stacks.prefetch_child\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ADAPTER)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout)
    assert "drgn" in modules
    helpers = [name for name in modules if name.startswith("drgn.helpers")]
    assert helpers == [], f"the prefetch child imports drgn's helpers: {helpers}"
    ours = {name for name in modules if name.split(".")[0] == "vmcore_dap"}
    assert ours <= _CHILD_MODULES, f"the prefetch child imports {sorted(ours - _CHILD_MODULES)}"
