/**
 * The list-uaf sample in a real VS Code (code-server 4.100.3, headless Chromium): a driver's request
 * list with a use-after-free. Stopped on the crash in `labuaf_walk`, the Variables view shows the
 * request being read (`cur`) as "→ ⚠ FREED kmalloc-96 object"; the `dev` argument's `reqs` list
 * reads "14 nodes (View entries as…: 2 types fit), then ⚠ …" (requests and replies are both 96-byte
 * objects linked at offset 8); "View Entries As…" offers the two, and once `struct labuaf_req.node` is
 * picked the entries are the requests, the freed one flagged, the corruption where the walk found it.
 * What the adapter says is checked against crash by tests/e2e/test_list_uaf.py; here it is what a
 * person sees. Screenshot (e2e/screenshots/): list-uaf-in-variables.png.
 */
import * as assert from 'assert';

import type { Locator, Page } from 'playwright-core';

import { loadSample, runSampleLoader, SampleInfo } from '../../test/support/sample';
import { readDapTrace } from './dapTrace';
import { sampleLaunch } from './sampleLaunch';
import { parkMouse, Workbench } from './session';
import { poll } from './timeouts';
import { arrangeDebugViews, expandRow, expandScope, framesUnder, revealVariable, runCommand, runContextMenuItem, variableRow, variablesOf } from './workbench';

const STOP_TIMEOUT_MS = 90_000;
// The side bar and the faulting line in the editor beside it (PNG ≤ 300 KB for docs/images).
const CLIP_WINDOW = { x: 0, y: 0, width: 1400, height: 820 };
// Wide enough for a request's address and its note.
const SIDE_BAR_WIDTH = 820;

/** The guest's facts (the manifest's `expected`) with addresses as hex strings: a JSON number loses a
 * kernel address's low bits. */
interface ListUafFacts {
    freed: string;
    /** Position of the freed request in the list (it is still linked). */
    freedIndex: number;
    half: string;
    first: string;
    dev: string;
    seen: number;
}

const MARKER = 'VMCORE_DAP_LIST_UAF_JSON ';
const LOADER = `
import json, sys
from samples.sample_store import ensure_sample
e = ensure_sample(sys.argv[1]).expected
order = [r["address"] for r in e["requests"]]
print(${JSON.stringify(MARKER)} + json.dumps({
    "freed": hex(e["freed_linked"]["address"]),
    "freedIndex": order.index(e["freed_linked"]["address"]),
    "half": hex(e["half_unlinked"]["address"]),
    "first": hex(order[0]),
    "dev": hex(e["device"]["dev"]),
    "seen": e["locals"]["seen"],
}), flush=True)
`;

