"""Fetch missing debug info from debuginfod servers, by build ID.

drgn 0.3 keeps its own debuginfod finder off for the Linux kernel, so the adapter asks debuginfod
itself: through ``libdebuginfod.so.1`` (elfutils) with ctypes, which reports
download progress and can be cancelled from the progress callback, or through the ``debuginfod-find``
command when the library is missing. Files land in debuginfod's own client cache
(``$DEBUGINFOD_CACHE_PATH``, default ``~/.cache/debuginfod_client``) and are handed to drgn with
``Module.try_file()``.

Enabled when ``DEBUGINFOD_URLS`` is set, or when the launch configuration says ``debuginfod: true``
(then Debian's public server is used if no URL is set); ``debuginfod: false`` turns it off even when
``DEBUGINFOD_URLS`` is set.

Where the adapter calls it:

- launch (``dump/opening/opener.py``), when the vmlinux cannot be found locally:
  :func:`find_debuginfo_by_build_id` with the build ID from the vmcore's VMCOREINFO; the file is then
  checked and loaded like a local vmlinux (``main_module.try_file(path)``);
- launch, after local module search: :func:`load_missing_debuginfo` for every module that still wants
  a debug file.

Sources are not fetched: a frame whose file is not on disk shows the function's annotated disassembly
(:mod:`vmcore_dap.dump.disassembly.listing`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import drgn

__all__ = [
    "DEFAULT_URLS",
    "DebuginfodProgress",
    "debuginfod_enabled",
    "find_debuginfo_by_build_id",
    "load_missing_debuginfo",
    "server_urls",
]

log = logging.getLogger(__name__)

#: Used when the launch configuration enables debuginfod but the environment names no server.
DEFAULT_URLS = "https://debuginfod.debian.net"

#: ``progress(message, fraction or None)``; raising (e.g. ``Cancelled``) stops the download.
DebuginfodProgress = Callable[[str, "float | None"], None]

_PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_long, ctypes.c_long)


def debuginfod_enabled(launch_flag: bool | None = None) -> bool:
    """Whether to ask debuginfod: ``DEBUGINFOD_URLS`` is set, or the launch configuration asks."""
    if launch_flag is False:
        return False
    return bool(os.environ.get("DEBUGINFOD_URLS", "").strip()) or bool(launch_flag)


def server_urls() -> str:
    """The servers that are asked: ``DEBUGINFOD_URLS``, else :data:`DEFAULT_URLS`."""
    return os.environ.get("DEBUGINFOD_URLS", "").strip() or DEFAULT_URLS


class _Library:
    """``libdebuginfod.so.1`` through ctypes, loaded once."""

    _instance: _Library | None = None
    _failed = False

    def __init__(self, lib: ctypes.CDLL, libc: ctypes.CDLL) -> None:
        self.lib = lib
        self.libc = libc
        lib.debuginfod_begin.restype = ctypes.c_void_p
        lib.debuginfod_end.argtypes = [ctypes.c_void_p]
        lib.debuginfod_set_progressfn.argtypes = [ctypes.c_void_p, _PROGRESS_FN]
        find = lib.debuginfod_find_debuginfo
        find.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        find.restype = ctypes.c_int
        libc.free.argtypes = [ctypes.c_void_p]

    @classmethod
    def get(cls) -> _Library | None:
        if cls._instance is None and not cls._failed:
            try:
                lib = ctypes.CDLL("libdebuginfod.so.1")
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                cls._instance = cls(lib, libc)
            except OSError:
                log.info("libdebuginfod.so.1 not available; falling back to debuginfod-find")
                cls._failed = True
        return cls._instance


def _find_with_library(
    lib: _Library, kind: str, build_id: str, progress: DebuginfodProgress | None
) -> Path | None:
    what = f"{kind} {build_id}"
    error: list[BaseException] = []

    def on_progress(_client: int, done: int, total: int) -> int:
        if progress is None:
            return 0
        try:
            fraction = done / total if total > 0 else None
            progress(f"Downloading {kind} for build ID {build_id[:12]}…", fraction)
        except BaseException as exc:  # noqa: BLE001 - re-raised after libdebuginfod returns
            error.append(exc)
            return 1  # non-zero cancels the transfer
        return 0

    callback = _PROGRESS_FN(on_progress)
    client = lib.lib.debuginfod_begin()
    if not client:
        log.warning("debuginfod_begin failed")
        return None
    try:
        lib.lib.debuginfod_set_progressfn(client, callback)
        bid = build_id.encode()
        out = ctypes.c_char_p()
        fd = getattr(lib.lib, f"debuginfod_find_{kind}")(client, bid, 0, ctypes.byref(out))
        raw = out.value if fd >= 0 else None
        pointer = ctypes.cast(out, ctypes.c_void_p).value
    finally:
        lib.lib.debuginfod_end(client)
    if error:
        raise error[0]
    if fd < 0:
        log.info("debuginfod: no %s (%s)", what, os.strerror(-fd))
        return None
    os.close(fd)
    if pointer:
        lib.libc.free(pointer)
    return Path(raw.decode()) if raw else None


def _find_with_command(kind: str, build_id: str) -> Path | None:
    command = shutil.which("debuginfod-find")
    if command is None:
        log.warning("debuginfod requested but neither libdebuginfod.so.1 nor debuginfod-find is installed")
        return None
    argv = [command, kind, build_id]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        log.info("debuginfod-find %s %s: %s", kind, build_id, proc.stderr.strip()[-300:])
        return None
    path = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return Path(path) if path else None


def _find(kind: str, build_id: str, progress: DebuginfodProgress | None) -> Path | None:
    if not build_id:
        return None
    # libdebuginfod and debuginfod-find read the servers from the environment. Set the default only
    # for this call, so that ``debuginfod: true`` in one launch does not turn it on for later ones.
    original = os.environ.get("DEBUGINFOD_URLS")
    unset = not (original or "").strip()
    if unset:
        os.environ["DEBUGINFOD_URLS"] = server_urls()
    try:
        lib = _Library.get()
        if lib is not None:
            return _find_with_library(lib, kind, build_id, progress)
        if progress is not None:
            progress(f"Asking debuginfod for {kind} of build ID {build_id[:12]}…", None)
        return _find_with_command(kind, build_id)
    finally:
        if unset and original is None:
            os.environ.pop("DEBUGINFOD_URLS", None)
        elif unset and original is not None:
            os.environ["DEBUGINFOD_URLS"] = original


def find_debuginfo_by_build_id(build_id: str, progress: DebuginfodProgress | None = None) -> Path | None:
    """Return a local path to the debug info (DWARF) of ``build_id`` (hex), fetched if needed.

    :param progress: called during the download; raise from it to cancel.
    :returns: ``None`` when no server has it (or debuginfod is not installed); the reason is logged.
    """
    return _find("debuginfo", build_id, progress)


def load_missing_debuginfo(
    modules: Iterable[drgn.Module], progress: DebuginfodProgress | None = None
) -> list[str]:
    """Fetch and load debug info for every module in ``modules`` that still wants it.

    :returns: the names of the modules that got debug info this way.
    """
    loaded = []
    for module in modules:
        if not module.wants_debug_file() or not module.build_id:
            continue
        path = find_debuginfo_by_build_id(module.build_id.hex(), progress)
        if path is None:
            continue
        module.try_file(str(path))
        if not module.wants_debug_file():
            loaded.append(module.name)
    return loaded
