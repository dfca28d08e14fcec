"""The kernel's well-known links: which struct a list, tree or map holds, and through which member.

A ``struct list_head`` says nothing of what it links; the kernel's code does (``list_add(&p->tasks,
&init_task.tasks)``). This table writes down what crash users otherwise type by hand after ``list
-s``: for a head (a member of a struct, or a global), the entry type and the member inside it that
the head links through, with the kernel versions for which that holds. A link applies to a dump when
both the head and the entry member exist in the dump's debug info and its versions include the dump's
kernel; when no link of a head has both, one whose members exist wins (distributions backport
renames: Debian's 6.1.176 has v6.6's ``rt_mutex_waiter.tree.entry``).

Everything not listed here is inferred (:mod:`~vmcore_dap.dump.structures.entry_types`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import drgn

__all__ = [
    "Link",
    "KNOWN_LINKS",
    "head_type",
    "kernel_version",
    "link_for_member",
    "link_for_symbol",
    "is_node_member",
]


@dataclass(frozen=True)
class Link:
    """One well-known link.

    :param head: ``"struct task_struct.children"`` (a member of a struct; nested members and array
        elements of it count: ``struct timer_base.vectors``) or ``"modules"`` (a global).
    :param entry: the entry type, ``"struct task_struct"``.
    :param member: the member of ``entry`` the head links (``"sibling"``, ``"node.node"``).
    :param since: first kernel version (major, minor) it holds for.
    :param until: first version it no longer holds for, or ``None``.
    :param why: the commit that introduced or ended it, when the versions are not "always".
    """

    head: str
    entry: str
    member: str
    since: tuple[int, int] = (2, 6)
    until: tuple[int, int] | None = None
    why: str = ""

    @property
    def head_type(self) -> str | None:
        """``struct task_struct`` for a member head, ``None`` for a global."""
        type_, dot, _ = self.head.partition(".")
        return type_ if dot else None

    @property
    def head_member(self) -> str:
        """``children`` for ``struct task_struct.children``, the symbol name for a global."""
        return self.head.partition(".")[2] or self.head


_T = "struct task_struct"

#: At least fifty links, grouped by subsystem.
KNOWN_LINKS: tuple[Link, ...] = (
    # -- tasks and scheduling
    Link(f"{_T}.tasks", _T, "tasks"),  # init_task.tasks is the head of every thread-group leader
    Link(f"{_T}.children", _T, "sibling"),
    Link("struct signal_struct.thread_head", _T, "thread_node", (3, 14), None, "0c740d0afc3b (v3.14)"),
    Link(f"{_T}.thread_group", _T, "thread_group", until=(6, 7), why="8e1f385104ac removed it (v6.7)"),
    Link(f"{_T}.ptraced", _T, "ptrace_entry"),
    Link("struct css_set.tasks", _T, "cg_list"),
    Link("struct rq.cfs_tasks", "struct sched_entity", "group_node", (3, 4)),
    Link("struct rq.leaf_cfs_rq_list", "struct cfs_rq", "leaf_cfs_rq_list"),
    Link("struct cfs_rq.tasks_timeline", "struct sched_entity", "run_node"),
    Link("struct dl_rq.root", "struct sched_dl_entity", "rb_node", (3, 14)),
    Link("struct rt_prio_array.queue", "struct sched_rt_entity", "run_list"),
    Link("struct rcu_node.blkd_tasks", _T, "rcu_node_entry", (3, 0)),
    Link(
        f"{_T}.pi_waiters",
        "struct rt_mutex_waiter",
        "pi_tree_entry",
        (3, 14),
        (6, 6),
        "f7853c34241807bb97673a5e97719123be39a09e renamed it pi_tree.entry (v6.6)",
    ),
    Link(f"{_T}.pi_waiters", "struct rt_mutex_waiter", "pi_tree.entry", (6, 6), None, "f7853c342418 (v6.6)"),
    Link(
        "struct rt_mutex_base.waiters",
        "struct rt_mutex_waiter",
        "tree_entry",
        (5, 15),
        (6, 6),
        "830e6acc8a1c introduced rt_mutex_base (v5.15)",
    ),
    Link(
        "struct rt_mutex_base.waiters",
        "struct rt_mutex_waiter",
        "tree.entry",
        (6, 6),
        None,
        "f7853c342418 (v6.6)",
    ),
    Link("struct kthread_worker.work_list", "struct kthread_work", "node", (4, 9)),
    # -- locks and waiting
    Link(
        "struct wait_queue_head.head",
        "struct wait_queue_entry",
        "entry",
        (4, 13),
        None,
        "2055da97389a renamed task_list to head/entry (v4.13)",
    ),
    Link("struct swait_queue_head.task_list", "struct swait_queue", "task_list", (4, 6)),
    Link("struct mutex.wait_list", "struct mutex_waiter", "list"),
    Link("struct rw_semaphore.wait_list", "struct rwsem_waiter", "list"),
    Link("struct semaphore.wait_list", "struct semaphore_waiter", "list"),
    # -- workqueues and timers
    Link("struct worker_pool.worklist", "struct work_struct", "entry"),
    Link("struct worker_pool.workers", "struct worker", "node", (4, 5)),
    Link("struct worker_pool.idle_list", "struct worker", "entry"),
    Link("workqueues", "struct workqueue_struct", "list"),
    Link(
        "struct timer_base.vectors",
        "struct timer_list",
        "entry",
        (4, 8),
        None,
        "500462a9de65 timer wheel (v4.8)",
    ),
    Link(
        "struct timerqueue_head.rb_root",
        "struct timerqueue_node",
        "node",
        (4, 18),
        None,
        "511885d7061e made it an rb_root_cached (v4.18)",
    ),
    Link("clocksource_list", "struct clocksource", "list"),
    # -- modules, memory
    Link("modules", "struct module", "list"),
    Link("slab_caches", "struct kmem_cache", "list"),
    Link(
        "struct kmem_cache_node.partial",
        "struct slab",
        "slab_list",
        (5, 17),
        None,
        "bb192ed9aa71 struct slab split from struct page (v5.17)",
    ),
    Link(
        "struct kmem_cache_node.partial", "struct page", "slab_list", (5, 2), (5, 17), "916ac0527837 (v5.2)"
    ),
    Link("vmap_area_list", "struct vmap_area", "list", until=(6, 9), why="d093602919ad removed it (v6.9)"),
    Link("vmap_area_root", "struct vmap_area", "rb_node", until=(6, 9), why="d093602919ad removed it (v6.9)"),
    Link("struct free_area.free_list", "struct page", "lru"),
    Link("struct per_cpu_pages.lists", "struct page", "lru"),
    Link(
        "struct mm_struct.mm_rb",
        "struct vm_area_struct",
        "vm_rb",
        until=(6, 1),
        why="524e00b36e8c replaced it with the maple tree (v6.1)",
    ),
    Link(
        "struct mm_struct.mm_mt", "struct vm_area_struct", "", (6, 1), None, "d4af56c5c7c6 maple tree (v6.1)"
    ),
    Link(
        "struct address_space.i_pages", "struct folio", "", (5, 18), None, "page cache holds folios (v5.18)"
    ),
    Link("struct address_space.i_pages", "struct page", "", (4, 20), (5, 18), "xarray page cache (v4.20)"),
    Link("shrinker_list", "struct shrinker", "list"),
    Link("struct backing_dev_info.wb_list", "struct bdi_writeback", "bdi_node", (4, 2)),
    Link("bdi_list", "struct backing_dev_info", "bdi_list"),
    Link("struct bdi_writeback.b_dirty", "struct inode", "i_io_list", (4, 4)),
    # -- file systems
    Link("super_blocks", "struct super_block", "s_list"),
    Link("struct super_block.s_inodes", "struct inode", "i_sb_list"),
    Link("struct super_block.s_mounts", "struct mount", "mnt_instance", (3, 3)),
    Link("struct file_system_type.fs_supers", "struct super_block", "s_instances"),
    Link(
        "struct mnt_namespace.list",
        "struct mount",
        "mnt_list",
        until=(6, 8),
        why="2eea9ce4310d made it an rbtree (v6.8)",
    ),
    Link("struct mnt_namespace.mounts", "struct mount", "mnt_node", (6, 8), None, "2eea9ce4310d (v6.8)"),
    Link("struct mount.mnt_mounts", "struct mount", "mnt_child", (3, 3)),
    Link("struct dentry.d_subdirs", "struct dentry", "d_child", until=(6, 8), why="da549bdd15c2 (v6.8)"),
    Link("struct dentry.d_children", "struct dentry", "d_sib", (6, 8), None, "da549bdd15c2 (v6.8)"),
    Link("struct inode.i_dentry", "struct dentry", "d_u.d_alias", (3, 19)),
    Link("struct kernfs_elem_dir.children", "struct kernfs_node", "rb", (3, 14)),
    Link("struct file_lock_context.flc_posix", "struct file_lock", "fl_list", (4, 0), (6, 9)),
    Link(
        "struct file_lock_context.flc_posix",
        "struct file_lock_core",
        "flc_list",
        (6, 9),
        None,
        "a69ce85ec9af (v6.9)",
    ),
    # -- networking, devices, namespaces
    Link("net_namespace_list", "struct net", "list"),
    Link("struct net.dev_base_head", "struct net_device", "dev_list"),
    Link("struct net_device.napi_list", "struct napi_struct", "dev_list"),
    Link("ptype_all", "struct packet_type", "list"),
    Link("pci_root_buses", "struct pci_bus", "node"),
    Link("struct pci_bus.devices", "struct pci_dev", "bus_list"),
    Link("struct pci_bus.children", "struct pci_bus", "node"),
    Link("struct kset.list", "struct kobject", "entry"),
    Link("input_dev_list", "struct input_dev", "node"),
    Link("tty_drivers", "struct tty_driver", "tty_drivers"),
    Link(
        "struct pid_namespace.idr",
        "struct pid",
        "",
        (4, 15),
        None,
        "95846ecf9dac pid allocation by idr (v4.15)",
    ),
    Link("struct ipc_ids.ipcs_idr", "struct kern_ipc_perm", "", (3, 19)),
    Link("prog_idr", "struct bpf_prog", "", (4, 13)),
    Link("map_idr", "struct bpf_map", "", (4, 13)),
    Link("cgroup_roots", "struct cgroup_root", "root_list"),
    Link("crypto_alg_list", "struct crypto_alg", "cra_list"),
    Link("struct perf_event_context.event_list", "struct perf_event", "event_entry"),
    Link(f"{_T}.perf_event_list", "struct perf_event", "owner_entry"),
    Link("irq_domain_list", "struct irq_domain", "link"),
)


def kernel_version(prog: drgn.Program) -> tuple[int, int]:
    """(major, minor) of the dump's kernel, from ``init_uts_ns`` (``6.1.0-50-cloud-amd64`` → (6, 1))."""
    cached = prog.cache.get("vmcore_dap.kernel_version")
    if cached is None:
        try:
            release = prog["init_uts_ns"].name.release.string_().decode(errors="replace")
        except (LookupError, drgn.FaultError):
            release = ""
        m = re.match(r"(\d+)\.(\d+)", release)
        cached = (int(m[1]), int(m[2])) if m else (0, 0)
        prog.cache["vmcore_dap.kernel_version"] = cached
    return cached  # type: ignore[no-any-return]


