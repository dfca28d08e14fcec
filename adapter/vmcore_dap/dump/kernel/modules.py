"""The kernel and its loaded modules as a debugger's module list: ranges, versions, taints, debug info.

What crash's ``mod`` and the oops's "Modules linked in: labbug(OE)" line say, plus what drgn knows:
whether debug info was found and from which file. The struct module address, base and size follow
crash (``core_layout`` before v6.4; since, the text base and the size of every non-init ``mem[]``
region together, as crash's ``store_module_symbols_6_4`` sums them), so tests compare with crash directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import drgn

from vmcore_dap.dump.kernel.lists import ListWalk, bounded_list_entries

__all__ = [
    "KernelModule",
    "function_starts",
    "list_modules",
    "module_address_ranges",
    "module_list_problem",
    "module_taint_letters",
    "kernel_taint_letters",
]

# Fallback when the dump's own ``taint_flags`` table cannot be read: (bit, letter, applies to modules),
# from kernel/panic.c of v6.1.
_TAINT_FLAGS_V6_1 = (
    (0, "P", True),
    (1, "F", True),
    (2, "S", False),
    (3, "R", False),
    (4, "M", False),
    (5, "B", False),
    (6, "U", False),
    (7, "D", False),
    (8, "A", False),
    (9, "W", False),
    (10, "C", True),
    (11, "I", False),
    (12, "O", True),
    (13, "E", True),
    (14, "L", False),
    (15, "K", True),
    (16, "X", True),
    (17, "T", True),
    (18, "N", True),
)

_DEBUG_STATUS = {
    drgn.ModuleFileStatus.HAVE: "Symbols loaded",
    drgn.ModuleFileStatus.WANT: "Symbols not found (names from kallsyms only)",
    drgn.ModuleFileStatus.WANT_SUPPLEMENTARY: "Symbols incomplete (supplementary file not found)",
    drgn.ModuleFileStatus.DONT_WANT: "Symbols not loaded",
    drgn.ModuleFileStatus.DONT_NEED: "Symbols not needed",
}


@dataclass(frozen=True)
class KernelModule:
    """One row of the module list.

    :param name: ``kernel`` for the kernel image, else the module's name.
    :param start: start of the address range drgn maps to this module's text (since v6.4 a module
        has several ranges, one per ``mem[]`` region: this is the one holding ``base``).
    :param end: its end (exclusive).
    :param base: the text base crash's ``mod`` shows (the kernel: ``_stext``).
    :param size: the size crash's ``mod`` shows (the core layout, or the non-init ``mem[]`` regions).
    :param struct_module: address of ``struct module`` (``None`` for the kernel).
    :param version: ``MODULE_VERSION`` (kernel: release and build version), if any.
    :param srcversion: checksum of the module's sources, if the module has one.
    :param taints: taint letters as the kernel log prints them (``OE``); the kernel's whole taint string.
    :param has_debug_info: drgn found DWARF for it.
    :param debug_status: one phrase for people ("Symbols loaded", "Symbols not found …").
    :param debug_file: the file debug info was loaded from.
    :param build_id: hex GNU build ID, if known.
    :param ranges: every ``(start, end)`` range drgn maps to this module (one before v6.4).
    """

    name: str
    start: int
    end: int
    base: int
    size: int
    struct_module: int | None
    version: str | None
    srcversion: str | None
    taints: str
    has_debug_info: bool
    debug_status: str
    debug_file: str | None
    build_id: str | None
    ranges: tuple[tuple[int, int], ...] = ()

    @property
    def is_kernel(self) -> bool:
        return self.struct_module is None

    @property
    def address_ranges(self) -> tuple[tuple[int, int], ...]:
        """Every range of the module (its text, data, rodata …); ``start``–``end`` if drgn knew none."""
        return self.ranges or ((self.start, self.end),)


def _taint_table(prog: drgn.Program) -> list[tuple[int, str, bool]]:
    cache = prog.cache.get("vmcore_dap.dump.kernel.modules.taints")
    if cache is not None:
        return cache  # type: ignore[no-any-return]
    try:
        flags = prog["taint_flags"]
        # Linux 7.x's struct taint_flag is {c_true, c_false, desc}: the ``module`` member that said
        # which flags a module can carry is gone (7.2.13's include/linux/panic.h), and a module's
        # ``taints`` only ever gets the bits add_taint_module() set, so every flag applies.
        per_module = flags.type_.type.has_member("module")
        table = [
            (i, chr(int(flags[i].c_true)), bool(flags[i].module) if per_module else True)
            for i in range(len(flags))  # type: ignore[arg-type]
        ]
    except (LookupError, drgn.FaultError, TypeError):
        table = list(_TAINT_FLAGS_V6_1)
    prog.cache["vmcore_dap.dump.kernel.modules.taints"] = table
    return table


def module_taint_letters(prog: drgn.Program, taints: int) -> str:
    """Letters of a module's ``taints`` mask, in the order of the kernel's ``module_flags()``."""
    return "".join(
        letter for bit, letter, for_module in _taint_table(prog) if for_module and taints >> bit & 1
    )


def kernel_taint_letters(prog: drgn.Program) -> str:
    """Letters of the kernel's global ``tainted_mask`` (as the oops line's "Tainted: P  O" without blanks)."""
    try:
        mask = int(prog["tainted_mask"])
    except (LookupError, drgn.FaultError):
        return ""
    return "".join(letter for bit, letter, _ in _taint_table(prog) if mask >> bit & 1)


def _string(obj: drgn.Object) -> str | None:
    try:
        return obj.string_().decode(errors="replace") if obj.value_() else None
    except drgn.FaultError:
        return None


def _text_region(mod: drgn.Object) -> tuple[int, int]:
    """``(base, size)`` of the module's core as crash's ``mod`` shows it: the text's base and the
    size of the module's core (init sections, freed after loading, not included)."""
    try:  # v6.4: "module: replace module_layout with module_memory" (ac3b43283923)
        regions = mod.mem
        # The core regions are those before MOD_INIT_TEXT (text, data, rodata, ro_after_init);
        # crash 8.0.6/9.0.x add up exactly these ("module core size, init not included").
        core = int(mod.prog_.constant("MOD_INIT_TEXT"))
        return int(regions[0].base), sum(int(regions[t].size) for t in range(core))
    except (AttributeError, LookupError):
        pass
    try:  # v4.5 … v6.3
        return int(mod.core_layout.base), int(mod.core_layout.size)
    except (AttributeError, LookupError):
        return int(mod.module_core), int(mod.core_size)  # before v4.5


