/**
 * Protocol tests: the real Python adapter over stdio, driven by VS Code's own DebugClient, on the
 * `oops-null` sample (built by the samples store when missing). Expected answers come from the
 * sample's manifest (`expected`), which the samples engineer derives from the crash utility.
 *
 * The vmcore never resumes, so one session serves every test of the suite; each test reads a
 * different part of it. On failure the adapter's DAP trace is kept and its path printed.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { DebugClient } from '@vscode/debugadapter-testsupport';
import { DebugProtocol } from '@vscode/debugprotocol';

import { adapterScript, venvPython } from '../support/repo';
import { launchArguments, loadSample, SampleInfo, valueMatches } from '../support/sample';

const OPEN_TIMEOUT_MS = 120_000; // drgn loads vmlinux's DWARF at launch: seconds, more on a busy machine
const SAMPLE_TIMEOUT_MS = 60 * 60_000; // building a missing sample boots a VM

describe('vmcore-dap over stdio: oops-null sample', function () {
    let sample: SampleInfo;
    let dc: DebugClient;
    let runDir: string;
    let logFile: string;
    let stopped: DebugProtocol.StoppedEvent;
    let initializeResponse: DebugProtocol.InitializeResponse;
    let failed = false;

    before(async function () {
        this.timeout(SAMPLE_TIMEOUT_MS);
        sample = await loadSample('oops-null');
    });

    before(async function () {
        this.timeout(OPEN_TIMEOUT_MS + 10_000);
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmcore-dap-dap-test-'));
        logFile = path.join(runDir, 'adapter-dap.log');
        dc = new DebugClient(venvPython(), adapterScript(), 'vmcore', {
            env: { ...process.env, VMCORE_DAP_LOG: logFile },
        }, true);
        dc.defaultTimeout = OPEN_TIMEOUT_MS;
        await dc.start();
        // Listen before sending anything: the order of `initialized` relative to the responses is
        // the adapter's choice.
        const initialized = dc.waitForEvent('initialized', OPEN_TIMEOUT_MS);
        const stoppedEvent = dc.waitForEvent('stopped', OPEN_TIMEOUT_MS);
        initializeResponse = await dc.initializeRequest();
        await Promise.all([
            initialized.then(() => dc.configurationDoneRequest()),
            dc.launchRequest(launchArguments(sample) as DebugProtocol.LaunchRequestArguments),
        ]);
        stopped = (await stoppedEvent) as DebugProtocol.StoppedEvent;
    });

    afterEach(function () {
        if (this.currentTest?.state === 'failed') {
            failed = true;
        }
    });

    after(async function () {
        this.timeout(15_000);
        if (dc !== undefined) {
            await dc.stop();
        }
        if (runDir === undefined) {
            return;
        }
        if (failed) {
            console.error(`adapter DAP trace kept: ${logFile}`);
            if (fs.existsSync(logFile)) {
                const lines = fs.readFileSync(logFile, 'utf8').trimEnd().split('\n');
                console.error(lines.slice(-30).map((l) => (l.length > 400 ? `${l.slice(0, 400)} …` : l)).join('\n'));
            }
        } else {
            fs.rmSync(runDir, { recursive: true, force: true });
        }
    });

    async function threads(): Promise<DebugProtocol.Thread[]> {
        return (await dc.threadsRequest()).body.threads;
    }

    async function crashedThread(): Promise<DebugProtocol.Thread> {
        const all = await threads();
        const want = new RegExp(`^PID ${sample.expected.crashed_pid} ${escape(sample.expected.crashed_comm)}\\b`);
        const found = all.find((t) => want.test(t.name));
        assert.ok(found, `no thread named like ${want} among ${all.length} threads`);
        return found;
    }

    async function faultingFrame(): Promise<DebugProtocol.StackFrame> {
        const thread = await crashedThread();
        const frames = (await dc.stackTraceRequest({ threadId: thread.id })).body.stackFrames;
        const frame = frames.find((f) => f.name.includes(sample.expected.function));
        assert.ok(frame, `no frame of ${sample.expected.function} in ${frames.map((f) => f.name).join(', ')}`);
        return frame;
    }

    it('announces the capabilities VS Code needs for a dump', () => {
        const caps = initializeResponse.body ?? {};
        assert.strictEqual(caps.supportsConfigurationDoneRequest, true, 'supportsConfigurationDoneRequest');
    });

    it('stops on the crashed task with reason "exception", all threads stopped', async () => {
        assert.strictEqual(stopped.body.reason, 'exception');
        assert.strictEqual(stopped.body.allThreadsStopped, true);
        const crashed = await crashedThread();
        assert.strictEqual(stopped.body.threadId, crashed.id, 'the stopped event names the crashed task');
    });

    it('lists every kernel task as a thread, named "PID <pid> <comm> [<state>] ..."', async () => {
        const all = await threads();
        assert.ok(all.length >= sample.expected.min_tasks, `${all.length} threads, expected >= ${sample.expected.min_tasks}`);
        const ids = new Set(all.map((t) => t.id));
        assert.strictEqual(ids.size, all.length, 'thread ids are unique (idle tasks share PID 0)');
        for (const t of all) {
            // One letter per state crash tells apart (docs/console.md, Task states).
            assert.match(t.name, /^PID \d+ \S.* \[[RSDITtZXPWN?]\]/, `thread name '${t.name}'`);
        }
        const crashed = await crashedThread();
        assert.match(crashed.name, new RegExp(`CPU ?${sample.expected.crashed_cpu}\\b`), `crashed thread '${crashed.name}' names its CPU`);
    });

    it('shows a task blocked on the mutex (D state) with a stack through the scheduler', async () => {
        const pid = sample.expected.d_state_pids?.[0];
        assert.ok(pid !== undefined, 'the oops-null manifest names D-state tasks');
        const thread = (await threads()).find((t) => t.name.startsWith(`PID ${pid} `));
        assert.ok(thread, `thread of PID ${pid}`);
        assert.match(thread.name, /\[D\]/);
        const frames = (await dc.stackTraceRequest({ threadId: thread.id })).body.stackFrames.map((f) => f.name);
        assert.ok(frames.some((f) => /^schedule\b|__schedule/.test(f)), `scheduler in ${frames.join(', ')}`);
        assert.ok(frames.some((f) => /mutex_lock/.test(f)), `mutex_lock in ${frames.join(', ')}`);
    });

    it('gives the crashed task a stack with the faulting function at its source line', async () => {
        const frame = await faultingFrame();
        assert.ok(frame.source?.path, `frame ${frame.name} has a source path`);
        assert.strictEqual(path.basename(frame.source.path), sample.expected.file);
        assert.strictEqual(frame.line, sample.expected.line);
        assert.ok(fs.existsSync(frame.source.path), `source ${frame.source.path} exists on disk`);
    });

    it('shows the panic in exceptionInfo', async function () {
        if (!initializeResponse.body?.supportsExceptionInfoRequest) {
            assert.fail('the adapter does not support exceptionInfo, so VS Code shows no exception widget');
        }
        const thread = await crashedThread();
        const info = await dc.customRequest('exceptionInfo', { threadId: thread.id });
        const text = `${info.body.exceptionId} ${info.body.description ?? ''} ${JSON.stringify(info.body.details ?? {})}`;
        assert.ok(
            text.includes(sample.expected.oops_line.split(',')[0]) || text.includes(sample.expected.panic),
            `exceptionInfo '${text}' shows neither '${sample.expected.oops_line}' nor '${sample.expected.panic}'`,
        );
    });

    it('has Arguments, Locals, Registers and Kernel scopes for the faulting frame', async () => {
        const frame = await faultingFrame();
        const scopes = (await dc.scopesRequest({ frameId: frame.id })).body.scopes.map((s) => s.name);
        for (const name of ['Arguments', 'Locals', 'Registers', 'Kernel']) {
            assert.ok(scopes.includes(name), `scope ${name} in ${scopes.join(', ')}`);
        }
    });

    it("lists the faulting frame's locals with their values", async function () {
        const expected = sample.expected.locals ?? {};
        assert.ok(Object.keys(expected).length > 0, 'the oops-null manifest names locals to check');
        const frame = await faultingFrame();
        const scopes = (await dc.scopesRequest({ frameId: frame.id })).body.scopes;
        const shown = new Map<string, string>();
        for (const scope of scopes.filter((s) => s.name === 'Locals' || s.name === 'Arguments')) {
            const vars = (await dc.variablesRequest({ variablesReference: scope.variablesReference })).body.variables;
            for (const v of vars) {
                shown.set(v.name, v.value);
            }
        }
        for (const [name, value] of Object.entries(expected)) {
            assert.ok(shown.has(name), `local '${name}' missing; shown: ${[...shown.keys()].join(', ')}`);
            assert.ok(valueMatches(shown.get(name) ?? '', value), `local '${name}' = '${shown.get(name)}', expected ${value}`);
        }
    });

    it('expands a struct pointer among the locals into its members', async () => {
        const frame = await faultingFrame();
        const scopes = (await dc.scopesRequest({ frameId: frame.id })).body.scopes;
        const locals = scopes.find((s) => s.name === 'Locals');
        assert.ok(locals);
        const vars = (await dc.variablesRequest({ variablesReference: locals.variablesReference })).body.variables;
        const expandable = vars.find((v) => v.variablesReference > 0 && !v.value.startsWith('<'));
        assert.ok(expandable, `no expandable local among ${vars.map((v) => `${v.name}=${v.value}`).join(', ')}`);
        const members = (await dc.variablesRequest({ variablesReference: expandable.variablesReference })).body.variables;
        assert.ok(members.length > 0, `${expandable.name} expands to nothing`);
    });

    it('shows the instruction pointer in the Registers scope', async () => {
        const frame = await faultingFrame();
        const scopes = (await dc.scopesRequest({ frameId: frame.id })).body.scopes;
        const regs = scopes.find((s) => s.name === 'Registers');
        assert.ok(regs);
        const vars = (await dc.variablesRequest({ variablesReference: regs.variablesReference })).body.variables;
        const rip = vars.find((v) => v.name === 'rip' || v.name === 'pc');
        assert.ok(rip, `no rip among ${vars.map((v) => v.name).join(', ')}`);
        assert.match(rip.value, /0x[0-9a-f]{8,}/i);
    });

    it('evaluates a local in the faulting frame to the value the Variables view shows', async () => {
        const [name, value] = Object.entries(sample.expected.locals ?? {})[0] ?? [];
        assert.ok(name !== undefined, 'the oops-null manifest names locals to check');
        const frame = await faultingFrame();
        const result = await dc.evaluateRequest({ expression: name, frameId: frame.id, context: 'watch' });
        assert.ok(valueMatches(result.body.result, value), `evaluate ${name} = '${result.body.result}', expected ${value}`);
    });

    it('evaluates a kernel global as a C expression without a frame', async () => {
        const result = await dc.evaluateRequest({ expression: 'init_task.comm', context: 'watch' });
        assert.match(result.body.result, /swapper/);
    });
});

function escape(s: string): string {
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
