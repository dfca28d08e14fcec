/**
 * A real VS Code (code-server 4.100.3, headless Chromium) on the `huge` sample: ≈50,000 tasks on 8 CPUs
 * (issue 18). Run by `make test-huge` (`npm run test:e2e-huge`), not by `make test`: the sample takes
 * half an hour to build, and crash needs minutes to read its stacks.
 *
 * - F5 → the crashed frame's source line highlighted: the time it takes (printed, and kept in
 *   e2e/screenshots/huge-measurements.json for the README; speed is judged by `make bench`, so no
 *   time is asserted here);
 * - the Call Stack first shows the crashed task, then every task once the adapter has listed them
 *   (the list's height counts its rows: ≥ the tasks the guest started);
 * - the Call Stack keeps answering while scrolled through 50,000 threads: each scroll renders rows
 *   further down (the time each took is measured);
 * - the Kernel view renders its stack groups with the counts of crash's `foreach bt` grouped by the
 *   same normalisation, the biggest first (measured: when the first group row is drawn, and what the
 *   adapter took for each request the view sent).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import type { Page } from 'playwright-core';

import { crashedThreadPrefix, loadSample, SampleInfo } from '../../test/support/sample';
import { crashGroupCounts, kernelRowTexts, renderedKernelRows, setSection, showKernelView } from './kernelViewPane';
import { SampleLaunch, sampleLaunch } from './sampleLaunch';
import { parkMouse, SCREENSHOTS, Workbench } from './session';
import { poll } from './timeouts';
import { arrangeDebugViews, highlightedLine, runCommand, threadNames } from './workbench';

/** Adapter start, drgn loading vmlinux's DWARF, on a busy shared machine. */
const STOP_TIMEOUT_MS = 180_000;
/** Listing 50,000 tasks of a compressed kdump after the stop, and VS Code taking the list. */
const LIST_TIMEOUT_MS = 600_000;
/** How many wheel scrolls of the Call Stack are timed, and how far each goes. */
const SCROLLS = 12;
const SCROLL_PIXELS = 40_000;

/** One message of the adapter's DAP trace: when it passed (ms since the epoch), which way, and what. */
interface TracedMessage {
    at: number;
    incoming: boolean;
    message: { type?: string; command?: string; event?: string; seq?: number; request_seq?: number };
}

/** The messages of the adapter's DAP trace (lines `<date> <time,ms> … <-- {json}` or `--> {json}`). */
function tracedMessages(logFile: string): TracedMessage[] {
    const line = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*?(<--|-->) (\{.*\})\s*$/;
    const messages: TracedMessage[] = [];
    for (const text of fs.readFileSync(logFile, 'utf8').split('\n')) {
        const m = line.exec(text);
        if (m === null) {
            continue;
        }
        try {
            const message = JSON.parse(m[4]) as TracedMessage['message'];
            messages.push({ at: new Date(`${m[1].replace(' ', 'T')}.${m[2]}`).getTime(), incoming: m[3] === '<--', message });
        } catch {
            continue;
        }
    }
    return messages;
}

/**
 * When the adapter saw what, from its DAP trace: seconds after F5 of the first message, of `launch`
 * and its answer, of `stopped`, and of the first `stackTrace` answer; and the requests VS Code sent
 * before that answer (what the first picture waited for).
 */
function adapterTimeline(logFile: string, f5: number): Record<string, unknown> {
    const at: Record<string, number> = {};
    const before: string[] = [];
    for (const { at: when, incoming, message } of tracedMessages(logFile)) {
        const seconds = (when - f5) / 1000;
        const name = `${incoming ? 'request' : message.type} ${message.command ?? message.event ?? ''}`;
        at.firstMessage ??= seconds;
        if (name === 'request launch') {
            at.launchRequest ??= seconds;
        } else if (name === 'response launch') {
            at.launchResponse ??= seconds;
        } else if (name === 'event stopped') {
            at.stopped ??= seconds;
        } else if (name === 'response stackTrace' && at.firstStackTrace === undefined) {
            at.firstStackTrace = seconds;
        }
        if (incoming && at.firstStackTrace === undefined) {
            before.push(`${seconds.toFixed(2)} ${message.command}`);
        }
    }
    return { ...at, requestsBeforeFirstStack: before };
}

