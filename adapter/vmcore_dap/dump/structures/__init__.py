"""Kernel data structures as a kernel engineer reads them: lists as their entries, trees and maps by
index, per-CPU variables by CPU, and pointers that say what they point at.

Sits above ``values`` (it shapes :class:`~vmcore_dap.dump.values.render.Variable` children) and
``kernel`` (it reads tasks and modules), below everything that shows values to a person.
"""
