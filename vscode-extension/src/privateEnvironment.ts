/**
 * The adapter's private Python environment, in the extension's global storage: made from the wheel
 * the .vsix carries (`bundled/vmcore_dap-<version>-py3-none-any.whl`), with its dependencies (drgn,
 * capstone, pygls, debugpy) from PyPI, as the Python extension brings debugpy and CodeLLDB brings lldb.
 *
 * Layout under the storage directory:
 *
 *   adapter-environment.json          the record later sessions trust: which environment, its versions
 *   environments/vmcore-dap-<version>-<time>/   one virtual environment per set-up
 *
 * A set-up never leaves a half-made environment that a later session trusts: it builds a new
 * environment beside the current one, checks it by running its `vmcore-dap --version` (which also
 * imports drgn), and only then replaces the record, by writing a temporary file and renaming it over
 * the old one (atomic on one file system). The environment itself is not renamed into place because
 * a virtual environment cannot move: pip writes its absolute path into every script it installs.
 * A failed or cancelled set-up deletes its directory and leaves the record, and so a working older
 * environment, as they were. Directories no record names (a set-up killed with VS Code) are removed
 * by the next set-up. No `vscode` import.
 */
import * as fs from 'fs';
import * as path from 'path';

import { parseVersionLine } from './adapterVersions';
import { lastLines, runProcess, RunResult } from './processRunner';
import { SetupPython, versionText } from './pythonFinder';

/** The record of the environment sessions use. */
export interface EnvironmentRecord {
    /** The environment's directory. */
    directory: string;
    /** `<directory>/bin/python`: the adapter runs as `python -m vmcore_dap`. */
    python: string;
    adapterVersion: string;
    drgnVersion: string;
    pythonVersion: string;
    /** The interpreter the environment was made from. */
    basePython: string;
    /** The wheel that was installed. */
    wheel: string;
    /** ISO time of the set-up. */
    created: string;
}

/** The adapter wheel inside the extension, and its version. */
export interface BundledWheel {
    path: string;
    version: string;
}

/** A set-up failed; `message` says at which step, why, and what to do. */
export class SetupError extends Error {
    constructor(message: string, readonly cancelled = false) {
        super(message);
        this.name = 'SetupError';
    }
}

export const RECORD_FILE = 'adapter-environment.json';
export const ENVIRONMENTS_DIR = 'environments';
/** Inside an environment while it is being made: the pid of the extension host making it. */
const BUILDING_MARKER = '.vmcore-dap-building';

const WHEEL_NAME = /^vmcore_dap-([^-]+)-py3-none-any\.whl$/;

/** The wheel `npm run package` put in `<extensionDir>/bundled`, or undefined (a development checkout). */
export function bundledWheel(extensionDir: string): BundledWheel | undefined {
    const dir = path.join(extensionDir, 'bundled');
    let names: string[];
    try {
        names = fs.readdirSync(dir);
    } catch {
        return undefined;
    }
    for (const name of names.sort()) {
        const m = WHEEL_NAME.exec(name);
        if (m !== null) {
            return { path: path.join(dir, name), version: m[1] };
        }
    }
    return undefined;
}

export interface SetupOptions {
    /** One line per step and every line pip prints. */
    log: (line: string) => void;
    /** A short description of the step under way, for the progress notification. */
    progress: (step: string) => void;
    signal?: AbortSignal;
    /** Longest a pip install may take (default 20 minutes: a slow mirror, a source build). */
    pipTimeoutMs?: number;
}

function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
}

export class PrivateEnvironment {
    constructor(readonly storageDir: string) {}

    get recordFile(): string {
        return path.join(this.storageDir, RECORD_FILE);
    }

