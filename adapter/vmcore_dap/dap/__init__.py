"""The Debug Adapter Protocol layer: framing, dispatch and the single exception boundary.

Nothing here knows about drgn or vmcores; handlers are routed to with
:func:`vmcore_dap.dap.registry.route` and register themselves with :func:`vmcore_dap.dap.registry.request`.
"""
