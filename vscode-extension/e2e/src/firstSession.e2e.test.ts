/**
 * The first session after installing the extension from its .vsix (issue 19), in a real VS Code
 * (code-server 4.100.3, headless Chromium): no adapter anywhere — no launch.json `python`, no
 * vmcoreDap setting, none of this clone's Python in VS Code's environment, an empty global storage —
 * so pressing "Start Debugging" offers the set-up; accepting it shows a progress notification, makes a
 * virtual environment in the extension's global storage from a Python 3.11+ it finds, installs the
 * wheel the .vsix carries with its dependencies from PyPI, checks it, and the session then stops on
 * the crashed task. A second session uses the remembered environment without asking, and so does
 * every later window of the run (the other e2e files share this storage: installedExtension.ts).
 * An environment recorded as made by an older extension is offered an update, which replaces it.
 *
 * This file runs first (e2e/.mocharc.json `file`). Screenshots: setup-offer.png, setup-progress.png.
 */
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import type { Page } from 'playwright-core';

import { crashedThreadPrefix, launchArguments, loadSample, SampleInfo } from '../../test/support/sample';
import { adapterRecord } from './installedExtension';
import { parkMouse, Workbench } from './session';
import { poll } from './timeouts';
import { framesUnder, notificationTexts, outputViewText, runCommand } from './workbench';

/** Creating the venv and installing drgn and friends (pip's cache makes later runs quicker). */
const SETUP_TIMEOUT_MS = 15 * 60_000;
const STOP_TIMEOUT_MS = 90_000;
const OFFER = 'no vmcore-dap adapter is installed';

/** The toast whose text contains `text`. */
function toast(page: Page, text: string) {
    return page.locator('.notifications-toasts .notification-toast').filter({ hasText: text });
}

/** The region of the notification toasts (bottom right), with a margin, for a small screenshot. */
async function toastsClip(page: Page): Promise<{ x: number; y: number; width: number; height: number }> {
    const box = await page.locator('.notifications-toasts').boundingBox();
    assert.ok(box !== null, 'the notification toasts are on screen');
    const margin = 16;
    return { x: Math.max(0, box.x - margin), y: Math.max(0, box.y - margin), width: box.width + 2 * margin, height: box.height + 2 * margin };
}