/**
 * The adapter's side of a view's first render, from its DAP trace: each request VS Code sent at or
 * after `since` (ms since the epoch) with the seconds after `since` it arrived and was answered, in the
 * order sent (`vmcore/summary 0.01→2.30`): what the view waited for, and what VS Code itself took.
 */
function requestTimes(logFile: string, since: number): string[] {
    const sent = new Map<number, { command: string; at: number; answered?: number }>();
    for (const { at: when, incoming, message } of tracedMessages(logFile)) {
        const seconds = (when - since) / 1000;
        if (incoming && message.type === 'request' && seconds >= 0 && message.seq !== undefined) {
            sent.set(message.seq, { command: message.command ?? '?', at: seconds });
        } else if (message.type === 'response' && message.request_seq !== undefined) {
            const request = sent.get(message.request_seq);
            if (request !== undefined) {
                request.answered ??= seconds;
            }
        }
    }
    return [...sent.values()].map((r) => `${r.command} ${r.at.toFixed(2)}→${r.answered?.toFixed(2) ?? '?'}`);
}

/** Rows of the Call Stack's virtual list: its full height over one row's (rows off screen are not in the DOM). */
async function callStackRowCount(page: Page): Promise<number> {
    return page.evaluate(() => {
        const list = document.querySelector('.debug-pane .debug-call-stack .monaco-list-rows') as HTMLElement | null;
        const row = document.querySelector('.debug-pane .debug-call-stack .monaco-list-row') as HTMLElement | null;
        if (list === null || row === null) {
            return 0;
        }
        const height = parseFloat(list.style.height);
        return Number.isFinite(height) && row.offsetHeight > 0 ? Math.round(height / row.offsetHeight) : 0;
    });
}

/** The highest row index the Call Stack has rendered. */
async function lastRenderedIndex(page: Page): Promise<number> {
    return page.evaluate(() => {
        const rows = Array.from(document.querySelectorAll('.debug-pane .debug-call-stack .monaco-list-row'));
        return rows.reduce((max, r) => Math.max(max, Number(r.getAttribute('data-index') ?? -1)), -1);
    });
}

