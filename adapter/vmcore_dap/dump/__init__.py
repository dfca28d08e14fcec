"""The crash dump seen through drgn: tasks, stacks, values, memory, disassembly, sources, per architecture.

Nothing in this package knows about DAP; it can be used from a Python shell or a batch report.
"""
