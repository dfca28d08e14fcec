/**
 * `vmcore-dap.showTasksInFunction`: the command behind the language server's code lens
 * "N tasks here". One `vmcore/tasksInFunction` request asks the active vmcore session which tasks
 * have the function on their stack (the adapter's stack service answers it, the same one the code
 * lens counted from, so `f.isra.0` and `f.cold` frames are `f` in both); a quick pick lists them, and
 * the chosen task is selected in the Call Stack with its frame of that function opened.
 */
import * as vscode from 'vscode';

import { ThreadRef, DapSource, openSource, selectThread } from './kernelView/protocol';
import { SHOW_TASKS_COMMAND } from './languageClient';
import { DEBUG_TYPE } from './launchConfig';

/** One task of a `vmcore/tasksInFunction` answer (docs/custom-requests.md). */
export interface TaskInFunction extends ThreadRef {
    /** The Call Stack's frame of the task's first row in the function. */
    frame: { id: number; name: string; line: number; source?: DapSource };
}

export interface TasksInFunctionBody {
    function: string;
    tasks: TaskInFunction[];
}

interface TaskItem extends vscode.QuickPickItem {
    task: TaskInFunction;
}

/** The quick pick's rows: the task as the Threads view names it, and where in the function it is. */
export function taskItems(body: TasksInFunctionBody): TaskItem[] {
    return body.tasks.map((task) => ({
        label: task.name,
        description: `${task.frame.name}${task.frame.source?.name ? ` ${task.frame.source.name}:${task.frame.line}` : ''}`,
        task,
    }));
}

export function registerShowTasksCommand(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
    context.subscriptions.push(
        vscode.commands.registerCommand(SHOW_TASKS_COMMAND, async (fn: unknown) => {
            const session = vscode.debug.activeDebugSession;
            if (typeof fn !== 'string' || session === undefined || session.type !== DEBUG_TYPE) {
                void vscode.window.showInformationMessage('vmcore: start a vmcore debug session to list the tasks in a function');
                return;
            }
            const body = (await vscode.window.withProgress(
                { location: vscode.ProgressLocation.Notification, title: `vmcore: tasks in ${fn}` },
                () => Promise.resolve(session.customRequest('vmcore/tasksInFunction', { function: fn })),
            )) as TasksInFunctionBody;
            log.info(`tasks with ${body.function} on their stack: ${body.tasks.length}`);
            const picked = await vscode.window.showQuickPick(taskItems(body), {
                title: `${body.tasks.length} task(s) with ${body.function} on their stack`,
                placeHolder: 'Select a task and open its frame of the function',
                matchOnDescription: true,
            });
            if (picked === undefined) {
                return;
            }
            await selectThread(session, picked.task.threadId);
            await openSource(session, picked.task.frame.source, picked.task.frame.line);
        }),
    );
}
