/**
 * Finds the command that starts the vmcore-dap adapter, in a fixed order, and proves it works.
 *
 * Order (first that is set wins; explicit choices that do not work are errors, never skipped):
 *   1. `adapterPath` from the launch configuration, then the `vmcoreDap.adapterPath` setting:
 *      an executable (`vmcore-dap`) is run as it is; a directory holding `vmcore_dap/` is put on
 *      PYTHONPATH and an interpreter is still needed (steps 2–5).
 *   2. `python` from the launch configuration, then the `vmcoreDap.python` setting.
 *   3. The clone's venv: when the extension runs from a vmcore-dap clone, `<clone>/.venv/bin/python`
 *      (with `<clone>/adapter` on PYTHONPATH, so no `pip install -e` is needed).
 *   4. The private environment the extension set up from the wheel it carries (privateEnvironment.ts).
 *   5. The interpreter selected in the Python extension, when that extension is installed.
 *   6. `python3` on PATH.
 * Steps 3–6 are tried in turn until one imports `vmcore_dap`; when none does, the error says nothing
 * was configured (`nothingConfigured`), which is when the extension offers to set up step 4. The check runs the real interpreter
 * (`python -c "import vmcore_dap"`), because a wrong interpreter otherwise shows up only as an empty
 * Call Stack. No `vscode` import: the Python extension's answer is passed in as a function.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** How to start the adapter, and why this one was chosen. */
export interface AdapterCommand {
    command: string;
    args: string[];
    /** Variables to add to the adapter's environment (PYTHONPATH when the source tree is used). */
    env: Record<string, string>;
    /** Human-readable origin, e.g. "vmcoreDap.python setting" (logged to the Output channel). */
    origin: string;
}

export interface LocatorInputs {
    configAdapterPath?: string;
    configPython?: string;
    settingAdapterPath?: string;
    settingPython?: string;
    /** Directory of the installed extension (its package.json); the clone is its parent. */
    extensionDir: string;
    /** The Python extension's selected interpreter, or undefined when it has none / is absent. */
    pythonExtensionInterpreter: () => Promise<string | undefined>;
    /** The adapter wheel the extension carries: what the install hints tell pip to install. */
    bundledWheel?: string;
    /** The private environment's interpreter, or undefined when none is set up. */
    privateEnvironmentPython?: () => string | undefined;
    /** Called with one line per candidate tried. */
    log: (line: string) => void;
    /** Seconds allowed for one `import vmcore_dap` check. */
    importTimeoutSeconds?: number;
}

/** The `origin` of the private environment the extension sets up. */
export const PRIVATE_ENVIRONMENT_ORIGIN = "the extension's private environment";

/** The adapter could not be found; `message` says what was tried and how to install it. */
export class AdapterNotFoundError extends Error {
    constructor(
        message: string,
        /** The setting that would fix it, for the notification's "Open Settings" action. */
        readonly setting: 'vmcoreDap.python' | 'vmcoreDap.adapterPath',
        /** A shell command that installs the adapter for the interpreter that was found, if any. */
        readonly installCommand?: string,
        /** True when no adapter or interpreter was configured and none was found: a set-up can help. */
        readonly nothingConfigured = false,
    ) {
        super(message);
        this.name = 'AdapterNotFoundError';
    }
}

interface ImportCheck {
    ok: boolean;
    /** Module location on success, the last line of the error otherwise. */
    detail: string;
}

/** Run `python -c "import vmcore_dap"` with `extraPythonPath` prepended to PYTHONPATH. */
export function checkImport(
    python: string,
    extraPythonPath: string | undefined,
    timeoutSeconds: number,
): Promise<ImportCheck> {
    const env = withPythonPath(process.env, extraPythonPath);
    return new Promise((resolve) => {
        execFile(
            python,
            ['-c', 'import vmcore_dap, sys; sys.stdout.write(vmcore_dap.__file__ or "")'],
            { env, timeout: timeoutSeconds * 1000, encoding: 'utf8' },
            (error, stdout, stderr) => {
                if (error === null) {
                    resolve({ ok: true, detail: stdout.trim() });
                    return;
                }
                const errno = (error as NodeJS.ErrnoException).code;
                if (errno === 'ENOENT') {
                    resolve({ ok: false, detail: 'no such interpreter' });
                } else if (errno === 'EACCES') {
                    resolve({ ok: false, detail: 'not executable' });
                } else if (error.killed) {
                    resolve({ ok: false, detail: `did not answer within ${timeoutSeconds} s` });
                } else {
                    const lines = stderr.trim().split('\n');
                    resolve({ ok: false, detail: lines[lines.length - 1] || error.message });
                }
            },
        );
    });
}

function withPythonPath(
    base: NodeJS.ProcessEnv,
    extra: string | undefined,
): NodeJS.ProcessEnv {
    if (extra === undefined) {
        return base;
    }
    const current = base.PYTHONPATH;
    return { ...base, PYTHONPATH: current ? `${extra}${path.delimiter}${current}` : extra };
}

function isExecutableFile(p: string): boolean {
    try {
        if (!fs.statSync(p).isFile()) {
            return false;
        }
        fs.accessSync(p, fs.constants.X_OK);
        return true;
    } catch {
        return false;
    }
}

function isPackageDir(dir: string): boolean {
    return fs.existsSync(path.join(dir, 'vmcore_dap', '__init__.py'));
}

