/**
 * Drives the VS Code workbench in the browser through its DOM, the way a person would: the command
 * palette, the Run and Debug views, the editor. Selectors are VS Code 1.100's own class names.
 */
import type { Locator, Page } from 'playwright-core';

import { poll } from './timeouts';

/** Wait until the workbench has loaded the workspace (Explorer and status bar are there). */
export async function waitForWorkbench(page: Page, timeoutMs = 60_000): Promise<void> {
    await page.locator('.monaco-workbench .part.statusbar').waitFor({ state: 'visible', timeout: timeoutMs });
    await page.locator('.monaco-workbench .part.sidebar').waitFor({ state: 'visible', timeout: timeoutMs });
}

/**
 * Run `label` from the command palette. The first F1 may list only "similar commands" while the
 * workbench is still registering its commands, so the label is typed again until the exact row is
 * there, and the row is clicked (Enter once ran a different command).
 */
export async function runCommand(page: Page, label: string, timeoutMs = 30_000): Promise<void> {
    const input = page.locator('.quick-input-widget input.input');
    const row = page
        .locator('.quick-input-widget .monaco-list-row')
        .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(label)}$`) }) });
    await poll(
        async () => {
            if (!(await input.isVisible())) {
                await page.keyboard.press('F1');
                await input.waitFor({ state: 'visible', timeout: 3_000 });
            }
            // Filling the same text again would not refilter: change it first. Short timeouts: an
            // editor that opens meanwhile takes the focus and closes the palette; then press F1 again.
            await input.fill('>', { timeout: 2_000 });
            await input.fill(`>${label}`, { timeout: 2_000 });
            try {
                await row.first().waitFor({ state: 'visible', timeout: 2_500 });
            } catch {
                return undefined;
            }
            await row.first().click({ timeout: 2_000 });
            return true;
        },
        timeoutMs,
        `command palette row '${label}'`,
    );
}

/** The Call Stack tree's rows. */
export function callStackRows(page: Page): Locator {
    return page.locator('.debug-pane .debug-call-stack .monaco-list-row');
}

/** The thread rows of the Call Stack, in display order, as their names. */
export async function threadNames(page: Page): Promise<string[]> {
    return page.locator('.debug-pane .debug-call-stack .thread > .name').allInnerTexts();
}

export interface FrameRow {
    name: string;
    file: string;
    line: string;
}

/** The stack frame rows shown under the thread named `threadPrefix` (until the next thread row). */
export async function framesUnder(page: Page, threadPrefix: string): Promise<FrameRow[]> {
    return page.evaluate((prefix) => {
        const rows = Array.from(document.querySelectorAll('.debug-pane .debug-call-stack .monaco-list-row'));
        rows.sort((a, b) => parseFloat((a as HTMLElement).style.top) - parseFloat((b as HTMLElement).style.top));
        const out: { name: string; file: string; line: string }[] = [];
        let inside = false;
        for (const row of rows) {
            const thread = row.querySelector('.thread > .name');
            if (thread !== null) {
                inside = (thread.textContent ?? '').startsWith(prefix);
                continue;
            }
            const frame = row.querySelector('.stack-frame');
            if (inside && frame !== null) {
                out.push({
                    name: frame.querySelector('.label')?.textContent?.trim() ?? '',
                    file: frame.querySelector('.file-name')?.textContent?.trim() ?? '',
                    // shown as "line:column"
                    line: (frame.querySelector('.line-number')?.textContent?.trim() ?? '').split(':')[0],
                });
            }
        }
        return out;
    }, threadPrefix);
}

export interface HighlightedLine {
    /** The title of the active editor tab (the file name). */
    tab: string;
    /** The line number shown beside the stack-frame highlight. */
    line: number;
    /** 'top' for the top stack frame's decoration, 'focused' for a selected lower frame. */
    kind: 'top' | 'focused';
}

/** The editor line that carries the debugger's stack-frame highlight, if any is rendered. */
export async function highlightedLine(page: Page): Promise<HighlightedLine | undefined> {
    return page.evaluate(() => {
        const editor = document.querySelector('.editor-group-container.active .monaco-editor');
        if (editor === null) {
            return undefined;
        }
        const deco = editor.querySelector('.view-overlays .debug-top-stack-frame-line, .view-overlays .debug-focused-stack-frame-line');
        const lineDiv = deco?.parentElement;
        if (deco == null || lineDiv == null) {
            return undefined;
        }
        const top = lineDiv.style.top;
        const margin = Array.from(editor.querySelectorAll('.margin-view-overlays > div')).find(
            (d) => (d as HTMLElement).style.top === top,
        );
        const number = Number(margin?.querySelector('.line-numbers')?.textContent?.trim());
        const tab = document.querySelector('.editor-group-container.active .tab.active .label-name')?.textContent?.trim() ?? '';
        if (!Number.isFinite(number) || number <= 0) {
            return undefined;
        }
        return {
            tab,
            line: number,
            kind: deco.classList.contains('debug-top-stack-frame-line') ? 'top' : 'focused',
        } as const;
    });
}

/** The text of the exception widget under the stopped line, if shown. */
export async function exceptionWidgetText(page: Page): Promise<string | undefined> {
    const widget = page.locator('.monaco-editor .exception-widget');
    if ((await widget.count()) === 0) {
        return undefined;
    }
    return (await widget.first().innerText()).replace(/\s+/g, ' ').trim();
}

/** Variables view rows: scope headings and variables, in display order. */
export function variableRows(page: Page): Locator {
    return page.locator('.debug-pane .debug-variables .monaco-list-row');
}

/** The row named `name` (a whole name: `[1]` is not `[10]`) at tree depth `level` of the Variables view. */
export function variableRow(page: Page, name: string, level: number): Locator {
    return variableRows(page)
        .and(page.locator(`[aria-level="${level}"]`))
        .filter({ has: page.locator('.name', { hasText: new RegExp(`^${name.replace(/[[\]]/g, '\\$&')}(?![\\w\\]])`) }) })
        .first();
}

/** Scroll the Variables view down (its rows are virtual: only those on screen exist) until `target` shows. */
export async function revealVariable(page: Page, target: Locator, what: string, timeoutMs = 30_000): Promise<void> {
    const pane = page.locator('.debug-pane .debug-variables').first();
    await poll(
        async () => {
            if ((await target.count()) > 0 && (await target.isVisible())) {
                return true;
            }
            const box = await pane.boundingBox();
            if (box !== null) {
                await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
                await page.mouse.wheel(0, 120);
            }
            return undefined;
        },
        timeoutMs,
        `scroll the Variables view to ${what}`,
        300,
    );
}

/** Expand a tree row by its twistie (a click on the label may only select it); wait until it is open. */
export async function expandRow(row: Locator, what: string, timeoutMs = 15_000): Promise<void> {
    await row.waitFor({ state: 'visible', timeout: timeoutMs });
    await poll(
        async () => {
            if ((await row.getAttribute('aria-expanded')) === 'true') {
                return true;
            }
            await row.locator('.monaco-tl-twistie').click({ timeout: 2_000 });
            await row.page().waitForTimeout(300);
            return (await row.getAttribute('aria-expanded')) === 'true' ? true : undefined;
        },
        timeoutMs,
        `expand ${what}`,
        500,
    );
}

/** Expand the scope named `scope` in the Variables view (no-op when already expanded). */
export async function expandScope(page: Page, scope: string, timeoutMs = 15_000): Promise<void> {
    const row = variableRows(page).filter({ has: page.locator('.scope', { hasText: new RegExp(`^${escapeRegExp(scope)}$`) }) });
    await expandRow(row.first(), `the ${scope} scope`, timeoutMs);
}

/** Name -> value of the variables listed under `scope`, until the next scope heading. */
export async function variablesOf(page: Page, scope: string): Promise<Map<string, string>> {
    const pairs = await page.evaluate((wanted) => {
        const rows = Array.from(document.querySelectorAll('.debug-pane .debug-variables .monaco-list-row'));
        rows.sort((a, b) => parseFloat((a as HTMLElement).style.top) - parseFloat((b as HTMLElement).style.top));
        const out: [string, string][] = [];
        let inside = false;
        for (const row of rows) {
            const heading = row.querySelector('.scope');
            if (heading !== null) {
                inside = (heading.textContent ?? '').trim() === wanted;
                continue;
            }
            if (inside && row.getAttribute('aria-level') === '2') {
                // rendered as "name =" in 1.100
                const name = (row.querySelector('.name')?.textContent ?? '').replace(/\s*[=:]\s*$/, '').trim();
                const value = row.querySelector('.value')?.textContent?.trim() ?? '';
                out.push([name, value]);
            }
        }
        return out;
    }, scope);
    return new Map(pairs);
}

export function escapeRegExp(s: string): string {
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Make the debug views readable in a screenshot: a wide side bar and the Watch, Breakpoints and
 * Loaded Scripts panes collapsed so Variables and Call Stack get the height.
 */
export async function arrangeDebugViews(page: Page, sideBarWidth = 620): Promise<void> {
    const sidebar = page.locator('.monaco-workbench .part.sidebar');
    const box = await sidebar.boundingBox();
    if (box !== null && box.width < sideBarWidth - 10) {
        const y = box.y + box.height / 2;
        await page.mouse.move(box.x + box.width + 1, y);
        await page.mouse.down();
        await page.mouse.move(box.x + sideBarWidth, y, { steps: 5 });
        await page.mouse.up();
    }
    for (const title of ['Watch', 'Breakpoints', 'Loaded Scripts']) {
        const header = page.locator('.part.sidebar .pane-header', { has: page.locator('h3.title', { hasText: new RegExp(`^${title}$`, 'i') }) });
        if ((await header.count()) > 0 && (await header.first().getAttribute('aria-expanded')) === 'true') {
            await header.first().click();
        }
    }
}

/**
 * Scroll the Call Stack until the thread row whose name starts with `prefix` is rendered (the list
 * is virtual: rows off screen do not exist in the DOM), then bring it near the top so its frames
 * have room below it. Returns a locator for that row.
 */
export async function revealThread(page: Page, prefix: string, timeoutMs = 30_000): Promise<Locator> {
    const list = page.locator('.debug-pane .debug-call-stack .monaco-list').first();
    const row = callStackRows(page)
        .filter({ has: page.locator('.thread > .name', { hasText: new RegExp(`^${escapeRegExp(prefix)}`) }) })
        .first();
    await poll(
        async () => {
            if ((await row.count()) > 0) {
                return true;
            }
            await list.hover();
            await page.mouse.wheel(0, 300);
            await page.waitForTimeout(150);
            return undefined;
        },
        timeoutMs,
        `thread '${prefix}' in the Call Stack`,
        0,
    );
    await scrollCallStackTo(page, row);
    return row;
}

/** Scroll the Call Stack so that `row` is its first visible row (room for its frames below). */
export async function scrollCallStackTo(page: Page, row: Locator): Promise<void> {
    const list = page.locator('.debug-pane .debug-call-stack .monaco-list').first();
    for (let attempt = 0; attempt < 5; attempt++) {
        const rowBox = await row.boundingBox();
        const listBox = await list.boundingBox();
        if (rowBox === null || listBox === null || Math.abs(rowBox.y - listBox.y) < rowBox.height) {
            return;
        }
        await list.hover();
        await page.mouse.wheel(0, rowBox.y - listBox.y);
        await page.waitForTimeout(400);
    }
}

/**
 * Run the item labelled `label` of the context menu that is open (after a right-click). VS Code arms
 * a menu item's mouse-up only 100 ms after the menu renders ("to avoid accidental clicks": the
 * release of the right button that opened it lands on an item), so a click made sooner than a person
 * could make one is dropped and the menu stays open. Click until the menu closes: running an item
 * closes it first, and nothing else closes it while the mouse stays on the menu.
 */
export async function runContextMenuItem(page: Page, label: string, timeoutMs = 10_000): Promise<void> {
    const item = page.locator('.context-view .action-item', { hasText: new RegExp(`^${escapeRegExp(label)}$`) }).first();
    await item.waitFor({ state: 'visible', timeout: timeoutMs });
    let clicked = false;
    await poll(
        async () => {
            // A slow action may close the menu after the wait below gave up: that click ran it.
            if (clicked && !(await item.isVisible())) {
                return true;
            }
            await item.click({ timeout: 2_000 });
            clicked = true;
            try {
                await item.waitFor({ state: 'hidden', timeout: 500 });
            } catch {
                return undefined;
            }
            return true;
        },
        timeoutMs,
        `run the context menu item '${label}' (the menu stayed open)`,
        0,
    );
}

/** Texts of the notification toasts currently shown. */
export async function notificationTexts(page: Page): Promise<string[]> {
    return page.locator('.notifications-toasts .notification-toast').allInnerTexts();
}

/**
 * Pick `item` in the open quick pick (e.g. a launch configuration after "Debug: Select and Start
 * Debugging"): typed to filter, then clicked.
 */
export async function pickQuickItem(page: Page, item: string, timeoutMs = 15_000): Promise<void> {
    const input = page.locator('.quick-input-widget input.input');
    const row = page
        .locator('.quick-input-widget .monaco-list-row')
        .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(item)}$`) }) });
    await poll(
        async () => {
            // Wait for the new picker: the command palette's text starts with '>'.
            const prefix = (await input.isVisible()) ? await input.inputValue() : '>';
            if (prefix.startsWith('>')) {
                return undefined;
            }
            // Keep the picker's own prefix ("debug " for launch configurations): it selects the picker.
            await input.fill(`${prefix}${item}`);
            await row.first().waitFor({ state: 'visible', timeout: 2_000 });
            await row.first().click({ timeout: 2_000 });
            return true;
        },
        timeoutMs,
        `quick pick item '${item}'`,
    );
}

/** The text of the visible Output view (the channel shown by a command such as "vmcore: Show adapter log"). */
export async function outputViewText(page: Page): Promise<string> {
    const lines = page.locator('.part.panel .monaco-editor .view-lines');
    // Monaco renders spaces as no-break spaces.
    return (await lines.allInnerTexts()).join('\n').replace(/\u00a0/g, ' ');
}