    /**
     * The record of the environment to use, or undefined when there is none that can run (never set
     * up, deleted by hand, its base Python removed by a system upgrade). `log` says why one is refused.
     */
    read(log: (line: string) => void = () => undefined): EnvironmentRecord | undefined {
        let record: EnvironmentRecord;
        try {
            record = JSON.parse(fs.readFileSync(this.recordFile, 'utf8')) as EnvironmentRecord;
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
                log(`private environment: cannot read ${this.recordFile}: ${String(e)}`);
            }
            return undefined;
        }
        for (const key of ['directory', 'python', 'adapterVersion'] as const) {
            if (typeof record[key] !== 'string' || record[key] === '') {
                log(`private environment: ${this.recordFile} has no '${key}'`);
                return undefined;
            }
        }
        try {
            // bin/python is a symbolic link to the base interpreter: stat follows it.
            fs.accessSync(record.python, fs.constants.X_OK);
        } catch {
            log(`private environment: ${record.python} no longer runs (was ${record.basePython} removed?)`);
            return undefined;
        }
        return record;
    }

    /**
     * Make a new environment from `wheel` with `python`, check it, and make it the one sessions use.
     * Resolves to its record; rejects with SetupError, leaving the previous environment in use.
     */
    async create(wheel: BundledWheel, python: SetupPython, options: SetupOptions): Promise<EnvironmentRecord> {
        const environments = this.environmentsDir();
        this.removeUnused(options.log);
        const stamp = new Date().toISOString().replace(/[-:.]/g, '').replace('T', '-').slice(0, 15);
        const directory = path.join(environments, `vmcore-dap-${wheel.version}-${stamp}-${process.pid}`);
        fs.mkdirSync(directory);
        fs.writeFileSync(path.join(directory, BUILDING_MARKER), `${process.pid}\n`);
        try {
            const record = await this.build(directory, wheel, python, options);
            fs.rmSync(path.join(directory, BUILDING_MARKER), { force: true });
            const previous = this.read();
            this.writeRecord(record);
            options.log(`set-up: ${this.recordFile} now names ${directory}`);
            if (previous !== undefined && previous.directory !== directory) {
                this.removeDirectory(previous.directory, options.log);
            }
            return record;
        } catch (e) {
            this.removeDirectory(directory, options.log);
            throw e;
        }
    }

    private async build(directory: string, wheel: BundledWheel, python: SetupPython, options: SetupOptions): Promise<EnvironmentRecord> {
        const { log, progress, signal } = options;
        const env: NodeJS.ProcessEnv = { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INPUT: '1' };
        delete env.PYTHONPATH;
        delete env.PYTHONHOME;
        delete env.VIRTUAL_ENV;
        const step = async (what: string, command: string, args: string[], timeoutMs: number): Promise<RunResult> => {
            log(`set-up: ${[command, ...args].join(' ')}`);
            const result = await runProcess(command, args, { env, signal, timeoutMs, onLine: (line) => log(`  ${line}`) });
            if (result.failure === 'cancelled' || signal?.aborted) {
                throw new SetupError('Setting up the adapter was cancelled; nothing was changed', true);
            }
            if (result.failure !== undefined || result.code !== 0) {
                throw new SetupError(`${what} failed: ${result.failure ?? lastLines(result)}`);
            }
            return result;
        };

        progress(`creating a Python ${versionText(python.version)} environment`);
        try {
            await step(`Creating a virtual environment with ${python.executable}`, python.executable, ['-m', 'venv', directory], 120_000);
        } catch (e) {
            if (e instanceof SetupError && !e.cancelled && /ensurepip|venv/.test(e.message.split(' failed: ')[1] ?? '')) {
                const minor = `${python.version[0]}.${python.version[1]}`;
                throw new SetupError(`${e.message} (Debian/Ubuntu: sudo apt install python${minor}-venv; then start debugging again)`);
            }
            throw e;
        }
        const venvPython = path.join(directory, 'bin', 'python');

        progress(`installing vmcore-dap ${wheel.version} with drgn, capstone, pygls and debugpy from PyPI`);
        try {
            await step(
                `Installing ${path.basename(wheel.path)} and its dependencies`,
                venvPython,
                ['-m', 'pip', 'install', '--no-input', wheel.path],
                options.pipTimeoutMs ?? 20 * 60_000,
            );
        } catch (e) {
            if (e instanceof SetupError && !e.cancelled) {
                throw new SetupError(
                    `${e.message} (pip needs PyPI, or the index in PIP_INDEX_URL, and the proxy in HTTPS_PROXY, ` +
                        'from the environment VS Code was started in; the whole pip output is in Output › vmcore)',
                );
            }
            throw e;
        }

        progress('checking the adapter');
        const adapter = await step('Running the new adapter', path.join(directory, 'bin', 'vmcore-dap'), ['--version'], 60_000);
        const versions = parseVersionLine(adapter.stdout);
        if (versions === undefined || versions.adapter !== wheel.version) {
            throw new SetupError(
                `The new adapter answered '${adapter.stdout.trim()}' to --version, not vmcore-dap ${wheel.version} ` +
                    '(report this with the Output › vmcore log)',
            );
        }
        await step('Running the new language server', path.join(directory, 'bin', 'vmcore-dap-lsp'), ['--version'], 60_000);
        log(`set-up: ${adapter.stdout.trim()}`);
        return {
            directory,
            python: venvPython,
            adapterVersion: versions.adapter,
            drgnVersion: versions.drgn ?? '',
            pythonVersion: versions.python ?? versionText(python.version),
            basePython: python.executable,
            wheel: wheel.path,
            created: new Date().toISOString(),
        };
    }

    private writeRecord(record: EnvironmentRecord): void {
        const temporary = `${this.recordFile}.tmp-${process.pid}`;
        fs.writeFileSync(temporary, JSON.stringify(record, null, 2) + '\n');
        fs.renameSync(temporary, this.recordFile);
    }

    /**
     * The directory of the environments, created if needed, by its real path: the path an environment
     * is made at is written into its scripts, so it must not depend on a symbolic link on the way to
     * the storage directory staying where it is.
     */
    private environmentsDir(): string {
        fs.mkdirSync(path.join(this.storageDir, ENVIRONMENTS_DIR), { recursive: true });
        return path.join(fs.realpathSync(this.storageDir), ENVIRONMENTS_DIR);
    }

    /** Delete environments no record names and no live set-up is building. */
    private removeUnused(log: (line: string) => void): void {
        const environments = this.environmentsDir();
        const current = this.read()?.directory;
        for (const name of fs.readdirSync(environments)) {
            const directory = path.join(environments, name);
            if (directory === current) {
                continue;
            }
            let builder: number | undefined;
            try {
                builder = Number(fs.readFileSync(path.join(directory, BUILDING_MARKER), 'utf8').trim());
            } catch {
                builder = undefined;
            }
            if (builder !== undefined && builder !== process.pid && isAlive(builder)) {
                continue; // another VS Code window is setting up right now
            }
            this.removeDirectory(directory, log);
        }
    }

    private removeDirectory(directory: string, log: (line: string) => void): void {
        const environments = this.environmentsDir();
        if (path.dirname(directory) !== environments) {
            log(`set-up: not removing ${directory}: it is not under ${environments}`);
            return;
        }
        fs.rmSync(directory, { recursive: true, force: true });
        log(`set-up: removed ${directory}`);
    }
}
