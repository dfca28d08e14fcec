"""Say what a pointer points at: ``→ kmalloc-256 object +0x10 (allocated)``, ``→ FREED …``, a task,
a task's stack, a module's data, a vmalloc area, user space, nothing.

drgn's ``identify_address_all`` does the identification (symbols, task structs and stacks, slab
objects allocated or free, ``struct page``, vmap areas); this module turns its answer into one short
note and adds what it does not say: the module and section of a symbol, a user-space address, and
why an address cannot be read (not mapped, excluded from the dump). A freed slab object is a
warning: a pointer to one is the classic use-after-free.

Notes are computed for a whole page of values at once (one drgn lookup cache shared by the page)
and kept per address for the session: a dump never changes. drgn's ``slab_object_info`` reads every
CPU's freelist and the slab's own freelist again for each address; a page of pointers into one
cache would pay that a hundred times, so :func:`_slab_info` keeps drgn's per-cache helper and its
freelists for the session (through drgn's internal helper; a drgn without it gets the public one).
drgn finds the task of a stack by walking every task; the lookup cache hands it the session's own
task listing instead (:class:`~vmcore_dap.dump.kernel.task_stacks.StackOwners`), so a pointer into the
crashed task's stack is named without listing the others first.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import drgn

from vmcore_dap.dump.arch import UnsupportedArchitecture, arch_of
from vmcore_dap.dump.kernel.task_stacks import STACK_TO_TASK, StackOwners
from vmcore_dap.dump.memory.page_filter import explain_unreadable
from vmcore_dap.dump.memory.symbol_index import remember_symbol

__all__ = ["PointerNote", "pointer_note", "pointer_notes"]

_CACHE_KEY = "vmcore_dap.pointer_notes"
_IDENTIFY_CACHE_KEY = "vmcore_dap.identify_cache"


@dataclass(frozen=True)
class PointerNote:
    """One note. ``warning``: the pointer is suspect (a freed object). ``symbol``: the note names
    the symbol the pointer is in, so a ``<symbol+off>`` beside the value says nothing more."""

    text: str
    warning: bool = False
    symbol: bool = False


def _notes_cache(prog: drgn.Program) -> dict[int, PointerNote | None]:
    cache = prog.cache.get(_CACHE_KEY)
    if cache is None:
        cache = prog.cache[_CACHE_KEY] = {}
    return cache  # type: ignore[no-any-return]


def pointer_note(prog: drgn.Program, address: int) -> PointerNote | None:
    """The note of one pointer value, or ``None`` when there is nothing to say (NULL)."""
    return pointer_notes(prog, (address,))[address]


def pointer_notes(prog: drgn.Program, addresses: Iterable[int]) -> dict[int, PointerNote | None]:
    """The notes of many pointer values, computed together (a page of Variables, a list page)."""
    cache = _notes_cache(prog)
    identify_cache = prog.cache.get(_IDENTIFY_CACHE_KEY)
    if identify_cache is None:
        identify_cache = prog.cache[_IDENTIFY_CACHE_KEY] = {STACK_TO_TASK: StackOwners(prog)}
    result: dict[int, PointerNote | None] = {}
    for address in addresses:
        if address not in cache:
            try:
                cache[address] = _note(prog, address, identify_cache)
            except (drgn.FaultError, LookupError, ValueError, NotImplementedError, OverflowError):
                cache[address] = None  # a note is extra; its failure must not fail the value
        result[address] = cache[address]
    return result


def _user_half(prog: drgn.Program, address: int) -> bool:
    """Whether ``address`` lies outside the kernel's half of the address space (user space, or not
    canonical); an architecture without a module in :mod:`vmcore_dap.dump.arch` is not told apart."""
    try:
        return not arch_of(prog).is_kernel_address(address)
    except UnsupportedArchitecture:
        return False


def _comm(task: drgn.Object) -> str:
    return os.fsdecode(task.comm.string_())


def _offset(address: int, start: int) -> str:
    return f" +{address - start:#x}" if address != start else ""


def _note(prog: drgn.Program, address: int, identify_cache: dict[object, object]) -> PointerNote | None:
    from drgn.helpers.common.memory import IdentifiedSymbol, identify_address_all
    from drgn.helpers.linux.common import (
        IdentifiedPage,
        IdentifiedSlabObject,
        IdentifiedTaskStack,
        IdentifiedTaskStruct,
        IdentifiedVmap,
    )

    if address == 0:
        return None
    if _user_half(prog, address):
        if address < 0x1000:
            return None
        if _percpu_offset(prog, address):
            return PointerNote("→ per-CPU offset (a __percpu pointer)")
        return PointerNote("→ user address")
    try:
        prog.read(address, 1)
    except drgn.FaultError:
        why = explain_unreadable(prog, address)
        return PointerNote(f"→ {why}")
    info = _slab_info(prog, address)
    if info is not None:
        return _slab_note(prog, address, info)
    for found in identify_address_all(prog, address, cache=identify_cache):
        if isinstance(found, IdentifiedTaskStruct):
            task = found.task
            text = f"→ task_struct of PID {task.pid.value_()} {_comm(task)}{_offset(address, task.value_())}"
            return PointerNote(text)
        if isinstance(found, IdentifiedTaskStack):
            task = found.task
            text = f"→ stack of PID {task.pid.value_()} {_comm(task)}{_offset(address, task.stack.value_())}"
            return PointerNote(text)
        if isinstance(found, IdentifiedSlabObject):
            info = found.slab_object_info
            if not info.address:
                return PointerNote("→ slab object (SLOB: cache unknown)")
            name = info.slab_cache.name.string_().decode(errors="replace")
            where = _offset(address, info.address)
            if info.allocated is False:
                return PointerNote(f"→ ⚠ FREED {name} object{where}", warning=True)
            state = "allocated" if info.allocated else "state unknown: the slab looks corrupted"
            return PointerNote(f"→ {name} object{where} ({state})", warning=info.allocated is None)
        if isinstance(found, IdentifiedVmap):
            text = (
                f"→ vmalloc area {found.vmap_area.va_start.value_():#x}-{found.vmap_area.va_end.value_():#x}"
            )
            caller = found.vm_struct.caller.value_()
            try:
                symbol = prog.symbol(caller)
                text += f" (from {symbol.name}+{caller - symbol.address:#x})"
            except LookupError:
                pass
            return PointerNote(text)
        if isinstance(found, IdentifiedPage):
            return PointerNote(f"→ struct page of pfn {found.pfn}{_offset(address, found.page.value_())}")
        if isinstance(found, IdentifiedSymbol):
            remember_symbol(prog, address, found.symbol)  # the value's rendering names it too
            return _symbol_note(prog, address, found.symbol)
    return None


def _slab_note(prog: drgn.Program, address: int, info: object) -> PointerNote:
    """The note of an address inside a slab object (``info``: drgn's ``SlabObjectInfo``)."""
    slab_cache = info.slab_cache  # type: ignore[attr-defined]
    start: int = info.address  # type: ignore[attr-defined]
    allocated = info.allocated  # type: ignore[attr-defined]
    if not start:
        return PointerNote("→ slab object (SLOB: cache unknown)")
    if allocated:
        task = _task_of(prog, info)
        if task is not None:
            text = f"→ task_struct of PID {task.pid.value_()} {_comm(task)}{_offset(address, start)}"
            return PointerNote(text)
    name = slab_cache.name.string_().decode(errors="replace")
    where = _offset(address, start)
    if allocated is False:
        return PointerNote(f"→ ⚠ FREED {name} object{where}", warning=True)
    state = "allocated" if allocated else "state unknown: the slab looks corrupted"
    return PointerNote(f"→ {name} object{where} ({state})", warning=allocated is None)


def _task_of(prog: drgn.Program, info: object) -> drgn.Object | None:
    """The task whose ``task_struct`` is the slab object ``info`` (drgn's own test, which also
    rules out other objects of a merged cache)."""
    try:
        from drgn.helpers.linux.common import _is_task_struct
    except ImportError:
        return None
    return _is_task_struct(prog, info)  # type: ignore[arg-type]


_HELPERS_KEY = "vmcore_dap.slab_helpers"


def _slab_info(prog: drgn.Program, address: int) -> object | None:
    """drgn's ``SlabObjectInfo`` of ``address``, or ``None`` outside the slab allocator; the
    per-cache work (CPU freelists, each slab's freelist) done once per session."""
    from drgn.helpers.linux.mm import in_direct_map
    from drgn.helpers.linux.slab import slab_object_info

    if not in_direct_map(prog, address):
        return None
    try:
        from drgn.helpers.linux.slab import _find_containing_slab, _get_slab_cache_helper
    except ImportError:  # another drgn: its public helper, without the cache
        return slab_object_info(prog, address)
    found = _find_containing_slab(prog, address)
    if found is None:
        return None
    page, slab = found
    try:
        slab_cache = slab.slab_cache.read_()
    except AttributeError:  # SLOB
        return slab_object_info(prog, address)
    helpers: dict[int, object] = prog.cache.setdefault(_HELPERS_KEY, {})
    helper = helpers.get(slab_cache.value_())
    if helper is None:
        helper = helpers[slab_cache.value_()] = _memoized(_get_slab_cache_helper(slab_cache))
    return helper.object_info(page, slab, address)  # type: ignore[attr-defined]


def _memoized(helper: object) -> object:
    """``helper`` with its per-CPU and per-slab freelist readings computed once each."""
    for name in ("_per_cpu_info", "_sheaves_full_objects"):
        method = getattr(helper, name, None)
        if method is not None:
            setattr(helper, name, functools.cache(method))
    read_freelist = getattr(helper, "_slub_get_freelist", None)
    if read_freelist is not None:
        helper._slub_get_freelist = _freelist_memo(read_freelist)  # type: ignore[attr-defined]
    return helper


def _freelist_memo(read: Callable[[Callable[[], str], drgn.Object], set[int]]) -> Callable[..., set[int]]:
    memo: dict[int, set[int]] = {}

    def cached(name: Callable[[], str], freelist: drgn.Object) -> set[int]:
        key = freelist.value_()
        if key not in memo:
            memo[key] = read(name, freelist)
        return memo[key]

    return cached


def _percpu_offset(prog: drgn.Program, address: int) -> bool:
    """Whether ``address`` is a per-CPU offset that ``per_cpu_ptr`` would turn into memory: static
    per-CPU variables lie below ``__per_cpu_end`` on x86-64 (their section is linked at 0)."""
    try:
        end = prog.symbol("__per_cpu_end").address
        start = prog.symbol("__per_cpu_start").address
    except LookupError:
        return False
    return start <= address < end


_VMLINUX_SECTIONS = (
    ("_stext", "_etext", ".text"),
    ("__start_rodata", "__end_rodata", ".rodata"),
    ("_sdata", "_edata", ".data"),
    ("__bss_start", "__bss_stop", ".bss"),
    ("__init_begin", "__init_end", ".init"),
)


def _vmlinux_sections(prog: drgn.Program) -> list[tuple[int, int, str]]:
    cached = prog.cache.get("vmcore_dap.vmlinux_sections")
    if cached is None:
        cached = []
        for start, end, name in _VMLINUX_SECTIONS:
            try:
                cached.append((prog.symbol(start).address, prog.symbol(end).address, name))
            except LookupError:
                pass
        prog.cache["vmcore_dap.vmlinux_sections"] = cached
    return cached  # type: ignore[no-any-return]


def _bin_attr_sections(attrs: drgn.Object) -> list[tuple[int, str]]:
    """``(address, name)`` of each section where ``struct module_sect_attrs`` is a bare array of
    ``bin_attribute``\\ s, each section's address in its ``private``, the group's ``bin_attrs`` ending
    in NULL (7.2 has it; 6.12 still had ``nsections`` and ``module_sect_attr.address``)."""
    sections = []
    bin_attrs = attrs.grp.bin_attrs
    i = 0
    while bin_attrs[i].value_():
        battr = bin_attrs[i]
        name = battr.attr.name.string_().decode(errors="replace")
        sections.append((drgn.cast("unsigned long", battr.private).value_(), name))
        i += 1
    return sections


def _module_sections(mod: drgn.Object) -> list[tuple[int, str]]:
    """``(address, name)`` of each section of a loaded module, from its sysfs section attributes."""
    prog = mod.prog_
    key = ("vmcore_dap.module_sections", mod.value_())
    cached = prog.cache.get(key)
    if cached is None:
        cached = []
        try:
            attrs = mod.sect_attrs.read_()
            try:
                count = attrs.nsections.value_()
            except AttributeError:
                count = 0
                cached.extend(_bin_attr_sections(attrs))
            for i in range(count):
                attr = attrs.attrs[i]
                try:
                    name = attr.battr.attr.name.string_().decode(errors="replace")
                except AttributeError:  # before v5.8 the attribute was ``mattr``
                    name = attr.name.string_().decode(errors="replace")
                cached.append((attr.address.value_(), name))
        except (AttributeError, LookupError, drgn.FaultError):
            pass
        cached.sort()
        prog.cache[key] = cached
    return cached  # type: ignore[no-any-return]


def _symbol_note(prog: drgn.Program, address: int, symbol: drgn.Symbol) -> PointerNote:
    from drgn.helpers.linux.module import address_to_module

    name = symbol.name + _offset(address, symbol.address).replace(" +", "+")
    try:
        mod = address_to_module(prog, address)
    except (LookupError, drgn.FaultError, ValueError):
        mod = None
    if mod:
        section = None
        for start, sec_name in _module_sections(mod):
            if start <= address:
                section = sec_name
        module_name = mod.name.string_().decode(errors="replace")
        where = f"module {module_name}, {section}" if section else f"module {module_name}"
        return PointerNote(f"→ {name} ({where})", symbol=True)
    for start, end, sec_name in _vmlinux_sections(prog):
        if start <= address < end:
            return PointerNote(f"→ {name} (vmlinux, {sec_name})", symbol=True)
    return PointerNote(f"→ {name} (vmlinux)", symbol=True)
