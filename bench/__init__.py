"""Benchmarks of vmcore-dap against crash and plain drgn (``make bench``)."""
