/**
 * The launch configuration a person gets for a sample: `samples/launch/<scenario>.json` filled in by
 * `samples.sample_store.launch_configuration`, with `sourceRoot` (and the `sourceFileMap` target) on
 * Debian's unpacked linux-source tree of the sample kernel. The tree is fetched when the cache lacks
 * it (`samples.kernel_source.ensure_kernel_source`), never skipped: kernel frames must open.
 */
import { runSampleLoader } from '../../test/support/sample';

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
    return runSampleLoader<SampleLaunch>(
        LOADER,
        MARKER,
        scenario,
        `making the launch configuration of sample '${scenario}'`,
    );
}
