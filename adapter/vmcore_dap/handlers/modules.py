"""``modules`` (the kernel and every loaded module) and ``loadedSources``.

Module rows carry DAP's recommended attributes (``path``, ``version``, ``symbolStatus``,
``symbolFilePath``, ``addressRange``) plus our own ``taints`` (``OE`` as in the kernel log),
``srcversion``, ``base``/``size`` (as crash's ``mod`` shows them) and ``buildId``.

``loadedSources`` lists the source files of the code the dump is about: every function on every
task's stack and every function of the loaded modules. (The kernel's full list of compilation units is
thousands of files no one browses; the ones on stacks are the ones that matter.)
"""

from __future__ import annotations

import logging
from typing import Any

import drgn

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.kernel.modules import KernelModule, list_modules

__all__: list[str] = []

log = logging.getLogger(__name__)


class _ModulesState:
    def __init__(self) -> None:
        self.prog: drgn.Program | None = None
        self.modules: list[KernelModule] = []
        self.sources: list[dict[str, Any]] | None = None


def _state(session: Session) -> tuple[_ModulesState, drgn.Program]:
    from vmcore_dap.handlers.context import current_dump

    prog = current_dump(session).prog
    state = session.component(_ModulesState)
    if state.prog is not prog:
        state.prog, state.modules, state.sources = prog, list_modules(prog), None
    return state, prog


def _module_body(module: KernelModule) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": module.name,
        "name": module.name,
        "isOptimized": True,
        "isUserCode": not module.is_kernel,
        "symbolStatus": module.debug_status,
        "addressRange": f"{module.start:#x}-{module.end:#x}",
        "base": f"{module.base:#x}",
        "size": module.size,
        "taints": module.taints,
    }
    if module.debug_file:
        body["path"] = module.debug_file
        body["symbolFilePath"] = module.debug_file
    version = module.version or (f"srcversion {module.srcversion}" if module.srcversion else None)
    if version:
        body["version"] = version
    if module.srcversion:
        body["srcversion"] = module.srcversion
    if module.build_id:
        body["buildId"] = module.build_id
    if module.struct_module is not None:
        body["structModule"] = f"{module.struct_module:#x}"
    return body


@registry.request("modules", capabilities=("supportsModulesRequest",))
def modules(session: Session, args: Args) -> dict[str, Any]:
    """Return a page of the module list (``startModule``, ``moduleCount``; 0 means all)."""
    state, _prog = _state(session)
    start = args.integer("startModule", 0, minimum=0)
    count = args.integer("moduleCount", 0, minimum=0)
    rows = state.modules[start : start + count if count else None]
    return {"modules": [_module_body(m) for m in rows], "totalModules": len(state.modules)}


def _stack_pcs(prog: drgn.Program) -> list[int]:
    from drgn.helpers.linux.pid import for_each_task

    pcs: list[int] = []
    for task in for_each_task(prog):
        try:
            trace = prog.stack_trace(task)
        except (ValueError, LookupError, drgn.FaultError):
            continue
        for frame in trace:
            try:
                pcs.append(int(frame.pc))
            except LookupError:
                continue
    return pcs


def _module_function_starts(prog: drgn.Program, module: KernelModule) -> list[int]:
    try:
        symbols = prog.symbols()
    except (LookupError, ValueError):
        return []
    return [
        int(s.address)
        for s in symbols
        if s.kind == drgn.SymbolKind.FUNC and module.start <= s.address < module.end and s.size
    ]


@registry.request("loadedSources", capabilities=("supportsLoadedSourcesRequest",))
def loaded_sources(session: Session, args: Args) -> dict[str, Any]:
    """Return the source files of every function on a stack and in every loaded module."""
    from vmcore_dap.handlers.source import resolve_source_path

    state, prog = _state(session)
    if state.sources is not None:
        return {"sources": state.sources}
    seen: dict[str, dict[str, Any]] = {}
    with session.progress("Collecting source files") as progress:
        addresses = _stack_pcs(prog)
        module_rows = [m for m in state.modules if not m.is_kernel and m.has_debug_info]
        for module in module_rows:
            addresses.extend(_module_function_starts(prog, module))
        total = max(len(addresses), 1)
        for i, address in enumerate(addresses):
            if i % 256 == 0:
                progress.update(f"{i}/{total} addresses", 100 * i / total)
            try:
                locations = prog.source_location(address)
            except LookupError:
                continue
            for loc in locations:
                if not loc.filename or loc.filename in seen:
                    continue
                local = resolve_source_path(session, loc.filename)
                if local is None:
                    continue
                seen[loc.filename] = {"name": local.rsplit("/", 1)[-1], "path": local}
    state.sources = sorted(seen.values(), key=lambda s: s["path"])
    log.info("loadedSources: %d files from %d addresses", len(state.sources), len(addresses))
    return {"sources": state.sources}
