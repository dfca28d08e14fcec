/**
 * Runs the adapter as a child process and relays DAP messages between it and VS Code.
 *
 * VS Code can spawn an adapter itself (`DebugAdapterExecutable`), but then its stderr and its exit are
 * invisible: a crashed adapter shows only an empty Call Stack. Spawning it here lets the extension copy
 * stderr to the "vmcore" Output channel and, when the adapter dies during a session, tell the user
 * why in a notification. The `initialize` response, which carries the adapter's versions, is handed
 * to `onInitialized` on its way to VS Code (for the version check). Framing is DAP's: `Content-Length: N\r\n\r\n` + N bytes of UTF-8 JSON.
 */
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import * as vscode from 'vscode';

import { AdapterCommand } from './adapterLocator';
import { frame, MessageReader } from './dapFraming';

const STDERR_TAIL_LINES = 20;

export class AdapterProcess implements vscode.DebugAdapter {
    private readonly messageEmitter = new vscode.EventEmitter<vscode.DebugProtocolMessage>();
    readonly onDidSendMessage = this.messageEmitter.event;

    private readonly child: ChildProcessWithoutNullStreams;
    private readonly stderrTail: string[] = [];
    private stderrPartial = '';
    private disposed = false;
    private failed = false;

    constructor(
        command: AdapterCommand,
        extraEnv: Record<string, string>,
        cwd: string | undefined,
        private readonly log: vscode.LogOutputChannel,
        private readonly onInitialized?: (body: unknown) => void,
    ) {
        this.child = spawn(command.command, command.args, {
            cwd,
            env: { ...process.env, ...command.env, ...extraEnv },
            stdio: ['pipe', 'pipe', 'pipe'],
        });
        log.info(`adapter started: pid ${this.child.pid ?? '?'}: ${[command.command, ...command.args].join(' ')}`);

        const reader = new MessageReader((body) => this.deliver(body));
        this.child.stdout.on('data', (chunk: Buffer) => {
            try {
                reader.push(chunk);
            } catch (e) {
                this.fail(`the adapter wrote something that is not DAP to stdout: ${String(e)}`);
            }
        });
        this.child.stderr.on('data', (chunk: Buffer) => this.onStderr(chunk.toString('utf8')));
        this.child.on('error', (err) => this.fail(`cannot start '${command.command}': ${err.message}`));
        this.child.on('exit', (code, signal) => this.onExit(code, signal));
    }

    handleMessage(message: vscode.DebugProtocolMessage): void {
        if (this.child.stdin.writable) {
            this.child.stdin.write(frame(message));
        }
    }

    dispose(): void {
        this.disposed = true;
        if (this.child.exitCode === null && this.child.signalCode === null) {
            this.child.stdin.end();
            // The adapter exits on disconnect; give it a moment, then make sure.
            const timer = setTimeout(() => this.child.kill('SIGTERM'), 2000);
            this.child.once('exit', () => clearTimeout(timer));
        }
        this.messageEmitter.dispose();
    }

    private deliver(body: string): void {
        let message: vscode.DebugProtocolMessage;
        try {
            message = JSON.parse(body) as vscode.DebugProtocolMessage;
        } catch {
            this.fail(`the adapter sent a message that is not JSON: ${body.slice(0, 200)}`);
            return;
        }
        const response = message as { type?: string; command?: string; success?: boolean; body?: unknown };
        if (this.onInitialized !== undefined && response.type === 'response' && response.command === 'initialize' && response.success) {
            try {
                this.onInitialized(response.body);
            } catch (e) {
                this.log.error(`checking the adapter's initialize response: ${String(e)}`);
            }
        }
        this.messageEmitter.fire(message);
    }

    private onStderr(text: string): void {
        const lines = (this.stderrPartial + text).split('\n');
        this.stderrPartial = lines.pop() ?? '';
        for (const line of lines) {
            this.log.info(`[adapter stderr] ${line}`);
            this.stderrTail.push(line);
            if (this.stderrTail.length > STDERR_TAIL_LINES) {
                this.stderrTail.shift();
            }
        }
    }

    private onExit(code: number | null, signal: NodeJS.Signals | null): void {
        if (this.stderrPartial) {
            this.onStderr('\n');
        }
        const how = signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
        this.log.info(`adapter ${how}`);
        if (!this.disposed && (signal !== null || code !== 0)) {
            const last = this.stderrTail.filter((l) => l.trim() !== '').slice(-3).join(' | ');
            this.fail(`the adapter ${how}${last ? `: ${last}` : ''}`);
        }
    }

    private fail(reason: string): void {
        this.log.error(reason);
        if (this.disposed || this.failed) {
            return;
        }
        this.failed = true;
        void vscode.window
            .showErrorMessage(`vmcore debugger: ${reason}`, 'Show Log')
            .then((choice) => {
                if (choice === 'Show Log') {
                    this.log.show(true);
                }
            });
        // End the session in VS Code so it does not wait for an adapter that is gone.
        this.messageEmitter.fire({ type: 'event', seq: 0, event: 'terminated', body: {} } as vscode.DebugProtocolMessage);
    }
}