describe('real VS Code (code-server 4.100.3): a request list with a use-after-free, list-uaf', function () {
    let sample: SampleInfo;
    let facts: ListUafFacts;
    let wb: Workbench;
    let page: Page;

    before(async function () {
        this.timeout(60 * 60_000); // building a missing sample boots a VM
        sample = await loadSample('list-uaf');
        facts = await runSampleLoader<ListUafFacts>(LOADER, MARKER, 'list-uaf', "reading the list-uaf sample's facts");
    });

    before(async function () {
        this.timeout(25 * 60_000);
        const launch = await sampleLaunch('list-uaf');
        wb = await Workbench.open({ launchConfig: launch.config, settings: { 'debug.toolBarLocation': 'docked' } });
        page = wb.page;
    });

    afterEach(async function () {
        await wb?.noteFailure(this.currentTest?.state, 'list-uaf');
    });

    after(async function () {
        this.timeout(30_000);
        await wb?.close();
    });

    function row(name: string, level: number): Locator {
        return variableRow(page, name, level);
    }

    async function valueOf(target: Locator): Promise<string> {
        return (await target.locator('.value').innerText()).replace(/\s+/g, ' ').trim();
    }

    it('stops in labuaf_walk with the request being read flagged FREED', async function () {
        this.timeout(STOP_TIMEOUT_MS + 60_000);
        await runCommand(page, 'Debug: Start Debugging');
        const crashed = `PID ${sample.expected.crashed_pid} ${sample.expected.crashed_comm}`;
        await poll(async () => ((await framesUnder(page, crashed)).length > 0 ? true : undefined), STOP_TIMEOUT_MS, 'the stop');
        assert.strictEqual((await framesUnder(page, crashed))[0]?.name, 'labuaf_walk');
        await arrangeDebugViews(page, SIDE_BAR_WIDTH);
        // The Call Stack folded: the Variables view gets the height for the list.
        await page.locator('.pane-header', { hasText: /^Call Stack/i }).first().click();
        await expandScope(page, 'Locals');
        const locals = await poll(
            async () => {
                const found = await variablesOf(page, 'Locals');
                return found.has('cur') ? found : undefined;
            },
            15_000,
            'the Locals of labuaf_walk',
        );
        assert.match(locals.get('cur') ?? '', new RegExp(`^${facts.freed} → ⚠ FREED kmalloc-\\d+ object$`));
        assert.strictEqual(locals.get('seen'), String(facts.seen));
    });

    it('shows the device\'s request list up to the corruption, and offers the two structs that fit', async function () {
        this.timeout(120_000);
        await expandScope(page, 'Arguments');
        const dev = row('dev', 2);
        await dev.waitFor({ state: 'visible', timeout: 15_000 });
        assert.match(await valueOf(dev), new RegExp(`^${facts.dev} → labuaf_dev \\(module labuaf, \\.\\w+\\)$`));
        await expandRow(dev, 'Arguments › dev');
        const reqs = row('reqs', 3);
        await reqs.waitFor({ state: 'visible', timeout: 15_000 });
        assert.match(await valueOf(reqs), /^\d+ nodes \(View entries as…: 2 types fit\), then ⚠ entry \[\d+\] at 0x/);

        await reqs.click({ button: 'right' });
        await runContextMenuItem(page, 'View Entries As…');
        const rows = page.locator('.quick-input-widget .monaco-list-row');
        await rows.first().waitFor({ state: 'visible', timeout: 15_000 });
        const offered = (await rows.locator('.label-name').allInnerTexts()).map((t) => t.trim()).sort();
        assert.deepStrictEqual(offered, ['struct labuaf_reply.link', 'struct labuaf_req.node']);
        await rows.filter({ has: page.locator('.label-name', { hasText: /^struct labuaf_req\.node$/ }) }).first().click();
        await poll(
            async () =>
                readDapTrace(wb.run.adapterLog).some(
                    (m) => m.type === 'request' && m.command === 'vmcore/setEntryType'
                        && (m.arguments as { member?: string } | undefined)?.member === 'node',
                )
                    ? true
                    : undefined,
            15_000,
            'vmcore/setEntryType in the DAP trace',
        );
        const typed = await poll(
            async () => {
                const text = await valueOf(row('reqs', 3));
                return text.includes('(struct labuaf_req.node)') ? text : undefined;
            },
            15_000,
            'reqs shown as struct labuaf_req.node',
        );
        assert.match(typed, /^\d+ entries \(struct labuaf_req\.node\), then ⚠ entry \[\d+\] at 0x[0-9a-f]+: prev is 0x[0-9a-f]+, not 0x[0-9a-f]+ \(the node before it\); 0x[0-9a-f]+ → ⚠ FREED kmalloc-\d+ object \+0x[0-9a-f]+$/);
    });

    it('expands the list: the freed request flagged, the corrupted link where the walk found it', async function () {
        this.timeout(120_000);
        await expandRow(row('reqs', 3), 'dev › reqs');
        const freed = row(`[${facts.freedIndex}]`, 4);
        await revealVariable(page, freed, `reqs › [${facts.freedIndex}]`);
        assert.match(await valueOf(freed), new RegExp(`^${facts.freed} → ⚠ FREED kmalloc-\\d+ object$`));
        const live = row('[0]', 4);
        await revealVariable(page, live, 'reqs › [0]');
        assert.match(await valueOf(live), new RegExp(`^${facts.first} → kmalloc-\\d+ object \\(allocated\\)$`));
        const corrupted = row('⚠ corrupted', 4);
        await revealVariable(page, corrupted, 'reqs › ⚠ corrupted');
        // The successor's prev still points at the half-unlinked request's node (offset 8 on 64-bit).
        const halfNode = `0x${(BigInt(facts.half) + 8n).toString(16)}`;
        assert.match(await valueOf(corrupted), new RegExp(`prev is ${halfNode}, .*; ${halfNode} → ⚠ FREED kmalloc-\\d+ object \\+0x8$`));
        // The picture: the view from its top (the dev argument, its list), the mouse out of the way.
        const pane = page.locator('.debug-pane .debug-variables').first();
        const box = await pane.boundingBox();
        if (box !== null) {
            await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
            await page.mouse.wheel(0, -4000);
        }
        await parkMouse(page);
        await page.waitForTimeout(500);
        await wb.screenshot('list-uaf-in-variables.png', CLIP_WINDOW);
    });
});
