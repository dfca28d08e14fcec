/**
 * Runs one command to completion and reports its output line by line, for the adapter set-up
 * (`python -m venv`, `pip install`, `vmcore-dap --version`): pip takes minutes and its lines are the
 * user's only sign of progress, so they go to the "vmcore" Output channel as they come, and the last
 * ones explain a failure. Cancellation and a time limit both end the process. No `vscode` import.
 */
import { spawn } from 'child_process';

export interface RunOptions {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    /** Each complete line of stdout or stderr, as it arrives. */
    onLine?: (line: string) => void;
    /** Aborting ends the process (SIGTERM) and the result says `cancelled`. */
    signal?: AbortSignal;
    timeoutMs?: number;
}

export interface RunResult {
    /** Exit code, or null when the process did not exit by itself. */
    code: number | null;
    stdout: string;
    /** stdout and stderr lines in arrival order. */
    lines: string[];
    /** Why the process did not run or finish: "no such program", "cancelled", "timed out after …". */
    failure?: string;
}

/** Run `command args` and resolve when it ends; never rejects. */
export function runProcess(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve) => {
        const lines: string[] = [];
        let stdout = '';
        let failure: string | undefined;
        const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
        const splitter = () => {
            let partial = '';
            return {
                push(text: string) {
                    const parts = (partial + text).split('\n');
                    partial = parts.pop() ?? '';
                    for (const line of parts) {
                        lines.push(line);
                        options.onLine?.(line);
                    }
                },
                flush() {
                    if (partial) {
                        lines.push(partial);
                        options.onLine?.(partial);
                        partial = '';
                    }
                },
            };
        };
        const out = splitter();
        const err = splitter();
        child.stdout.on('data', (chunk: Buffer) => {
            const text = chunk.toString('utf8');
            stdout += text;
            out.push(text);
        });
        child.stderr.on('data', (chunk: Buffer) => err.push(chunk.toString('utf8')));
        const stop = (why: string) => {
            failure ??= why;
            child.kill('SIGTERM');
        };
        const onAbort = () => stop('cancelled');
        if (options.signal?.aborted) {
            stop('cancelled');
        }
        options.signal?.addEventListener('abort', onAbort);
        const timer = options.timeoutMs === undefined
            ? undefined
            : setTimeout(() => stop(`timed out after ${Math.round(options.timeoutMs! / 1000)} s`), options.timeoutMs);
        child.on('error', (e: NodeJS.ErrnoException) => {
            failure ??= e.code === 'ENOENT' ? 'no such program' : e.code === 'EACCES' ? 'not executable' : e.message;
        });
        child.on('close', (code) => {
            if (timer !== undefined) {
                clearTimeout(timer);
            }
            options.signal?.removeEventListener('abort', onAbort);
            out.flush();
            err.flush();
            resolve({ code, stdout, lines, failure });
        });
    });
}

/** The last non-empty lines of a run, joined for a one-line message. */
export function lastLines(result: RunResult, count = 3): string {
    return result.lines
        .map((l) => l.trim())
        .filter((l) => l !== '')
        .slice(-count)
        .join(' | ');
}
