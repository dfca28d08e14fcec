"""Kernel objects read from the dump: tasks, modules, locks, the panic, bounded list walks."""
