/**
 * Runs code-server (VS Code 1.100.3 for the browser), installed in the cache outside the clone, in its
 * own process group, offline, with a fresh user-data and extensions directory per run.
 *
 * Offline and quiet by construction: no auth, loopback only, no telemetry, no update check, no
 * workspace-trust modal, an explicit (empty) --config so ~/.config/code-server is never written.
 * Without this clone's Python: the extension must find (or set up) its adapter as on a user's machine.
 * Stopping signals only this process group.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';

import { repoRoot } from '../../test/support/repo';
import { withTimeout } from './timeouts';

/** Install code-server into the cache if needed (idempotent) and return its directory. */
export function ensureCodeServer(e2eDir: string): string {
    const out = execFileSync(path.join(e2eDir, 'install-code-server.sh'), {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        timeout: 20 * 60_000,
    });
    const dir = out.trim().split('\n').pop() ?? '';
    const bin = path.join(dir, 'node_modules', '.bin', 'code-server');
    if (!fs.existsSync(bin)) {
        throw new Error(`install-code-server.sh printed '${dir}', which has no ${bin}`);
    }
    return dir;
}

/**
 * The environment code-server and its extension host run in: this process's, without the clone's
 * Python (no VIRTUAL_ENV, PYTHONPATH or PYTHONHOME, no PATH entry inside the clone).
 */
export function cleanEnvironment(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, VSCODE_PROXY_URI: '' };
    delete env.VIRTUAL_ENV;
    delete env.PYTHONPATH;
    delete env.PYTHONHOME;
    const clone = repoRoot() + path.sep;
    env.PATH = (env.PATH ?? '')
        .split(path.delimiter)
        .filter((dir) => dir !== '' && !path.resolve(dir).startsWith(clone))
        .join(path.delimiter);
    return env;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const address = server.address();
            server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
        });
    });
}

export interface CodeServerOptions {
    installDir: string;
    port: number;
    userDataDir: string;
    extensionsDir: string;
    workspace: string;
    /** code-server's stdout and stderr go here. */
    logFile: string;
}

export class CodeServer {
    private constructor(
        private readonly child: ChildProcess,
        readonly url: string,
        readonly logFile: string,
    ) {}

    /** Start code-server and wait until it answers HTTP (at most `timeoutMs`). */
    static async start(options: CodeServerOptions, timeoutMs = 60_000): Promise<CodeServer> {
        const config = path.join(path.dirname(options.userDataDir), 'code-server-config.yaml');
        fs.writeFileSync(config, '');
        const log = fs.openSync(options.logFile, 'a');
        const bin = path.join(options.installDir, 'node_modules', '.bin', 'code-server');
        const child = spawn(
            bin,
            [
                '--config', config,
                '--auth', 'none',
                '--bind-addr', `127.0.0.1:${options.port}`,
                '--disable-telemetry',
                '--disable-update-check',
                '--disable-getting-started-override',
                '--disable-workspace-trust',
                '--user-data-dir', options.userDataDir,
                '--extensions-dir', options.extensionsDir,
                options.workspace,
            ],
            { detached: true, stdio: ['ignore', log, log], env: cleanEnvironment() },
        );
        fs.closeSync(log);
        // If the test process dies (mocha timeout, Ctrl-C), take code-server's group with it.
        const pid = child.pid;
        if (pid !== undefined) {
            process.once('exit', () => signalGroup(pid, 'SIGKILL'));
        }
        const server = new CodeServer(child, `http://127.0.0.1:${options.port}/`, options.logFile);
        try {
            await withTimeout(server.waitHealthy(), timeoutMs, `code-server did not answer on port ${options.port} (log: ${options.logFile})`);
        } catch (e) {
            await server.stop();
            throw e;
        }
        return server;
    }

    private async waitHealthy(): Promise<void> {
        for (;;) {
            if (this.child.exitCode !== null) {
                throw new Error(`code-server exited with code ${this.child.exitCode} (log: ${this.logFile})`);
            }
            if (await this.healthy()) {
                return;
            }
            await new Promise((r) => setTimeout(r, 250));
        }
    }

    private healthy(): Promise<boolean> {
        return new Promise((resolve) => {
            const req = http.get(`${this.url}healthz`, (res) => {
                res.resume();
                resolve(res.statusCode === 200);
            });
            req.on('error', () => resolve(false));
            req.setTimeout(2000, () => {
                req.destroy();
                resolve(false);
            });
        });
    }

    /** End code-server's process group: SIGTERM, then SIGKILL after 5 s. */
    async stop(): Promise<void> {
        const pid = this.child.pid;
        if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) {
            return;
        }
        const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
        signalGroup(pid, 'SIGTERM');
        try {
            await withTimeout(exited, 5_000, 'code-server ignored SIGTERM');
        } catch {
            signalGroup(pid, 'SIGKILL');
            await withTimeout(exited, 5_000, 'code-server survived SIGKILL').catch(() => undefined);
        }
        // Extension hosts and adapters are in the same group; make sure none outlives the server.
        signalGroup(pid, 'SIGKILL');
    }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
    try {
        process.kill(-pid, signal);
    } catch {
        // the group is already gone
    }
}
