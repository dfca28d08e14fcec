"""Open a vmcore with drgn: check the file, find and verify the vmlinux, load module debug info.

:func:`open_dump` is the one entry point. It does its own checks first (:mod:`.vmcore_file`,
:mod:`.debuginfo`) so that each way of failing has its own plain message, then hands the files to
drgn with drgn's own searching disabled for the kernel image (a wrong vmlinux must be refused, not
replaced). Debug info that is not on this machine is asked from debuginfod by build ID when the launch
configuration or ``DEBUGINFOD_URLS`` enables it (:mod:`.debuginfod`): the vmlinux when the local
search finds none, then every module still without debug info.

Progress is reported through a callback so the protocol layer can turn it into DAP
``progressUpdate`` events (and cancel between steps) without this module knowing about DAP.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import drgn

from vmcore_dap.dump.opening import debuginfo, debuginfod
from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.opening.mapped_dump import watch_dump_file
from vmcore_dap.dump.opening.vmcore_file import (
    VmcoreFile,
    describe_filtering,
    inspect_vmcore,
    remember_inspection,
)
from vmcore_dap.errors import UserError

__all__ = ["Dump", "open_dump", "ProgressCallback"]

log = logging.getLogger(__name__)

#: ``progress(message, percentage)``; may raise (e.g. :class:`~vmcore_dap.errors.Cancelled`) to stop.
ProgressCallback = Callable[[str, float], None]


@dataclass
class Dump:
    """An opened crash dump and what is known about how it was opened.

    :param prog: the drgn program (use it from one thread only).
    :param vmlinux: the kernel image with debug info that was loaded.
    :param modules_without_debug_info: loaded kernel modules whose debug info was not found; their
        frames are named from kallsyms only.
    :param warnings: facts the user should see once (truncation, missing module debug info).
    :param timings: seconds spent in each opening step, for the log and benchmarks.
    """

    prog: drgn.Program
    config: LaunchConfig
    file: VmcoreFile
    vmlinux: Path
    release: str | None
    build_id: str | None
    modules_without_debug_info: list[str] = field(default_factory=list)
    modules_with_debug_info: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def filter_description(self) -> str:
        """One phrase on how complete the dump is ("partial dump, makedumpfile -d 31: …", or for an ELF
        dump what its segments show: "ELF dump written by makedumpfile with filtering: N pages …")."""
        return describe_filtering(self.file)


def _no_progress(message: str, percentage: float) -> None:
    pass


def _download_progress(progress: ProgressCallback, low: float, high: float) -> debuginfod.DebuginfodProgress:
    """Report a debuginfod download's fraction as a percentage between ``low`` and ``high``."""

    def report(message: str, fraction: float | None) -> None:
        progress(message, low if fraction is None else low + (high - low) * min(max(fraction, 0.0), 1.0))

    return report


def open_dump(
    config: LaunchConfig,
    progress: ProgressCallback = _no_progress,
    *,
    while_indexing: Callable[[], object] | None = None,
) -> Dump:
    """Open the dump named by ``config`` and load its debug info.

    :param while_indexing: run on another thread while drgn indexes the vmlinux's DWARF (most of the
        opening; drgn releases the GIL meanwhile), and waited for: e.g. the caller's imports. What it
        raises is logged, not raised (whoever needs its work finds it undone).
    :raises UserError: with a message naming the file and the fix, for every expected failure.
    """
    timings: dict[str, float] = {}
    start = time.monotonic()
    progress("Checking the vmcore", 0)
    vmfile = inspect_vmcore(config.vmcore)
    release, build_id = vmfile.release, vmfile.build_id

    # The vmlinux is verified before drgn spends seconds opening anything.
    # (A flattened dump whose first records lack the headers is identified after drgn opened it.)
    identified = vmfile.format != "flattened" or build_id is not None
    vmlinux: Path | None = None
    if config.vmlinux is not None and identified:
        debuginfo.check_vmlinux(config.vmlinux, build_id)
        vmlinux = config.vmlinux
    elif identified:
        vmlinux = _search_vmlinux(config, release, build_id, progress)

    progress("Opening the vmcore", 5)
    prog = drgn.Program()
    try:
        prog.set_core_dump(str(config.vmcore))
    except Exception as exc:  # noqa: BLE001 - drgn raises several kinds here; all mean "cannot open"
        raise _open_failure(vmfile, exc) from None
    remember_inspection(prog, vmfile)
    watch_dump_file(prog, config.vmcore)
    timings["open"] = time.monotonic() - start

    if vmlinux is None:
        vmlinux = _flattened_vmlinux(prog, config, progress)

    assert vmlinux is not None
    dump = Dump(prog, config, vmfile, vmlinux, release, build_id, warnings=list(vmfile.warnings))
    dump.timings = timings
    _load_debug_info(dump, progress, while_indexing)
    dump.timings["total"] = time.monotonic() - start
    log.info("opened %s with %s in %.2fs: %s", config.vmcore, vmlinux, dump.timings["total"], dump.timings)
    return dump