def _drgn_modules(prog: drgn.Program) -> dict[str, drgn.Module]:
    out: dict[str, drgn.Module] = {}
    for module in prog.modules():
        if isinstance(module, drgn.MainModule):
            out.setdefault("\0kernel", module)
        elif isinstance(module, drgn.RelocatableModule):
            out.setdefault(module.name, module)
    return out


def module_address_ranges(module: drgn.Module) -> tuple[tuple[int, int], ...]:
    """Every address range drgn maps to ``module``, lowest first.

    Linux v6.4 (commit ac3b43283923, "module: replace module_layout with module_memory") split a
    module's memory into ``struct module.mem[]`` regions; drgn then gives the module one range per
    region and its ``address_range`` raises "module has multiple address ranges".
    """
    return tuple(sorted((int(low), int(high)) for low, high in module.address_ranges if high > low))


def function_starts(prog: drgn.Program, ranges: tuple[tuple[int, int], ...]) -> list[int]:
    """Addresses of the functions (symbols with a size) within ``ranges``, lowest first.

    A module's text need not start with a function: x86-64 kernels with function padding
    (Debian's 6.12, 7.x) put 16 bytes first, named ``__pfx_<function>``, where no line is known.
    """
    try:
        symbols = prog.symbols()
    except (LookupError, ValueError):
        return []
    return sorted(
        int(s.address)
        for s in symbols
        if s.kind == drgn.SymbolKind.FUNC and s.size and any(low <= s.address < high for low, high in ranges)
    )


def _debug_fields(
    module: drgn.Module | None,
) -> tuple[bool, str, str | None, str | None, tuple[tuple[int, int], ...]]:
    if module is None:
        return False, _DEBUG_STATUS[drgn.ModuleFileStatus.WANT], None, None, ()
    status = module.debug_file_status
    build_id = module.build_id.hex() if module.build_id else None
    return (
        status == drgn.ModuleFileStatus.HAVE,
        _DEBUG_STATUS.get(status, str(status)),
        module.debug_file_path,
        build_id,
        module_address_ranges(module),
    )


def _range_holding(ranges: tuple[tuple[int, int], ...], address: int) -> tuple[int, int] | None:
    """The range that holds ``address`` (the text base), else the first one, else ``None``."""
    return next((r for r in ranges if r[0] <= address < r[1]), ranges[0] if ranges else None)


def _kernel_row(prog: drgn.Program, module: drgn.Module | None) -> KernelModule:
    has, status, path, build_id, ranges = _debug_fields(module)
    rng = _range_holding(ranges, 0)
    try:
        base = int(prog.symbol("_stext").address)
        end = int(prog.symbol("_end").address)
    except LookupError:
        base, end = rng if rng else (0, 0)
    try:
        uts = prog["init_uts_ns"].name
        version = f"{uts.release.string_().decode()} {uts.version.string_().decode()}"
    except (LookupError, drgn.FaultError):
        version = None
    start, stop = rng if rng else (base, end)
    return KernelModule(
        name="kernel",
        start=start,
        end=stop,
        base=base,
        size=end - base,
        struct_module=None,
        version=version,
        srcversion=None,
        taints=kernel_taint_letters(prog),
        has_debug_info=has,
        debug_status=status,
        debug_file=path,
        build_id=build_id,
        ranges=ranges,
    )


def module_list_problem(prog: drgn.Program) -> str | None:
    """Say what is wrong with the kernel's ``modules`` list (a cycle, a bad link), or ``None``."""
    walk = ListWalk()
    for _mod in bounded_list_entries(prog["modules"].address_of_(), "struct module", "list", walk):
        pass
    if walk.problem is None:
        return None
    return f"the kernel's module list is corrupt: {walk.problem}; modules past that point are not shown"


def list_modules(prog: drgn.Program) -> list[KernelModule]:
    """Return the kernel first, then every module on the kernel's ``modules`` list, in list order.

    The walk is bounded (:mod:`.lists`): a damaged list ends the table instead of hanging.
    """
    known = _drgn_modules(prog)
    rows = [_kernel_row(prog, known.get("\0kernel"))]
    walk = ListWalk()
    for mod in bounded_list_entries(prog["modules"].address_of_(), "struct module", "list", walk):
        name = mod.name.string_().decode(errors="replace")
        base, size = _text_region(mod)
        has, status, path, build_id, ranges = _debug_fields(known.get(name))
        start, end = _range_holding(ranges, base) or (base, base + size)
        rows.append(
            KernelModule(
                name=name,
                start=start,
                end=end,
                base=base,
                size=size,
                struct_module=int(mod.value_()),
                version=_string(mod.version),
                srcversion=_string(mod.srcversion),
                taints=module_taint_letters(prog, int(mod.taints)),
                has_debug_info=has,
                debug_status=status,
                debug_file=path,
                build_id=build_id,
                ranges=ranges,
            )
        )
    return rows
