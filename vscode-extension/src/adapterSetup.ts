/**
 * The adapter the extension brings: offers to set up its private environment when no adapter is
 * configured or found, updates it when the extension ships a newer adapter, and checks the version
 * every adapter reports at start-up against the one shipped.
 *
 * The work is done by privateEnvironment.ts (the environment) and pythonFinder.ts (which Python);
 * this module adds what the user sees: the offer, a cancellable progress notification, the outcome,
 * and every step and pip line in the "vmcore" Output channel.
 */
import * as vscode from 'vscode';

import { AdapterCommand, PRIVATE_ENVIRONMENT_ORIGIN } from './adapterLocator';
import { AdapterVersions, describeVersions, mismatchMessage, versionsFromInitialize } from './adapterVersions';
import { notify } from './notifications';
import { BundledWheel, bundledWheel, EnvironmentRecord, PrivateEnvironment, SetupError } from './privateEnvironment';
import { findSetupPython, PATH_CANDIDATES, PythonNotFoundError } from './pythonFinder';

export const SET_UP_COMMAND = 'vmcore-dap.setUpAdapter';

export class AdapterSetup {
    readonly environment: PrivateEnvironment;
    readonly wheel: BundledWheel | undefined;
    /** The adapter version this extension ships (package.json's version = the wheel's). */
    readonly shippedVersion: string;
    private running: Promise<EnvironmentRecord | undefined> | undefined;
    /** Mismatch warnings already shown in this window (one per adapter and version). */
    private readonly warned = new Set<string>();
    /** The user said "Not Now" to an update in this window. */
    private updateDeclined = false;

    constructor(
        context: vscode.ExtensionContext,
        private readonly log: vscode.LogOutputChannel,
        /** The Python extension's selected interpreter: the set-up's last candidate. */
        private readonly pythonExtensionInterpreter: () => Promise<string | undefined>,
    ) {
        this.environment = new PrivateEnvironment(context.globalStorageUri.fsPath);
        this.wheel = bundledWheel(context.extensionUri.fsPath);
        this.shippedVersion = String(context.extension.packageJSON.version);
        log.info(
            this.wheel !== undefined
                ? `bundled adapter: ${this.wheel.path}; private environment record: ${this.environment.recordFile}`
                : 'no bundled adapter wheel (a development checkout: npm run package bundles one)',
        );
    }

    /** The private environment's interpreter, for the adapter lookup; undefined when none is set up. */
    privatePython(): string | undefined {
        return this.environment.read((line) => this.log.warn(line))?.python;
    }

    /**
     * No adapter was found (`problem` says where the lookup looked). Offer the set-up; resolve to true
     * when an environment is ready, so the session can start.
     */
    async offerSetUp(problem: string): Promise<boolean> {
        this.log.info(problem);
        if (this.wheel === undefined) {
            return false;
        }
        const choice = await vscode.window.showInformationMessage(
            `vmcore: no vmcore-dap adapter is installed. Set one up? The extension creates a Python environment ` +
                `in VS Code's storage and installs the vmcore-dap ${this.wheel.version} it carries, with drgn, capstone, ` +
                'pygls and debugpy from PyPI (about 230 MB, a minute or two).',
            'Set Up Adapter',
            'Open Settings',
            'Show Log',
        );
        if (choice === 'Open Settings') {
            await vscode.commands.executeCommand('workbench.action.openSettings', 'vmcoreDap');
        } else if (choice === 'Show Log') {
            this.log.show(true);
        }
        return choice === 'Set Up Adapter' && (await this.setUp()) !== undefined;
    }

    /**
     * Before a session on the private environment: when it holds another version than the one shipped
     * (the extension was updated), offer to update it. Resolves when the session may go on.
     */
    async offerUpdate(command: AdapterCommand): Promise<void> {
        if (command.origin !== PRIVATE_ENVIRONMENT_ORIGIN || this.wheel === undefined || this.updateDeclined) {
            return;
        }
        const record = this.environment.read();
        if (record === undefined || record.adapterVersion === this.wheel.version) {
            return;
        }
        const message = mismatchMessage({ adapter: record.adapterVersion }, this.shippedVersion, PRIVATE_ENVIRONMENT_ORIGIN);
        const choice = await vscode.window.showWarningMessage(`vmcore: ${message}. Update it now?`, 'Update Adapter', 'Not Now');
        if (choice === 'Update Adapter') {
            await this.setUp();
        } else {
            this.updateDeclined = true;
        }
    }

