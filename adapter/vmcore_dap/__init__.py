"""vmcore-dap: a Debug Adapter Protocol server that presents a Linux kernel crash dump as a stopped process.

The package is split in layers that only depend downwards:

* :mod:`vmcore_dap.dap` — the wire protocol (framing, dispatch, the one exception boundary);
* :mod:`vmcore_dap.handlers` — one thin module per area of DAP requests;
* :mod:`vmcore_dap.dump` — the dump itself, through drgn only, usable without any protocol;
* :mod:`vmcore_dap.lsp` — the language server that reads the same dump.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
