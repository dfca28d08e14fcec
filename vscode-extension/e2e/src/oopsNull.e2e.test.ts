/**
 * End to end in a real VS Code: code-server 4.100.3 in headless Chromium, offline. A workspace with a
 * launch.json for the `oops-null` sample is opened, debugging is started from the command palette,
 * and what a person would see is read from the DOM: the Call Stack with the crashed task first and
 * its frames, the faulting line highlighted in the editor, the exception widget with the panic, and
 * the faulting frame's locals in the Variables view. Screenshots go to e2e/screenshots/ (git-ignored).
 *
 * The extension is the one installed from the .vsix, with no adapter path in launch.json or settings
 * and none of this clone's Python in its environment: it must use the private environment the run's
 * first session set up (firstSession.e2e.test.ts), so the lookup of a remembered set-up is tested too.
 * On failure, the run directory (adapter DAP trace, code-server log, VS Code logs) is kept and a
 * failure screenshot is taken.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import type { BrowserContext, Page } from 'playwright-core';

import { extensionDir } from '../../test/support/repo';
import { crashedThreadPrefix, launchArguments, loadSample, SampleInfo, valueMatches } from '../../test/support/sample';
import { launchBrowser } from './browser';
import { CodeServer, ensureCodeServer, freePort } from './codeServer';
import { installedExtension, requireAdapterSetUp } from './installedExtension';
import { createRunDir, RunDir } from './runDir';
import { poll, withTimeout } from './timeouts';
import {
    arrangeDebugViews,
    callStackRows,
    exceptionWidgetText,
    expandRow,
    expandScope,
    framesUnder,
    highlightedLine,
    notificationTexts,
    outputViewText,
    pickQuickItem,
    revealThread,
    runCommand,
    scrollCallStackTo,
    threadNames,
    variableRows,
    variablesOf,
    waitForWorkbench,
} from './workbench';

const E2E_DIR = path.join(extensionDir(), 'e2e');
const SCREENSHOTS = path.join(E2E_DIR, 'screenshots');
const MISSING_CONFIG = 'vmcore: missing file';
const STOP_TIMEOUT_MS = 90_000; // adapter start + drgn loading vmlinux's DWARF

describe('real VS Code (code-server 4.100.3): oops-null sample', function () {
    let sample: SampleInfo;
    let run: RunDir;
    let server: CodeServer | undefined;
    let browser: BrowserContext | undefined;
    let page: Page;
    let failed = false;
    let crashedPrefix: string;

    before(async function () {
        this.timeout(60 * 60_000); // building a missing sample boots a VM
        sample = await loadSample('oops-null');
        crashedPrefix = crashedThreadPrefix(sample);
    });

    before(async function () {
        this.timeout(25 * 60_000); // a first install of code-server takes minutes
        const installDir = ensureCodeServer(E2E_DIR);
        const extension = installedExtension(E2E_DIR, installDir);
        requireAdapterSetUp(extension);
        // No python/adapterPath: the extension must find the clone's .venv by itself.
        run = createRunDir(E2E_DIR, extension, launchArguments(sample, { name: 'vmcore: oops-null' }), [
            { type: 'vmcore', request: 'launch', name: MISSING_CONFIG, vmcore: '${workspaceFolder}/no-such-vmcore' },
        ]);
        // A dump in the workspace, for the Explorer's "Open vmcore in debugger".
        fs.symlinkSync(sample.vmcore, path.join(run.workspace, 'vmcore'));
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
        page.setDefaultTimeout(30_000);
        await withTimeout(page.goto(`${server.url}?folder=${encodeURIComponent(run.workspace)}`), 60_000, 'open the workbench');
        await waitForWorkbench(page);
        fs.mkdirSync(SCREENSHOTS, { recursive: true });
    });

    afterEach(async function () {
        if (this.currentTest?.state === 'failed' && !failed) {
            failed = true;
            if (page !== undefined) {
                const shot = path.join(SCREENSHOTS, 'failure.png');
                await page.screenshot({ path: shot, timeout: 10_000 }).catch(() => undefined);
                console.error(`    failure screenshot: ${shot}`);
            }
        }
    });

    after(async function () {
        this.timeout(30_000);
        await browser?.close().catch(() => undefined);
        await server?.stop();
        if (run === undefined) {
            return;
        }
        if (failed) {
            console.error(`    kept for diagnosis: ${run.root} (adapter-dap.log, code-server.log, user-data/logs)`);
        } else {
            fs.rmSync(run.root, { recursive: true, force: true });
        }
    });

    it('starts debugging from the command palette and stops on the crashed task', async function () {
        this.timeout(STOP_TIMEOUT_MS + 40_000);
        await runCommand(page, 'Debug: Start Debugging');
        await poll(
            async () => ((await framesUnder(page, crashedPrefix)).length > 0 ? true : undefined),
            STOP_TIMEOUT_MS,
            `stack frames of '${crashedPrefix}' in the Call Stack (adapter log: ${run.adapterLog})`,
            500,
        );
        await arrangeDebugViews(page);
    });

    it('shows the crashed task first in the Call Stack, with its frames down to the faulting function', async () => {
        const threads = await threadNames(page);
        assert.ok(threads.length > 1, `several tasks listed, got ${JSON.stringify(threads)}`);
        assert.ok(threads[0].startsWith(crashedPrefix), `first thread is '${threads[0]}', expected '${crashedPrefix} …'`);
        const state = await page.locator('.debug-pane .debug-call-stack .thread').first().locator('.state').innerText();
        // VS Code shows the stopped event's description (the oops) or "Paused on exception".
        assert.match(state, /exception|oops|panic|bug/i, `crashed thread state '${state}'`);
        const frames = await framesUnder(page, crashedPrefix);
        const faulting = frames.find((f) => f.name.includes(sample.expected.function));
        assert.ok(faulting, `frame ${sample.expected.function} among ${frames.map((f) => f.name).join(', ')}`);
        assert.strictEqual(faulting.file, sample.expected.file);
        assert.strictEqual(faulting.line, `${sample.expected.line}`);
    });

    it('opens the faulting source file and highlights the faulting line', async () => {
        const line = await poll(() => highlightedLine(page), 20_000, 'a stack-frame highlight in the editor');
        assert.strictEqual(line.tab, sample.expected.file);
        assert.strictEqual(line.line, sample.expected.line);
    });

    it('shows the panic in the exception widget', async () => {
        const text = await poll(() => exceptionWidgetText(page), 20_000, 'the exception widget');
        const oops = sample.expected.oops_line.split(',')[0];
        assert.ok(text.includes(oops) || text.includes(sample.expected.panic), `exception widget '${text}' shows '${oops}' or '${sample.expected.panic}'`);
    });

    it("lists the faulting frame's locals in the Variables view", async () => {
        await expandScope(page, 'Locals');
        const expected = sample.expected.locals ?? {};
        assert.ok(Object.keys(expected).length > 0, 'the oops-null manifest names locals');
        const shown = await poll(
            async () => {
                const vars = await variablesOf(page, 'Locals');
                return Object.keys(expected).every((n) => vars.has(n)) ? vars : undefined;
            },
            20_000,
            `locals ${Object.keys(expected).join(', ')} in the Variables view`,
        );
        for (const [name, value] of Object.entries(expected)) {
            assert.ok(valueMatches(shown.get(name) ?? '', value), `${name} shows '${shown.get(name)}', expected ${JSON.stringify(value)}`);
        }
        await page.screenshot({ path: path.join(SCREENSHOTS, 'stopped.png') });
    });

    it('expands a struct in the Variables view', async () => {
        // A variable (level 2, directly under a scope) that has members.
        const expandable = variableRows(page).and(page.locator('[aria-level="2"][aria-expanded="false"]'));
        assert.ok((await expandable.count()) > 0, 'an expandable variable is listed');
        // Pin the row by its id: the locator above stops matching once the row is expanded.
        const id = await expandable.first().getAttribute('id');
        const row = page.locator(`[id="${id}"]`);
        const name = (await row.locator('.name').first().innerText()).replace(/\s*=\s*$/, '');
        await expandRow(row, `variable ${name}`);
        const members = variableRows(page).and(page.locator('[aria-level="3"]'));
        await poll(async () => ((await members.count()) > 0 ? true : undefined), 15_000, `members of ${name}`);
        await page.screenshot({ path: path.join(SCREENSHOTS, 'struct-expanded.png') });
    });

    it('expands a second task in the Call Stack: the mutex holder or a task blocked on the mutex', async () => {
        const pid = sample.expected.mutex_holder_pid ?? sample.expected.d_state_pids?.[0];
        assert.ok(pid !== undefined, 'the oops-null manifest names the mutex holder');
        const prefix = `PID ${pid} `;
        const row = await revealThread(page, prefix);
        const name = (await row.locator('.thread > .name').innerText()).trim();
        await expandRow(row, `task '${name}'`);
        await scrollCallStackTo(page, row);
        const frames = await poll(async () => {
            const f = await framesUnder(page, prefix);
            return f.length > 0 ? f : undefined;
        }, 20_000, `frames of '${name}'`);
        assert.ok(frames.some((f) => /schedule/.test(f.name)), `'${name}' sleeps in the scheduler: ${frames.map((f) => f.name).join(', ')}`);
        await page.screenshot({ path: path.join(SCREENSHOTS, 'second-task.png') });
    });
    it('logs the adapter it chose in the "vmcore" Output channel', async () => {
        await runCommand(page, 'vmcore: Show adapter log');
        // The Output view wraps long lines: compare without the line breaks.
        const text = await poll(async () => {
            const t = (await outputViewText(page)).replace(/\n/g, '');
            return t.includes('adapter from') ? t : undefined;
        }, 15_000, 'the adapter choice in Output › vmcore');
        assert.match(text, /adapter from the extension's private environment/, `the private environment is chosen: ${text}`);
        assert.ok(!text.includes('.venv/bin/python'), `the clone's venv is not used: ${text}`);
        assert.match(text, /adapter started: pid \d+/);
        const errors = (await notificationTexts(page)).filter((t) => /server|crash|fail/i.test(t));
        assert.deepStrictEqual(errors, [], 'no notification of a failing adapter or language server');
    });

    it('refuses a launch configuration whose vmcore does not exist, with a notification that says so', async () => {
        await runCommand(page, 'Debug: Select and Start Debugging');
        await pickQuickItem(page, MISSING_CONFIG);
        const toast = await poll(async () => {
            const texts = await notificationTexts(page);
            return texts.find((t) => t.includes('no-such-vmcore'));
        }, 15_000, 'a notification about the missing vmcore');
        assert.match(toast, /Cannot open vmcore '.*\/no-such-vmcore': no such file/);
        assert.match(toast, /Open launch\.json/);
        await page.waitForTimeout(600); // let the toast finish fading in
        await page.screenshot({ path: path.join(SCREENSHOTS, 'missing-vmcore.png') });
    });
    it('opens a vmcore from the Explorer context menu with the workspace\'s debug info setup', async function () {
        this.timeout(STOP_TIMEOUT_MS + 40_000);
        await runCommand(page, 'View: Show Explorer');
        const item = page.locator('.explorer-folders-view .monaco-list-row', {
            has: page.locator('.label-name', { hasText: /^vmcore$/ }),
        });
        await item.first().click({ button: 'right' });
        // The menu acts on keyboard selection reliably; a synthetic click on its item did not fire.
        const menuItem = page.getByRole('menuitem', { name: 'Open vmcore in debugger', exact: true });
        await menuItem.waitFor({ state: 'visible', timeout: 10_000 });
        await menuItem.hover();
        await page.keyboard.press('Enter');
        // A second session appears in the Call Stack, stopped on the oops of the same dump.
        const session = callStackRows(page).filter({
            has: page.locator('.session > .name', { hasText: /^vmcore: vmcore$/ }),
        });
        await session.first().waitFor({ state: 'visible', timeout: STOP_TIMEOUT_MS });
        await poll(async () => {
            const state = await session.first().locator('.state').innerText().catch(() => '');
            return /oops|exception/i.test(state) ? state : undefined;
        }, STOP_TIMEOUT_MS, 'the Explorer-opened session stops on the oops', 500);
        await expandRow(session.first(), 'the session vmcore: vmcore');
        await poll(async () => ((await threadNames(page)).some((n) => n.startsWith(crashedPrefix)) ? true : undefined),
            20_000, `'${crashedPrefix}' in the session opened from the Explorer`);
        await page.screenshot({ path: path.join(SCREENSHOTS, 'explorer-open.png') });
    });
});
