/**
 * The Kernel view and the Stacks picture in a real VS Code (code-server 4.100.3, headless Chromium).
 *
 * On the `many-tasks` sample (5,000+ tasks): the Kernel view's stack groups, read from the DOM, have
 * the counts of crash's `foreach bt` grouped by the same normalisation (computed by the Python test
 * helpers from the oracle's stored answer), the biggest pile-up first; the Stacks picture's icicle has
 * a root as wide as all tasks. On `oops-null`: the Blocked section shows the D-state tasks waiting on
 * the module's mutex and names its owner, the task the scenario made hold it; clicking the owner
 * selects it in the Call Stack. Screenshots: kernel-view.png, stacks-picture.png, blocked-owner.png.
 */
import * as assert from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import type { BrowserContext, FrameLocator, Locator, Page } from 'playwright-core';

import { extensionDir, repoRoot, venvPython } from '../../test/support/repo';
import { launchArguments, loadSample, SampleInfo } from '../../test/support/sample';
import { launchBrowser } from './browser';
import { CodeServer, ensureCodeServer, freePort } from './codeServer';
import { createRunDir, RunDir } from './runDir';
import { poll, withTimeout } from './timeouts';
import { arrangeDebugViews, callStackRows, escapeRegExp, expandRow, pickQuickItem, runCommand, waitForWorkbench } from './workbench';

const E2E_DIR = path.join(extensionDir(), 'e2e');
const SCREENSHOTS = path.join(E2E_DIR, 'screenshots');
const STOP_TIMEOUT_MS = 120_000;

/** crash's `foreach bt` grouped like the adapter groups (tests/helpers/crash_compare): counts, biggest first. */
const CRASH_GROUPS = `
import json, sys
from collections import Counter
from samples.sample_store import ensure_sample
from samples.crash_oracle import ensure_crash_answers
from tests.helpers.crash_compare import bt_functions_by_pid
answers = ensure_crash_answers(ensure_sample(sys.argv[1]))
groups = Counter(tuple(f) or ("<user mode>",) for f in bt_functions_by_pid(answers["foreach-bt"]).values())
print("CRASH_GROUPS " + json.dumps(sorted(groups.values(), reverse=True)), flush=True)
`;

function crashGroupCounts(scenario: string): Promise<number[]> {
    return new Promise((resolve, reject) => {
        const child = spawn(venvPython(), ['-c', CRASH_GROUPS, scenario], {
            cwd: repoRoot(),
            env: { ...process.env, PYTHONPATH: repoRoot() },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
        child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
        child.on('error', reject);
        child.on('exit', (code) => {
            const line = out.split('\n').find((l) => l.startsWith('CRASH_GROUPS '));
            if (code !== 0 || line === undefined) {
                reject(new Error(`crash's foreach bt could not be grouped (exit ${code}):\n${err.slice(-2000)}`));
                return;
            }
            resolve(JSON.parse(line.slice('CRASH_GROUPS '.length)) as number[]);
        });
    });
}

/** The Kernel view's tree rows. */
function kernelRows(page: Page): Locator {
    return page.locator('.pane', { has: page.locator('.pane-header h3.title', { hasText: /^Kernel$/ }) }).locator('.monaco-list-row');
}

async function renderedKernelRows(page: Page): Promise<[number, string][]> {
    const rows = kernelRows(page);
    return page.evaluate((els) => {
        return els.map((e) => [Number((e as Element).getAttribute('data-index')), (e.textContent ?? '').replace(/\s+/g, ' ').trim()] as [number, string]);
    }, await rows.elementHandles());
}

/**
 * All rows of the Kernel view in display order. The tree is a virtual list that renders only what
 * its pane shows, so it is scrolled from the top to the bottom and the rows are collected.
 */
async function kernelRowTexts(page: Page): Promise<string[]> {
    const list = page.locator('.pane', { has: page.locator('.pane-header h3.title', { hasText: /^Kernel$/ }) }).locator('.monaco-list').first();
    const seen = new Map<number, string>(); // by the row's index in the list
    if ((await list.count()) === 0) {
        return [];
    }
    await list.hover();
    await page.mouse.wheel(0, -100_000);
    await page.waitForTimeout(150);
    for (let step = 0; step < 40; step++) {
        const before = seen.size;
        for (const [index, text] of await renderedKernelRows(page)) {
            seen.set(index, text);
        }
        if (step > 0 && seen.size === before) {
            break;
        }
        await page.mouse.wheel(0, 120);
        await page.waitForTimeout(150);
    }
    return [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([, text]) => text);
}

/** Give the Kernel view the side bar: collapse Variables and Call Stack, expand Kernel (it starts collapsed). */
async function showKernelView(page: Page): Promise<void> {
    for (const [title, open] of [['Variables', false], ['Watch', false], ['Call Stack', false], ['Loaded Scripts', false], ['Breakpoints', false], ['Kernel', true]] as const) {
        // The header's aria-label is "<Title> Section" (its h3 text is styled, not always matched).
        const header = page.locator(`.part.sidebar .pane-header[aria-label^="${title} " i]`).first();
        if (title !== 'Kernel' && (await header.count()) === 0) {
            continue;
        }
        await header.waitFor({ state: 'visible', timeout: 60_000 });
        await poll(async () => {
            if (((await header.getAttribute('aria-expanded')) === 'true') === open) {
                return true;
            }
            await header.click({ position: { x: 30, y: 10 } });
            await page.waitForTimeout(300);
            return undefined;
        }, 15_000, `${open ? 'expand' : 'collapse'} the ${title} view`, 300);
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
        run = createRunDir(E2E_DIR, extensionDir(), launchArguments(many, { name: 'vmcore: many-tasks' }), [
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
        await page.screenshot({ path: path.join(SCREENSHOTS, 'kernel-view.png') });
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
        await page.screenshot({ path: path.join(SCREENSHOTS, 'blocked-owner.png') });
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
