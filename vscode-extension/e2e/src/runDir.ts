/**
 * Lays out one end-to-end run under `vscode-extension/e2e/.run/<stamp>/` (git-ignored):
 *
 *   workspace/.vscode/launch.json   the configuration under test
 *   workspace/.vscode/settings.json offline, no trust modal, no distractions
 *   user-data/User/settings.json    the same settings for the user profile
 *   user-data/User/globalStorage/<publisher>.<name> -> the run's shared extension storage
 *   browser-profile/                Chromium's profile
 *   code-server.log                 code-server's output
 *   adapter-dap.log                 the adapter's log and DAP trace (launch.json "logFile")
 *
 * The extension is the one installed from the .vsix (installedExtension.ts): its extensions directory
 * and its global storage (where the private adapter environment lives) are shared by every window of
 * the test run. The directory is deleted after a passing run and kept after a failing one.
 */
import * as fs from 'fs';
import * as path from 'path';

import { InstalledExtension } from './installedExtension';

/** Settings that keep VS Code offline and its window free of prompts that hide the debug views. */
export const OFFLINE_SETTINGS: Record<string, unknown> = {
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'workbench.enableExperiments': false,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'chat.commandCenter.enabled': false,
    'git.enabled': false,
    'debug.openDebug': 'openOnSessionStart',
    'debug.showInStatusBar': 'never',
    'debug.internalConsoleOptions': 'neverOpen',
    'editor.minimap.enabled': false,
    'window.restoreWindows': 'none',
    'files.exclude': { '.vscode': true },
};

export interface RunDir {
    root: string;
    workspace: string;
    userDataDir: string;
    /** The shared extensions directory of the installed .vsix. */
    extensionsDir: string;
    browserProfile: string;
    codeServerLog: string;
    adapterLog: string;
}

/**
 * Create a fresh run directory whose launch.json holds `launchConfig` first (the one "Start Debugging"
 * runs; its `logFile` is set to the run's adapter log), then `otherConfigs`. With `launchConfig` null
 * the workspace has no launch.json (F5 must ask). `extraSettings` are added to the workspace settings.
 */
export function createRunDir(
    e2eDir: string,
    extension: InstalledExtension,
    launchConfig: Record<string, unknown> | null,
    otherConfigs: Record<string, unknown>[] = [],
    extraSettings: Record<string, unknown> = {},
): RunDir {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const root = path.join(e2eDir, '.run', `${stamp}-${process.pid}`);
    const run: RunDir = {
        root,
        workspace: path.join(root, 'workspace'),
        userDataDir: path.join(root, 'user-data'),
        extensionsDir: extension.extensionsDir,
        browserProfile: path.join(root, 'browser-profile'),
        codeServerLog: path.join(root, 'code-server.log'),
        adapterLog: path.join(root, 'adapter-dap.log'),
    };
    const globalStorage = path.join(run.userDataDir, 'User', 'globalStorage');
    for (const dir of [path.join(run.workspace, '.vscode'), globalStorage, run.browserProfile]) {
        fs.mkdirSync(dir, { recursive: true });
    }
    const settings = JSON.stringify(OFFLINE_SETTINGS, null, 2);
    fs.writeFileSync(path.join(run.userDataDir, 'User', 'settings.json'), settings);
    fs.writeFileSync(path.join(run.workspace, '.vscode', 'settings.json'), JSON.stringify({ ...OFFLINE_SETTINGS, ...extraSettings }, null, 2));
    if (launchConfig !== null) {
        const launch = { version: '0.2.0', configurations: [{ ...launchConfig, logFile: run.adapterLog }, ...otherConfigs] };
        fs.writeFileSync(path.join(run.workspace, '.vscode', 'launch.json'), JSON.stringify(launch, null, 2));
    }
    fs.symlinkSync(extension.storageDir, path.join(globalStorage, extension.id));
    return run;
}

/**
 * What the extension wrote to its "vmcore" Output channel in this run, from the file VS Code keeps of
 * it (`user-data/logs/<time>/exthost<N>/<publisher>.<name>/vmcore.log`). The Output view shows only
 * the lines that fit on screen, and long paths wrap; the file has them all.
 */
export function vmcoreChannelLog(run: RunDir, extensionId: string): string {
    const logs = path.join(run.userDataDir, 'logs');
    const texts: string[] = [];
    for (const session of fs.existsSync(logs) ? fs.readdirSync(logs).sort() : []) {
        for (const host of fs.readdirSync(path.join(logs, session)).filter((n) => n.startsWith('exthost')).sort()) {
            const file = path.join(logs, session, host, extensionId, 'vmcore.log');
            if (fs.existsSync(file)) {
                texts.push(fs.readFileSync(file, 'utf8'));
            }
        }
    }
    return texts.join('');
}
