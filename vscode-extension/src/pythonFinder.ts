/**
 * Finds a Python that can hold the adapter's private environment: 3.11 or newer (vmcore-dap's
 * `requires-python`, and the oldest Python drgn's crash commands run on) with the `venv` and
 * `ensurepip` modules (Debian and Ubuntu ship those in a separate package, python3-venv, so a
 * python3 that runs is not enough).
 *
 * Candidates, first that qualifies wins: the distribution's `python3`, then `python3.11` … `python3.14`
 * on PATH (the oldest first: drgn publishes wheels for a new Python some time after its release),
 * then the Python extension's selected interpreter. When none qualifies, the error names what was
 * found and how to install the right one on Debian, Ubuntu, Fedora and RHEL. No `vscode` import.
 */
import { runProcess } from './processRunner';

/** The oldest Python the adapter runs on (pyproject.toml's requires-python). */
export const MIN_PYTHON: readonly [number, number] = [3, 11];

/** Interpreter names tried on PATH, in order. */
export const PATH_CANDIDATES: readonly string[] = ['python3', 'python3.11', 'python3.12', 'python3.13', 'python3.14'];

/** What a probe learned about one interpreter. */
export interface PythonProbe {
    /** The name or path that was run. */
    candidate: string;
    /** sys.executable: the real path, which the environment is created from. */
    executable: string;
    version: [number, number, number];
    hasVenv: boolean;
    hasEnsurepip: boolean;
}

/** A Python fit for the private environment. */
export type SetupPython = PythonProbe;

/** No Python fits; `message` says what was found and how to get one. */
export class PythonNotFoundError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'PythonNotFoundError';
    }
}

const PROBE = [
    'import importlib.util, json, sys',
    'print(json.dumps({"executable": sys.executable, "version": list(sys.version_info[:3]),',
    ' "venv": importlib.util.find_spec("venv") is not None,',
    ' "ensurepip": importlib.util.find_spec("ensurepip") is not None}))',
].join('\n');

/** Run `candidate` and ask it its version and modules; a string says why it could not be asked. */
export async function probePython(candidate: string, timeoutMs = 20_000): Promise<PythonProbe | string> {
    const result = await runProcess(candidate, ['-I', '-c', PROBE], { timeoutMs });
    if (result.failure !== undefined) {
        return result.failure;
    }
    if (result.code !== 0) {
        return `exited with code ${result.code}`;
    }
    try {
        const answer = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as {
            executable: string;
            version: [number, number, number];
            venv: boolean;
            ensurepip: boolean;
        };
        return {
            candidate,
            executable: answer.executable,
            version: answer.version,
            hasVenv: answer.venv,
            hasEnsurepip: answer.ensurepip,
        };
    } catch {
        return `answered '${result.stdout.trim().slice(0, 80)}', not its version`;
    }
}

export function versionText(version: readonly number[]): string {
    return version.join('.');
}

/** Why `probe` cannot hold the environment, or undefined when it can. */
export function unfitness(probe: PythonProbe): string | undefined {
    const [major, minor] = probe.version;
    if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
        return `Python ${versionText(probe.version)} is older than ${versionText(MIN_PYTHON)}`;
    }
    if (!probe.hasVenv || !probe.hasEnsurepip) {
        return `Python ${versionText(probe.version)} lacks the venv module's pip (ensurepip)`;
    }
    return undefined;
}

/**
 * How to install a fitting Python on the distributions users run, one line each. `minor` is the
 * Python found without venv, if any: Debian and Ubuntu name the venv package after it.
 */
export function installAdvice(venvlessMinor?: string): string {
    const venvPackage = venvlessMinor !== undefined ? `python${venvlessMinor}-venv` : 'python3-venv';
    return [
        `Debian 12+ / Ubuntu 24.04+: sudo apt install python3 ${venvPackage}`,
        'Ubuntu 22.04: sudo apt install python3.11 python3.11-venv',
        'Debian 11: Python 3.11 is not packaged (use Debian 12, or install it with pyenv or uv)',
        'Fedora: sudo dnf install python3',
        'RHEL / Rocky / Alma 8.8+ and 9.2+: sudo dnf install python3.11',
    ].join('; ');
}

/**
 * The first fitting Python among `candidates` (names on PATH or paths); `log` gets one line per
 * candidate. Throws PythonNotFoundError saying what each one lacked and how to install Python 3.11+.
 */
export async function findSetupPython(candidates: readonly string[], log: (line: string) => void): Promise<SetupPython> {
    const seen = new Set<string>();
    const problems: string[] = [];
    let venvlessMinor: string | undefined;
    for (const candidate of candidates) {
        const probe = await probePython(candidate);
        if (typeof probe === 'string') {
            log(`set-up: ${candidate}: ${probe}`);
            if (probe !== 'no such program') {
                problems.push(`${candidate}: ${probe}`);
            }
            continue;
        }
        if (seen.has(probe.executable)) {
            continue; // python3 and python3.11 are often the same interpreter
        }
        seen.add(probe.executable);
        const why = unfitness(probe);
        log(`set-up: ${candidate} is ${probe.executable}, Python ${versionText(probe.version)}${why ? `: ${why}` : ': fits'}`);
        if (why === undefined) {
            return probe;
        }
        problems.push(`${candidate}: ${why}`);
        if (!probe.hasEnsurepip && unfitness({ ...probe, hasVenv: true, hasEnsurepip: true }) === undefined) {
            venvlessMinor ??= `${probe.version[0]}.${probe.version[1]}`;
        }
    }
    const found = problems.length > 0 ? `found ${problems.join('; ')}` : `found none of ${candidates.join(', ')} on PATH`;
    throw new PythonNotFoundError(
        `Setting up the adapter needs Python ${versionText(MIN_PYTHON)} or newer with its venv module: ${found}. ` +
            `Install it — ${installAdvice(venvlessMinor)} — then start debugging again (or set vmcoreDap.python ` +
            'to an interpreter where vmcore-dap is installed)',
    );
}