def _search_vmlinux(
    config: LaunchConfig, release: str | None, build_id: str | None, progress: ProgressCallback
) -> Path:
    """Find the vmlinux by build ID: the local directories first, then debuginfod if enabled.

    The vmcore's own directory comes first: kdump-tools and people copying a dump off a machine
    often keep ``vmlinux``/``vmlinux-<release>`` beside it (a folder opened in VS Code with both
    files then needs no launch.json). The build ID still decides, so a stale vmlinux there is
    passed over.
    """
    directories = [config.vmcore.parent] + (
        list(config.debug_info_directories)
        if config.debug_info_directories is not None
        else debuginfo.default_debug_dirs(release)
    )
    found, search = debuginfo.find_vmlinux(directories, release, build_id)
    if found is not None:
        return found
    if config.use_debuginfod and build_id:
        progress(f"Asking debuginfod for the vmlinux of build ID {build_id[:12]}…", 1)
        fetched = debuginfod.find_debuginfo_by_build_id(build_id, _download_progress(progress, 1, 5))
        if fetched is not None:
            # The server answers by build ID; checking costs one ELF note read and keeps the promise
            # that a vmlinux of another build is never used.
            debuginfo.check_vmlinux(fetched, build_id)
            log.info("vmlinux %s from debuginfod: %s", build_id, fetched)
            return fetched
        search.looked.append(f"debuginfod ({debuginfod.server_urls()})")
    raise debuginfo.describe_not_found(search, release, build_id)


def _flattened_vmlinux(prog: drgn.Program, config: LaunchConfig, progress: ProgressCallback) -> Path:
    """A flattened dump's VMCOREINFO is only known once drgn read it: check the vmlinux afterwards."""
    build_id: str | None = None
    try:
        for module, _new in prog.loaded_modules():
            if isinstance(module, drgn.MainModule):
                build_id = module.build_id.hex() if module.build_id else None
            break
    except Exception:  # noqa: BLE001 - enumeration may need debug info; the check below is enough
        log.debug("cannot read the main module's build ID of a flattened dump", exc_info=True)
    if config.vmlinux is not None:
        debuginfo.check_vmlinux(config.vmlinux, build_id)
        return config.vmlinux
    return _search_vmlinux(config, None, build_id, progress)


def _open_failure(vmfile: VmcoreFile, exc: BaseException) -> UserError:
    path = vmfile.path
    if vmfile.truncated:
        return UserError(f"Cannot open vmcore '{path}': {vmfile.warnings[0]}")
    if vmfile.format == "flattened":
        return UserError(
            f"Cannot open vmcore '{path}': it is in makedumpfile's flattened format, which this drgn "
            f"cannot read ({exc}) (convert it first: makedumpfile -R {path.name}.kdump < {path.name})"
        )
    return UserError(f"Cannot open vmcore '{path}': drgn could not read it: {exc} (is the file complete?)")


