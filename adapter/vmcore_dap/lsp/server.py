"""The ``vmcore-dap-lsp`` language server: kernel C sources annotated from an open vmcore (pygls 2).

It is configured with the adapter's launch configuration (``initializationOptions`` or
``workspace/didChangeConfiguration``; see :mod:`.settings`), opens the same dump itself (see
``docs/lsp.md`` for why a second ``Program`` rather than the adapter's) and answers hover, go to
definition, code lens, diagnostics and workspace symbols. Every handler runs on the event loop's
thread, so drgn is used from one thread only; the source index is built by a helper thread that only
runs ``ctags``.

A handler never takes the server down: expected failures (a bad configuration, a dump that does not
open) are shown once with ``window/showMessage``; anything else is logged and the request answered
with nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from vmcore_dap import __version__
from vmcore_dap.dump.opening.launch_config import LaunchConfig
from vmcore_dap.errors import AdapterError, SettingError
from vmcore_dap.lsp.dump_session import DumpSession
from vmcore_dap.lsp.features import SHOW_TASKS_COMMAND, code_lenses, diagnostics
from vmcore_dap.lsp.hover import hover_text
from vmcore_dap.lsp.identifiers import identifier_at
from vmcore_dap.lsp.navigation import Definition, find_definitions, search_symbols
from vmcore_dap.lsp.settings import launch_config_from
from vmcore_dap.malloc_arenas import limit_malloc_arenas
from vmcore_dap.versions import add_version_argument, running_versions

__all__ = ["VmcoreLanguageServer", "server", "main", "LOG_ENV"]

log = logging.getLogger("vmcore_dap.lsp")

#: The extension sets this to a file path to get the server's log.
LOG_ENV = "VMCORE_DAP_LSP_LOG"
#: How long a definition request waits for the source index before answering from what is ready.
_INDEX_WAIT_S = 2.0

T = TypeVar("T")


def _located(exc: AdapterError) -> AdapterError:
    """The error as the user reads it: a setting's problem says where the setting is (the extension
    hands the server the debug session's launch.json configuration)."""
    return exc.located("launch.json") if isinstance(exc, SettingError) else exc


class VmcoreLanguageServer(LanguageServer):
    """A pygls server holding at most one :class:`DumpSession`."""

    def __init__(self) -> None:
        super().__init__("vmcore-dap-lsp", __version__)
        self.config: LaunchConfig | None = None
        self.session: DumpSession | None = None
        self.error: str | None = None
        self._indexing_announced = False

    def configure(self, options: Any) -> None:
        """Open the dump named by ``options`` (a launch configuration); a same configuration is kept."""
        try:
            config = launch_config_from(options)
        except AdapterError as exc:
            self._fail(_located(exc).message)
            return
        if config is None or config == self.config:
            return
        if self.session is not None:
            self.session.close()
        self.config, self.session, self.error = config, None, None
        try:
            self.session = DumpSession(config)
        except AdapterError as exc:
            self._fail(_located(exc).message)
            return
        log.info("opened %s in %.2fs", config.vmcore, self.session.open_seconds)
        # The task list, read now as the adapter's launch reads it: the first lens or hover then pays
        # only for the stacks. The ctags index starts after the first code lens (or with the first
        # lookup that needs it): its hashing of the source tree would otherwise compete for the one
        # interpreter with the first lens, which reads every task's stack.
        safely(lambda: self.session.stacks if self.session is not None else None)

    def _fail(self, message: str) -> None:
        self.error = message
        log.warning("%s", message)
        self.window_show_message(types.ShowMessageParams(types.MessageType.Error, f"vmcore-dap: {message}"))

    def announce_indexing(self) -> None:
        """Tell the user once that types and globals resolve after the first indexing."""
        session = self.session
        if session is None or self._indexing_announced or session.indexing_done:
            return
        self._indexing_announced = True
        self.window_show_message(
            types.ShowMessageParams(
                types.MessageType.Info,
                "vmcore-dap: indexing the kernel sources for go to definition (first time only, "
                "about a minute); functions resolve already",
            )
        )

    def refresh(self) -> None:
        """Re-publish diagnostics of open documents and ask the client to re-query code lenses."""
        for uri in list(self.workspace.text_documents):
            self.publish(uri)
        try:
            self.workspace_code_lens_refresh(None)
        except Exception:  # noqa: BLE001 - a client without refresh support re-queries on edit
            log.debug("codeLens/refresh not supported", exc_info=True)

    def publish(self, uri: str) -> None:
        """Publish the diagnostics of one document."""
        path = to_fs_path(uri)
        session = self.session
        notes = (safely(lambda: diagnostics(session, path)) if session and path else None) or []
        document = self.workspace.get_text_document(uri)
        lines = document.lines
        result = []
        for note in notes:
            text = lines[note.line].rstrip("\r\n") if 0 <= note.line < len(lines) else ""
            start = len(text) - len(text.lstrip())
            result.append(
                types.Diagnostic(
                    range=_range(note.line, start, max(len(text), start + 1)),
                    message=note.message,
                    severity=(
                        types.DiagnosticSeverity.Error
                        if note.severity == "error"
                        else types.DiagnosticSeverity.Information
                    ),
                    source="vmcore",
                )
            )
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=result))


