/**
 * Runs `vmcore-dap triage` on a folder as a child process and follows its progress.
 *
 * The command is the adapter's own (the interpreter or executable `locateAdapter` chose) with the
 * `triage` subcommand, `--progress json`: one JSON object per stderr line (`start`, `dump`,
 * `message`, `done`; documented in docs/triage.md). No `vscode` import, so the unit tests run it
 * for real on the samples.
 */
import { spawn } from 'child_process';
import * as path from 'path';

import type { AdapterCommand } from '../adapterLocator';

export interface TriageRequest {
    adapter: Pick<AdapterCommand, 'command' | 'args' | 'env'>;
    /** Folders (or vmcore files) to triage. */
    paths: string[];
    /** Where the reports and summary.json go (also their cache). */
    output: string;
    debugInfoDirs: string[];
    /** A Dask scheduler address, or empty for local processes. */
    scheduler?: string;
}

/** One line of `--progress json`. */
export interface TriageEvent {
    event: 'start' | 'dump' | 'message' | 'done';
    total?: number;
    done?: number;
    cached?: boolean | number;
    vmcore?: string;
    signature?: string | null;
    title?: string;
    text?: string;
    summary?: string;
    clusters?: number;
}

export interface TriageOutcome {
    /** summary.json, or undefined when the run failed before writing it. */
    summaryPath: string | undefined;
    exitCode: number | null;
    /** The last stderr lines that were not progress events (the error message on failure). */
    errors: string[];
}

/** The command line that triages `request` (argv of the child process). */
export function triageCommand(request: TriageRequest): { command: string; args: string[] } {
    const args = [...request.adapter.args, 'triage', '--progress', 'json', '--output', request.output];
    for (const dir of request.debugInfoDirs) {
        args.push('--debug-info-dir', dir);
    }
    if (request.scheduler) {
        args.push('--scheduler', request.scheduler);
    }
    return { command: request.adapter.command, args: [...args, ...request.paths] };
}

/** Parse one stderr line: a progress event, or undefined for any other text. */
export function parseEvent(line: string): TriageEvent | undefined {
    if (!line.startsWith('{')) {
        return undefined;
    }
    try {
        const value = JSON.parse(line) as TriageEvent;
        return typeof value.event === 'string' ? value : undefined;
    } catch {
        return undefined;
    }
}

/**
 * Run the triage; `onEvent` gets each progress event as it comes. `cancel` (when given) is called
 * with a function that stops the child process.
 */
export function runTriage(
    request: TriageRequest,
    onEvent: (event: TriageEvent) => void,
    cancel?: (stop: () => void) => void,
): Promise<TriageOutcome> {
    const { command, args } = triageCommand(request);
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, {
            env: { ...process.env, ...request.adapter.env },
            stdio: ['ignore', 'ignore', 'pipe'],
        });
        cancel?.(() => child.kill('SIGTERM'));
        const errors: string[] = [];
        let summaryPath: string | undefined;
        let pending = '';
        const take = (line: string): void => {
            const event = parseEvent(line);
            if (event === undefined) {
                if (line.trim()) {
                    errors.push(line);
                    errors.splice(0, Math.max(errors.length - 20, 0));
                }
                return;
            }
            if (event.event === 'done' && event.summary) {
                summaryPath = event.summary;
            }
            onEvent(event);
        };
        child.stderr.on('data', (data: Buffer) => {
            pending += data.toString('utf8');
            const lines = pending.split('\n');
            pending = lines.pop() ?? '';
            lines.forEach(take);
        });
        child.on('error', reject);
        child.on('close', (code) => {
            if (pending) {
                take(pending);
            }
            resolve({ summaryPath: summaryPath ?? (code === 0 ? path.join(request.output, 'summary.json') : undefined), exitCode: code, errors });
        });
    });
}