describe('real VS Code (code-server 4.100.3): the huge sample (≈50,000 threads)', function () {
    let sample: SampleInfo;
    let launch: SampleLaunch;
    let wb: Workbench;
    let page: Page;
    let crashCounts: number[];
    const measured: Record<string, unknown> = {};

    before(async function () {
        this.timeout(120 * 60_000); // a missing huge sample boots an 8-CPU VM for half an hour; crash reads 50,000 stacks
        sample = await loadSample('huge');
        launch = await sampleLaunch('huge');
        crashCounts = await crashGroupCounts('huge');
    });

    before(async function () {
        this.timeout(25 * 60_000); // a first install of code-server takes minutes
        wb = await Workbench.open({ launchConfig: launch.config, settings: { 'debug.toolBarLocation': 'docked' } });
        page = wb.page;
        await page.setViewportSize({ width: 1600, height: 1000 });
    });

    afterEach(async function () {
        await wb?.noteFailure(this.currentTest?.state, 'huge');
    });

    after(async function () {
        this.timeout(30_000);
        fs.mkdirSync(SCREENSHOTS, { recursive: true });
        fs.writeFileSync(path.join(SCREENSHOTS, 'huge-measurements.json'), JSON.stringify(measured, null, 2) + '\n');
        console.log(`    measured: ${JSON.stringify(measured)}`);
        await wb?.close();
    });

    it("goes from F5 to the crashed frame's source line", async function () {
        this.timeout(STOP_TIMEOUT_MS + 60_000);
        const started = Date.now();
        await runCommand(page, 'Debug: Start Debugging');
        measured.f5At = new Date(started).toISOString();
        const line = await poll(
            async () => {
                const shown = await highlightedLine(page);
                return shown !== undefined && shown.tab === sample.expected.file ? shown : undefined;
            },
            STOP_TIMEOUT_MS,
            `${sample.expected.file} highlighted in the editor (adapter log: ${wb.run.adapterLog})`,
            100,
        );
        measured.f5ToSourceSeconds = (Date.now() - started) / 1000;
        measured.adapter = adapterTimeline(wb.run.adapterLog, started);
        assert.strictEqual(line.line, sample.expected.line);
        const threads = await threadNames(page);
        assert.ok(threads[0].startsWith(crashedThreadPrefix(sample)), `first thread '${threads[0]}'`);
        await arrangeDebugViews(page);
        await parkMouse(page);
        await wb.screenshot('huge-stopped.png');
    });

    it('shows every task in the Call Stack once the adapter has listed them', async function () {
        this.timeout(LIST_TIMEOUT_MS + 30_000);
        const started = Date.now();
        const rows = await poll(
            async () => {
                const count = await callStackRowCount(page);
                return count >= sample.expected.min_tasks ? count : undefined;
            },
            LIST_TIMEOUT_MS,
            `≥ ${sample.expected.min_tasks} rows in the Call Stack`,
            500,
        );
        measured.callStackRows = rows;
        measured.wholeListAfterStopSeconds = (Date.now() - started) / 1000;
    });

    it('keeps the Call Stack answering while it is scrolled through 50,000 threads', async function () {
        this.timeout(SCROLLS * 60_000);
        const list = page.locator('.debug-pane .debug-call-stack .monaco-list').first();
        await list.hover();
        const times: number[] = [];
        for (let i = 0; i < SCROLLS; i++) {
            const before = await lastRenderedIndex(page);
            const started = Date.now();
            await page.mouse.wheel(0, SCROLL_PIXELS);
            const after = await poll(
                async () => {
                    const index = await lastRenderedIndex(page);
                    return index > before ? index : undefined;
                },
                60_000,
                `Call Stack rows below row ${before} after scroll ${i + 1}`,
                20,
            );
            times.push((Date.now() - started) / 1000);
            assert.ok(after > before);
        }
        const names = await threadNames(page);
        assert.ok(names.length > 0 && names.every((n) => /^PID \d+ /.test(n)), `rows rendered after scrolling: ${names.slice(0, 5)}`);
        measured.scrollRenderSeconds = times;
        measured.scrollRenderMaxSeconds = Math.max(...times);
        await wb.screenshot('huge-call-stack-scrolled.png');
    });

    it("renders the Kernel view's stack groups with the counts of crash foreach bt", async function () {
        this.timeout(LIST_TIMEOUT_MS);
        await setSection(page, 'Call Stack', false);
        const started = Date.now();
        await showKernelView(page);
        // When the first group row is drawn, read from the rows on screen (one DOM query every 100 ms):
        // reading the whole tree below scrolls it step by step and takes seconds itself.
        await poll(
            async () => ((await renderedKernelRows(page)).some(([, text]) => /^×\d+ /.test(text)) ? true : undefined),
            LIST_TIMEOUT_MS,
            'a stack group row (×N …) drawn in the Kernel view',
            100,
        );
        measured.kernelViewFirstGroupSeconds = (Date.now() - started) / 1000;
        const groups = await poll(
            async () => {
                const texts = await kernelRowTexts(page);
                const counts = texts.map((t) => /^×(\d+) /.exec(t)).filter((m) => m !== null).map((m) => Number(m![1]));
                return counts.length >= 3 ? { texts, counts } : undefined;
            },
            LIST_TIMEOUT_MS,
            'stack group rows (×N …) in the Kernel view',
            500,
        );
        measured.kernelViewAllRowsReadSeconds = (Date.now() - started) / 1000;
        measured.kernelViewRequests = requestTimes(wb.run.adapterLog, started);
        assert.deepStrictEqual(groups.counts, crashCounts.slice(0, groups.counts.length), `Kernel view ${groups.counts} vs crash ${crashCounts}`);
        const total = crashCounts.reduce((a, b) => a + b, 0);
        const summary = groups.texts.find((t) => / tasks in \d+ groups/.test(t));
        assert.ok(summary?.startsWith(`${total} tasks in ${crashCounts.length} groups`), `summary row '${summary}'`);
        assert.ok(total >= sample.expected.min_tasks, `${total} tasks grouped`);
        await parkMouse(page);
        await wb.screenshot('huge-kernel-view.png');
    });
});
