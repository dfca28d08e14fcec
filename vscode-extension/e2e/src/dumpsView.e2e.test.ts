/**
 * The Dumps view in a real VS Code (code-server 4.100.3, headless Chromium), as a person uses it: a
 * workspace holding two dumps (oops-null's and sysrq-c's vmcores), "vmcore: Triage Dumps in
 * Folder…" from the command palette, the workspace picked; the background triage's notification;
 * then the view lists one cluster per crash with its dump, the hover on a cluster shows the signature
 * and the representative stack (the faulting function at the manifest's file:line), and a click on
 * the oops-null dump starts a debug session that stops on the crashed task.
 * Screenshots: dumps-view.png (the view with the hover), dumps-view-session.png.
 */
import * as assert from 'assert';
import * as path from 'path';

import type { Locator, Page } from 'playwright-core';

import { loadSample, SampleInfo } from '../../test/support/sample';
import { parkMouse, Workbench } from './session';
import { poll } from './timeouts';
import { arrangeDebugViews, escapeRegExp, framesUnder, pickQuickItem, runCommand, threadNames } from './workbench';

const TRIAGE_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 120_000;

function dumpsPane(page: Page): Locator {
    return page.locator('.part.sidebar .pane', { has: page.locator('.pane-header h3.title', { hasText: /^Dumps$/ }) });
}

async function dumpsRowTexts(page: Page): Promise<string[]> {
    return (await dumpsPane(page).locator('.monaco-list-row').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
}

describe('real VS Code (code-server 4.100.3): the Dumps view triages a folder and opens a dump', function () {
    let oops: SampleInfo;
    let sysrq: SampleInfo;
    let wb: Workbench;
    let page: Page;

    before(async function () {
        this.timeout(60 * 60_000); // a missing sample boots a VM
        oops = await loadSample('oops-null');
        sysrq = await loadSample('sysrq-c');
    });

    before(async function () {
        this.timeout(25 * 60_000);
        const debugDirs = [...new Set([oops, sysrq].flatMap((s) => [s.debugInfoDir, ...s.debugInfo.map((f) => path.dirname(f))]))];
        wb = await Workbench.open({
            launchConfig: null,
            settings: { 'vmcoreDap.triage.debugInfoDirectories': debugDirs },
            links: { 'oops-null.vmcore': oops.vmcore, 'sysrq-c.vmcore': sysrq.vmcore },
        });
        page = wb.page;
    });

    afterEach(async function () {
        await wb?.noteFailure(this.currentTest?.state, 'dumps-view');
    });

    after(async function () {
        this.timeout(30_000);
        await wb?.close();
    });

    it('triages the workspace in the background and lists a cluster per crash; the hover shows the signature', async function () {
        this.timeout(TRIAGE_TIMEOUT_MS + 60_000);
        await runCommand(page, 'vmcore: Triage Dumps in Folder…');
        await pickQuickItem(page, path.basename(wb.run.workspace));
        // The notification follows the dumps as they are done.
        await poll(
            async () => ((await page.locator('.notifications-toasts').innerText().catch(() => '')).includes('Triage of') ? true : undefined),
            30_000,
            'the triage progress notification',
            300,
        );
        const header = page.locator('.part.sidebar .pane-header[aria-label^="Dumps " i]').first();
        const titles = [`NULL pointer dereference in ${oops.expected.function}`, `SysRq crash in ${sysrq.expected.function}`];
        const rows = await poll(
            async () => {
                if ((await header.getAttribute('aria-expanded')) !== 'true') {
                    await header.click({ position: { x: 30, y: 10 } });
                }
                const texts = await dumpsRowTexts(page);
                return titles.every((t) => texts.some((r) => r.includes(`×1 ${t}`))) ? texts : undefined;
            },
            TRIAGE_TIMEOUT_MS,
            'the clusters of both dumps in the Dumps view',
            1_000,
        );
        assert.ok(rows.some((r) => r.startsWith('oops-null.vmcore') && r.includes(`PID ${oops.expected.crashed_pid} ${oops.expected.crashed_comm}`)), rows.join('\n'));
        assert.ok(rows.some((r) => r.startsWith('sysrq-c.vmcore') && r.includes(`PID ${sysrq.expected.crashed_pid} ${sysrq.expected.crashed_comm}`)), rows.join('\n'));

        // For the screenshot: a wide side bar, the Dumps view given the Explorer's height.
        await arrangeDebugViews(page, 700);
        for (const title of [path.basename(wb.run.workspace), 'Outline', 'Timeline']) {
            const pane = page.locator('.part.sidebar .pane-header', { has: page.locator('h3.title', { hasText: new RegExp(`^${escapeRegExp(title)}$`, 'i') }) });
            if ((await pane.count()) > 0 && (await pane.first().getAttribute('aria-expanded')) === 'true') {
                await pane.first().click();
            }
        }
        const cluster = dumpsPane(page).locator('.monaco-list-row', { hasText: titles[0] }).first();
        const hover = page.locator('.monaco-hover:not(.hidden)').first();
        const text = await poll(
            async () => {
                await parkMouse(page);
                await cluster.hover();
                const shown = await hover.isVisible({ timeout: 3_000 }).catch(() => false);
                return shown ? (await hover.innerText()).trim() : undefined;
            },
            30_000,
            'the hover of the oops-null cluster',
            500,
        );
        assert.match(text, /Signature [0-9a-f]{16} \(null-deref: labbug_walk/);
        assert.match(text, new RegExp(`${escapeRegExp(oops.expected.function)} \\[labbug\\] \\(${escapeRegExp(oops.expected.file)}:${oops.expected.line}\\)`));
        await wb.screenshot('dumps-view.png', { x: 0, y: 0, width: 1400, height: 560 });
    });

    it('a click on a dump opens it in the debugger, stopped on the crashed task', async function () {
        this.timeout(STOP_TIMEOUT_MS + 30_000);
        await parkMouse(page);
        await dumpsPane(page).locator('.monaco-list-row', { hasText: /^oops-null\.vmcore/ }).first().click();
        const crashed = `PID ${oops.expected.crashed_pid} ${oops.expected.crashed_comm}`;
        const frames = await poll(
            async () => {
                const found = await framesUnder(page, crashed);
                return found.length > 0 ? found : undefined;
            },
            STOP_TIMEOUT_MS,
            'the session opened from the Dumps view stopped on the crashed task',
            500,
        );
        assert.ok((await threadNames(page))[0].startsWith(crashed));
        assert.ok(frames.some((f) => f.name.startsWith(oops.expected.function)), JSON.stringify(frames));
        await wb.screenshot('dumps-view-session.png');
        await runCommand(page, 'Debug: Stop');
    });
});
