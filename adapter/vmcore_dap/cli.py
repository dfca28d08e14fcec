"""The ``vmcore-dap`` command: serve DAP on stdio (the default) or on a loopback port; or, as
``vmcore-dap triage …``, triage many dumps at once (:mod:`vmcore_dap.triage.command`).

stdout carries DAP only: the binary stdout is taken for the transport first, then ``sys.stdout`` is
pointed at stderr so that a stray ``print`` anywhere cannot corrupt the message stream.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import BinaryIO

from vmcore_dap.drgn_plugins import skip_drgn_plugins
from vmcore_dap.malloc_arenas import limit_malloc_arenas
from vmcore_dap.versions import add_version_argument, running_versions

__all__ = ["main"]

log = logging.getLogger("vmcore_dap")

#: The extension sets this to a file path to get the adapter's log without touching the arguments.
LOG_ENV = "VMCORE_DAP_LOG"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="vmcore-dap",
        description="Debug Adapter Protocol server for Linux kernel crash dumps (vmcores), on drgn.",
        epilog="'vmcore-dap triage --help': triage many dumps at once (reports, signatures, clusters).",
    )
    add_version_argument(parser, "vmcore-dap")
    parser.add_argument(
        "--port",
        type=int,
        metavar="N",
        help="serve DAP on 127.0.0.1:N (one client at a time) instead of stdio",
    )
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        default=os.environ.get(LOG_ENV) or None,
        help=f"write a log with the full DAP message trace to PATH (default: ${LOG_ENV})",
    )
    parser.add_argument(
        "--check-launch",
        action="store_true",
        help="read a launch configuration (JSON) on stdin, print its problems as JSON and exit "
        "(what a client checks before starting a session; the dump is not opened)",
    )
    parser.add_argument(
        "--debugpy",
        type=int,
        metavar="PORT",
        help="let a Python debugger attach to the adapter on 127.0.0.1:PORT",
    )
    parser.add_argument(
        "--debugpy-wait",
        action="store_true",
        help="with --debugpy: wait for the debugger to attach before serving",
    )
    return parser.parse_args(argv)


def _setup_logging(path: str | None) -> None:
    root = logging.getLogger()
    root.handlers.clear()
    if path:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        root.setLevel(logging.DEBUG)
    else:
        handler = logging.StreamHandler(sys.stderr)
        root.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(handler)


def _serve(reader: BinaryIO, writer: BinaryIO, log_path: str | None) -> None:
    from vmcore_dap.dap.channel import Channel
    from vmcore_dap.dap.transport import Transport
    from vmcore_dap.dump.errors import translate_error
    from vmcore_dap.handlers import install

    install()  # the routes only: a handler module is imported on its first request
    transport = Transport(reader, writer)
    transport.trace = log_path is not None
    Channel(transport, translate_error=translate_error, log_path=log_path).run()


def _serve_port(port: int, log_path: str | None) -> None:
    with socket.create_server(("127.0.0.1", port)) as server:
        print(f"vmcore-dap: listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        while True:
            conn, peer = server.accept()
            log.info("client connected from %s", peer)
            with conn, conn.makefile("rb") as reader, conn.makefile("wb") as writer:
                _serve(reader, writer, log_path)


def _check_launch() -> int:
    """``--check-launch``: ``{"problems": [{"setting", "message", "severity"}]}``, the messages worded
    for launch.json (the only client that asks is the VS Code extension)."""
    import json

    from vmcore_dap.dump.opening.preflight import check_launch
    from vmcore_dap.errors import SettingError

    try:
        raw = json.load(sys.stdin)
    except ValueError as exc:
        print(f"vmcore-dap --check-launch: stdin is not a JSON object: {exc}", file=sys.stderr)
        return 2
    if not isinstance(raw, dict):
        print("vmcore-dap --check-launch: stdin is not a JSON object", file=sys.stderr)
        return 2
    problems = [
        {
            "setting": p.setting,
            "message": SettingError(p.message, p.setting).located("launch.json").message,
            "severity": p.severity,
        }
        for p in check_launch(raw)
    ]
    json.dump({"problems": problems}, sys.stdout)
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the adapter (or the ``triage`` subcommand); returns the process exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["triage"]:
        from vmcore_dap.triage.command import main as triage_main

        _setup_logging(os.environ.get(LOG_ENV) or None)
        return triage_main(args[1:])
    options = _parse(args)
    if options.check_launch:
        return _check_launch()
    limit_malloc_arenas()  # before any thread starts (the channel's worker, debugpy's)
    skip_drgn_plugins()
    _setup_logging(options.log_file)
    log.info("%s at %s", running_versions().line(), sys.executable)
    if options.debugpy is not None:
        import debugpy

        debugpy.listen(("127.0.0.1", options.debugpy))
        if options.debugpy_wait:
            debugpy.wait_for_client()
    try:
        if options.port is not None:
            _serve_port(options.port, options.log_file)
        else:
            reader, writer = sys.stdin.buffer, sys.stdout.buffer
            sys.stdout = sys.stderr
            _serve(reader, writer, options.log_file)
    except KeyboardInterrupt:
        return 130
    return 0
