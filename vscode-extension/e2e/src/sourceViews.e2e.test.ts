/**
 * Where the bug is, in a real VS Code (code-server 4.100.3, headless Chromium): the `oops-null`
 * sample opened with its own launch configuration (samples/launch/oops-null.json, `sourceRoot` on
 * Debian's unpacked linux-source tree), then
 * - a kernel frame (`vfs_write`) clicked in the Call Stack opens `fs/read_write.c` from that tree at
 *   the frame's line (issue 7);
 * - "Open Disassembly View" lands on the faulting instruction: the marked row's address is the top
 *   frame's `instructionPointerReference` from the adapter's DAP trace, and it is the load through the
 *   NULL pointer at the oops address's offset (issue 7);
 * - the vmcore language server annotates the module source: a hover on the global `labbug_dev` shows
 *   its value (checked against the kernel log the guest printed and the module source), the code lens
 *   above `labbug_wait_write` counts the D-state waiters, and the faulting line carries an Error
 *   (issue 10).
 * Screenshots (e2e/screenshots/): stopped-exception.png, struct-in-variables.png,
 * kernel-source-frame.png, disassembly.png, lsp-hover.png, lsp-code-lens.png, lsp-diagnostics.png.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import type { Page } from 'playwright-core';

import { crashedThreadPrefix, loadSample, SampleInfo } from '../../test/support/sample';
import { topFrameOfStoppedThread } from './dapTrace';
import { instructionRows, openDisassemblyView, revealInstruction } from './disassemblyView';
import { breadcrumbs, codeLensesAbove, editorLineText, goToLine, problems, showHover, squigglesOn } from './editor';
import { SampleLaunch, sampleLaunch } from './sampleLaunch';
import { parkMouse, Workbench } from './session';
import { poll } from './timeouts';
import {
    arrangeDebugViews,
    callStackRows,
    escapeRegExp,
    exceptionWidgetText,
    expandRow,
    framesUnder,
    HighlightedLine,
    highlightedLine,
    runCommand,
    variableRows,
} from './workbench';

const STOP_TIMEOUT_MS = 90_000; // adapter start + drgn loading vmlinux's DWARF
/** Regions of the 1600x1100 window for the docs' screenshots (PNG ≤ 300 KB). */
const CLIP_WINDOW = { x: 0, y: 0, width: 1600, height: 940 };
const CLIP_EDITOR = { x: 660, y: 60, width: 940, height: 640 };

/** Line numbers (1-based) of `pattern` in `file`. */
function linesMatching(file: string, pattern: RegExp): number[] {
    return fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((text, i) => (pattern.test(text) ? [i + 1] : []));
}

/** The only line of `file` matching `pattern`; fails when there is none or several. */
function lineOf(file: string, pattern: RegExp): number {
    const found = linesMatching(file, pattern);
    assert.strictEqual(found.length, 1, `exactly one line of ${file} matches ${pattern}: ${found.join(', ')}`);
    return found[0];
}