describe('real VS Code, extension installed from the .vsix: the first session sets up the adapter', function () {
    let sample: SampleInfo;
    let wb: Workbench;
    let page: Page;
    let crashedPrefix: string;

    before(async function () {
        this.timeout(60 * 60_000); // a missing sample boots a VM
        sample = await loadSample('oops-null');
        crashedPrefix = crashedThreadPrefix(sample);
    });

    before(async function () {
        this.timeout(25 * 60_000); // a first install of code-server, packaging the .vsix
        wb = await Workbench.open({ launchConfig: launchArguments(sample, { name: 'vmcore: oops-null' }), firstSession: true });
        page = wb.page;
        assert.strictEqual(adapterRecord(wb.extension), undefined, `the run starts with no adapter set up (${wb.extension.storageDir})`);
    });

    afterEach(async function () {
        await wb?.noteFailure(this.currentTest?.state, 'first-session');
    });

    after(async function () {
        this.timeout(30_000);
        await wb?.close();
    });

    it('offers to set up the adapter when none is configured or found', async function () {
        this.timeout(60_000);
        await runCommand(page, 'Debug: Start Debugging');
        const offer = await poll(async () => (await notificationTexts(page)).find((t) => t.includes(OFFER)), 30_000, 'the set-up offer');
        assert.match(offer, new RegExp(`installs the vmcore-dap ${wb.extension.version.replace(/\./g, '\\.')} it carries`));
        assert.match(offer, /Set Up Adapter/);
        await page.waitForTimeout(600); // let the toast finish fading in
        await parkMouse(page);
        await wb.screenshot('setup-offer.png', await toastsClip(page));
    });

    it('sets it up with a progress notification, then the session stops on the crashed task', async function () {
        this.timeout(SETUP_TIMEOUT_MS + STOP_TIMEOUT_MS + 60_000);
        await toast(page, OFFER).getByRole('button', { name: 'Set Up Adapter' }).click();
        const progress = toast(page, 'setting up the adapter');
        await progress.first().waitFor({ state: 'visible', timeout: 30_000 });
        // Shot while pip installs (the longest step), so the picture shows what is going on.
        await poll(async () => ((await progress.first().innerText().catch(() => '')).includes('installing vmcore-dap') ? true : undefined),
            120_000, 'the progress notification at the install step');
        await parkMouse(page);
        await page.waitForTimeout(800); // a tooltip the button left behind fades
        await wb.screenshot('setup-progress.png', await toastsClip(page));
        await poll(async () => {
            const failed = (await notificationTexts(page)).find((t) => t.includes('could not be set up'));
            if (failed !== undefined) {
                throw new Error(`the set-up failed: ${failed}`);
            }
            return (await framesUnder(page, crashedPrefix)).length > 0 ? true : undefined;
        }, SETUP_TIMEOUT_MS + STOP_TIMEOUT_MS, `the set-up, then frames of '${crashedPrefix}' in the Call Stack`, 1_000);
    });

    it('installed the wheel the .vsix carries into a new environment in the global storage', () => {
        const record = adapterRecord(wb.extension);
        assert.ok(record !== undefined, 'the set-up wrote its record');
        assert.strictEqual(record.adapterVersion, wb.extension.version);
        // By its real path, not through the run directory's link to the shared storage (which goes).
        assert.strictEqual(path.dirname(record.directory), path.join(fs.realpathSync(wb.extension.storageDir), 'environments'));
        assert.deepStrictEqual(fs.readdirSync(path.dirname(record.directory)), [path.basename(record.directory)], 'one environment, no leftovers');
        const wheel = path.join(wb.extension.installedDir, 'bundled', `vmcore_dap-${wb.extension.version}-py3-none-any.whl`);
        // pip records where it installed a package from (PEP 610): the wheel inside the installed extension.
        const origin = execFileSync(record.python, ['-c', [
            'import importlib.metadata as m, json',
            'print(json.loads(m.distribution("vmcore-dap").read_text("direct_url.json"))["url"])',
        ].join('\n')], { encoding: 'utf8' }).trim();
        assert.strictEqual(origin, `file://${wheel}`);
        const version = execFileSync(path.join(record.directory, 'bin', 'vmcore-dap'), ['--version'], { encoding: 'utf8' }).trim();
        assert.match(version, new RegExp(`^vmcore-dap ${wb.extension.version.replace(/\./g, '\\.')} \\(drgn \\S+, Python 3\\.\\d+`));
    });

    it('logs the set-up and the versions the adapter reports in Output › vmcore', async () => {
        await runCommand(page, 'vmcore: Show adapter log');
        const log = await poll(async () => {
            const t = (await outputViewText(page)).replace(/\n/g, '');
            return t.includes('adapter from') ? t : undefined;
        }, 15_000, 'the adapter choice in Output › vmcore');
        assert.match(log, /adapter from the extension's private environment/);
        assert.match(log, new RegExp(`adapter: vmcore-dap ${wb.extension.version.replace(/\./g, '\\.')}, drgn \\S+, Python 3\\.`));
        const warnings = (await notificationTexts(page)).filter((t) => /older|newer|does not report its version|fail/i.test(t));
        assert.deepStrictEqual(warnings, [], 'no version warning: the adapter is the one shipped');
    });

    it('uses the remembered environment for the next session without asking again', async function () {
        this.timeout(STOP_TIMEOUT_MS + 60_000);
        await runCommand(page, 'Debug: Stop');
        await poll(async () => ((await framesUnder(page, crashedPrefix)).length === 0 ? true : undefined), 20_000, 'the session ended');
        await runCommand(page, 'Notifications: Clear All Notifications');
        await runCommand(page, 'Debug: Start Debugging');
        await poll(async () => {
            if ((await notificationTexts(page)).some((t) => t.includes(OFFER))) {
                throw new Error('the set-up was offered again');
            }
            return (await framesUnder(page, crashedPrefix)).length > 0 ? true : undefined;
        }, STOP_TIMEOUT_MS, `the second session stops on '${crashedPrefix}'`, 500);
    });

    it('offers to update an environment an older extension made, and replaces it once the new one works', async function () {
        this.timeout(SETUP_TIMEOUT_MS + STOP_TIMEOUT_MS + 60_000);
        await runCommand(page, 'Debug: Stop');
        await poll(async () => ((await framesUnder(page, crashedPrefix)).length === 0 ? true : undefined), 20_000, 'the session ended');
        await runCommand(page, 'Notifications: Clear All Notifications');
        // As an update of the extension finds it: the record of an environment made for vmcore-dap 0.0.9.
        const recordFile = path.join(wb.extension.storageDir, 'adapter-environment.json');
        const old = JSON.parse(fs.readFileSync(recordFile, 'utf8')) as { directory: string; adapterVersion: string };
        fs.writeFileSync(recordFile, JSON.stringify({ ...old, adapterVersion: '0.0.9' }));
        await runCommand(page, 'Debug: Start Debugging');
        const offer = await poll(async () => (await notificationTexts(page)).find((t) => t.includes('Update it now?')), 30_000, 'the update offer');
        assert.match(offer, new RegExp(`is vmcore-dap 0\\.0\\.9, older than this extension's ${wb.extension.version.replace(/\./g, '\\.')}`));
        await toast(page, 'Update it now?').getByRole('button', { name: 'Update Adapter' }).click();
        await poll(async () => {
            const failed = (await notificationTexts(page)).find((t) => t.includes('could not be set up'));
            if (failed !== undefined) {
                throw new Error(`the update failed: ${failed}`);
            }
            return (await framesUnder(page, crashedPrefix)).length > 0 ? true : undefined;
        }, SETUP_TIMEOUT_MS + STOP_TIMEOUT_MS, `the update, then frames of '${crashedPrefix}'`, 1_000);
        const record = adapterRecord(wb.extension);
        assert.ok(record !== undefined && record.adapterVersion === wb.extension.version, JSON.stringify(record));
        assert.notStrictEqual(record.directory, old.directory, 'a new environment');
        assert.ok(!fs.existsSync(old.directory), 'the replaced environment is removed');
        assert.deepStrictEqual(fs.readdirSync(path.dirname(record.directory)), [path.basename(record.directory)]);
    });
});
