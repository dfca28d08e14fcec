/**
 * One real adapter session on a real sample, for unit tests of the extension's pure logic whose
 * input is what the adapter sends (the Kernel view's filter, the Stacks picture's merge). The
 * adapter is spawned over stdio with VS Code's DebugClient exactly as test/dap does; the sample is
 * built by the samples store when missing, never skipped. Callers share one session per scenario.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { DebugClient } from '@vscode/debugadapter-testsupport';
import { DebugProtocol } from '@vscode/debugprotocol';

import { adapterScript, venvPython } from '../../support/repo';
import { launchArguments, loadSample, SampleInfo } from '../../support/sample';

/** drgn loads vmlinux's DWARF at launch: seconds, more on a busy machine. */
export const OPEN_TIMEOUT_MS = 120_000;
/** Building a missing sample boots a VM. */
export const SAMPLE_TIMEOUT_MS = 60 * 60_000;

export interface AdapterSession {
    sample: SampleInfo;
    dc: DebugClient;
    /** The adapter's DAP trace, printed by `close` when a test failed. */
    logFile: string;
    /** Send a request and return its body; a failed request rejects with the adapter's message. */
    request<T>(command: string, args?: object): Promise<T>;
    close(failed: boolean): Promise<void>;
}

/**
 * Open `scenario` in a fresh adapter and wait for its first `stopped` event. `launch` gives the
 * launch configuration (default: the sample's with all its debug info, `launchArguments`).
 */
export async function openSample(
    scenario: string,
    launch: (sample: SampleInfo) => Record<string, unknown> = (sample) => launchArguments(sample),
): Promise<AdapterSession> {
    const sample = await loadSample(scenario);
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmcore-dap-unit-'));
    const logFile = path.join(runDir, 'adapter-dap.log');
    const dc = new DebugClient(venvPython(), adapterScript(), 'vmcore', { env: { ...process.env, VMCORE_DAP_LOG: logFile } }, true);
    dc.defaultTimeout = OPEN_TIMEOUT_MS;
    await dc.start();
    const initialized = dc.waitForEvent('initialized', OPEN_TIMEOUT_MS);
    const stopped = dc.waitForEvent('stopped', OPEN_TIMEOUT_MS);
    await dc.initializeRequest();
    await Promise.all([
        initialized.then(() => dc.configurationDoneRequest()),
        dc.launchRequest(launch(sample) as DebugProtocol.LaunchRequestArguments),
    ]);
    await stopped;
    return {
        sample,
        dc,
        logFile,
        async request<T>(command: string, args?: object): Promise<T> {
            const response = await dc.customRequest(command, args);
            return response.body as T;
        },
        async close(failed: boolean): Promise<void> {
            await dc.stop();
            if (failed) {
                console.error(`adapter DAP trace kept: ${logFile}`);
            } else {
                fs.rmSync(runDir, { recursive: true, force: true });
            }
        },
    };
}
