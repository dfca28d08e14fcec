"""Kernel stacks: unwinding a task into frames, normalising them, grouping tasks by identical stack."""