def _in_versions(prog: drgn.Program, link: Link) -> bool:
    version = kernel_version(prog)
    return version == (0, 0) or (link.since <= version and (link.until is None or version < link.until))


def head_type(prog: drgn.Program, link: Link) -> drgn.Type:
    """The type of the link's head in this dump (an array's element type for an array of heads).

    :raises LookupError: if the head does not exist.
    """
    if link.head_type is None:
        type_ = prog[link.head].type_
    else:
        type_ = prog.type(link.head_type).member(link.head_member).type
    while type_.unaliased_kind() == drgn.TypeKind.ARRAY:
        type_ = type_.unaliased().type
    return type_


def _members_exist(prog: drgn.Program, link: Link) -> bool:
    """Whether the dump has the head, as a list or tree head, and the entry member."""
    from vmcore_dap.dump.structures.chains import chain_kind
    from vmcore_dap.dump.structures.trees import tree_kind

    try:
        head = head_type(prog, link)
        if chain_kind(head) is None and tree_kind(head) is None:
            return False  # e.g. mnt_namespace.mounts is a count before v6.8
        entry = prog.type(link.entry)
        if link.member:
            drgn.offsetof(entry, link.member)
    except (LookupError, ValueError):
        return False
    return True


def _index(prog: drgn.Program) -> dict[str, Link]:
    """The links that hold for this dump, by head (computed once per program)."""
    cached = prog.cache.get("vmcore_dap.known_links")
    if cached is None:
        cached = {}
        present = [link for link in KNOWN_LINKS if _members_exist(prog, link)]
        for link in present:
            if link.head not in cached and _in_versions(prog, link):
                cached[link.head] = link
        for link in present:  # a backported rename: the members say more than the version
            cached.setdefault(link.head, link)
        prog.cache["vmcore_dap.known_links"] = cached
    return cached  # type: ignore[no-any-return]


def link_for_member(prog: drgn.Program, container: str) -> Link | None:
    """The link whose head is ``container`` (``struct task_struct.children``; a nested member path
    ``struct rq.cfs.tasks_timeline`` is also tried by its last struct: ``struct cfs_rq.tasks_timeline``
    is found by the caller passing that spelling)."""
    return _index(prog).get(re.sub(r"\[\d+\]", "", container))


def link_for_symbol(prog: drgn.Program, name: str) -> Link | None:
    """The link whose head is the global ``name`` (``modules``)."""
    link = _index(prog).get(name)
    return link if link is not None and link.head_type is None else None


def is_node_member(prog: drgn.Program, container: str) -> bool:
    """Whether ``container`` (``struct task_struct.sibling``) is an entry's link into some other
    list, and not itself a head: its ``next``/``prev`` are neighbours, not a list to expand."""
    nodes = prog.cache.get("vmcore_dap.node_members")
    if nodes is None:
        index = _index(prog)
        nodes = {f"{link.entry}.{link.member}" for link in index.values() if link.member} - set(index)
        prog.cache["vmcore_dap.node_members"] = nodes
    return re.sub(r"\[\d+\]", "", container) in nodes
