/**
 * `vmcore-dap.showTasksInFunction`: the command behind the language server's code lens
 * "N tasks here". It asks the active vmcore session (over DAP, as the Call Stack does) for every
 * task's stack, lists the tasks with the function on their stack in a quick pick, and opens the
 * chosen task's frame of that function in the editor.
 */
import * as vscode from 'vscode';

import { SHOW_TASKS_COMMAND } from './languageClient';
import { DEBUG_TYPE } from './launchConfig';

interface Thread {
    id: number;
    name: string;
}

interface Frame {
    name: string;
    line: number;
    source?: { path?: string };
}

interface TaskItem extends vscode.QuickPickItem {
    frame: Frame;
}

/** Strip the adapter's decorations ("foo [inlined]") to compare with the lens's function name. */
function baseName(frameName: string): string {
    return frameName.replace(/\s*\[inlined\]$/, '').replace(/\(.*$/, '').trim();
}

async function tasksIn(session: vscode.DebugSession, fn: string, token: vscode.CancellationToken): Promise<TaskItem[]> {
    const threads = ((await session.customRequest('threads')) as { threads: Thread[] }).threads;
    const items: TaskItem[] = [];
    for (const thread of threads) {
        if (token.isCancellationRequested) {
            break;
        }
        const body = (await session.customRequest('stackTrace', { threadId: thread.id })) as { stackFrames: Frame[] };
        const frame = body.stackFrames.find((f) => baseName(f.name) === fn);
        if (frame !== undefined) {
            items.push({ label: thread.name, description: `${frame.name} line ${frame.line}`, frame });
        }
    }
    return items;
}

export function registerShowTasksCommand(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
    context.subscriptions.push(
        vscode.commands.registerCommand(SHOW_TASKS_COMMAND, async (fn: unknown) => {
            const session = vscode.debug.activeDebugSession;
            if (typeof fn !== 'string' || session === undefined || session.type !== DEBUG_TYPE) {
                void vscode.window.showInformationMessage('vmcore: start a vmcore debug session to list the tasks in a function');
                return;
            }
            const items = await vscode.window.withProgress(
                { location: vscode.ProgressLocation.Notification, title: `vmcore: tasks in ${fn}`, cancellable: true },
                (_progress, token) => tasksIn(session, fn, token),
            );
            log.info(`tasks with ${fn} on their stack: ${items.length}`);
            const picked = await vscode.window.showQuickPick(items, {
                title: `${items.length} task(s) with ${fn} on their stack`,
                placeHolder: 'Open the frame of a task',
            });
            const path = picked?.frame.source?.path;
            if (picked !== undefined && path !== undefined && picked.frame.line > 0) {
                const position = new vscode.Position(picked.frame.line - 1, 0);
                await vscode.window.showTextDocument(vscode.Uri.file(path), { selection: new vscode.Range(position, position) });
            }
        }),
    );
}
