"""A language server that reads the same vmcore as the adapter and annotates kernel C sources with it.

Hover shows globals' values, types' layouts and who is in a function; code lenses count the tasks
in each function; diagnostics mark the faulting line and where D-state tasks wait; go to definition
and workspace symbols find kernel and module symbols. Reads :mod:`vmcore_dap.dump` only, never
the DAP layers. Start it with ``vmcore-dap-lsp`` or ``python -m vmcore_dap.lsp``.
"""
