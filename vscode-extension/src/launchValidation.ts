/**
 * Prepares a `vmcore` launch configuration before the adapter runs, and asks the adapter what is wrong
 * with it.
 *
 * The adapter is the one authority on what a configuration may say: `vmcore-dap --check-launch` runs
 * the checks its `launch` request makes (the vmcore's headers, the vmlinux against the dump's build ID,
 * the module debug info, the source directories) and words them for launch.json. What must happen here,
 * before any adapter runs: paths made absolute (relative ones are taken from the workspace folder, `~`
 * is the home directory — the adapter's working directory is not the user's), empty optional strings
 * dropped, and the settings that only the extension reads (`logFile`, `python`, `adapterPath`) checked.
 * No `vscode` import: tested in plain Node.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { AdapterCommand } from './adapterLocator';
import { VmcoreLaunchConfig } from './launchConfig';

export type Severity = 'error' | 'warning';

/** One thing wrong with the configuration, tied to the attribute that causes it. */
export interface Problem {
    severity: Severity;
    attribute: string;
    message: string;
}

export interface PreparedConfig {
    /** The configuration with every path attribute made absolute. */
    config: VmcoreLaunchConfig;
    /** Problems with the settings only the extension reads. */
    problems: Problem[];
}

/** Expand `~` and resolve `p` against `baseDir` (or leave it relative to the process when none). */
export function absolutePath(p: string, baseDir: string | undefined): string {
    let expanded = p;
    if (expanded === '~' || expanded.startsWith('~/')) {
        expanded = path.join(os.homedir(), expanded.slice(1));
    }
    if (path.isAbsolute(expanded)) {
        return path.normalize(expanded);
    }
    return path.resolve(baseDir ?? process.cwd(), expanded);
}

function isDirectory(p: string): boolean {
    try {
        return fs.statSync(p).isDirectory();
    } catch {
        return false;
    }
}

function nonEmpty(s: unknown): s is string {
    return typeof s === 'string' && s.trim() !== '';
}

/**
 * Make the configuration's paths absolute (leaving values of the wrong type for the adapter to
 * explain) and check the settings only the extension reads.
 */
export function prepareLaunchConfig(input: VmcoreLaunchConfig, baseDir: string | undefined): PreparedConfig {
    const problems: Problem[] = [];
    const config: VmcoreLaunchConfig = { ...input };
    const abs = (p: string): string => absolutePath(p, baseDir);

    for (const key of ['vmcore', 'vmlinux', 'sourceRoot'] as const) {
        const value = config[key];
        if (nonEmpty(value)) {
            config[key] = abs(value);
        } else if (key !== 'vmcore' && typeof value === 'string') {
            delete config[key];
        }
    }
    for (const key of ['debugInfo', 'debugInfoDirectories'] as const) {
        const value = config[key];
        if (Array.isArray(value)) {
            config[key] = value.map((p) => (nonEmpty(p) ? abs(p) : p));
        }
    }
    const map = config.sourceFileMap;
    if (map !== undefined && map !== null && typeof map === 'object' && !Array.isArray(map)) {
        config.sourceFileMap = Object.fromEntries(
            Object.entries(map).map(([from, to]) => [from, nonEmpty(to) ? abs(to) : to]),
        );
    }

    if (nonEmpty(config.logFile)) {
        config.logFile = abs(config.logFile);
        const dir = path.dirname(config.logFile);
        if (!isDirectory(dir)) {
            problems.push({
                severity: 'error',
                attribute: 'logFile',
                message: `Cannot write the adapter log '${config.logFile}': directory '${dir}' does not exist (fix "logFile" in launch.json or remove it)`,
            });
        }
    } else {
        delete config.logFile;
    }
    for (const key of ['python', 'adapterPath'] as const) {
        const value = config[key];
        if (nonEmpty(value)) {
            config[key] = value.includes('/') || value.startsWith('~') ? abs(value) : value;
        } else {
            delete config[key];
        }
    }
    return { config, problems };
}

/** The launch attributes the adapter reads (the extension's own are not its business). */
function adapterAttributes(config: VmcoreLaunchConfig): Record<string, unknown> {
    const { python: _p, adapterPath: _a, logFile: _l, ...rest } = config;
    return rest;
}

/**
 * Ask the adapter (`<adapter> --check-launch`, the configuration as JSON on stdin) what is wrong with
 * `config`, without opening the dump.
 *
 * @throws Error when the adapter cannot answer (it crashed, or is too old to know the option).
 */
export function checkWithAdapter(adapter: AdapterCommand, config: VmcoreLaunchConfig, timeoutMs = 30_000): Promise<Problem[]> {
    return new Promise((resolve, reject) => {
        const child = execFile(
            adapter.command,
            [...adapter.args, '--check-launch'],
            { env: { ...process.env, ...adapter.env }, timeout: timeoutMs, maxBuffer: 1 << 20 },
            (error, stdout, stderr) => {
                if (error) {
                    reject(new Error(`vmcore-dap --check-launch failed: ${String(stderr || error.message).trim()}`));
                    return;
                }
                try {
                    const body = JSON.parse(stdout) as { problems: { setting: string; message: string; severity: Severity }[] };
                    resolve(body.problems.map((p) => ({ severity: p.severity, attribute: p.setting, message: p.message })));
                } catch (e) {
                    reject(new Error(`vmcore-dap --check-launch answered something else than JSON: ${String(e)}`));
                }
            },
        );
        child.stdin?.end(JSON.stringify(adapterAttributes(config)));
    });
}