    /**
     * Make (or remake) the private environment with a progress notification. Resolves to its record,
     * or undefined after telling the user why it failed. One set-up at a time per window.
     */
    setUp(): Promise<EnvironmentRecord | undefined> {
        this.running ??= this.runSetUp().finally(() => {
            this.running = undefined;
        });
        return this.running;
    }

    private async runSetUp(): Promise<EnvironmentRecord | undefined> {
        const wheel = this.wheel;
        if (wheel === undefined) {
            void notify('error', 'vmcore: this build of the extension carries no adapter wheel (a development ' +
                "checkout: run 'npm run package' in vscode-extension/, or set vmcoreDap.python)", ['Open Settings'], this.log);
            return undefined;
        }
        this.log.info(`set-up: making a private environment for ${wheel.path}`);
        try {
            const record = await vscode.window.withProgress(
                { location: vscode.ProgressLocation.Notification, title: 'vmcore: setting up the adapter', cancellable: true },
                async (progress, token) => {
                    const abort = new AbortController();
                    token.onCancellationRequested(() => abort.abort());
                    progress.report({ message: 'looking for Python 3.11 or newer' });
                    const extra = await this.pythonExtensionInterpreter();
                    const python = await findSetupPython(extra !== undefined ? [...PATH_CANDIDATES, extra] : PATH_CANDIDATES, (l) => this.log.info(l));
                    return this.environment.create(wheel, python, {
                        log: (line) => this.log.info(line),
                        progress: (step) => progress.report({ message: step }),
                        signal: abort.signal,
                    });
                },
            );
            this.log.info(`set-up: done: vmcore-dap ${record.adapterVersion}, drgn ${record.drgnVersion}, Python ${record.pythonVersion} in ${record.directory}`);
            void vscode.window.showInformationMessage(
                `vmcore: the adapter is set up (vmcore-dap ${record.adapterVersion}, drgn ${record.drgnVersion}, ` +
                    `Python ${record.pythonVersion}); later sessions use it too.`,
            );
            return record;
        } catch (e) {
            if (e instanceof SetupError && e.cancelled) {
                this.log.info(`set-up: ${e.message}`);
                return undefined;
            }
            const reason = e instanceof SetupError || e instanceof PythonNotFoundError ? e.message : `internal error: ${String(e)}`;
            void notify('error', `vmcore: the adapter could not be set up. ${reason}`, ['Show Log'], this.log);
            return undefined;
        }
    }

    /** The adapter of a session answered `initialize`: log its versions, warn when they are not ours. */
    checkRunning(command: AdapterCommand, initializeBody: unknown): void {
        const versions: AdapterVersions | undefined = versionsFromInitialize(initializeBody);
        this.log.info(`adapter: ${versions !== undefined ? describeVersions(versions) : 'reports no version'} (from ${command.origin})`);
        const message = mismatchMessage(versions, this.shippedVersion, command.origin);
        const key = `${command.command} ${versions?.adapter ?? '?'}`;
        if (message === undefined || this.warned.has(key)) {
            return;
        }
        this.warned.add(key);
        if (command.origin === PRIVATE_ENVIRONMENT_ORIGIN && this.wheel !== undefined) {
            void vscode.window.showWarningMessage(`vmcore: ${message}.`, 'Update Adapter', 'Show Log').then(async (choice) => {
                if (choice === 'Update Adapter') {
                    await this.setUp();
                } else if (choice === 'Show Log') {
                    this.log.show(true);
                }
            });
            return;
        }
        const installCommand = this.wheel !== undefined && command.args[0] === '-m'
            ? `${command.command} -m pip install --upgrade ${this.wheel.path}`
            : undefined;
        const fix = this.wheel !== undefined
            ? ` (install this extension's adapter there, or clear the setting and run "vmcore: Set up the adapter")`
            : '';
        void notify('warning', `vmcore: ${message}${fix}`, installCommand !== undefined ? ['Copy Install Command', 'Show Log'] : ['Open Settings', 'Show Log'], this.log, {
            installCommand,
        });
    }
}
