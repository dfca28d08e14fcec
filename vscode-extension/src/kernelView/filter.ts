/**
 * The Kernel view's filter: `state:D module:labbug mutex` keeps the stack groups, CPUs and blocked
 * tasks that match every term. A bare word matches a function name (substring); `state:` takes task
 * state letters (any of them); `module:` a module name of a frame (substring).
 */
import type { BlockedRow, CpuRow, StackGroup } from './protocol';

export interface KernelFilter {
    states: string[];
    modules: string[];
    functions: string[];
    text: string;
}

export const NO_FILTER: KernelFilter = { states: [], modules: [], functions: [], text: '' };

/** Parse the filter text; unknown `key:` prefixes are an error the user sees. */
export function parseFilter(text: string): KernelFilter {
    const filter: KernelFilter = { states: [], modules: [], functions: [], text: text.trim() };
    for (const term of text.split(/\s+/).filter((t) => t.length > 0)) {
        const m = /^(\w+):(.*)$/.exec(term);
        if (m === null) {
            filter.functions.push(term.toLowerCase());
        } else if (m[1] === 'state') {
            filter.states.push(...m[2].toUpperCase().split('').filter((c) => c !== ','));
        } else if (m[1] === 'module') {
            filter.modules.push(m[2].toLowerCase());
        } else if (m[1] === 'function') {
            filter.functions.push(m[2].toLowerCase());
        } else {
            throw new Error(`Unknown filter '${m[1]}:' in '${term}' (use state:, module:, function: or a bare function name)`);
        }
    }
    return filter;
}

export function isEmpty(filter: KernelFilter): boolean {
    return filter.states.length === 0 && filter.modules.length === 0 && filter.functions.length === 0;
}

function stateMatches(filter: KernelFilter, letters: string): boolean {
    return filter.states.length === 0 || filter.states.some((s) => letters.toUpperCase().includes(s));
}

export function groupMatches(filter: KernelFilter, group: StackGroup): boolean {
    const functions = group.frames.map((f) => f.function.toLowerCase());
    const modules = group.frames.map((f) => (f.module ?? '').toLowerCase());
    return (
        stateMatches(filter, group.stateLetters) &&
        filter.functions.every((w) => functions.some((f) => f.includes(w))) &&
        filter.modules.every((w) => modules.some((m) => m.includes(w)))
    );
}

export function cpuMatches(filter: KernelFilter, cpu: CpuRow): boolean {
    const fn = (cpu.function ?? '').toLowerCase();
    return stateMatches(filter, cpu.state) && filter.functions.every((w) => fn.includes(w));
}

export function blockedMatches(filter: KernelFilter, row: BlockedRow): boolean {
    const text = `${row.lock?.function ?? ''} ${row.lock?.symbol ?? ''}`.toLowerCase();
    return stateMatches(filter, row.state) && filter.functions.every((w) => text.includes(w));
}

/** `schedule ← do_nanosleep ← …`: the first frames of a group, innermost first. */
export function chain(group: StackGroup, frames = 4): string {
    const names = group.frames.slice(0, frames).map((f) => f.function);
    return names.join(' ← ') + (group.frames.length > frames ? ' ← …' : '');
}

/** `×312 S  __schedule ← schedule ← do_nanosleep ← …`. */
export function groupLabel(group: StackGroup): string {
    return `×${group.count} ${group.stateLetters}  ${chain(group)}`;
}
