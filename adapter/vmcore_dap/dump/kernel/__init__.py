"""Kernel objects read from the dump: tasks, modules, locks, the panic and the task to show first,
bounded list walks."""
