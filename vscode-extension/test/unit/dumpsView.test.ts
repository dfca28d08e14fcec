/**
 * The Dumps view on real triage output: `vmcore-dap triage` run through the view's own runner
 * (src/dumpsView/triageRun.ts) on the oops-null and sysrq-c samples, its progress events, the rows
 * and hovers built from its summary.json (src/dumpsView/rows.ts), and the launch configuration a
 * click on a dump starts: a real adapter session opened with it stops on the sample's crashed task.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {
    asSummary,
    clusterDescription,
    clusterLabel,
    clusterTooltip,
    dumpDescription,
    dumpLabel,
    dumpLaunch,
    reportPath,
    TriageSummary,
} from '../../src/dumpsView/rows';
import { runTriage, TriageEvent } from '../../src/dumpsView/triageRun';
import { venvPython } from '../support/repo';
import { loadSample, SampleInfo } from '../support/sample';
import { openSample, SAMPLE_TIMEOUT_MS } from './support/adapterSession';

const SCENARIOS = ['oops-null', 'sysrq-c'];

describe('Dumps view on a real triage of oops-null and sysrq-c', function () {
    let samples: SampleInfo[] = [];
    let output = '';
    const events: TriageEvent[] = [];
    let summary: TriageSummary;
    let failed = false;

    before(async function () {
        this.timeout(SAMPLE_TIMEOUT_MS);
        samples = [];
        for (const scenario of SCENARIOS) {
            samples.push(await loadSample(scenario));
        }
        output = fs.mkdtempSync(path.join(os.tmpdir(), 'vmcore-dap-dumps-'));
        const outcome = await runTriage(
            {
                adapter: { command: venvPython(), args: ['-m', 'vmcore_dap'], env: {} },
                paths: samples.map((s) => s.vmcore),
                output,
                debugInfoDirs: [...new Set(samples.flatMap((s) => [s.debugInfoDir, ...s.debugInfo.map((f) => path.dirname(f))]))],
            },
            (event) => events.push(event),
        );
        assert.strictEqual(outcome.exitCode, 0, outcome.errors.join('\n'));
        assert.ok(outcome.summaryPath);
        summary = asSummary(JSON.parse(fs.readFileSync(outcome.summaryPath, 'utf8')), outcome.summaryPath);
    });

    afterEach(function () {
        failed ||= this.currentTest?.state === 'failed';
    });

    after(() => {
        if (!failed) {
            fs.rmSync(output, { recursive: true, force: true });
        }
    });

    it('reports progress: start, one event per dump counting up, done with the summary', () => {
        assert.deepStrictEqual(events.map((e) => e.event), ['start', 'dump', 'dump', 'done']);
        const dumps = events.filter((e) => e.event === 'dump');
        assert.deepStrictEqual(dumps.map((e) => [e.done, e.total]), [[1, 2], [2, 2]]);
        assert.deepStrictEqual(dumps.map((e) => e.vmcore).sort(), samples.map((s) => s.vmcore).sort());
        assert.strictEqual(events[3].summary, path.join(output, 'summary.json'));
    });

    it('has one cluster per crash, titled by its class and faulting function, with its dump under it', () => {
        assert.strictEqual(summary.clusters.length, 2);
        for (const sample of samples) {
            const cluster = summary.clusters.find((c) => c.dumps.some((d) => d.vmcore === sample.vmcore));
            assert.ok(cluster, sample.scenario);
            assert.strictEqual(clusterLabel(cluster), `×1  ${cluster.title}`);
            assert.match(cluster.title, new RegExp(` in ${sample.expected.function}$`));
            assert.strictEqual(clusterDescription(cluster), `${sample.kernelRelease} · last ${cluster.last_dump_time?.slice(0, 16).replace('T', ' ')}`);
            const [dump] = cluster.dumps;
            assert.strictEqual(dumpLabel(dump), `${path.basename(sample.dir)}/vmcore`);
            assert.ok(dumpDescription(dump).startsWith(`PID ${sample.expected.crashed_pid} ${sample.expected.crashed_comm} · ${sample.kernelRelease}`));
            const report = reportPath(output, dump);
            assert.ok(report && fs.readFileSync(report, 'utf8').startsWith('## Kernel crash: '));
        }
    });

    it('shows the signature and the representative stack on hover', () => {
        for (const cluster of summary.clusters) {
            const tooltip = clusterTooltip(cluster);
            assert.ok(tooltip.includes(`Signature \`${cluster.signature}\``), tooltip);
            const fence = tooltip.split('\n').indexOf('```');
            const stack = tooltip.split('\n').slice(fence + 1, -1);
            assert.deepStrictEqual(stack, cluster.representative_stack);
            const sample = samples.find((s) => s.vmcore === cluster.representative.vmcore);
            assert.ok(sample);
            assert.match(stack[0], new RegExp(`^${sample.expected.function}\\b.*\\(${sample.expected.file}:${sample.expected.line}\\)$`));
        }
    });

    it('opens a dump with the launch configuration from its report: the adapter stops on the crashed task', async function () {
        this.timeout(SAMPLE_TIMEOUT_MS);
        const oops = samples[0];
        const dump = summary.clusters.flatMap((c) => c.dumps).find((d) => d.vmcore === oops.vmcore);
        assert.ok(dump);
        const launch = dumpLaunch(dump);
        assert.strictEqual(launch.type, 'vmcore');
        assert.strictEqual(launch.request, 'launch');
        assert.strictEqual(launch.name, `vmcore: ${dumpLabel(dump)}`);
        const session = await openSample(oops.scenario, () => launch);
        try {
            const threads = await session.request<{ threads: { id: number; name: string }[] }>('threads');
            const summaryBody = await session.request<{ crashedThreadId: number }>('vmcore/summary');
            const crashed = threads.threads.find((t) => t.id === summaryBody.crashedThreadId);
            assert.ok(crashed?.name.startsWith(`PID ${oops.expected.crashed_pid} ${oops.expected.crashed_comm} `), crashed?.name);
            const trace = await session.dc.stackTraceRequest({ threadId: summaryBody.crashedThreadId });
            assert.ok(trace.body.stackFrames.some((f) => f.name.startsWith(oops.expected.function)));
        } finally {
            await session.close(false);
        }
    });
});
