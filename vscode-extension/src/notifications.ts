/**
 * Error and warning notifications with the actions that fix them.
 *
 * Every problem the extension finds before or while starting the adapter ends up here, so the user
 * always gets a button to the place where the fix goes (launch.json or the settings) and the full
 * story in the "vmcore" Output channel.
 */
import * as vscode from 'vscode';

export type Action = 'Open launch.json' | 'Open Settings' | 'Copy Install Command' | 'Show Log' | 'Start Anyway';

export interface NotifyOptions {
    folder?: vscode.WorkspaceFolder;
    /** Setting id shown by "Open Settings". */
    setting?: string;
    /** Shell command copied by "Copy Install Command". */
    installCommand?: string;
}

/** Open the folder's launch.json, or VS Code's "create launch.json" flow when there is none. */
async function openLaunchJson(folder: vscode.WorkspaceFolder | undefined): Promise<void> {
    if (folder !== undefined) {
        const uri = vscode.Uri.joinPath(folder.uri, '.vscode', 'launch.json');
        try {
            await vscode.workspace.fs.stat(uri);
            await vscode.window.showTextDocument(uri);
            return;
        } catch {
            // no launch.json yet: let VS Code create one
        }
    }
    await vscode.commands.executeCommand('workbench.action.debug.configure');
}

/** Show `message` with `actions`; run the chosen one; resolve to the chosen action. */
export async function notify(
    severity: 'error' | 'warning',
    message: string,
    actions: Action[],
    log: vscode.LogOutputChannel,
    options: NotifyOptions = {},
): Promise<Action | undefined> {
    (severity === 'error' ? log.error : log.warn).call(log, message);
    const show = severity === 'error' ? vscode.window.showErrorMessage : vscode.window.showWarningMessage;
    const choice = await show(message, ...actions);
    switch (choice) {
        case 'Open launch.json':
            await openLaunchJson(options.folder);
            break;
        case 'Open Settings':
            await vscode.commands.executeCommand('workbench.action.openSettings', options.setting ?? 'vmcoreDap');
            break;
        case 'Copy Install Command':
            if (options.installCommand !== undefined) {
                await vscode.env.clipboard.writeText(options.installCommand);
            }
            break;
        case 'Show Log':
            log.show(true);
            break;
        default:
            break;
    }
    return choice;
}

/**
 * Wrap a command's action so that a failure is logged and shown as "<what>: <message>" instead of
 * being lost in VS Code's own log.
 */
export function reportingErrors<A extends unknown[]>(
    log: vscode.LogOutputChannel,
    what: string,
    action: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
    return async (...args: A) => {
        try {
            await action(...args);
        } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            log.error(`${what}: ${message}`);
            void vscode.window.showErrorMessage(`${what}: ${message}`);
        }
    };
}
