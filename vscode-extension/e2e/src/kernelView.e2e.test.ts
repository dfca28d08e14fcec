/**
 * The Kernel view and the Stacks picture in a real VS Code (code-server 4.100.3, headless Chromium).
 *
 * On the `many-tasks` sample (5,000+ tasks): the Kernel view's stack groups, read from the DOM, have
 * the counts of crash's `foreach bt` grouped by the same normalisation (computed by the Python test
 * helpers from the oracle's stored answer), the biggest pile-up first; the Stacks picture's icicle has
 * a root as wide as all tasks. On `oops-null`: the Blocked section shows the D-state tasks waiting on
 * the module's mutex and names its owner, the task the scenario made hold it; clicking the owner
 * selects it in the Call Stack. Screenshots: kernel-view.png (the side bar with the Kernel view whole:
 * the panic, the CPUs, the biggest pile-up's frames, the first blocked task's lock and owner),
 * stacks-picture.png, blocked-owner.png (oops-null's blocked tasks and their owner).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import type { BrowserContext, FrameLocator, Locator, Page } from 'playwright-core';

import { extensionDir } from '../../test/support/repo';
import { launchArguments, loadSample, SampleInfo } from '../../test/support/sample';
import { launchBrowser } from './browser';
import { CodeServer, ensureCodeServer, freePort } from './codeServer';
import { installedExtension, requireAdapterSetUp } from './installedExtension';
import { crashGroupCounts, kernelRows, kernelRowTexts, renderedKernelRows, scrollKernelToTop, setSection, showKernelView } from './kernelViewPane';
import { createRunDir, RunDir } from './runDir';
import { poll, withTimeout } from './timeouts';
import { arrangeDebugViews, callStackRows, escapeRegExp, expandRow, pickQuickItem, runCommand, waitForWorkbench } from './workbench';

const E2E_DIR = path.join(extensionDir(), 'e2e');
const SCREENSHOTS = path.join(E2E_DIR, 'screenshots');
const STOP_TIMEOUT_MS = 120_000;

function kernelPane(page: Page): Locator {
    return page.locator('.pane', { has: page.locator('.pane-header h3.title', { hasText: /^Kernel$/ }) });
}

/**
 * The Kernel view's row whose text matches `text` (the first in display order), or the row `offset`
 * rows below it, scrolled into the rendered part of the virtual list: from the top, a screen at a
 * time until it is there.
 */
async function kernelRow(page: Page, text: RegExp, what: string, offset = 0): Promise<Locator> {
    await scrollKernelToTop(page);
    for (let step = 0; step < 40; step++) {
        const rows = await renderedKernelRows(page);
        const index = rows.filter(([, t]) => text.test(t)).map(([i]) => i).sort((a, b) => a - b)[0];
        if (index !== undefined && rows.some(([i]) => i === index + offset)) {
            return kernelPane(page).locator(`.monaco-list-row[data-index="${index + offset}"]`);
        }
        await page.mouse.wheel(0, 300);
        await page.waitForTimeout(150);
    }
    throw new Error(`no Kernel view row for ${what} (${text}, +${offset})`);
}

/** Open or close a Kernel view row (see `kernelRow`) by its twistie; wait until it has the wanted state. */
async function setKernelRow(page: Page, text: RegExp, what: string, open: boolean, offset = 0): Promise<void> {
    await poll(async () => {
        const row = await kernelRow(page, text, what, offset);
        if (((await row.getAttribute('aria-expanded')) === 'true') === open) {
            return true;
        }
        await row.locator('.monaco-tl-twistie').click({ timeout: 2_000 });
        await page.waitForTimeout(300);
        return undefined;
    }, 20_000, `${open ? 'expand' : 'collapse'} ${what} in the Kernel view`, 300);
}

/**
 * Frame the Kernel view for a screenshot a reader can take in at once: the other Run and Debug
 * sections collapsed so Kernel gets the side bar; Panic, CPUs and Blocked open; Stack groups open
 * with the biggest pile-up expanded to its frames (`pileUp`) or closed; under Blocked the first D
 * task open to its lock and owner, the others closed unless `allBlocked`; Modules closed unless
 * there is room (`modules`).
 */
