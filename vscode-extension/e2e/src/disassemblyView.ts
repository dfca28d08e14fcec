/**
 * VS Code's Disassembly view (an editor tab, VS Code 1.100's `.disassembly-view` table), read from the
 * DOM: each row's aria-label is "Address: …, Bytes: …, Instruction: …", the row of the focused frame's
 * instruction pointer carries the `codicon-debug-stackframe` marker, and a row whose source line
 * changes shows that line (`  91: \ttext`) above the instruction.
 */
import type { Page } from 'playwright-core';

import { poll } from './timeouts';
import { runCommand } from './workbench';

export interface InstructionRow {
    address: string;
    bytes: string;
    instruction: string;
    /** The source line shown with this row ("91: total = …"), when the line changes here. */
    source: string;
    /** The row has the debugger's stack-frame marker (the focused frame's instruction pointer). */
    isStackFrame: boolean;
    /** The row's background (the top stack frame's highlight colour, or transparent). */
    background: string;
}

/** Run "Open Disassembly View" (on the focused stack frame) and wait until its rows are rendered. */
export async function openDisassemblyView(page: Page, timeoutMs = 30_000): Promise<void> {
    await runCommand(page, 'Open Disassembly View');
    await page.locator('.disassembly-view .monaco-list-row[aria-label^="Address: "]').first().waitFor({ state: 'visible', timeout: timeoutMs });
}

/** The rendered rows of the Disassembly view, top to bottom (the list is virtual: only these exist). */
export async function instructionRows(page: Page): Promise<InstructionRow[]> {
    return page.evaluate(() => {
        const rows = Array.from(document.querySelectorAll('.disassembly-view .monaco-list-row'));
        rows.sort((a, b) => parseFloat((a as HTMLElement).style.top) - parseFloat((b as HTMLElement).style.top));
        const out: InstructionRow[] = [];
        for (const row of rows) {
            const m = /^Address: (\S+), Bytes: (.*?), Instruction: (.*)$/.exec(row.getAttribute('aria-label') ?? '');
            if (m === null) {
                continue;
            }
            out.push({
                address: m[1],
                bytes: m[2],
                instruction: m[3],
                source: (row.querySelector('.sourcecode')?.textContent ?? '').trim(),
                isStackFrame: row.querySelector('.codicon-debug-stackframe') !== null,
                background: (row.querySelector('.instruction') as HTMLElement | null)?.style.background ?? '',
            });
        }
        return out;
    });
}

/**
 * Scroll the Disassembly view until the row at `address` is rendered and return it. VS Code centres
 * the instruction pointer when the view opens, but not when it is reopened on the same frame, so this
 * scrolls towards the address like a person would.
 */
export async function revealInstruction(page: Page, address: string, timeoutMs = 20_000): Promise<InstructionRow> {
    const target = BigInt(address);
    const list = page.locator('.disassembly-view .monaco-list').first();
    return poll(
        async () => {
            const rows = await instructionRows(page);
            const found = rows.find((r) => BigInt(r.address) === target);
            if (found !== undefined) {
                return found;
            }
            if (rows.length > 0) {
                const below = BigInt(rows[rows.length - 1].address) < target;
                await list.hover();
                await page.mouse.wheel(0, below ? 300 : -300);
            }
            return undefined;
        },
        timeoutMs,
        `instruction ${address} in the Disassembly view`,
        150,
    );
}