/** The function whose body holds 1-based `line` of a C file: the nearest definition line above it. */
function enclosingFunction(file: string, line: number): string | undefined {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    for (let i = line - 1; i >= 0; i--) {
        const m = /^[A-Za-z_].*?\b([A-Za-z_]\w*)\(/.exec(lines[i]);
        if (m !== null) {
            return m[1];
        }
    }
    return undefined;
}

const squash = (s: string): string => s.replace(/\s+/g, ' ').trim();

/**
 * Click the frame named `name` in the Call Stack and wait until the editor shows `file` with the
 * frame's highlight (the editor takes the focus when it opens, so wait before typing anything).
 */
async function selectFrame(page: Page, name: string, file: string): Promise<HighlightedLine> {
    const row = callStackRows(page).filter({ has: page.locator('.stack-frame .label', { hasText: new RegExp(`^${escapeRegExp(name)}$`) }) });
    await row.first().click();
    return poll(async () => {
        const h = await highlightedLine(page);
        return h?.tab === file ? h : undefined;
    }, 20_000, `${file} in the editor with the highlight of frame ${name}`);
}

describe('real VS Code (code-server 4.100.3): kernel sources, Disassembly view and the language server on oops-null', function () {
    let sample: SampleInfo;
    let launch: SampleLaunch;
    let wb: Workbench;
    let page: Page;
    let crashedPrefix: string;
    let moduleSource: string;

    before(async function () {
        this.timeout(60 * 60_000); // a missing sample boots a VM; a missing kernel tree is a 140 MB download
        sample = await loadSample('oops-null');
        launch = await sampleLaunch('oops-null');
        crashedPrefix = crashedThreadPrefix(sample);
        moduleSource = path.join(sample.moduleSourceDir, sample.expected.file);
        assert.ok(fs.existsSync(moduleSource), `the sample has its module source ${moduleSource}`);
    });

    before(async function () {
        this.timeout(25 * 60_000); // a first install of code-server takes minutes
        // The debug toolbar docked in the Run and Debug view: floating, it sits under the command
        // palette's rows, and the mouse left there after a click shows its tooltips in the pictures.
        wb = await Workbench.open({ launchConfig: launch.config, settings: { 'debug.toolBarLocation': 'docked' } });
        page = wb.page;
    });

    afterEach(async function () {
        await wb?.noteFailure(this.currentTest?.state, 'source-views');
    });

    after(async function () {
        this.timeout(30_000);
        await wb?.close();
    });

    it("stops on the crashed task with the sample's own launch configuration (sourceRoot on the kernel tree)", async function () {
        this.timeout(STOP_TIMEOUT_MS + 40_000);
        assert.strictEqual(launch.config.sourceRoot, launch.kernelSource);
        await runCommand(page, 'Debug: Start Debugging');
        await poll(
            async () => ((await framesUnder(page, crashedPrefix)).length > 0 ? true : undefined),
            STOP_TIMEOUT_MS,
            `stack frames of '${crashedPrefix}' in the Call Stack (adapter log: ${wb.run.adapterLog})`,
            500,
        );
        await arrangeDebugViews(page);
        const text = await poll(() => exceptionWidgetText(page), 20_000, 'the exception widget');
        assert.ok(text.includes(sample.expected.oops_line.split(',')[0]), `exception widget '${text}'`);
        await parkMouse(page);
        await wb.screenshot('stopped-exception.png', CLIP_WINDOW);
    });

    it('expands the struct behind the faulting function\'s pointer argument in Variables', async () => {
        const row = variableRows(page).filter({ has: page.locator('.name', { hasText: /^dev\b/ }) }).first();
        await expandRow(row, 'argument dev');
        const magic = /labbug_dev->magic = (0x[0-9a-f]+|\d+);/.exec(fs.readFileSync(moduleSource, 'utf8'));
        assert.ok(magic, `the module source sets labbug_dev->magic`);
        const members = await poll(async () => {
            const texts = await variableRows(page).and(page.locator('[aria-level="3"]')).allInnerTexts();
            return texts.length >= 4 ? texts.map(squash) : undefined;
        }, 15_000, 'the members of *dev');
        assert.ok(members.some((m) => m.startsWith(`magic = ${Number(magic[1])}`)), `magic = ${Number(magic[1])} among ${JSON.stringify(members)}`);
        await wb.screenshot('struct-in-variables.png', CLIP_WINDOW);
    });

    it("opens a kernel frame's source from the kernel tree at the frame's line (vfs_write in fs/read_write.c)", async () => {
        const frame = (await framesUnder(page, crashedPrefix)).find((f) => f.name === 'vfs_write');
        assert.ok(frame, `vfs_write on the crashed task's stack`);
        assert.strictEqual(frame.file, 'read_write.c');
        const line = Number(frame.line);
        const file = path.join(launch.kernelSource, 'fs', 'read_write.c');
        assert.strictEqual(enclosingFunction(file, line), 'vfs_write', `line ${line} of ${file} is in vfs_write`);

        const shown = await selectFrame(page, 'vfs_write', 'read_write.c');
        assert.deepStrictEqual(shown, { tab: 'read_write.c', line, kind: 'focused' });
        const crumbs = `/${(await breadcrumbs(page)).join('/')}/`;
        assert.ok(crumbs.includes(`${launch.kernelSource}/fs/read_write.c/`), `the file is the kernel tree's: ${crumbs}`);
        const text = await editorLineText(page, line);
        const expected = fs.readFileSync(file, 'utf8').split('\n')[line - 1];
        assert.strictEqual(squash(text ?? ''), squash(expected), `line ${line} shows the tree's text`);
        // The language server covers the kernel tree too: a task-count lens above vfs_write.
        const definition = lineOf(file, /^ssize_t vfs_write\(/);
        await poll(async () => ((await codeLensesAbove(page, definition)).some((t) => /^\d+ tasks? here \(/.test(t)) ? true : undefined),
            40_000, `a code lens above vfs_write (line ${definition})`);
        await parkMouse(page);
        await wb.screenshot('kernel-source-frame.png', CLIP_WINDOW);
    });

    it('opens the Disassembly view on the faulting instruction (the top frame\'s instructionPointerReference)', async () => {
        const top = topFrameOfStoppedThread(wb.run.adapterLog);
        assert.strictEqual(top.name, sample.expected.function);
        assert.ok(top.instructionPointerReference, 'the top frame has an instructionPointerReference');
        await selectFrame(page, sample.expected.function, sample.expected.file); // focus the top frame again
        await openDisassemblyView(page);
        await parkMouse(page); // off the new tab, which the palette row was over
        const row = await revealInstruction(page, top.instructionPointerReference);
        assert.ok(row.isStackFrame, `the row of ${row.address} carries the stack-frame marker`);
        assert.notStrictEqual(row.background, 'transparent', 'the row is highlighted');
        const marked = (await instructionRows(page)).filter((r) => r.isStackFrame).map((r) => r.address);
        assert.deepStrictEqual(marked, [row.address], 'one instruction is marked');
        // The oops reads through a NULL pointer: "address: 0000000000000008" is the operand's displacement.
        const faultAddress = /address: ([0-9a-f]+)/.exec(sample.expected.oops_line);
        assert.ok(faultAddress, `the oops line names the faulting address: ${sample.expected.oops_line}`);
        const displacement = `0x${BigInt(`0x${faultAddress[1]}`).toString(16)}`;
        assert.match(row.instruction, new RegExp(`^mov\\w* ${escapeRegExp(displacement)}\\(%r\\w+\\), %\\w+$`), `a load at ${displacement}(reg)`);
        assert.match(row.source, new RegExp(`^${sample.expected.line}:`), `the row shows source line ${sample.expected.line}`);
        await parkMouse(page);
        await wb.screenshot('disassembly.png', CLIP_WINDOW);
        await runCommand(page, 'View: Close Editor');
    });

    it('hovers the module global labbug_dev: the language server shows its value from the dump', async function () {
        this.timeout(60_000);
        const loaded = /labbug: loaded, device (\S+) at ([0-9a-f]+)/.exec(fs.readFileSync(launch.dmesg, 'utf8'));
        assert.ok(loaded, `the guest's kernel log ${launch.dmesg} has the module's "loaded" line`);
        const magic = /labbug_dev->magic = (0x[0-9a-f]+|\d+);/.exec(fs.readFileSync(moduleSource, 'utf8'));
        assert.ok(magic, 'the module source sets labbug_dev->magic');

        await selectFrame(page, sample.expected.function, sample.expected.file);
        const line = lineOf(moduleSource, /^static struct labbug_device \*labbug_dev;/);
        const column = fs.readFileSync(moduleSource, 'utf8').split('\n')[line - 1].indexOf('labbug_dev;') + 3;
        await parkMouse(page); // a mouse over the editor would get the debugger's hover instead
        await goToLine(page, line, column);
        const hover = squash(await showHover(page, 40_000));
        await page.waitForTimeout(600); // the hover fades in
        assert.ok(hover.includes(`labbug_dev = 0x${loaded[2]}`), `the pointer the kernel log printed (0x${loaded[2]}): ${hover}`);
        assert.ok(hover.includes(`"${loaded[1]}"`), `the device name "${loaded[1]}": ${hover}`);
        assert.ok(hover.includes(`.magic = ${Number(magic[1])},`), `magic ${Number(magic[1])}: ${hover}`);
        assert.ok(hover.includes(`(module ${String(sample.expected.module)})`), hover);
        await wb.screenshot('lsp-hover.png', CLIP_EDITOR);
        await page.keyboard.press('Escape');
    });

    it('shows the code lens "N tasks here (D: N)" above labbug_wait_write, where the D-state tasks wait', async function () {
        this.timeout(60_000);
        const waiters = sample.expected.d_state_pids?.length ?? 0;
        assert.ok(waiters > 0, 'the oops-null manifest names the D-state tasks');
        const line = lineOf(moduleSource, /^static ssize_t labbug_wait_write\(/);
        await goToLine(page, line + 12); // scrolls down far enough that the lens and the function show
        await goToLine(page, line);
        const want = `${waiters} task${waiters === 1 ? '' : 's'} here (D: ${waiters})`;
        const lenses = await poll(async () => {
            const found = await codeLensesAbove(page, line);
            return found.includes(want) ? found : undefined;
        }, 40_000, `code lens '${want}' above line ${line}`);
        assert.deepStrictEqual(lenses, [want]);
        await parkMouse(page);
        await wb.screenshot('lsp-code-lens.png', CLIP_EDITOR);
    });

    it('lists the tasks of that code lens when it is clicked: exactly the D-state waiters', async function () {
        this.timeout(60_000);
        const waiters = sample.expected.d_state_pids ?? [];
        const line = lineOf(moduleSource, /^static ssize_t labbug_wait_write\(/);
        await goToLine(page, line);
        const want = `${waiters.length} task${waiters.length === 1 ? '' : 's'} here (D: ${waiters.length})`;
        await page.locator('.codelens-decoration a', { hasText: want }).first().click();
        // One vmcore/tasksInFunction request answers it (the adapter's stack service, which the lens counted from).
        const rows = await poll(async () => {
            const texts = await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').allInnerTexts();
            return texts.length >= waiters.length ? texts : undefined;
        }, 30_000, 'the quick pick of the tasks in labbug_wait_write');
        assert.strictEqual(rows.length, waiters.length, rows.join(' | '));
        for (const pid of waiters) {
            assert.ok(rows.some((r) => r.includes(`PID ${pid} `) && r.includes('labbug_wait_write')), `PID ${pid} in ${rows.join(' | ')}`);
        }
        const title = await page.locator('.quick-input-widget .quick-input-title').innerText();
        assert.ok(title.startsWith(`${waiters.length} task(s) with labbug_wait_write on their stack`), title);
        await page.keyboard.press('Escape');
    });

    it('marks the faulting line with an Error (squiggle and Problems) and the D-state wait with an Information', async function () {
        this.timeout(60_000);
        const line = sample.expected.line;
        await goToLine(page, line);
        await poll(async () => ((await squigglesOn(page, line)).includes('squiggly-error') ? true : undefined), 30_000, `an error squiggle on line ${line}`);
        const rows = await poll(async () => {
            const r = await problems(page);
            return r.some((t) => t.startsWith('Error:')) && r.some((t) => t.startsWith('Info:')) ? r : undefined;
        }, 20_000, 'the Error and Information in the Problems panel');
        const errors = rows.filter((t) => t.startsWith('Error:'));
        assert.strictEqual(errors.length, 1, JSON.stringify(rows));
        assert.ok(errors[0].includes(sample.expected.oops_line), errors[0]);
        assert.match(errors[0], new RegExp(` at line ${line} and character \\d+\\. generated by vmcore$`));
        const info = rows.find((t) => t.startsWith('Info:') && t.includes('blocked here'));
        assert.ok(info, JSON.stringify(rows));
        for (const pid of sample.expected.d_state_pids ?? []) {
            assert.match(info, new RegExp(`\\b${pid} `), `PID ${pid} in '${info}'`);
        }
        await parkMouse(page);
        await wb.screenshot('lsp-diagnostics.png', CLIP_WINDOW);
    });
});