/** The vmcore-dap clone the extension runs from, if it does: `<clone>/vscode-extension`. */
export function cloneRoot(extensionDir: string): string | undefined {
    let real: string;
    try {
        real = fs.realpathSync(extensionDir);
    } catch {
        return undefined;
    }
    const root = path.dirname(real);
    return fs.existsSync(path.join(root, 'adapter', 'vmcore_dap')) ? root : undefined;
}

function installHint(python: string, root: string | undefined, wheel: string | undefined): string {
    const source = root ?? wheel ?? '<path of the vmcore-dap source>';
    return `${python} -m pip install ${source}`;
}

function pythonCommand(python: string, extraPythonPath: string | undefined, origin: string): AdapterCommand {
    return {
        command: python,
        args: ['-m', 'vmcore_dap'],
        env: extraPythonPath === undefined ? {} : { PYTHONPATH: withPythonPath(process.env, extraPythonPath).PYTHONPATH ?? extraPythonPath },
        origin,
    };
}

/** Find the adapter command (see the module docstring for the order). */
export async function locateAdapter(inputs: LocatorInputs): Promise<AdapterCommand> {
    const timeout = inputs.importTimeoutSeconds ?? 20;
    const root = cloneRoot(inputs.extensionDir);

    // 1. adapterPath: an executable is final; a source directory only changes PYTHONPATH.
    let extraPythonPath: string | undefined;
    const adapterPathChoices: [string | undefined, string][] = [
        [inputs.configAdapterPath, '"adapterPath" in launch.json'],
        [inputs.settingAdapterPath, 'vmcoreDap.adapterPath setting'],
    ];
    for (const [adapterPath, origin] of adapterPathChoices) {
        if (!adapterPath) {
            continue;
        }
        if (isExecutableFile(adapterPath)) {
            inputs.log(`adapter: using executable ${adapterPath} (from ${origin})`);
            return { command: adapterPath, args: [], env: {}, origin };
        }
        if (fs.existsSync(adapterPath) && fs.statSync(adapterPath).isDirectory() && isPackageDir(adapterPath)) {
            inputs.log(`adapter: putting ${adapterPath} on PYTHONPATH (from ${origin})`);
            extraPythonPath = adapterPath;
            break;
        }
        throw new AdapterNotFoundError(
            `The adapter path '${adapterPath}' (${origin}) is neither an executable vmcore-dap nor a ` +
                'directory containing the vmcore_dap package (point it at the vmcore-dap executable, ' +
                "e.g. '<venv>/bin/vmcore-dap', or clear it)",
            'vmcoreDap.adapterPath',
        );
    }

    // 2. Explicit interpreters: an error when they do not work, never a silent fallback.
    const explicit: [string | undefined, string][] = [
        [inputs.configPython, '"python" in launch.json'],
        [inputs.settingPython, 'vmcoreDap.python setting'],
    ];
    for (const [python, origin] of explicit) {
        if (!python) {
            continue;
        }
        const check = await checkImport(python, extraPythonPath, timeout);
        inputs.log(`adapter: ${python} (${origin}): ${check.ok ? `vmcore_dap at ${check.detail}` : check.detail}`);
        if (check.ok) {
            return pythonCommand(python, extraPythonPath, origin);
        }
        throw new AdapterNotFoundError(
            `The Python interpreter '${python}' (${origin}) cannot import vmcore_dap: ${check.detail} ` +
                `(install the adapter there with '${installHint(python, root, inputs.bundledWheel)}', or change ${origin})`,
            'vmcoreDap.python',
            installHint(python, root, inputs.bundledWheel),
        );
    }

    // 3–6. Implicit interpreters, first that imports vmcore_dap wins.
    const implicit: { python: () => Promise<string | undefined>; origin: string; pythonPath?: string }[] = [];
    if (root !== undefined) {
        implicit.push({
            python: async () => {
                const venv = path.join(root, '.venv', 'bin', 'python');
                return fs.existsSync(venv) ? venv : undefined;
            },
            origin: `the clone's venv (${root}/.venv)`,
            pythonPath: extraPythonPath ?? path.join(root, 'adapter'),
        });
    }
    implicit.push({
        python: async () => inputs.privateEnvironmentPython?.(),
        origin: PRIVATE_ENVIRONMENT_ORIGIN,
    });
    implicit.push({ python: inputs.pythonExtensionInterpreter, origin: "the Python extension's selected interpreter" });
    implicit.push({ python: async () => 'python3', origin: 'python3 on PATH' });

    const tried: string[] = [];
    let firstWorkingPython: string | undefined;
    for (const candidate of implicit) {
        const python = await candidate.python();
        if (python === undefined) {
            inputs.log(`adapter: ${candidate.origin}: not available`);
            continue;
        }
        const pythonPath = candidate.pythonPath ?? extraPythonPath;
        const check = await checkImport(python, pythonPath, timeout);
        inputs.log(`adapter: ${python} (${candidate.origin}): ${check.ok ? `vmcore_dap at ${check.detail}` : check.detail}`);
        if (check.ok) {
            return pythonCommand(python, pythonPath, candidate.origin);
        }
        tried.push(`${python} (${candidate.origin}): ${check.detail}`);
        if (firstWorkingPython === undefined && check.detail !== 'no such interpreter') {
            firstWorkingPython = python;
        }
    }
    const hint = installHint(firstWorkingPython ?? 'python3', root, inputs.bundledWheel);
    throw new AdapterNotFoundError(
        `Cannot find the vmcore-dap adapter: no Python interpreter can import vmcore_dap ` +
            `(tried ${tried.join('; ')}). Install it with '${hint}', or set vmcoreDap.python to an ` +
            'interpreter that has it',
        'vmcoreDap.python',
        hint,
        extraPythonPath === undefined,
    );
}
