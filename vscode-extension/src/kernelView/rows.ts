/**
 * What each row of the Kernel view says: labels, descriptions, tooltips, icons and the task a row
 * selects, computed from the adapter's `vmcore/*` answers. Kept apart from `kernelTree.ts` (which
 * turns these into `vscode.TreeItem`s) and free of any `vscode` import, so that plain mocha can test
 * it on real adapter output.
 */
import { isEmpty, KernelFilter } from './filter';
import type { BlockedRow, CpuRow, GroupFrame, ModuleRow, StackGroup, StackGroupsBody, SummaryBody } from './protocol';

/** A group's Tasks node lists at most this many members (then "… N more"). */
export const MAX_MEMBERS = 200;

/** The text of one row; `icon` is a codicon name, `threadId` the task a click selects. */
export interface RowText {
    label: string;
    description?: string;
    tooltip?: string;
    icon?: string;
    threadId?: number | null;
}

/** `CPU0  PID 310 labcrash [R]`, `in labbug_walk  (crashed)`. */
export function cpuRow(cpu: CpuRow): RowText {
    return {
        label: `CPU${cpu.cpu}  PID ${cpu.pid} ${cpu.comm} [${cpu.state}]`,
        description: `${cpu.function !== null ? `in ${cpu.function}` : ''}${cpu.crashed ? '  (crashed)' : ''}`,
        icon: cpu.crashed ? 'flame' : cpu.idle ? 'debug-pause' : 'play',
        threadId: cpu.threadId,
    };
}

/** The first row of Stack groups: how many tasks and groups, or how many groups the filter keeps. */
export function groupsHeader(body: StackGroupsBody, filter: KernelFilter, shown: number): RowText {
    const label = isEmpty(filter)
        ? `${body.taskCount} tasks in ${body.groupCount} groups`
        : `${shown} of ${body.groupCount} groups match '${filter.text}'`;
    return { label, description: `${body.seconds.toFixed(2)} s` };
}

/** `S:3 D:2`: a group's tasks per state. */
export function groupStates(group: StackGroup): string {
    return Object.entries(group.states)
        .map(([s, n]) => `${s}:${n}`)
        .join(' ');
}

/** The tree item id of a group: its functions, so that expansion survives a refresh. */
export function groupId(group: StackGroup): string {
    return `group:${group.frames.map((f) => f.function).join('<')}`;
}

/** The hover text of a group: its size and every frame, innermost first. */
export function groupTooltip(group: StackGroup): string {
    return `${group.count} tasks (${groupStates(group)}) share this stack:\n${group.frames.map((f) => f.function).join('\n')}`;
}

/** `[labbug]` after a frame of a module; nothing for the kernel itself or an unknown module. */
export function frameModuleTag(frame: GroupFrame): string | undefined {
    return frame.module !== null && frame.module !== 'kernel' ? `[${frame.module}]` : undefined;
}

/**
 * The Tasks rows of a group: its first `max` members named as `threads` names them, and a last
 * "… N more" row when the group is bigger.
 */
export function memberRows(group: StackGroup, names: Map<number, string>, max = MAX_MEMBERS): { tasks: RowText[]; more: string | undefined } {
    const tasks = group.threadIds.slice(0, max).map((id) => ({ label: names.get(id) ?? `thread ${id}`, threadId: id }));
    return { tasks, more: group.count > max ? `… ${group.count - max} more` : undefined };
}

/** What Blocked shows when no row is left: no D task at all, or none that the filter keeps. */
export function blockedEmptyText(allTasks: number): string {
    return allTasks === 0 ? 'No task in D state' : 'No blocked task matches the filter';
}

/** The row under a lock: its owner (clickable), or why there is none. */
export function lockOwnerRow(lock: NonNullable<BlockedRow['lock']>): RowText {
    if (lock.owner !== null) {
        return {
            label: `owner: ${lock.owner.name}`,
            description: lock.ownerIsReaderHint ? ' (last reader)' : '',
            icon: 'person',
            threadId: lock.owner.threadId,
        };
    }
    return { label: lock.ownerTask !== null ? `owner: task ${lock.ownerTask} (not in the task list)` : 'no owner recorded' };
}

/** The Panic section's first row: the oops line (else the panic), with the panic beside it when they differ. */
export function panicHeadline(summary: SummaryBody): RowText {
    return {
        label: summary.oops ?? summary.panic ?? 'No panic in the log',
        description: summary.panic !== summary.oops ? summary.panic ?? undefined : undefined,
        icon: 'flame',
    };
}

/** `→ labbug_walk`, `labbug.c:105`: the faulting frame's row, or undefined without a crashed task. */
export function faultRow(summary: SummaryBody): RowText | undefined {
    const f = summary.faultingFrame;
    if (f === null) {
        return undefined;
    }
    const where = f.source?.name !== undefined ? `${f.source.name}:${f.line}` : '';
    return {
        label: `→ ${f.name}`,
        description: where,
        tooltip: `The faulting frame: ${f.name} ${where} (click to select the crashed task and open the line)`,
        icon: 'debug-breakpoint-function',
    };
}

/**
 * Whether a module's `symbolStatus` says its debug info is in use. The adapter's phrases
 * (dump/kernel/modules.py) are "Symbols loaded", "Symbols not needed", and for the missing cases
 * "Symbols not found (…)", "Symbols not loaded", "Symbols incomplete (…)".
 */
export function symbolsOk(status: string | undefined): boolean {
    return status !== undefined && /^symbols (loaded|not needed)\b/i.test(status);
}

/** A module's row: taint and debug-info status; a warning icon when its symbols are missing. */
export function moduleRow(m: ModuleRow): RowText {
    const taint = m.taints !== undefined && m.taints !== '' ? `taint ${m.taints}` : '';
    return {
        label: m.name,
        description: [taint, m.symbolStatus ?? ''].filter((s) => s !== '').join(' · '),
        tooltip: m.path,
        icon: symbolsOk(m.symbolStatus) ? 'pass' : 'warning',
    };
}
