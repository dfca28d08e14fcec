/**
 * The vmcore language server's client: while a `vmcore` debug session runs, C files under the
 * session's source roots get hover values, task-count code lenses, fault/D-state diagnostics, go to
 * definition and workspace symbols from `vmcore-dap-lsp` (adapter/vmcore_dap/lsp), which opens the
 * same dump with the same launch configuration.
 *
 * One language client per debug session, started when the session starts and stopped when it ends.
 * The server is started with the interpreter the adapter was found with (`python -m vmcore_dap.lsp`),
 * or, for an adapter given as a `vmcore-dap` executable, the `vmcore-dap-lsp` script next to it.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';
import type { DocumentFilter } from 'vscode-languageclient';
import { AdapterCommand } from './adapterLocator';

/** Command the server's hover links run: add an expression to the Watch view. */
export const WATCH_COMMAND = 'vmcore-dap.watchExpression';
/** Command the server's code lenses run (argument: the function name); registered by the extension. */
export const SHOW_TASKS_COMMAND = 'vmcore-dap.showTasksInFunction';
/** Environment variable the server reads for its log file. */
export const LSP_LOG_ENV = 'VMCORE_DAP_LSP_LOG';

/** The language server's log beside the adapter's `logFile`: `vmcore-dap.log` → `vmcore-dap-lsp.log`. */
export function lspLogPath(adapterLog: string): string {
    return adapterLog.endsWith('.log') ? `${adapterLog.slice(0, -'.log'.length)}-lsp.log` : `${adapterLog}-lsp.log`;
}

/** How to start the language server, derived from how the adapter is started. */
export function serverCommandFor(adapter: AdapterCommand): { command: string; args: string[] } {
    if (adapter.args[0] === '-m') {
        return { command: adapter.command, args: ['-m', 'vmcore_dap.lsp'] };
    }
    const dir = path.dirname(adapter.command);
    return { command: dir === '.' ? 'vmcore-dap-lsp' : path.join(dir, 'vmcore-dap-lsp'), args: [] };
}

/** Directories whose C files the server annotates: sourceRoot, sourceFileMap targets, module .ko dirs. */
export function sourceRoots(configuration: vscode.DebugConfiguration): string[] {
    const roots: string[] = [];
    if (typeof configuration.sourceRoot === 'string' && configuration.sourceRoot) {
        roots.push(configuration.sourceRoot);
    }
    const map = configuration.sourceFileMap;
    if (map && typeof map === 'object') {
        for (const target of Object.values(map as Record<string, unknown>)) {
            if (typeof target === 'string' && target) {
                roots.push(target);
            }
        }
    }
    const debugInfo = configuration.debugInfo;
    for (const entry of Array.isArray(debugInfo) ? debugInfo : typeof debugInfo === 'string' ? [debugInfo] : []) {
        if (typeof entry === 'string' && entry.endsWith('.ko')) {
            roots.push(path.dirname(entry)); // out-of-tree modules are usually built next to their source
        }
    }
    return [...new Set(roots)];
}

/** C documents under the roots (all C files when the configuration names no source directory). */
export function documentSelector(roots: string[]): DocumentFilter[] {
    if (roots.length === 0) {
        return [{ scheme: 'file', language: 'c' }];
    }
    return roots.map((root) => ({ scheme: 'file', language: 'c', pattern: `${root.replace(/\/+$/, '')}/**/*` }));
}

/** Add `expression` to the Watch view and show it. */
async function watchExpression(expression: unknown): Promise<void> {
    if (typeof expression !== 'string' || !expression) {
        return;
    }
    // VS Code's own "Add to Watch" command takes the Variables view's context: { variable: { evaluateName } }.
    await vscode.commands.executeCommand('debug.addToWatchExpressions', { variable: { evaluateName: expression } });
    await vscode.commands.executeCommand('workbench.debug.action.focusWatchView');
}

/**
 * Start a language client for every `vmcore` debug session and stop it with the session.
 *
 * @param findAdapter how the adapter of a session was (or would be) started; the server uses the same
 *     interpreter.
 * @param log the extension's Output channel.
 */
export function registerLanguageClient(
    context: vscode.ExtensionContext,
    findAdapter: (session: vscode.DebugSession) => Promise<AdapterCommand>,
    log: vscode.OutputChannel,
): void {
    const clients = new Map<string, LanguageClient>();

    context.subscriptions.push(
        vscode.commands.registerCommand(WATCH_COMMAND, watchExpression),
        vscode.debug.onDidStartDebugSession(async (session) => {
            if (session.type !== 'vmcore' || clients.has(session.id)) {
                return;
            }
            try {
                const adapter = await findAdapter(session);
                const server = serverCommandFor(adapter);
                const env: Record<string, string> = { ...(process.env as Record<string, string>), ...adapter.env };
                const logFile: unknown = session.configuration.logFile;
                if (typeof logFile === 'string' && logFile) {
                    env[LSP_LOG_ENV] = lspLogPath(logFile);
                    log.appendLine(`language server log: ${env[LSP_LOG_ENV]}`);
                }
                const serverOptions: ServerOptions = {
                    command: server.command,
                    args: server.args,
                    // No `transport`: stdio without the `--stdio` argument languageclient would add,
                    // which vmcore-dap-lsp's argument parser rejects.
                    options: { env },
                };
                const roots = sourceRoots(session.configuration);
                const clientOptions: LanguageClientOptions = {
                    documentSelector: documentSelector(roots),
                    initializationOptions: session.configuration,
                    outputChannel: log,
                    markdown: { isTrusted: true },
                };
                const client = new LanguageClient(
                    `vmcore-lsp-${session.id}`,
                    `vmcore: ${session.name}`,
                    serverOptions,
                    clientOptions,
                );
                clients.set(session.id, client);
                log.appendLine(`language server: ${server.command} ${server.args.join(' ')} for ${roots.join(', ') || 'all C files'}`);
                await client.start();
            } catch (error) {
                clients.delete(session.id);
                const message = error instanceof Error ? error.message : String(error);
                log.appendLine(`language server: not started: ${message}`);
                void vscode.window.showWarningMessage(
                    `vmcore: the source annotations (hover, code lens) are off: ${message}`,
                );
            }
        }),
        vscode.debug.onDidTerminateDebugSession(async (session) => {
            const client = clients.get(session.id);
            if (client !== undefined) {
                clients.delete(session.id);
                await client.stop();
            }
        }),
        {
            dispose: () => {
                for (const client of clients.values()) {
                    void client.stop();
                }
                clients.clear();
            },
        },
    );
}
