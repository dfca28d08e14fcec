/**
 * "View entries as…" over the protocol, as the extension's command drives it: the real adapter on
 * the `oops-null` sample offers the entry types of `init_task.children` (`vmcore/entryTypes`), the
 * quick-pick items are made from that answer (src/entryTypes/choices.ts), and the choice sent back
 * (`vmcore/setEntryType`) changes the entries, with an `invalidated` event so VS Code refetches.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { DebugClient } from '@vscode/debugadapter-testsupport';
import { DebugProtocol } from '@vscode/debugprotocol';

import { entryChoiceItems, EntryTypesAnswer, remember } from '../../src/entryTypes/choices';
import { adapterScript, venvPython } from '../support/repo';
import { launchArguments, loadSample, SampleInfo } from '../support/sample';

const OPEN_TIMEOUT_MS = 180_000;
const SAMPLE_TIMEOUT_MS = 60 * 60_000;

describe('View entries as… over stdio: oops-null sample', function () {
    let sample: SampleInfo;
    let dc: DebugClient;
    let runDir: string;

    before(async function () {
        this.timeout(SAMPLE_TIMEOUT_MS);
        sample = await loadSample('oops-null');
    });

    before(async function () {
        this.timeout(OPEN_TIMEOUT_MS + 10_000);
        runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmcore-dap-entry-types-'));
        dc = new DebugClient(venvPython(), adapterScript(), 'vmcore', {
            env: { ...process.env, VMCORE_DAP_LOG: path.join(runDir, 'adapter-dap.log') },
        }, true);
        dc.defaultTimeout = OPEN_TIMEOUT_MS;
        await dc.start();
        const initialized = dc.waitForEvent('initialized', OPEN_TIMEOUT_MS);
        const stopped = dc.waitForEvent('stopped', OPEN_TIMEOUT_MS);
        await dc.initializeRequest({ adapterID: 'vmcore', supportsInvalidatedEvent: true, supportsVariableType: true });
        await Promise.all([
            initialized.then(() => dc.configurationDoneRequest()),
            dc.launchRequest(launchArguments(sample) as DebugProtocol.LaunchRequestArguments),
        ]);
        await stopped;
    });

    after(async function () {
        this.timeout(15_000);
        if (dc !== undefined) {
            await dc.stop();
        }
        if (runDir !== undefined) {
            fs.rmSync(runDir, { recursive: true, force: true });
        }
    });

    async function watch(expression: string): Promise<DebugProtocol.EvaluateResponse['body']> {
        return (await dc.evaluateRequest({ expression, context: 'watch' })).body;
    }

    async function entryAddresses(body: DebugProtocol.EvaluateResponse['body']): Promise<bigint[]> {
        const rows = (await dc.variablesRequest({
            variablesReference: body.variablesReference,
            filter: 'indexed',
            start: 0,
            count: body.indexedVariables ?? 0,
        })).body.variables;
        return rows.map((r) => BigInt(r.value.split(' ')[0]));
    }

    it('offers the well-known link first, and the quick pick marks it', async () => {
        const children = await watch('init_task.children');
        assert.match(children.result, /^\d+ entries? \(struct task_struct\.sibling\)$/);
        const answer = (await dc.customRequest('vmcore/entryTypes', {
            variablesReference: children.variablesReference,
        })).body as EntryTypesAnswer;
        assert.strictEqual(answer.key, 'struct task_struct.children');
        assert.strictEqual(answer.current?.label, 'struct task_struct.sibling');
        const items = entryChoiceItems(answer);
        assert.strictEqual(items[0].label, 'struct task_struct.sibling');
        assert.strictEqual(items[0].picked, true);
        assert.match(items[0].description, /^well-known link: v\d/);
    });

    it('shows the entries as the chosen type, says so with invalidated, and goes back', async () => {
        const children = await watch('init_task.children');
        const before = await entryAddresses(children);
        const offset = async (member: string): Promise<bigint> =>
            BigInt((await watch(`&((struct task_struct *)0)->${member}`)).result.split(' ')[0]);
        const shift = (await offset('sibling')) - (await offset('ptrace_entry'));
        const invalidated = dc.waitForEvent('invalidated', 30_000);
        await dc.customRequest('vmcore/setEntryType', {
            variablesReference: children.variablesReference,
            type: 'struct task_struct',
            member: 'ptrace_entry',
        });
        const event = (await invalidated) as DebugProtocol.InvalidatedEvent;
        assert.deepStrictEqual(event.body.areas, ['variables']);
        const chosen = await watch('init_task.children');
        assert.match(chosen.result, /\(struct task_struct\.ptrace_entry\)$/);
        assert.deepStrictEqual(await entryAddresses(chosen), before.map((a) => a + shift));
        // What the extension sends to a new session for a remembered choice: the key, no reference.
        const kept = remember([], { key: 'struct task_struct.children', type: 'struct task_struct', member: 'sibling' });
        assert.strictEqual(kept.length, 1);
        await dc.customRequest('vmcore/setEntryType', kept[0]);
        assert.match((await watch('init_task.children')).result, /\(struct task_struct\.sibling\)$/);
        assert.deepStrictEqual(remember(kept, { key: '0xffff888000001000', type: 'struct x', member: 'y' }), kept,
            'an address is not remembered: it means nothing in another dump');
    });

    it('refuses a member the type does not have, with a message', async () => {
        const children = await watch('init_task.children');
        await assert.rejects(
            dc.customRequest('vmcore/setEntryType', {
                variablesReference: children.variablesReference,
                type: 'struct task_struct',
                member: 'no_such_member',
            }),
            /View entries as struct task_struct\.no_such_member/,
        );
    });
});
