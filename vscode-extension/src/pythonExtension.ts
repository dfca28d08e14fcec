/**
 * Asks the Python extension (ms-python.python), when it is installed, which interpreter the user
 * selected for a folder. Its API has changed shape over the years: the `environments` API (2022+) is
 * tried first, then the older `settings.getExecutionDetails`. Any failure means "no answer", never an
 * error: this is only one step of the adapter lookup.
 */
import * as vscode from 'vscode';

interface EnvironmentsApi {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
    resolveEnvironment(env: { path: string } | string): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
}

interface PythonExtensionApi {
    environments?: EnvironmentsApi;
    settings?: {
        getExecutionDetails(resource?: vscode.Uri): { execCommand: string[] | undefined };
    };
}

export const PYTHON_EXTENSION_ID = 'ms-python.python';

/** The selected interpreter's path for `folder`, or undefined when there is none to be had. */
export async function pythonExtensionInterpreter(
    folder: vscode.WorkspaceFolder | undefined,
    log: vscode.LogOutputChannel,
): Promise<string | undefined> {
    const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION_ID);
    if (extension === undefined) {
        return undefined;
    }
    try {
        const api = extension.isActive ? extension.exports : await extension.activate();
        const resource = folder?.uri;
        if (api.environments !== undefined) {
            const active = api.environments.getActiveEnvironmentPath(resource);
            if (active !== undefined) {
                const resolved = await api.environments.resolveEnvironment(active);
                const fsPath = resolved?.executable.uri?.fsPath;
                if (fsPath) {
                    return fsPath;
                }
            }
        }
        const command = api.settings?.getExecutionDetails(resource).execCommand;
        return command !== undefined && command.length === 1 ? command[0] : undefined;
    } catch (e) {
        log.warn(`the Python extension did not say which interpreter is selected: ${String(e)}`);
        return undefined;
    }
}
