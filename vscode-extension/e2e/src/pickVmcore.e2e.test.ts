/**
 * Choosing the dump in the UI, in a real VS Code (code-server 4.100.3, headless Chromium), in a folder
 * that holds a `vmcore` and no launch.json (issue 5):
 * - F5 offers the "Linux vmcore (drgn)" debugger, then the extension's file dialog ("Open a Linux
 *   kernel crash dump (vmcore)", VS Code's own in-page dialog: `files.simpleDialog.enable`); picking
 *   `vmcore` starts a session whose adapter opens that dump. The folder holds the dump's
 *   `vmlinux-<release>` beside it, as dumps travel; the adapter finds it there by build ID, so the
 *   session stops on the crashed task with no setting at all.
 * - A launch.json whose `vmcore` is `${command:vmcore-dap.pickVmcore}` (with the sample's vmlinux and
 *   debug info) asks with the same dialog, and the session stops on the crashed task.
 * Screenshots: pick-vmcore-dialog.png, pick-vmcore-f5.png, pick-vmcore-session.png.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import type { Page } from 'playwright-core';

import { crashedThreadPrefix, launchArguments, loadSample, SampleInfo } from '../../test/support/sample';
import { vmcoreChannelLog } from './runDir';
import { Workbench } from './session';
import { poll } from './timeouts';
import { escapeRegExp, framesUnder, outputViewText, pickQuickItem, runCommand, threadNames } from './workbench';

const STOP_TIMEOUT_MS = 90_000;
const DIALOG_TITLE = 'Open a Linux kernel crash dump (vmcore)';
const PICKED_CONFIG = 'vmcore: picked in the dialog';

/** The quick-input rows whose label is exactly `label`. */
function quickRow(page: Page, label: string) {
    return page
        .locator('.quick-input-widget .monaco-list-row')
        .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(label)}$`) }) });
}

/** Wait for the extension's file dialog (VS Code's simple dialog, a quick input) opened in `folder`. */
async function waitForFileDialog(page: Page, folder: string): Promise<void> {
    const title = page.locator('.quick-input-widget .quick-input-title');
    await poll(async () => ((await title.innerText().catch(() => '')) === DIALOG_TITLE ? true : undefined), 15_000, `the dialog '${DIALOG_TITLE}'`);
    const input = page.locator('.quick-input-widget input.input');
    await poll(async () => ((await input.inputValue()) === `${folder}/` ? true : undefined), 10_000, `the dialog opened in ${folder}`);
}

/** Pick the file `name` in the open file dialog, as a person does: a click on its row. */
async function pickInFileDialog(page: Page, name: string): Promise<void> {
    // The row's own text also holds a hidden separator label: match the accessible name.
    const row = page.locator(`.quick-input-widget .monaco-list-row[aria-label="${name}"]`).first();
    await row.waitFor({ state: 'visible', timeout: 10_000 });
    await row.click();
}

describe('real VS Code (code-server 4.100.3): picking the vmcore in a folder without launch.json', function () {
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
        this.timeout(25 * 60_000);
        wb = await Workbench.open({
            launchConfig: null,
            settings: { 'files.simpleDialog.enable': true },
            links: { vmcore: sample.vmcore, [`vmlinux-${sample.kernelRelease}`]: sample.vmlinux },
        });
        page = wb.page;
    });

    afterEach(async function () {
        await wb?.noteFailure(this.currentTest?.state, 'pick-vmcore');
    });

    after(async function () {
        this.timeout(30_000);
        await wb?.close();
    });

    it('F5 offers the vmcore debugger and a file dialog; the picked dump is what the adapter opens', async function () {
        this.timeout(STOP_TIMEOUT_MS + 60_000);
        assert.ok(!fs.existsSync(path.join(wb.run.workspace, '.vscode', 'launch.json')), 'the folder has no launch.json');
        // The first F5 may come before the workbench registered its debuggers: press again until asked.
        const debuggerRow = quickRow(page, 'Linux vmcore (drgn)');
        await poll(async () => {
            if (!(await page.locator('.quick-input-widget').isVisible())) {
                await page.keyboard.press('F5');
            }
            return (await debuggerRow.first().isVisible({ timeout: 2_000 }).catch(() => false)) ? true : undefined;
        }, 30_000, "F5's debugger choice 'Linux vmcore (drgn)'", 1_000);
        await debuggerRow.first().click();
        await waitForFileDialog(page, wb.run.workspace);
        await wb.screenshot('pick-vmcore-dialog.png');
        await pickInFileDialog(page, 'vmcore');

        // The vmlinux beside the dump is found by its build ID: the session stops on the crash.
        const dialog = page.locator('.monaco-dialog-box');
        await poll(async () => {
            if (await dialog.isVisible()) {
                throw new Error(`the adapter refused the picked vmcore: ${(await dialog.innerText()).replace(/\s+/g, ' ')}`);
            }
            return (await framesUnder(page, crashedPrefix)).length > 0 ? true : undefined;
        }, STOP_TIMEOUT_MS, 'the session on the picked vmcore stops on the crashed task', 500);
        assert.ok((await threadNames(page))[0].startsWith(crashedPrefix));
        await wb.screenshot('pick-vmcore-f5.png');
        await runCommand(page, 'vmcore: Show adapter log');
        await poll(async () => ((await outputViewText(page)).includes('adapter') ? true : undefined), 15_000, 'Output › vmcore shown');
        // The whole channel, from VS Code's file of it: the launch line may have scrolled off screen.
        const log = await poll(async () => {
            const t = vmcoreChannelLog(wb.run, wb.extension.id);
            return t.includes("launch 'vmcore: vmcore'") ? t : undefined;
        }, 15_000, 'the launch of the picked vmcore in Output › vmcore');
        assert.ok(log.includes(`launch 'vmcore: vmcore': vmcore ${wb.run.workspace}/vmcore`), log);
        await runCommand(page, 'Debug: Stop');
    });

    it('${command:vmcore-dap.pickVmcore} in launch.json asks with the same dialog and the session stops on the crash', async function () {
        this.timeout(STOP_TIMEOUT_MS + 60_000);
        const config = launchArguments(sample, {
            name: PICKED_CONFIG,
            vmcore: '${command:vmcore-dap.pickVmcore}',
            logFile: wb.run.adapterLog,
        });
        fs.writeFileSync(
            path.join(wb.run.workspace, '.vscode', 'launch.json'),
            JSON.stringify({ version: '0.2.0', configurations: [config] }, null, 2),
        );
        await poll(async () => {
            await runCommand(page, 'Debug: Select and Start Debugging');
            try {
                await pickQuickItem(page, PICKED_CONFIG, 3_000);
                return true;
            } catch {
                await page.keyboard.press('Escape'); // launch.json not read yet: ask again
                return undefined;
            }
        }, 20_000, `the configuration '${PICKED_CONFIG}' offered`);
        await waitForFileDialog(page, wb.run.workspace);
        await pickInFileDialog(page, 'vmcore');
        await poll(
            async () => ((await framesUnder(page, crashedPrefix)).length > 0 ? true : undefined),
            STOP_TIMEOUT_MS,
            `stack frames of '${crashedPrefix}' (adapter log: ${wb.run.adapterLog})`,
            500,
        );
        const threads = await threadNames(page);
        assert.ok(threads[0].startsWith(crashedPrefix), `first task '${threads[0]}'`);
        const frames = await framesUnder(page, crashedPrefix);
        assert.ok(frames.some((f) => f.name === sample.expected.function), frames.map((f) => f.name).join(', '));
        const launched = fs.readFileSync(wb.run.adapterLog, 'utf8');
        assert.ok(launched.includes(`"vmcore":"${wb.run.workspace}/vmcore"`), 'the adapter was launched with the picked path');
        await wb.screenshot('pick-vmcore-session.png');
    });
});