async function frameKernelView(page: Page, opts: { pileUp: boolean; allBlocked: boolean; modules: boolean }): Promise<void> {
    for (const title of ['Variables', 'Watch', 'Call Stack', 'Loaded Scripts', 'Breakpoints']) {
        await setSection(page, title, false);
    }
    await setSection(page, 'Kernel', true);
    for (const section of ['Panic', 'CPUs', 'Blocked']) {
        await setKernelRow(page, new RegExp(`^${section}$`), `the ${section} section`, true);
    }
    await setKernelRow(page, /^Stack groups$/, 'the Stack groups section', opts.pileUp);
    if (opts.pileUp) {
        await setKernelRow(page, /^×\d+ /, 'the biggest stack group', true);
        await setKernelRow(page, /^Frames \(\d+\)$/, "the biggest group's frames", true);
    }
    // A row's text is its label and description run together: "PID 99 labwait [D]waited [0 00:00:04.011]".
    const blocked = (await kernelRowTexts(page)).filter((t) => /^PID \d+ .*waited \[/.test(t));
    for (const [i, name] of blocked.entries()) {
        const open = i === 0 || opts.allBlocked;
        const pid = /^PID (\d+) /.exec(name)![1];
        const task = new RegExp(`^PID ${pid} .*waited \\[`);
        await setKernelRow(page, task, `blocked task ${pid}`, open);
        if (open) {
            await setKernelRow(page, task, `the lock blocked task ${pid} waits on`, true, 1);
        }
    }
    await setKernelRow(page, /^Modules$/, 'the Modules section', opts.modules);
}

/**
 * Frame the Kernel view (`frameKernelView`) and screenshot the activity bar and the side bar down to
 * its last row, the view whole. The window is made tall while framing (every row is rendered, so no
 * row has to be scrolled to), then as tall as the view needs for the picture, then restored.
 */
async function screenshotKernelView(page: Page, file: string, frame: Parameters<typeof frameKernelView>[1]): Promise<void> {
    const viewport = page.viewportSize() ?? { width: 1600, height: 1000 };
    await page.setViewportSize({ width: viewport.width, height: 2000 });
    try {
        await page.waitForTimeout(300);
        await frameKernelView(page, frame);
        const rows = (await kernelRowTexts(page)).length;
        const list = await kernelPane(page).locator('.monaco-list').first().boundingBox();
        const rowHeight = (await kernelRows(page).first().boundingBox())?.height ?? 22;
        const statusBar = (await page.locator('.monaco-workbench .part.statusbar').boundingBox())?.height ?? 22;
        const needed = Math.ceil((list?.y ?? 0) + rows * rowHeight + statusBar + 4);
        await page.setViewportSize({ width: viewport.width, height: Math.max(needed, viewport.height) });
        await page.waitForTimeout(300);
        await scrollKernelToTop(page);
        await page.mouse.move(0, 0); // no hover highlight in the picture
        await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur()); // nor a focus outline
        await page.waitForTimeout(300);
        const sidebar = await page.locator('.monaco-workbench .part.sidebar').boundingBox();
        const width = Math.ceil((sidebar?.x ?? 0) + (sidebar?.width ?? viewport.width));
        await page.screenshot({ path: file, clip: { x: 0, y: 0, width, height: needed } });
    } finally {
        await page.setViewportSize(viewport);
        await page.waitForTimeout(300);
    }
}

function stacksFrame(page: Page): FrameLocator {
    return page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
}

async function startDebugging(page: Page, name: string): Promise<void> {
    await runCommand(page, 'Debug: Select and Start Debugging');
    await pickQuickItem(page, name);
}