def _load_debug_info(
    dump: Dump, progress: ProgressCallback, while_indexing: Callable[[], object] | None
) -> None:
    prog = dump.prog
    t0 = time.monotonic()
    # We find files ourselves; drgn's finders would silently pick another vmlinux.
    prog.set_enabled_debug_info_finders([])
    progress(f"Loading {dump.vmlinux.name}", 10)
    modules = prog.loaded_modules()
    try:
        main, _new = next(modules)
    except StopIteration:
        raise UserError(
            f"Cannot open vmcore '{dump.config.vmcore}': drgn found no kernel in it "
            "(is it a Linux kernel dump?)"
        ) from None
    main.try_file(str(dump.vmlinux), force=dump.build_id is None)
    if main.wants_debug_file():
        raise UserError(
            f"Cannot use vmlinux '{dump.vmlinux}': drgn did not accept it for this dump "
            "(it needs the vmlinux with DWARF debug info, e.g. from the -dbg package)"
        )
    dump.timings["vmlinux"] = time.monotonic() - t0

    t1 = time.monotonic()
    progress("Indexing kernel debug info", 25)
    alongside = _start_alongside(while_indexing)
    try:
        prog.type("struct task_struct")
    except LookupError:
        raise UserError(
            f"Cannot use vmlinux '{dump.vmlinux}': it has no type information (struct task_struct) "
            "(use the unstripped vmlinux from the debug package)"
        ) from None
    finally:
        if alongside is not None:
            alongside.join()
    dump.timings["index"] = time.monotonic() - t1

    t2 = time.monotonic()
    try:
        kernel_modules = [module for module, _new in modules]
    except drgn.FaultError as exc:
        kernel_modules = []
        dump.warnings.append(
            f"the list of loaded modules cannot be read ({exc}); module frames show addresses"
        )
    index = debuginfo.module_file_index(dump.config.debug_info)
    total = max(len(kernel_modules), 1)
    for i, module in enumerate(kernel_modules):
        progress(f"Loading debug info for module {module.name}", 40 + 40 * i / total)
        for path in index.get(module.name, ()):
            if not module.wants_debug_file():
                break
            module.try_file(str(path))
    wanting = [m for m in kernel_modules if m.wants_debug_file()]
    if wanting:
        directories = (
            list(dump.config.debug_info_directories)
            if dump.config.debug_info_directories is not None
            else debuginfo.default_debug_dirs(dump.release)
        )
        progress(f"Searching debug info for {len(wanting)} modules", 82)
        options = drgn.DebugInfoOptions(
            directories=[str(d) for d in directories if d.is_dir()],
            kernel_directories=[str(d) for d in directories if d.is_dir()],
        )
        try:
            prog.find_standard_debug_info(wanting, options)
        except Exception:  # noqa: BLE001 - searching is best effort; what is missing is reported below
            log.warning("standard debug info search failed", exc_info=True)
        wanting = [m for m in wanting if m.wants_debug_file()]
    if wanting and dump.config.use_debuginfod:
        progress(f"Asking debuginfod for {len(wanting)} modules", 85)
        fetched = debuginfod.load_missing_debuginfo(wanting, _download_progress(progress, 85, 95))
        if fetched:
            log.info("module debug info from debuginfod: %s", ", ".join(fetched))
    dump.modules_with_debug_info = sorted(m.name for m in kernel_modules if not m.wants_debug_file())
    dump.modules_without_debug_info = sorted(m.name for m in kernel_modules if m.wants_debug_file())
    if dump.modules_without_debug_info:
        _enable_module_kallsyms(prog)
        names = ", ".join(dump.modules_without_debug_info[:8])
        more = len(dump.modules_without_debug_info) - 8
        dump.warnings.append(
            f"no debug info for {len(dump.modules_without_debug_info)} kernel module(s): {names}"
            + (f" and {more} more" if more > 0 else "")
            + " (their frames show symbol+offset only; add the .ko files to 'debugInfo')"
        )
    dump.timings["modules"] = time.monotonic() - t2
    progress("Debug info loaded", 100)


def _start_alongside(job: Callable[[], object] | None) -> threading.Thread | None:
    """Start ``job`` on its own thread (see ``while_indexing`` of :func:`open_dump`)."""
    if job is None:
        return None

    def run() -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 - the caller's job; its failure shows where its work is needed
            log.exception("work alongside the debug info index failed")

    thread = threading.Thread(target=run, name="vmcore-dap-while-indexing", daemon=True)
    thread.start()
    return thread


def _enable_module_kallsyms(prog: drgn.Program) -> None:
    """Name addresses in modules without debug info from the symbol tables the kernel keeps."""
    from drgn.helpers.linux.kallsyms import load_module_kallsyms

    try:
        index = load_module_kallsyms(prog)
        prog.register_symbol_finder("vmcore-dap-module-kallsyms", index, enable_index=-1)
    except Exception:  # noqa: BLE001 - without it frames show raw addresses, which still works
        log.warning("cannot load module kallsyms", exc_info=True)
