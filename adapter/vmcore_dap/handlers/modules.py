"""``modules`` (the kernel and every loaded module) and ``loadedSources``.

Module rows carry DAP's recommended attributes (``path``, ``version``, ``symbolStatus``,
``symbolFilePath``, ``addressRange``) plus our own ``taints`` (``OE`` as in the kernel log),
``srcversion``, ``base``/``size`` (as crash's ``mod`` shows them) and ``buildId``.

``loadedSources`` lists the source files of the code the dump is about: every row of every task's
stack (from the stack service, one unwinding per distinct stack) and every function of the loaded
modules. (The kernel's full list of compilation units is thousands of files no one browses; the ones on
stacks are the ones that matter.)
"""

from __future__ import annotations

import logging
from typing import Any

from vmcore_dap.dap import registry
from vmcore_dap.dap.args import Args
from vmcore_dap.dap.session import Session
from vmcore_dap.dump.kernel.modules import KernelModule, function_starts, list_modules
from vmcore_dap.handlers.dump_state import current_dump, dump_state, stacks

__all__: list[str] = []

log = logging.getLogger(__name__)


class _ModulesState:
    def __init__(self) -> None:
        self.modules: list[KernelModule] | None = None
        self.sources: list[dict[str, Any]] | None = None


def _modules(session: Session) -> list[KernelModule]:
    state = session.component(_ModulesState)
    if state.modules is None:
        state.modules = list_modules(current_dump(session).prog)
    return state.modules


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


@registry.request("modules")
def modules(session: Session, args: Args) -> dict[str, Any]:
    """Return a page of the module list (``startModule``, ``moduleCount``; 0 means all)."""
    modules = _modules(session)
    start = args.integer("startModule", 0, minimum=0)
    count = args.integer("moduleCount", 0, minimum=0)
    rows = modules[start : start + count if count else None]
    return {"modules": [_module_body(m) for m in rows], "totalModules": len(modules)}


@registry.request("loadedSources")
def loaded_sources(session: Session, args: Args) -> dict[str, Any]:
    """Return the source files of every row of every stack and of every function in a loaded module."""
    state = session.component(_ModulesState)
    if state.sources is not None:
        return {"sources": state.sources}
    prog = current_dump(session).prog
    files: dict[str, None] = {}
    with session.progress("Collecting source files") as progress:

        def check(done: int, total: int) -> None:
            progress.update(f"stacks: {done}/{total} tasks", 50 * done / max(total, 1))

        stacks(session).function_index(check)
        for stack in stacks(session).distinct_stacks():
            files.update((row.source_file, None) for row in stack.frames if row.source_file)
        addresses = [
            address
            for module in _modules(session)
            if not module.is_kernel and module.has_debug_info
            for address in function_starts(prog, module.address_ranges)
        ]
        total = max(len(addresses), 1)
        for i, address in enumerate(addresses):
            if i % 256 == 0:
                progress.update(f"modules: {i}/{total} functions", 50 + 50 * i / total)
            try:
                files.update((loc.filename, None) for loc in prog.source_location(address) if loc.filename)
            except LookupError:
                continue
    sources = dump_state(session).sources
    found: dict[str, dict[str, Any]] = {}
    for file in files:
        resolved = sources.resolve(file)
        if resolved.exists:
            found[resolved.path] = {"name": resolved.name, "path": resolved.path}
    state.sources = sorted(found.values(), key=lambda s: s["path"])
    log.info("loadedSources: %d files of %d named by stacks and modules", len(state.sources), len(files))
    return {"sources": state.sources}
