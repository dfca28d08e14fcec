/**
 * Reading the Kernel view of a real VS Code window from its DOM (its rows, its sections), and crash's
 * grouping of `foreach bt` to compare it with: shared by the Kernel view tests of the `many-tasks`
 * and `huge` samples.
 */
import { spawn } from 'child_process';

import type { Locator, Page } from 'playwright-core';

import { repoRoot, venvPython } from '../../test/support/repo';
import { poll } from './timeouts';

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

export function crashGroupCounts(scenario: string): Promise<number[]> {
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
export function kernelRows(page: Page): Locator {
    return page.locator('.pane', { has: page.locator('.pane-header h3.title', { hasText: /^Kernel$/ }) }).locator('.monaco-list-row');
}

export async function renderedKernelRows(page: Page): Promise<[number, string][]> {
    const rows = kernelRows(page);
    return page.evaluate((els) => {
        return els.map((e) => [Number((e as Element).getAttribute('data-index')), (e.textContent ?? '').replace(/\s+/g, ' ').trim()] as [number, string]);
    }, await rows.elementHandles());
}

/**
 * Scroll the Kernel view to its first row. One huge wheel event does not do it (the list ignored a
 * -100,000 delta), and the virtual list renders a few rows above its top, so it wheels a screen at a
 * time until the first row's top is the list's top.
 */
export async function scrollKernelToTop(page: Page): Promise<void> {
    const list = page.locator('.pane', { has: page.locator('.pane-header h3.title', { hasText: /^Kernel$/ }) }).locator('.monaco-list').first();
    await list.hover();
    for (let step = 0; step < 100; step++) {
        const atTop = await list.evaluate((el) => {
            // Not the sticky-scroll copy of a parent row pinned over the top of the list.
            const first = el.querySelector('.monaco-list-rows > .monaco-list-row[data-index="0"]');
            return first !== null && first.getBoundingClientRect().top >= el.getBoundingClientRect().top - 1;
        });
        if (atTop) {
            break;
        }
        await page.mouse.wheel(0, -600);
        await page.waitForTimeout(100);
    }
    await page.waitForTimeout(150);
}

/**
 * All rows of the Kernel view in display order. The tree is a virtual list that renders only what
 * its pane shows, so it is scrolled from the top to the bottom and the rows are collected.
 */
export async function kernelRowTexts(page: Page): Promise<string[]> {
    const list = page.locator('.pane', { has: page.locator('.pane-header h3.title', { hasText: /^Kernel$/ }) }).locator('.monaco-list').first();
    const seen = new Map<number, string>(); // by the row's index in the list
    if ((await list.count()) === 0) {
        return [];
    }
    await scrollKernelToTop(page);
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

/** Collapse or expand a Run and Debug section by its header (its aria-label is "<Title> Section"). */
export async function setSection(page: Page, title: string, open: boolean): Promise<void> {
    const header = page.locator(`.part.sidebar .pane-header[aria-label^="${title} " i]`).first();
    if ((await header.count()) === 0) {
        return; // a section the workbench does not show (e.g. Loaded Scripts before any script)
    }
    await poll(async () => {
        if (((await header.getAttribute('aria-expanded')) === 'true') === open) {
            return true;
        }
        await header.click({ position: { x: 30, y: 10 } });
        await page.waitForTimeout(300);
        return undefined;
    }, 15_000, `${open ? 'expand' : 'collapse'} the ${title} view`, 300);
}

/** Give the Kernel view the side bar: collapse Variables and Call Stack, expand Kernel (it starts collapsed). */
export async function showKernelView(page: Page): Promise<void> {
    await page.locator('.part.sidebar .pane-header[aria-label^="Kernel " i]').first().waitFor({ state: 'visible', timeout: 60_000 });
    for (const [title, open] of [['Variables', false], ['Watch', false], ['Call Stack', false], ['Loaded Scripts', false], ['Breakpoints', false], ['Kernel', true]] as const) {
        await setSection(page, title, open);
    }
}