describe('real VS Code: Kernel view and Stacks picture', function () {
    let many: SampleInfo;
    let oops: SampleInfo;
    let crashCounts: number[];
    let run: RunDir;
    let server: CodeServer | undefined;
    let browser: BrowserContext | undefined;
    let page: Page;
    let failed = false;

    before(async function () {
        this.timeout(90 * 60_000); // building a missing sample boots a VM; crash reads 5,000 stacks
        many = await loadSample('many-tasks');
        oops = await loadSample('oops-null');
        crashCounts = await crashGroupCounts('many-tasks');
        const installDir = ensureCodeServer(E2E_DIR);
        const extension = installedExtension(E2E_DIR, installDir);
        requireAdapterSetUp(extension);
        run = createRunDir(E2E_DIR, extension, launchArguments(many, { name: 'vmcore: many-tasks' }), [
            launchArguments(oops, { name: 'vmcore: oops-null' }),
        ]);
        console.log(`    run directory: ${run.root}`);
        server = await CodeServer.start({
            installDir,
            port: await freePort(),
            userDataDir: run.userDataDir,
            extensionsDir: run.extensionsDir,
            workspace: run.workspace,
            logFile: run.codeServerLog,
        });
        browser = await launchBrowser(run.browserProfile);
        page = browser.pages()[0] ?? (await browser.newPage());
        await page.setViewportSize({ width: 1600, height: 1000 });
        page.setDefaultTimeout(30_000);
        await withTimeout(page.goto(`${server.url}?folder=${encodeURIComponent(run.workspace)}`), 60_000, 'open the workbench');
        await waitForWorkbench(page);
    });

    afterEach(async function () {
        if (this.currentTest?.state === 'failed' && !failed) {
            failed = true;
            await page?.screenshot({ path: path.join(SCREENSHOTS, 'kernel-view-failure.png'), timeout: 10_000 }).catch(() => undefined);
        }
    });

    after(async function () {
        this.timeout(30_000);
        await browser?.close().catch(() => undefined);
        await server?.stop();
        if (failed && run !== undefined) {
            console.error(`    kept for diagnosis: ${run.root}`);
        } else if (run !== undefined) {
            fs.rmSync(run.root, { recursive: true, force: true });
        }
    });

    it('shows the stack groups of many-tasks with the counts of crash foreach bt, biggest first', async function () {
        this.timeout(STOP_TIMEOUT_MS + 90_000);
        await startDebugging(page, 'vmcore: many-tasks');
        await arrangeDebugViews(page, 760);
        await showKernelView(page);
        const groups = await poll(async () => {
            const texts = await kernelRowTexts(page);
            const counts = texts.map((t) => /^×(\d+) /.exec(t)).filter((m) => m !== null).map((m) => Number(m![1]));
            return counts.length >= 3 ? { texts, counts } : undefined;
        }, STOP_TIMEOUT_MS, 'stack group rows (×N …) in the Kernel view');
        const shown = groups.counts;
        assert.deepStrictEqual(shown, crashCounts.slice(0, shown.length), `Kernel view counts ${shown} vs crash ${crashCounts.slice(0, shown.length)}`);
        assert.ok(shown[0] >= 5000, `the biggest pile-up holds the 5,000 threads: ${groups.texts.find((t) => t.startsWith('×'))}`);
        const summary = groups.texts.find((t) => / tasks in \d+ groups/.test(t));
        const total = crashCounts.reduce((a, b) => a + b, 0);
        assert.ok(summary?.startsWith(`${total} tasks in ${crashCounts.length} groups`), `summary row '${summary}' says ${total} tasks in ${crashCounts.length} groups`);
        const texts = groups.texts;
        assert.ok(texts.some((t) => /^CPU\d+ PID \d+ /.test(t)), `CPU rows in ${texts.join(' | ')}`);
        assert.ok(texts.some((t) => /Tainted|Not tainted/.test(t)), 'the taint row');
        await screenshotKernelView(page, path.join(SCREENSHOTS, 'kernel-view.png'), { pileUp: true, allBlocked: false, modules: false });
    });

    it('draws all stacks as an icicle as wide as all tasks in the Stacks picture', async function () {
        this.timeout(90_000);
        await runCommand(page, 'vmcore: Open Stacks picture');
        const frame = stacksFrame(page);
        const total = crashCounts.reduce((a, b) => a + b, 0);
        const root = frame.locator(`#chart svg g.frame[name="all tasks (${total})"]`);
        await root.waitFor({ state: 'attached', timeout: 60_000 });
        const frames = await frame.locator('#chart svg g.frame').count();
        assert.ok(frames > 20, `icicle frames drawn: ${frames}`);
        await page.waitForTimeout(1_000); // d3 animates the widths in
        const futex = frame.locator('#chart svg g.frame[name="futex_wait_queue"]').first();
        await futex.waitFor({ state: 'attached', timeout: 10_000 });
        const rootWidth = (await root.locator('rect').boundingBox())?.width ?? 0;
        const futexWidth = (await futex.locator('rect').boundingBox())?.width ?? 0;
        assert.ok(futexWidth / rootWidth > 0.95, `the 5,000 futex waiters take almost the whole width: ${futexWidth}/${rootWidth}`);
        await futex.hover();
        const hover = await poll(async () => {
            const t = await frame.locator('#hover').innerText();
            return t.startsWith('futex_wait_queue') ? t : undefined;
        }, 10_000, 'the hover line naming the function and its count');
        assert.match(hover, /^futex_wait_queue — \d{4,} tasks/);
        await page.waitForTimeout(500);
        await page.screenshot({ path: path.join(SCREENSHOTS, 'stacks-picture.png') });
        await runCommand(page, 'View: Close Editor');
    });

    it("names the owner of the mutex oops-null's D tasks wait on, and clicking it selects it", async function () {
        this.timeout(STOP_TIMEOUT_MS + 60_000);
        await runCommand(page, 'Debug: Stop');
        await startDebugging(page, 'vmcore: oops-null');
        await showKernelView(page);
        const holder = oops.expected.mutex_holder_pid;
        const dPids = oops.expected.d_state_pids ?? [];
        assert.ok(holder !== undefined && dPids.length > 0, 'the oops-null manifest names the mutex holder and the D tasks');
        const ownerPrefix = `owner: PID ${holder} `;
        const texts = await poll(async () => {
            const t = await kernelRowTexts(page);
            return t.filter((x) => x.startsWith(ownerPrefix)).length === dPids.length ? t : undefined;
        }, STOP_TIMEOUT_MS, `${dPids.length} '${ownerPrefix}…' rows under Blocked`);
        for (const pid of dPids) {
            assert.ok(texts.some((t) => t.startsWith(`PID ${pid} `) && /waited \[\d+ \d\d:\d\d:\d\d\.\d{3}\]/.test(t)), `blocked task ${pid} with its wait in ${texts.join(' | ')}`);
        }
        assert.ok(texts.filter((t) => /^mutex labbug_mutex/.test(t)).length === dPids.length, 'each waits on labbug_mutex');
        await screenshotKernelView(page, path.join(SCREENSHOTS, 'blocked-owner.png'), { pileUp: false, allBlocked: true, modules: true });
        const ownerRow = kernelRows(page).filter({ hasText: new RegExp(`^${escapeRegExp(ownerPrefix)}`) }).first();
        await ownerRow.click();
        // The Call Stack was collapsed to make room: open it to see the selection.
        const callStackHeader = page.locator('.part.sidebar .pane-header[aria-label^="Call Stack " i]').first();
        if ((await callStackHeader.getAttribute('aria-expanded')) !== 'true') {
            await callStackHeader.click({ position: { x: 30, y: 10 } });
        }
        const selected = await poll(async () => {
            const row = callStackRows(page).filter({ has: page.locator('.thread > .name', { hasText: new RegExp(`^PID ${holder} `) }) }).first();
            if ((await row.count()) === 0) {
                return undefined;
            }
            const cls = (await row.getAttribute('class')) ?? '';
            return /\bselected\b|\bfocused\b/.test(cls) || (await row.getAttribute('aria-expanded')) === 'true' ? row : undefined;
        }, 30_000, `PID ${holder} selected in the Call Stack`);
        await expandRow(selected, `PID ${holder}`).catch(() => undefined);
    });
});
