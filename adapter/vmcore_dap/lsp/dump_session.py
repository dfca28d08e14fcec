"""The dump as the language server sees it: opened once per configuration, everything else on demand.

A :class:`DumpSession` owns the drgn ``Program`` (used from the server's event-loop thread only),
the path mapping, and three things computed the first time a request needs them and then kept,
because a vmcore never changes: the stacks of all tasks (the dump layer's
:class:`~vmcore_dap.dump.stacks.service.StackService`, the same the adapter's Call Stack and Kernel
view use), the faulting location with the panic message, and the ctags indexes of the source trees
(built by a background thread, which runs only the ``ctags`` program and never touches drgn).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import drgn

from vmcore_dap.dump.arch import UnsupportedArchitecture, arch_of
from vmcore_dap.dump.kernel.modules import function_starts, module_address_ranges
from vmcore_dap.dump.kernel.panic import crashed_task, focus_task, panic_info
from vmcore_dap.dump.kernel.tasks import TaskInfo, list_tasks
from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.dump.opening.opener import Dump, open_dump
from vmcore_dap.dump.stacks.service import StackService
from vmcore_dap.errors import AdapterError
from vmcore_dap.lsp.ctags import Tag, TagsFile, build_tags
from vmcore_dap.lsp.paths import PathMapper, code_location

__all__ = ["DumpSession", "FaultSite"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultSite:
    """Where the kernel died and what it said.

    :param file: the DWARF file name of the faulting (or panic-calling) frame.
    """

    file: str
    line: int
    function: str | None
    message: str


class DumpSession:
    """One opened dump and the answers derived from it.

    :param config: the launch configuration (same keys as the adapter's ``launch``).
    """

    def __init__(self, config: LaunchConfig, dump: Dump | None = None) -> None:
        self.config = config
        start = time.monotonic()
        self.dump = dump if dump is not None else open_dump(config)
        self.open_seconds = time.monotonic() - start
        self.paths = PathMapper(config)
        self._stacks: StackService | None = None
        self._fault: FaultSite | None | bool = False
        self._tags: list[TagsFile] = []
        self._tags_error: str | None = None
        self._tags_thread: threading.Thread | None = None
        self._tags_done = threading.Event()

    @property
    def prog(self) -> drgn.Program:
        """The drgn program (one thread only)."""
        return self.dump.prog

    # -- stacks and the fault ---------------------------------------------------------------------

    @property
    def stacks(self) -> StackService:
        """Every task's stack (the tasks listed on first use, each stack unwound when first asked)."""
        if self._stacks is None:
            crashed = crashed_task(self.prog)
            tasks = list_tasks(self.prog, focus_task(self.prog))  # numbered as the adapter numbers them
            self._stacks = StackService(self.prog, tasks, crashed.value_() if crashed is not None else None)
        return self._stacks

    def tasks_in(self, function: str) -> list[TaskInfo]:
        """The tasks with ``function`` on their stack (any of its names), in task order."""
        stacks = self.stacks
        return [stacks.task(key) for key in stacks.tasks_in(function)]

    def fault(self) -> FaultSite | None:
        """The faulting line of the crashed task (the adapter's focus frame) with the panic message."""
        if self._fault is not False:
            return self._fault if isinstance(self._fault, FaultSite) else None
        site: FaultSite | None = None
        key = self.stacks.crashed_key
        if key is not None:
            task = self.stacks.task(key).task
            stack = self.stacks.stack(key)
            frames = stack.frames
            candidates = frames[stack.focus :] if 0 <= stack.focus < len(frames) else frames
            frame = next((f for f in candidates if f.kind == "code" and f.source_file), None)
            if frame is not None and frame.source_file is not None:
                info = panic_info(self.prog)
                parts = [text for text in (info.oops, info.panic) if text]
                message = " — ".join(dict.fromkeys(parts)) or "the kernel crashed here"
                comm = task.comm.string_().decode("utf-8", "replace")
                message += f" (PID {task.pid.value_()} {comm}, in {frame.function})"
                site = FaultSite(frame.source_file, frame.line, frame.function, message)
        self._fault = site if site is not None else None
        return site

    # -- the ctags indexes ------------------------------------------------------------------------

    def index_roots(self) -> list[Path]:
        """Source trees to index: the configured roots and the source directories of modules."""
        roots: list[Path] = []
        for module in self.prog.modules():
            if not isinstance(module, drgn.RelocatableModule) or module.wants_debug_file():
                continue
            # Since Linux 6.4 a module has a range per mem[] region (drgn's address_range raises).
            # The first symbols may be padding (__pfx_* on x86-64 since 6.2), without a line.
            starts = function_starts(self.prog, module_address_ranges(module))
            location = next(filter(None, (code_location(self.prog, start) for start in starts)), None)
            local = self.paths.local(location[0]) if location is not None else None
            if local is not None:
                roots.append(Path(os.path.dirname(local)))
        # Module trees first: they are small, so their definitions are ready within a second.
        roots += [root for root in self.paths.roots if root.is_dir()]
        return list(dict.fromkeys(root.resolve() for root in roots))

    def start_indexing(self) -> None:
        """Build (or load) the ctags indexes in a background thread, once (the server starts it after
        the first code lens; :meth:`find_tags` starts it too, and waits for it)."""
        if self._tags_thread is not None:
            return
        roots = self.index_roots()
        try:
            arch: str | None = arch_of(self.prog).source_dir
        except UnsupportedArchitecture:
            arch = None  # index every architecture's directory

        def work() -> None:
            try:
                for root in roots:
                    start = time.monotonic()
                    tags = build_tags(root, arch)
                    self._tags.append(TagsFile(tags, root))
                    log.info("ctags index of %s ready in %.1fs: %s", root, time.monotonic() - start, tags)
            except AdapterError as exc:
                self._tags_error = exc.message
            except Exception as exc:  # noqa: BLE001 - reported to the user, never kills the server
                log.exception("indexing the sources failed")
                self._tags_error = f"Cannot index the sources: {exc}"
            finally:
                self._tags_done.set()

        self._tags_thread = threading.Thread(target=work, name="ctags-index", daemon=True)
        self._tags_thread.start()

    def find_tags(self, name: str, kinds: set[str] | None = None, timeout: float = 0.0) -> list[Tag]:
        """Return ctags definitions of ``name`` (of the given long kind names), module trees first.

        :param timeout: how long to wait for an index still being built.
        """
        self.start_indexing()
        self._tags_done.wait(timeout)
        found: list[Tag] = []
        for tags in list(self._tags):
            found += [tag for tag in tags.lookup(name) if kinds is None or tag.kind in kinds]
        return found

    @property
    def indexing_error(self) -> str | None:
        """Why the source index is unavailable, if it is."""
        return self._tags_error

    @property
    def indexing_done(self) -> bool:
        """Whether every index is built (or failed)."""
        return self._tags_done.is_set()

    def close(self) -> None:
        """Release the tags files (the Program goes with the garbage collector)."""
        for tags in self._tags:
            tags.close()