def safely(work: Callable[[], T]) -> T | None:
    """Run ``work``; log any failure and return ``None`` (a request must never kill the server)."""
    try:
        return work()
    except AdapterError as exc:
        log.warning("%s", exc.message)
    except Exception:  # noqa: BLE001 - the one boundary of every feature
        log.exception("language server request failed")
    return None


def _after_response(work: Callable[[], None]) -> None:
    """Run ``work`` on the event loop once the current request is answered (now, outside a loop)."""
    try:
        asyncio.get_running_loop().call_soon(lambda: safely(work))
    except RuntimeError:
        safely(work)


def _range(line: int, start: int, end: int) -> types.Range:
    return types.Range(types.Position(line, start), types.Position(line, end))


def _location(definition: Definition) -> types.Location:
    return types.Location(
        uri=from_fs_path(definition.path) or Path(definition.path).as_uri(),
        range=_range(definition.line, definition.column, definition.column + definition.length),
    )


server = VmcoreLanguageServer()


@server.feature(types.INITIALIZE)
def _initialize(ls: VmcoreLanguageServer, params: types.InitializeParams) -> None:
    ls.configure(params.initialization_options)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def _did_change_configuration(ls: VmcoreLanguageServer, params: types.DidChangeConfigurationParams) -> None:
    before = ls.session
    ls.configure(params.settings)
    if ls.session is not before:
        ls.refresh()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def _did_open(ls: VmcoreLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def _did_save(ls: VmcoreLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def _did_close(ls: VmcoreLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
    )


@server.feature(types.TEXT_DOCUMENT_HOVER)
def _hover(ls: VmcoreLanguageServer, params: types.HoverParams) -> types.Hover | None:
    session = ls.session
    if session is None:
        return None
    document = ls.workspace.get_text_document(params.text_document.uri)
    identifier = identifier_at(document.lines, params.position.line, params.position.character)
    if identifier is None:
        return None
    text = safely(lambda: hover_text(session, identifier, document.path))
    if text is None:
        return None
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
        range=_range(identifier.line, identifier.start, identifier.end),
    )


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def _definition(ls: VmcoreLanguageServer, params: types.DefinitionParams) -> list[types.Location] | None:
    session = ls.session
    if session is None:
        return None
    document = ls.workspace.get_text_document(params.text_document.uri)
    identifier = identifier_at(document.lines, params.position.line, params.position.character)
    if identifier is None:
        return None
    found = safely(lambda: find_definitions(session, identifier, wait_for_index=_INDEX_WAIT_S)) or []
    if not found and not session.indexing_done:
        ls.announce_indexing()
    if not found and session.indexing_error:
        ls.window_show_message(
            types.ShowMessageParams(types.MessageType.Warning, f"vmcore-dap: {session.indexing_error}")
        )
    return [_location(definition) for definition in found] or None


@server.feature(types.TEXT_DOCUMENT_CODE_LENS)
def _code_lens(ls: VmcoreLanguageServer, params: types.CodeLensParams) -> list[types.CodeLens] | None:
    session = ls.session
    if session is None:
        return None
    document = ls.workspace.get_text_document(params.text_document.uri)
    lenses = safely(lambda: code_lenses(session, document.path, document.lines)) or []
    _after_response(session.start_indexing)
    return [
        types.CodeLens(
            range=_range(lens.line, 0, 0),
            command=types.Command(title=lens.title, command=SHOW_TASKS_COMMAND, arguments=[lens.function]),
            data={"function": lens.function, "pids": list(lens.tasks)},
        )
        for lens in lenses
    ]


@server.feature(types.WORKSPACE_SYMBOL)
def _workspace_symbol(
    ls: VmcoreLanguageServer, params: types.WorkspaceSymbolParams
) -> list[types.WorkspaceSymbol] | None:
    session = ls.session
    if session is None:
        return None
    hits = safely(lambda: search_symbols(session, params.query)) or []
    return [
        types.WorkspaceSymbol(
            name=hit.name,
            kind=types.SymbolKind.Function if hit.is_function else types.SymbolKind.Variable,
            location=_location(hit.definition),
            container_name=hit.module,
        )
        for hit in hits
    ]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="vmcore-dap-lsp",
        description="Language server that annotates kernel C sources with the state of a vmcore (stdio).",
    )
    add_version_argument(parser, "vmcore-dap-lsp")
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        default=os.environ.get(LOG_ENV) or None,
        help=f"write the server's log to PATH (default: ${LOG_ENV})",
    )
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve LSP on stdio until the client exits."""
    args = _parse(argv)
    limit_malloc_arenas()  # before any thread starts (pygls's, the ctags indexer)
    handler: logging.Handler = (
        logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("vmcore_dap")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    root.info("%s at %s", running_versions().line("vmcore-dap-lsp"), sys.executable)
    server.start_io()
    return 0
