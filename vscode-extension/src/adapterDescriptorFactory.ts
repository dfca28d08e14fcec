/**
 * Starts the adapter for each `vmcore` debug session.
 *
 * The command comes from `locateAdapter` (launch config → settings → the clone's venv → the private
 * environment → the Python extension → python3), with the choice logged to the "vmcore" Output
 * channel. The adapter runs as our own child process (`AdapterProcess`) so its stderr is logged too,
 * and the versions in its `initialize` response are checked against the shipped ones
 * (`AdapterSetup.checkRunning`). `logFile` from the launch configuration reaches the adapter as
 * VMCORE_DAP_LOG.
 */
import * as vscode from 'vscode';

import { AdapterCommand, locateAdapter } from './adapterLocator';
import { AdapterProcess } from './adapterProcess';
import { AdapterSetup } from './adapterSetup';
import { ExtensionLaunchAttributes } from './launchConfig';
import { pythonExtensionInterpreter } from './pythonExtension';

/** Look the adapter up for `config` in `folder`, reading the vmcoreDap settings. */
export function findAdapter(
    config: ExtensionLaunchAttributes,
    folder: vscode.WorkspaceFolder | undefined,
    extensionDir: string,
    log: vscode.LogOutputChannel,
    setup: AdapterSetup,
): Promise<AdapterCommand> {
    const settings = vscode.workspace.getConfiguration('vmcoreDap', folder?.uri);
    return locateAdapter({
        configAdapterPath: config.adapterPath,
        configPython: config.python,
        settingAdapterPath: settings.get<string>('adapterPath') || undefined,
        settingPython: settings.get<string>('python') || undefined,
        extensionDir,
        pythonExtensionInterpreter: () => pythonExtensionInterpreter(folder, log),
        privateEnvironmentPython: () => setup.privatePython(),
        bundledWheel: setup.wheel?.path,
        log: (line) => log.info(line),
    });
}

export class VmcoreAdapterDescriptorFactory implements vscode.DebugAdapterDescriptorFactory {
    constructor(
        private readonly extensionDir: string,
        private readonly log: vscode.LogOutputChannel,
        private readonly setup: AdapterSetup,
    ) {}

    async createDebugAdapterDescriptor(session: vscode.DebugSession): Promise<vscode.DebugAdapterDescriptor> {
        const config = session.configuration as ExtensionLaunchAttributes;
        // Already checked by the configuration provider; looked up again because the session's
        // configuration is a copy and the answer may have changed (a pip install in between).
        const command = await findAdapter(config, session.workspaceFolder, this.extensionDir, this.log, this.setup);
        this.log.info(`session '${session.name}': adapter from ${command.origin}`);
        const env: Record<string, string> = {};
        if (config.logFile) {
            env.VMCORE_DAP_LOG = config.logFile;
            this.log.info(`adapter log and DAP trace: ${config.logFile}`);
        }
        const cwd = session.workspaceFolder?.uri.fsPath;
        return new vscode.DebugAdapterInlineImplementation(new AdapterProcess(command, env, cwd, this.log, (body) =>
            this.setup.checkRunning(command, body),
        ));
    }
}
