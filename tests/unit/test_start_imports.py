"""What the adapter imports at start: not the modules only a later request needs.

The adapter imports every handler module before it reads the first request (registration happens at
import), so whatever a handler module imports at its top is paid on the way to the first picture
(issue 18: first picture ≤ 1.2× a plain drgn script). The modules below load on their first use
instead. A fresh interpreter does exactly what ``cli._serve`` does before it serves, then lists
``sys.modules``: a real import check, not a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ADAPTER = Path(__file__).resolve().parents[2] / "adapter"

#: Loaded on first use only: the C-expression evaluator and the console's command sets (the
#: Debug Console's first line), the Kernel view's lock, summary and crash-report modules (its first
#: request), the disassembler and its listings (the first ``disassemble``, or a frame whose source
#: file is missing).
LOADED_ON_FIRST_USE = (
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
from vmcore_dap.dap.channel import Channel
from vmcore_dap.dap.transport import Transport
from vmcore_dap.dump.errors import translate_error
from vmcore_dap.handlers import load_all
names = load_all()
print(json.dumps({"handlers": names, "modules": sorted(sys.modules)}))
"""


def _modules_at_start() -> tuple[list[str], set[str]]:
    env = {**os.environ, "PYTHONPATH": str(ADAPTER)}
    out = subprocess.run(
        [sys.executable, "-c", _AT_START], env=env, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out)
    return result["handlers"], set(result["modules"])


def test_start_imports_no_module_a_later_request_needs() -> None:
    handlers, modules = _modules_at_start()
    # The check means something only if every handler module was imported, the Kernel view's too.
    assert "kernel_view" in handlers and "console" in handlers, handlers
    assert "vmcore_dap.handlers.kernel_view" in modules
    loaded = [name for name in LOADED_ON_FIRST_USE if name in modules]
    assert loaded == [], f"imported at start: {loaded}"


def test_the_deferred_modules_exist() -> None:
    """A renamed module would make the check above pass for nothing."""
    for name in LOADED_ON_FIRST_USE:
        path = ADAPTER / Path(*name.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), name
