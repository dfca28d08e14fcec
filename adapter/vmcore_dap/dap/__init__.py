"""The Debug Adapter Protocol layer: framing, dispatch and the single exception boundary.

Nothing here knows about drgn or vmcores; handlers register themselves with
:func:`vmcore_dap.dap.registry.request`.
"""
