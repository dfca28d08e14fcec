"""Per-CPU variables and ``__percpu`` pointers, shown CPU by CPU as crash's ``p var:a`` does.

drgn hands out a ``DEFINE_PER_CPU`` variable at its link-time address, an offset that only
``per_cpu()`` turns into memory; a ``__percpu`` pointer holds such an offset too. A variable is
per-CPU when its address lies in vmlinux's per-CPU section or in a module's per-CPU area (drgn's
``module_percpu_region``). DWARF does not mark ``__percpu`` pointers (sparse's attribute leaves no
trace), so the members known to hold one are listed in :data:`PERCPU_POINTER_MEMBERS`.
"""

from __future__ import annotations

import drgn

__all__ = [
    "PERCPU_POINTER_MEMBERS",
    "is_percpu_variable",
    "is_percpu_pointer",
    "percpu_cpus",
    "per_cpu_values",
]

#: ``__percpu`` pointer members, as ``struct X.member``.
PERCPU_POINTER_MEMBERS = frozenset(
    {
        "struct kmem_cache.cpu_slab",
        "struct kmem_cache.cpu_sheaves",  # v6.18
        "struct zone.per_cpu_pageset",  # v5.14
        "struct zone.per_cpu_zonestats",  # v5.14
        "struct percpu_counter.counters",
        "struct net_device.pcpu_refcnt",
        "struct cgroup.rstat_cpu",
        "struct srcu_struct.sda",
        "struct workqueue_struct.cpu_pwq",  # v6.6 (before: cpu_pwqs)
        "struct workqueue_struct.cpu_pwqs",
        "struct mount.mnt_pcp",
        "struct module.percpu",
        "struct mem_cgroup.vmstats_percpu",
        "struct bpf_prog.stats",
        "struct request_queue.queue_ctx",
        "struct netns_core.prot_inuse",
        "struct netns_mib.tcp_statistics",
    }
)


def percpu_cpus(prog: drgn.Program) -> list[int]:
    """The possible CPUs (crash's ``:a``)."""
    cached = prog.cache.get("vmcore_dap.possible_cpus")
    if cached is None:
        from drgn.helpers.linux.cpumask import for_each_possible_cpu

        cached = prog.cache["vmcore_dap.possible_cpus"] = list(for_each_possible_cpu(prog))
    return cached  # type: ignore[no-any-return]


def _regions(prog: drgn.Program) -> list[tuple[int, int]]:
    """``[start, end)`` of vmlinux's per-CPU section and of each module's per-CPU area."""
    cached = prog.cache.get("vmcore_dap.percpu_regions")
    if cached is None:
        cached = []
        try:
            cached.append((prog.symbol("__per_cpu_start").address, prog.symbol("__per_cpu_end").address))
        except LookupError:
            pass
        try:
            from drgn.helpers.linux.module import for_each_module, module_percpu_region

            for mod in for_each_module(prog):
                start, size = module_percpu_region(mod)
                if start and size:
                    cached.append((start, start + size))
        except (LookupError, drgn.FaultError, AttributeError):
            pass
        prog.cache["vmcore_dap.percpu_regions"] = cached
    return cached  # type: ignore[no-any-return]


def is_percpu_variable(obj: drgn.Object) -> bool:
    """Whether ``obj`` is a per-CPU variable itself (not one CPU's copy of it)."""
    address = obj.address_
    # vmlinux's per-CPU section is linked at 0 on x86-64: the first page is left to NULL
    # dereferences (``*(int *)0x8``), whose "address" would otherwise be a per-CPU offset.
    if address is None or address < 0x1000 or obj.bit_field_size_:
        return False
    return any(start <= address < end for start, end in _regions(obj.prog_))


def is_percpu_pointer(obj: drgn.Object, container: str | None) -> bool:
    """Whether ``obj`` (a pointer) is a ``__percpu`` pointer: a known member that is not NULL."""
    if container is None or obj.type_.unaliased_kind() != drgn.TypeKind.POINTER:
        return False
    if container not in PERCPU_POINTER_MEMBERS:
        return False
    try:
        return bool(obj.value_())
    except drgn.FaultError:
        return False


def per_cpu_values(obj: drgn.Object) -> list[tuple[int, drgn.Object]]:
    """``(cpu, value)`` for each possible CPU: ``per_cpu(var, cpu)`` of a variable, or
    ``per_cpu_ptr(ptr, cpu)``'s pointee of a ``__percpu`` pointer."""
    from drgn.helpers.linux.percpu import per_cpu, per_cpu_ptr

    prog = obj.prog_
    if obj.type_.unaliased_kind() == drgn.TypeKind.POINTER and not is_percpu_variable(obj):
        return [(cpu, per_cpu_ptr(obj, cpu)[0]) for cpu in percpu_cpus(prog)]
    return [(cpu, per_cpu(obj, cpu)) for cpu in percpu_cpus(prog)]
