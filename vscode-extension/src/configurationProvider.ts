/**
 * Fills in and checks `vmcore` launch configurations before a session starts.
 *
 * - F5 with no launch.json: offers a file dialog to pick the vmcore (cancel = no session).
 * - After variable substitution: makes paths absolute, finds the adapter, and asks it what is wrong with
 *   the configuration (`vmcore-dap --check-launch`: the adapter's own checks and words). Anything wrong
 *   is explained in a notification with the action that fixes it ("Open launch.json", "Open Settings"),
 *   and the session does not start.
 * - No adapter configured or found: offers to set up the one the extension carries (adapterSetup.ts)
 *   and, once it is ready, starts the session (the adapter then checks the configuration at launch);
 *   a private environment older or newer than the shipped adapter is offered an update first.
 */
import * as path from 'path';
import * as vscode from 'vscode';

import { findAdapter } from './adapterDescriptorFactory';
import { AdapterNotFoundError } from './adapterLocator';
import { AdapterSetup } from './adapterSetup';
import { DEBUG_TYPE, VmcoreLaunchConfig } from './launchConfig';
import { Problem, checkWithAdapter, prepareLaunchConfig } from './launchValidation';
import { notify } from './notifications';

export const PICK_VMCORE_COMMAND = 'vmcore-dap.pickVmcore';

/** Ask for a vmcore with a file dialog; the path, or undefined when cancelled. */
export async function pickVmcore(folder?: vscode.WorkspaceFolder): Promise<string | undefined> {
    const picked = await vscode.window.showOpenDialog({
        canSelectFiles: true,
        canSelectFolders: false,
        canSelectMany: false,
        openLabel: 'Open vmcore',
        title: 'Open a Linux kernel crash dump (vmcore)',
        defaultUri: folder?.uri ?? vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file('/var/crash'),
    });
    return picked?.[0]?.fsPath;
}

/**
 * Attributes that describe the user's setup rather than one dump (where debug info and sources live,
 * which adapter to run): the Explorer menu copies them from the folder's first `vmcore` launch
 * configuration, so a workspace set up once opens every dump in it. `vmlinux` is not among them: it
 * must match the dump and is otherwise found by build ID.
 */
const SETUP_ATTRIBUTES = [
    'debugInfo',
    'debugInfoDirectories',
    'sourceFileMap',
    'sourceRoot',
    'stopOnPanic',
    'debuginfod',
    'python',
    'adapterPath',
] as const;

/** The first `vmcore` launch configuration of `folder`'s launch.json, if any. */
function firstVmcoreConfiguration(folder: vscode.WorkspaceFolder | undefined): Partial<VmcoreLaunchConfig> | undefined {
    const configurations = vscode.workspace
        .getConfiguration('launch', folder?.uri)
        .get<Partial<VmcoreLaunchConfig>[]>('configurations', []);
    return configurations.find((c) => c.type === DEBUG_TYPE && c.request === 'launch');
}

/**
 * A launch configuration for one vmcore file, as the Explorer menu and the F5 prompt make it: the
 * setup attributes of the folder's first `vmcore` configuration, if there is one, plus the dump.
 */
export function configurationFor(vmcore: string, folder?: vscode.WorkspaceFolder): VmcoreLaunchConfig {
    const config: VmcoreLaunchConfig = {
        type: DEBUG_TYPE,
        request: 'launch',
        name: `vmcore: ${path.basename(vmcore)}`,
        vmcore,
        stopOnPanic: true,
    };
    const template = firstVmcoreConfiguration(folder);
    if (template !== undefined) {
        for (const key of SETUP_ATTRIBUTES) {
            if (template[key] !== undefined) {
                (config as unknown as Record<string, unknown>)[key] = template[key];
            }
        }
    }
    return config;
}

export class VmcoreConfigurationProvider implements vscode.DebugConfigurationProvider {
    constructor(
        private readonly extensionDir: string,
        private readonly log: vscode.LogOutputChannel,
        private readonly setup: AdapterSetup,
    ) {}

    async resolveDebugConfiguration(
        folder: vscode.WorkspaceFolder | undefined,
        config: vscode.DebugConfiguration,
    ): Promise<vscode.DebugConfiguration | undefined> {
        if (!config.type && !config.request && !config.name) {
            // F5 without launch.json.
            const vmcore = await pickVmcore(folder);
            if (vmcore === undefined) {
                this.log.info('no vmcore picked: debugging not started');
                return undefined;
            }
            return configurationFor(vmcore, folder);
        }
        return config;
    }

    async resolveDebugConfigurationWithSubstitutedVariables(
        folder: vscode.WorkspaceFolder | undefined,
        debugConfig: vscode.DebugConfiguration,
    ): Promise<vscode.DebugConfiguration | undefined> {
        const { config, problems } = prepareLaunchConfig(debugConfig as VmcoreLaunchConfig, folder?.uri.fsPath);
        this.log.info(`launch '${config.name}': vmcore ${config.vmcore ?? '(none)'}`);
        if (!this.report(problems, folder)) {
            return undefined;
        }
        let adapter;
        try {
            adapter = await findAdapter(config, folder, this.extensionDir, this.log, this.setup);
            await this.setup.offerUpdate(adapter);
        } catch (e) {
            if (e instanceof AdapterNotFoundError && e.nothingConfigured && this.setup.wheel !== undefined) {
                return (await this.setup.offerSetUp(e.message)) ? config : undefined;
            }
            if (e instanceof AdapterNotFoundError) {
                const actions = e.installCommand !== undefined
                    ? (['Open Settings', 'Copy Install Command', 'Show Log'] as const)
                    : (['Open Settings', 'Show Log'] as const);
                void notify('error', e.message, [...actions], this.log, {
                    folder,
                    setting: e.setting,
                    installCommand: e.installCommand,
                });
                return undefined;
            }
            throw e;
        }
        let checked: Problem[] = [];
        try {
            checked = await checkWithAdapter(adapter, config);
        } catch (e) {
            // An adapter that cannot check still explains a bad configuration when it is launched.
            this.log.warn(`${e instanceof Error ? e.message : String(e)}; the adapter checks the configuration at launch instead`);
        }
        return this.report(checked, folder) ? config : undefined;
    }

    /** Show the problems (warnings, then the first error); whether the session may start. */
    private report(problems: Problem[], folder: vscode.WorkspaceFolder | undefined): boolean {
        const errors = problems.filter((p) => p.severity === 'error');
        for (const warning of problems.filter((p) => p.severity === 'warning')) {
            void notify('warning', warning.message, ['Open launch.json'], this.log, { folder });
        }
        if (errors.length === 0) {
            return true;
        }
        for (const extra of errors.slice(1)) {
            this.log.error(extra.message);
        }
        const more = errors.length > 1 ? ` (and ${errors.length - 1} more problem(s): see Output › vmcore)` : '';
        void notify('error', errors[0].message + more, ['Open launch.json', 'Show Log'], this.log, { folder });
        return false;
    }
}

/** Offers "pick a vmcore" in the Run and Debug view's dropdown, without a launch.json. */
export class VmcoreDynamicConfigurationProvider implements vscode.DebugConfigurationProvider {
    provideDebugConfigurations(): vscode.DebugConfiguration[] {
        return [
            {
                type: DEBUG_TYPE,
                request: 'launch',
                name: 'Open a vmcore…',
                vmcore: `\${command:${PICK_VMCORE_COMMAND}}`,
            },
        ];
    }
}
