/**
 * The launch configuration a person gets for a sample: `samples/launch/<scenario>.json` filled in by
 * `samples.sample_store.launch_configuration`, with `sourceRoot` (and the `sourceFileMap` target) on
 * Debian's unpacked linux-source tree of the sample kernel. The tree is fetched when the cache lacks
 * it (`samples.kernel_source.ensure_kernel_source`), never skipped: kernel frames must open.
 */
import { spawn } from 'child_process';

import { repoRoot, venvPython } from '../../test/support/repo';

const MARKER = 'VMCORE_DAP_LAUNCH_JSON ';

const LOADER = `
import json, sys
from pathlib import Path
from samples.kernel_source import debian_version_of_vmlinux, ensure_kernel_source
from samples.sample_store import ensure_sample, launch_configuration
sample = ensure_sample(sys.argv[1])
tree = ensure_kernel_source(debian_version_of_vmlinux(Path(sample.vmlinux)))
config = launch_configuration(sample, tree)["configurations"][0]
print(${JSON.stringify(MARKER)} + json.dumps({"config": config, "dmesg": str(sample.dmesg), "kernelSource": str(tree)}), flush=True)
`;

export interface SampleLaunch {
    /** The first configuration of the sample's launch.json, placeholders filled in. */
    config: Record<string, unknown> & { vmcore: string; sourceRoot: string };
    /** The kernel log the guest printed (a reference independent of the dump reader). */
    dmesg: string;
    /** The unpacked kernel source tree (the configuration's sourceRoot). */
    kernelSource: string;
}

/** Build the sample and fetch its kernel tree if needed (minutes the first time), then describe its launch. */
export function sampleLaunch(scenario: string): Promise<SampleLaunch> {
    return new Promise((resolve, reject) => {
        const child = spawn(venvPython(), ['-c', LOADER, scenario], {
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
        child.on('exit', (code) => {
            const line = stdout.split('\n').find((l) => l.startsWith(MARKER));
            if (code !== 0 || line === undefined) {
                const tail = stderr.trim().split('\n').slice(-15).join('\n');
                reject(new Error(`the launch configuration of sample '${scenario}' could not be made (exit ${code}):\n${tail}`));
                return;
            }
            resolve(JSON.parse(line.slice(MARKER.length)) as SampleLaunch);
        });
    });
}
