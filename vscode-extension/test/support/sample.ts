/**
 * Gets a sample vmcore from the samples store (building it when it is missing), via the Python
 * loader `samples.sample_store.ensure_sample`, and the launch configuration that opens it.
 * A missing sample is built, never skipped: the first run may take many minutes.
 */
import { spawn } from 'child_process';

import { repoRoot, venvPython } from './repo';

/** What the tests need from `samples.sample_store.Sample` (see the sample manifest contract). */
export interface SampleInfo {
    scenario: string;
    dir: string;
    vmcore: string;
    vmlinux: string;
    debugInfoDir: string;
    debugInfo: string[];
    moduleSourceDir: string;
    kernelRelease: string;
    /** Unpacked kernel source tree when the cache has it (samples.kernel_source), else null. */
    kernelSource: string | null;
    expected: SampleExpectations;
}

export interface SampleExpectations {
    panic: string;
    oops_line: string;
    crashed_pid: number;
    crashed_comm: string;
    crashed_cpu: number;
    function: string;
    file: string;
    line: number;
    locals?: Record<string, unknown>;
    mutex_holder_pid?: number;
    d_state_pids?: number[];
    min_tasks: number;
    [key: string]: unknown;
}

const MARKER = 'VMCORE_DAP_SAMPLE_JSON ';

const LOADER = `
import json, sys
from samples.sample_store import ensure_sample
sample = ensure_sample(sys.argv[1])
kernel_source = None
try:
    from samples.kernel_source import debian_version_of_vmlinux, kernel_source_dir
    tree = kernel_source_dir(debian_version_of_vmlinux(sample.vmlinux))
    kernel_source = str(tree) if tree is not None else None
except Exception as e:  # the source tree only improves the session; say why it is absent
    print(f"no kernel source tree for the sample: {e}", file=sys.stderr)
print(${JSON.stringify(MARKER)} + json.dumps({
    "scenario": sample.scenario,
    "dir": str(sample.dir),
    "vmcore": str(sample.vmcore),
    "vmlinux": str(sample.vmlinux),
    "debugInfoDir": str(sample.debug_info_dir),
    "debugInfo": [str(p) for p in sample.debug_info],
    "moduleSourceDir": str(sample.module_source_dir),
    "kernelRelease": sample.kernel_release,
    "kernelSource": kernel_source,
    "expected": sample.expected,
}), flush=True)
`;

/**
 * Run a Python snippet of the repository (with `samples` importable) that prints one line
 * `<marker><json>`, streaming its stderr (sample builds, downloads) through; resolve with the JSON.
 * `what` names the job in the error, which ends with the snippet's last stderr lines.
 */
export function runSampleLoader<T>(code: string, marker: string, scenario: string, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
        const child = spawn(venvPython(), ['-c', code, scenario], {
            cwd: repoRoot(),
            env: { ...process.env, PYTHONPATH: repoRoot() },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        child.stderr.on('data', (d: Buffer) => {
            stderr += d.toString('utf8');
            process.stderr.write(d); // progress of a sample build or a kernel source download
        });
        child.on('error', reject);
        child.on('exit', (exitCode) => {
            const line = stdout.split('\n').find((l) => l.startsWith(marker));
            if (exitCode !== 0 || line === undefined) {
                const tail = stderr.trim().split('\n').slice(-15).join('\n');
                reject(new Error(`${what} failed (exit ${exitCode}):\n${tail}`));
                return;
            }
            resolve(JSON.parse(line.slice(marker.length)) as T);
        });
    });
}

/** Ensure the sample `scenario` exists and describe it; rejects with the loader's own error. */
export function loadSample(scenario: string): Promise<SampleInfo> {
    return runSampleLoader<SampleInfo>(LOADER, MARKER, scenario, `ensure_sample('${scenario}')`);
}

/** How the Call Stack names the task that crashed: `PID <pid> <comm>` (then its state and CPU). */
export function crashedThreadPrefix(sample: SampleInfo): string {
    return `PID ${sample.expected.crashed_pid} ${sample.expected.crashed_comm}`;
}

/** The `vmcore` launch configuration that opens `sample` with all its debug info. */
export function launchArguments(sample: SampleInfo, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const args: Record<string, unknown> = {
        type: 'vmcore',
        request: 'launch',
        name: `vmcore: ${sample.scenario}`,
        vmcore: sample.vmcore,
        vmlinux: sample.vmlinux,
        debugInfo: sample.debugInfo,
        debugInfoDirectories: [sample.debugInfoDir],
        stopOnPanic: true,
        ...extra,
    };
    if (sample.kernelSource !== null) {
        args.sourceRoot = sample.kernelSource;
    }
    return args;
}

/**
 * True when the adapter's rendering of a value shows `expected`: a number in decimal or hex, a string
 * as a substring (enumerators, or a char array's text), an array as its elements in order (e.g.
 * "{7, 28, 63, 112}"). Arrays shown only as a summary ("int [4]") do not match: compare their children.
 */
export function valueMatches(shown: string, expected: unknown): boolean {
    if (typeof expected === 'number') {
        return numbersIn(shown).includes(expected);
    }
    if (typeof expected === 'string') {
        return shown.includes(expected);
    }
    if (Array.isArray(expected) && expected.every((e) => typeof e === 'number')) {
        const numbers = numbersIn(shown);
        return numbers.some((_, start) => expected.every((e, i) => numbers[start + i] === e));
    }
    return false;
}

function numbersIn(shown: string): number[] {
    return (shown.match(/-?0x[0-9a-f]+|-?\d+/gi) ?? []).map((n) => (n.startsWith('-') ? -Number(n.slice(1)) : Number(n)));
}
