/**
 * Registers the Kernel view, the Stacks picture and "Copy crash report" for `vmcore` sessions.
 *
 * The view follows the active debug session; its data is (re)fetched when a `vmcore` session stops
 * (a debug adapter tracker sees the `stopped` event). Clicking a task asks the adapter to re-send
 * `stopped` for it (`vmcore/selectThread`), which is how VS Code can be made to select a thread.
 */
import * as vscode from 'vscode';

import { reportingErrors } from '../notifications';
import { StacksPicture, OPEN_STACKS_PICTURE_COMMAND } from '../stacksPicture/panel';
import { parseFilter, NO_FILTER } from './filter';
import { KernelTreeProvider, OPEN_FAULT_COMMAND, SELECT_TASK_COMMAND } from './kernelTree';
import { openSource, selectThread } from './protocol';

export const KERNEL_VIEW_ID = 'vmcore-dap.kernelView';
export const COPY_CRASH_REPORT_COMMAND = 'vmcore-dap.copyCrashReport';

function vmcoreSession(): vscode.DebugSession {
    const session = vscode.debug.activeDebugSession;
    if (session === undefined || session.type !== 'vmcore') {
        throw new Error('No vmcore debug session is active (start one from Run and Debug first)');
    }
    return session;
}

export function registerKernelView(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
    const provider = new KernelTreeProvider();
    const view = vscode.window.createTreeView(KERNEL_VIEW_ID, { treeDataProvider: provider, showCollapseAll: true });
    provider.setSession(vscode.debug.activeDebugSession);

    const guard = (what: string, action: () => Promise<void>) => reportingErrors(log, what, action);

    context.subscriptions.push(
        view,
        vscode.debug.onDidChangeActiveDebugSession((session) => provider.setSession(session)),
        vscode.debug.onDidTerminateDebugSession((session) => {
            if (provider.data?.session.id === session.id) {
                provider.setSession(vscode.debug.activeDebugSession);
            }
        }),
        vscode.debug.registerDebugAdapterTrackerFactory('vmcore', {
            createDebugAdapterTracker(session) {
                let stopped = false;
                return {
                    onDidSendMessage(message: { type?: string; event?: string }) {
                        if (!stopped && message.type === 'event' && message.event === 'stopped') {
                            stopped = true; // the first stop: the dump is open, the view can ask
                            if (vscode.debug.activeDebugSession?.id === session.id || provider.data === undefined) {
                                provider.setSession(session);
                            }
                        }
                    },
                };
            },
        }),
        vscode.commands.registerCommand(SELECT_TASK_COMMAND, (threadId: number) =>
            guard('Select task', async () => selectThread(vmcoreSession(), threadId))(),
        ),
        vscode.commands.registerCommand(
            OPEN_FAULT_COMMAND,
            guard('Show the faulting frame', async () => {
                const session = vmcoreSession();
                const summary = await provider.data?.summary();
                const frame = summary?.faultingFrame;
                if (frame === undefined || frame === null) {
                    throw new Error('this dump has no crashed task');
                }
                await selectThread(session, frame.threadId);
                await openSource(session, frame.source, frame.line);
            }),
        ),
        vscode.commands.registerCommand('vmcore-dap.kernelView.refresh', () => provider.refresh()),
        vscode.commands.registerCommand(
            'vmcore-dap.kernelView.filter',
            guard('Filter the Kernel view', async () => {
                const text = await vscode.window.showInputBox({
                    title: 'Filter the Kernel view',
                    prompt: 'state:D  module:labbug  mutex  (a bare word matches function names)',
                    value: provider.filter.text,
                    validateInput: (value) => {
                        try {
                            parseFilter(value);
                            return undefined;
                        } catch (err) {
                            return err instanceof Error ? err.message : String(err);
                        }
                    },
                });
                if (text !== undefined) {
                    provider.setFilter(parseFilter(text));
                    view.message = text.trim() !== '' ? `Filter: ${text.trim()}` : undefined;
                }
            }),
        ),
        vscode.commands.registerCommand('vmcore-dap.kernelView.clearFilter', () => {
            provider.setFilter(NO_FILTER);
            view.message = undefined;
        }),
        vscode.commands.registerCommand(
            OPEN_STACKS_PICTURE_COMMAND,
            guard('Open the Stacks picture', async () => {
                vmcoreSession();
                if (provider.data === undefined) {
                    provider.setSession(vscode.debug.activeDebugSession);
                }
                await StacksPicture.show(context.extensionUri, provider.data!);
            }),
        ),
        vscode.commands.registerCommand(
            COPY_CRASH_REPORT_COMMAND,
            guard('Copy crash report', async () => {
                const body = await vmcoreSession().customRequest('vmcore/crashReport');
                await vscode.env.clipboard.writeText(body.markdown);
                void vscode.window.showInformationMessage('Crash report copied to the clipboard as Markdown');
            }),
        ),
    );
}
