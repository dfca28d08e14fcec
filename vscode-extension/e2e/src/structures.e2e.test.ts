/**
 * A kernel list in a real VS Code (code-server 4.100.3, headless Chromium) on the `oops-null`
 * sample: in the Variables view, the Kernel scope's `task` (the crashed task) → `real_parent` →
 * `children` reads "N entries (struct task_struct.sibling)", expands into the parent's children,
 * each with what it points at ("→ task_struct of PID …"), and its context menu's "View Entries
 * As…" offers the well-known link in a quick pick; picking it sends `vmcore/setEntryType` (read back
 * from the adapter's DAP trace). Screenshot (e2e/screenshots/): list-in-variables.png.
 */
import * as assert from 'assert';

import type { Locator, Page } from 'playwright-core';

import { loadSample, SampleInfo } from '../../test/support/sample';
import { readDapTrace } from './dapTrace';
import { sampleLaunch } from './sampleLaunch';
import { parkMouse, Workbench } from './session';
import { poll } from './timeouts';
import { arrangeDebugViews, expandRow, expandScope, framesUnder, revealVariable, runCommand, runContextMenuItem, variableRow, variableRows } from './workbench';

const STOP_TIMEOUT_MS = 90_000;
// The side bar and the start of the editor: the list is the subject (PNG ≤ 300 KB for docs/images).
const CLIP_WINDOW = { x: 0, y: 0, width: 1040, height: 940 };

describe('real VS Code (code-server 4.100.3): a kernel list in Variables, oops-null', function () {
    let sample: SampleInfo;
    let wb: Workbench;
    let page: Page;

    before(async function () {
        this.timeout(60 * 60_000); // building a missing sample boots a VM
        sample = await loadSample('oops-null');
    });

    before(async function () {
        this.timeout(25 * 60_000);
        const launch = await sampleLaunch('oops-null');
        wb = await Workbench.open({ launchConfig: launch.config, settings: { 'debug.toolBarLocation': 'docked' } });
        page = wb.page;
    });

    afterEach(async function () {
        await wb?.noteFailure(this.currentTest?.state, 'structures');
    });

    after(async function () {
        this.timeout(30_000);
        await wb?.close();
    });

    function row(name: string, level: number): Locator {
        return variableRow(page, name, level);
    }

    it('shows the parent\'s children list as its entries, each saying which task it is', async function () {
        this.timeout(STOP_TIMEOUT_MS + 120_000);
        await runCommand(page, 'Debug: Start Debugging');
        const crashed = `PID ${sample.expected.crashed_pid} ${sample.expected.crashed_comm}`;
        await poll(async () => ((await framesUnder(page, crashed)).length > 0 ? true : undefined), STOP_TIMEOUT_MS, 'the stop');
        await arrangeDebugViews(page);
        await expandScope(page, 'Kernel');
        await expandRow(row('task', 2), 'Kernel › task');
        await revealVariable(page, row('real_parent', 3), 'task › real_parent');
        await expandRow(row('real_parent', 3), 'task › real_parent');
        const children = row('children', 4);
        await revealVariable(page, children, 'real_parent › children');
        const value = (await children.locator('.value').innerText()).trim();
        const m = /^(\d+) entr(?:y|ies) \(struct task_struct\.sibling\)$/.exec(value);
        assert.ok(m, `children reads '${value}'`);
        await expandRow(children, 'real_parent › children');
        // The raw links are named children; the last child is the crashed task, the newest.
        const prev = row('prev', 5);
        await revealVariable(page, prev, 'children › prev');
        assert.match(
            (await prev.locator('.value').innerText()).trim(),
            new RegExp(`→ task_struct of PID ${sample.expected.crashed_pid} ${sample.expected.crashed_comm} \\+0x[0-9a-f]+$`),
        );
        // More than 100 entries: VS Code pages them in ranges ([0..99], …) fetched when opened.
        let level = 5;
        if (Number(m[1]) > 100) {
            const range = variableRows(page).and(page.locator('[aria-level="5"]')).filter({ hasText: /^\[0\.\.99\]/ }).first();
            await revealVariable(page, range, 'the first range of entries');
            await expandRow(range, 'children › [0..99]');
            level = 6;
        }
        await page.mouse.wheel(0, 240);
        const entries = await poll(
            async () => {
                const texts = await variableRows(page).and(page.locator(`[aria-level="${level}"]`)).allInnerTexts();
                const found = texts.filter((t) => /^\[\d+\]/.test(t));
                return found.length > 0 ? found : undefined;
            },
            15_000,
            'the entries of children',
        );
        for (const text of entries) {
            assert.match(text.replace(/\s+/g, ' '), /^\[\d+\]\s*[=:]?\s*0x[0-9a-f]+ → task_struct of PID \d+ \S+/, text);
        }
        // Room for the picture: the Call Stack folded.
        await page.locator('.pane-header', { hasText: /^Call Stack/i }).first().click();
        await parkMouse(page);
        await wb.screenshot('list-in-variables.png', CLIP_WINDOW);
    });

    it('offers View Entries As… in the context menu and sends the choice to the adapter', async function () {
        this.timeout(60_000);
        const children = row('children', 4);
        await children.click({ button: 'right' });
        await runContextMenuItem(page, 'View Entries As…');
        const pick = page
            .locator('.quick-input-widget .monaco-list-row')
            .filter({ has: page.locator('.label-name', { hasText: /^struct task_struct\.sibling$/ }) })
            .first();
        await pick.waitFor({ state: 'visible', timeout: 15_000 });
        assert.match(await pick.innerText(), /well-known link: v\d/);
        await pick.click();
        await poll(
            async () =>
                readDapTrace(wb.run.adapterLog).some(
                    (m) => m.type === 'request' && m.command === 'vmcore/setEntryType'
                        && (m.arguments as { member?: string } | undefined)?.member === 'sibling',
                )
                    ? true
                    : undefined,
            15_000,
            'vmcore/setEntryType in the DAP trace',
        );
        const value = (await row('children', 4).locator('.value').innerText()).trim();
        assert.match(value, /\(struct task_struct\.sibling\)$/);
    });
});
