"""DAP request handlers, one module per area; importing this package registers them all.

Each handler parses its arguments, calls :mod:`vmcore_dap.dump`, and shapes the response body.
Camel-case keys exist only here, at the protocol boundary.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["load_all"]


def load_all() -> list[str]:
    """Import every handler module of this package (registration happens at import)."""
    names = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
            names.append(info.name)
    return names
