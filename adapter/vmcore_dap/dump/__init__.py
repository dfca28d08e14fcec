"""The crash dump seen through drgn: tasks, frames, values, memory, disassembly, sources.

Nothing in this package knows about DAP; it can be used from a Python shell or a batch report.
"""
