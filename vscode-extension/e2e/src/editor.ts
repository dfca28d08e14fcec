/**
 * The active text editor as a person sees it, read from Monaco's DOM (VS Code 1.100): the text of a
 * numbered line, the breadcrumbs, the hover, the code lenses above a line, the squiggles on a line,
 * and the Problems panel. Lines are found by their number in the margin, because Monaco renders only
 * the visible lines and orders its line divs by position, not by number.
 */
import type { Page } from 'playwright-core';

import { poll } from './timeouts';
import { runCommand } from './workbench';

const EDITOR = '.editor-group-container.active .monaco-editor';

/** Move the cursor to `line` (and `column`, 1-based) with Go to Line, and wait until the status bar shows it. */
export async function goToLine(page: Page, line: number, column = 1): Promise<void> {
    const input = page.locator('.quick-input-widget input.input');
    await page.keyboard.press('Control+G');
    await input.waitFor({ state: 'visible', timeout: 5_000 });
    await input.fill(`:${line}:${column}`);
    await page.waitForTimeout(150);
    await page.keyboard.press('Enter');
    await poll(
        async () => ((await page.locator('.statusbar').innerText()).includes(`Ln ${line}, Col ${column}`) ? true : undefined),
        5_000,
        `cursor at line ${line}, column ${column}`,
    );
}

/** The text of line `line` of the active editor, if it is rendered (no-break spaces as spaces). */
export async function editorLineText(page: Page, line: number): Promise<string | undefined> {
    return page.evaluate(
        ([selector, wanted]) => {
            const editor = document.querySelector(selector);
            const margin = Array.from(editor?.querySelectorAll('.margin-view-overlays > div') ?? []).find(
                (d) => d.querySelector('.line-numbers')?.textContent?.trim() === String(wanted),
            ) as HTMLElement | undefined;
            if (editor == null || margin === undefined) {
                return undefined;
            }
            const view = Array.from(editor.querySelectorAll('.view-lines > .view-line')).find(
                (d) => (d as HTMLElement).style.top === margin.style.top,
            );
            return view?.textContent?.replace(/\u00a0/g, ' ');
        },
        [EDITOR, line] as const,
    );
}

/** The breadcrumbs of the active editor: the path segments of its file, then symbols. */
export async function breadcrumbs(page: Page): Promise<string[]> {
    const text = await page.locator('.editor-group-container.active .breadcrumbs-control').first().innerText();
    return text.split('\n').map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * Show the editor's language hover at the cursor ("Show or Focus Hover") and return its text. The
 * mouse is kept away from the editor: while debugging, a mouse hover shows the debugger's evaluation
 * instead of the language server's answer.
 */
export async function showHover(page: Page, timeoutMs = 20_000): Promise<string> {
    const hover = page.locator('.monaco-hover:not(.hidden) .monaco-hover-content').first();
    return poll(
        async () => {
            if (!(await hover.isVisible())) {
                await runCommand(page, 'Show or Focus Hover');
                await hover.waitFor({ state: 'visible', timeout: 3_000 });
            }
            const text = (await hover.innerText()).trim();
            // "Loading..." first while the server answers.
            return text !== '' && !/^Loading/.test(text) ? text : undefined;
        },
        timeoutMs,
        'the language hover at the cursor',
        500,
    );
}

/** The code lenses rendered directly above line `line` of the active editor. */
export async function codeLensesAbove(page: Page, line: number): Promise<string[]> {
    return page.evaluate(
        ([selector, wanted]) => {
            const editor = document.querySelector(selector);
            const margin = Array.from(editor?.querySelectorAll('.margin-view-overlays > div') ?? []).find(
                (d) => d.querySelector('.line-numbers')?.textContent?.trim() === String(wanted),
            );
            if (editor == null || margin === undefined) {
                return [];
            }
            const lineTop = margin.getBoundingClientRect().top;
            return Array.from(editor.querySelectorAll('.codelens-decoration'))
                .filter((lens) => {
                    const box = lens.getBoundingClientRect();
                    return getComputedStyle(lens).visibility !== 'hidden' && box.bottom <= lineTop + 1 && box.bottom >= lineTop - box.height;
                })
                .map((lens) => lens.textContent ?? '');
        },
        [EDITOR, line] as const,
    );
}

/** The squiggle classes (`squiggly-error`, `squiggly-info`, …) drawn on line `line` of the active editor. */
export async function squigglesOn(page: Page, line: number): Promise<string[]> {
    return page.evaluate(
        ([selector, wanted]) => {
            const editor = document.querySelector(selector);
            const margin = Array.from(editor?.querySelectorAll('.margin-view-overlays > div') ?? []).find(
                (d) => d.querySelector('.line-numbers')?.textContent?.trim() === String(wanted),
            ) as HTMLElement | undefined;
            if (editor == null || margin === undefined) {
                return [];
            }
            const overlay = Array.from(editor.querySelectorAll('.view-overlays > div')).find(
                (d) => (d as HTMLElement).style.top === margin.style.top,
            );
            return Array.from(overlay?.querySelectorAll('[class*="squiggly-"]') ?? []).flatMap((e) =>
                Array.from(e.classList).filter((c) => c.startsWith('squiggly-')),
            );
        },
        [EDITOR, line] as const,
    );
}

/**
 * Open the Problems panel and return its rows' accessible labels, e.g. "Error: <message> at line 91
 * and character 2. generated by vmcore".
 */
export async function problems(page: Page): Promise<string[]> {
    await runCommand(page, 'View: Focus Problems (Errors, Warnings, Infos)');
    const rows = page.locator('.markers-panel .monaco-list-row');
    await rows.first().waitFor({ state: 'visible', timeout: 10_000 });
    return rows.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
}
