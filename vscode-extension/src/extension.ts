/**
 * Activation: registers the `vmcore` debug type's providers, the adapter factory and the commands.
 *
 * Everything the extension says goes to one Output channel, "vmcore", so a failed start can be
 * diagnosed from a single place (adapter choice, validation, the adapter's stderr).
 */
import * as vscode from 'vscode';

import { findAdapter, VmcoreAdapterDescriptorFactory } from './adapterDescriptorFactory';
import { AdapterSetup, SET_UP_COMMAND } from './adapterSetup';
import {
    configurationFor,
    PICK_VMCORE_COMMAND,
    pickVmcore,
    VmcoreConfigurationProvider,
    VmcoreDynamicConfigurationProvider,
} from './configurationProvider';
import { registerLanguageClient } from './languageClient';
import { DEBUG_TYPE, ExtensionLaunchAttributes } from './launchConfig';
import { registerDumpsView } from './dumpsView';
import { registerEntryTypes } from './entryTypes';
import { registerKernelView } from './kernelView';
import { pythonExtensionInterpreter } from './pythonExtension';
import { registerShowTasksCommand } from './tasksInFunction';

export function activate(context: vscode.ExtensionContext): void {
    const log = vscode.window.createOutputChannel('vmcore', { log: true });
    const extensionDir = context.extensionUri.fsPath;
    log.info(`vmcore-dap extension ${String(context.extension.packageJSON.version)} activated from ${extensionDir}`);
    const setup = new AdapterSetup(context, log, () => pythonExtensionInterpreter(vscode.workspace.workspaceFolders?.[0], log));

    context.subscriptions.push(
        log,
        vscode.debug.registerDebugConfigurationProvider(
            DEBUG_TYPE,
            new VmcoreConfigurationProvider(extensionDir, log, setup),
        ),
        vscode.debug.registerDebugConfigurationProvider(
            DEBUG_TYPE,
            new VmcoreDynamicConfigurationProvider(),
            vscode.DebugConfigurationProviderTriggerKind.Dynamic,
        ),
        vscode.debug.registerDebugAdapterDescriptorFactory(
            DEBUG_TYPE,
            new VmcoreAdapterDescriptorFactory(extensionDir, log, setup),
        ),
        vscode.commands.registerCommand(PICK_VMCORE_COMMAND, () => pickVmcore()),
        vscode.commands.registerCommand('vmcore-dap.openVmcore', async (uri?: vscode.Uri) => {
            const vmcore = uri?.fsPath ?? (await pickVmcore());
            if (vmcore === undefined) {
                return;
            }
            const folder =
                (uri !== undefined ? vscode.workspace.getWorkspaceFolder(uri) : undefined) ?? vscode.workspace.workspaceFolders?.[0];
            await vscode.debug.startDebugging(folder, configurationFor(vmcore, folder));
        }),
        vscode.commands.registerCommand('vmcore-dap.showOutput', () => log.show(true)),
        vscode.commands.registerCommand(SET_UP_COMMAND, () => setup.setUp()),
    );
    registerKernelView(context, log);
    registerDumpsView(context, log, setup);
    registerEntryTypes(context, log);
    // Source annotations from the vmcore language server, one per debug session, same interpreter.
    // Its own channel: the client's traces would bury the adapter's lines in "vmcore".
    const lspLog = vscode.window.createOutputChannel('vmcore language server');
    context.subscriptions.push(lspLog);
    registerLanguageClient(
        context,
        (session) => findAdapter(session.configuration as ExtensionLaunchAttributes, session.workspaceFolder, extensionDir, log, setup),
        lspLog,
    );
    registerShowTasksCommand(context, log);
}

export function deactivate(): void {
    // Sessions and child processes are disposed through context.subscriptions and VS Code.
}
