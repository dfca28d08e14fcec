/**
 * The Kernel tree view: Panic, CPUs, Stack groups, Blocked and Modules of the active `vmcore`
 * session. Rows that stand for a task select it in the Call Stack when clicked (the adapter re-sends
 * `stopped` for it); the faulting frame also opens its source.
 */
import * as vscode from 'vscode';

import { blockedMatches, cpuMatches, groupLabel, groupMatches, KernelFilter, NO_FILTER } from './filter';
import { KernelData, StackGroup } from './protocol';
import {
    blockedEmptyText,
    cpuRow,
    faultRow,
    frameModuleTag,
    groupId,
    groupsHeader,
    groupStates,
    groupTooltip,
    lockOwnerRow,
    memberRows,
    moduleRow,
    panicHeadline,
} from './rows';

export const SELECT_TASK_COMMAND = 'vmcore-dap.kernelView.selectTask';
export const OPEN_FAULT_COMMAND = 'vmcore-dap.kernelView.openFault';

type Section = 'panic' | 'cpus' | 'groups' | 'blocked' | 'modules';

export class KernelNode extends vscode.TreeItem {
    constructor(
        label: string | vscode.TreeItemLabel,
        collapsible: vscode.TreeItemCollapsibleState,
        readonly children?: () => Promise<KernelNode[]>,
    ) {
        super(label, collapsible);
    }
}

function leaf(label: string, description?: string, tooltip?: string): KernelNode {
    const node = new KernelNode(label, vscode.TreeItemCollapsibleState.None);
    node.description = description;
    node.tooltip = tooltip ?? (description !== undefined ? `${label} ${description}` : label);
    return node;
}

function taskNode(label: string, threadId: number | null, description?: string, icon = 'debug-stackframe'): KernelNode {
    const node = leaf(label, description);
    node.iconPath = new vscode.ThemeIcon(icon);
    if (threadId !== null) {
        node.command = { command: SELECT_TASK_COMMAND, title: 'Select in Call Stack', arguments: [threadId] };
        node.contextValue = 'vmcoreTask';
    }
    return node;
}

export class KernelTreeProvider implements vscode.TreeDataProvider<KernelNode> {
    private readonly changed = new vscode.EventEmitter<KernelNode | undefined>();
    readonly onDidChangeTreeData = this.changed.event;
    data: KernelData | undefined;
    filter: KernelFilter = NO_FILTER;

    setSession(session: vscode.DebugSession | undefined): void {
        this.data = session !== undefined && session.type === 'vmcore' ? new KernelData(session) : undefined;
        this.changed.fire(undefined);
    }

    setFilter(filter: KernelFilter): void {
        this.filter = filter;
        this.changed.fire(undefined);
    }

    refresh(): void {
        if (this.data !== undefined) {
            this.data = new KernelData(this.data.session);
        }
        this.changed.fire(undefined);
    }

    getTreeItem(element: KernelNode): vscode.TreeItem {
        return element;
    }

    async getChildren(element?: KernelNode): Promise<KernelNode[]> {
        const data = this.data;
        if (data === undefined) {
            return [];
        }
        if (element !== undefined) {
            return element.children !== undefined ? element.children() : [];
        }
        const sections: [Section, string, string][] = [
            ['panic', 'Panic', 'error'],
            ['cpus', 'CPUs', 'server-process'],
            ['groups', 'Stack groups', 'layers'],
            ['blocked', 'Blocked', 'lock'],
            ['modules', 'Modules', 'package'],
        ];
        return sections.map(([section, label, icon]) => {
            const node = new KernelNode(label, vscode.TreeItemCollapsibleState.Expanded, () => this.section(data, section));
            node.iconPath = new vscode.ThemeIcon(icon);
            node.id = `section:${section}`;
            return node;
        });
    }

    private async section(data: KernelData, section: Section): Promise<KernelNode[]> {
        try {
            switch (section) {
                case 'panic':
                    return await this.panic(data);
                case 'cpus':
                    return await this.cpus(data);
                case 'groups':
                    return await this.groups(data);
                case 'blocked':
                    return await this.blocked(data);
                case 'modules':
                    return await this.modules(data);
            }
        } catch (err) {
            return [leaf(`Cannot read ${section}: ${err instanceof Error ? err.message : String(err)}`)];
        }
    }

    private async panic(data: KernelData): Promise<KernelNode[]> {
        const s = await data.summary();
        const nodes: KernelNode[] = [];
        const head = panicHeadline(s);
        const headline = leaf(head.label, head.description);
        headline.iconPath = new vscode.ThemeIcon(head.icon!);
        nodes.push(headline);
        const f = faultRow(s);
        if (f !== undefined) {
            const fault = taskNode(f.label, null, f.description, f.icon);
            fault.command = { command: OPEN_FAULT_COMMAND, title: 'Show the faulting frame', arguments: [] };
            fault.tooltip = f.tooltip;
            nodes.push(fault);
        }
        nodes.push(leaf(s.taintDescription));
        const facts = new KernelNode('sys', vscode.TreeItemCollapsibleState.Collapsed, async () =>
            s.facts.map((f) => leaf(f.name, f.value)),
        );
        facts.iconPath = new vscode.ThemeIcon('info');
        const log = new KernelNode('Kernel log (last lines)', vscode.TreeItemCollapsibleState.Collapsed, async () =>
            s.logTail.map((line) => leaf(line)),
        );
        log.iconPath = new vscode.ThemeIcon('output');
        nodes.push(facts, log);
        return nodes;
    }

    private async cpus(data: KernelData): Promise<KernelNode[]> {
        const body = await data.cpus();
        return body.cpus
            .filter((c) => cpuMatches(this.filter, c))
            .map((c) => {
                const row = cpuRow(c);
                return taskNode(row.label, row.threadId ?? null, row.description, row.icon);
            });
    }

    private async groups(data: KernelData): Promise<KernelNode[]> {
        const body = await data.stackGroups();
        const shown = body.groups.filter((g) => groupMatches(this.filter, g));
        const nodes = shown.map((g, i) => this.groupNode(data, g, i));
        const header = groupsHeader(body, this.filter, shown.length);
        return [leaf(header.label, header.description), ...nodes];
    }

    private groupNode(data: KernelData, group: StackGroup, index: number): KernelNode {
        const node = new KernelNode(groupLabel(group), vscode.TreeItemCollapsibleState.Collapsed, async () => {
            const frames = new KernelNode(`Frames (${group.frames.length})`, vscode.TreeItemCollapsibleState.Expanded, async () =>
                group.frames.map((f) => {
                    const row = leaf(f.function, frameModuleTag(f));
                    row.iconPath = new vscode.ThemeIcon('symbol-function');
                    return row;
                }),
            );
            const tasks = new KernelNode(`Tasks (${group.count})`, vscode.TreeItemCollapsibleState.Collapsed, async () => {
                const names = await data.threadNames();
                const members = memberRows(group, names);
                const rows = members.tasks.map((t) => taskNode(t.label, t.threadId ?? null));
                if (members.more !== undefined) {
                    rows.push(leaf(members.more));
                }
                return rows;
            });
            return [frames, tasks];
        });
        node.id = groupId(group);
        node.description = groupStates(group);
        node.tooltip = groupTooltip(group);
        node.iconPath = new vscode.ThemeIcon(index === 0 ? 'flame' : 'layers');
        node.contextValue = 'vmcoreStackGroup';
        return node;
    }

    private async blocked(data: KernelData): Promise<KernelNode[]> {
        const body = await data.blocked();
        const rows = body.tasks.filter((t) => blockedMatches(this.filter, t));
        if (rows.length === 0) {
            return [leaf(blockedEmptyText(body.tasks.length))];
        }
        return rows.map((t) => {
            const node = new KernelNode(t.name, vscode.TreeItemCollapsibleState.Expanded, async () => {
                if (t.lock === null) {
                    return [leaf('waits for something that is not a mutex, rwsem or completion')];
                }
                const lock = t.lock;
                const lockNode = new KernelNode(lock.description, vscode.TreeItemCollapsibleState.Expanded, async () => {
                    const owner = lockOwnerRow(lock);
                    return [owner.threadId !== undefined ? taskNode(owner.label, owner.threadId, owner.description, owner.icon) : leaf(owner.label)];
                });
                lockNode.iconPath = new vscode.ThemeIcon('lock');
                lockNode.description = `in ${lock.function}`;
                return [lockNode];
            });
            node.iconPath = new vscode.ThemeIcon('watch');
            node.description = `waited ${t.waited}`;
            if (t.threadId !== null) {
                node.command = { command: SELECT_TASK_COMMAND, title: 'Select in Call Stack', arguments: [t.threadId] };
            }
            return node;
        });
    }

    private async modules(data: KernelData): Promise<KernelNode[]> {
        const body = await data.modules();
        return body.modules.map((m) => {
            const text = moduleRow(m);
            const row = leaf(text.label, text.description, text.tooltip);
            row.iconPath = new vscode.ThemeIcon(text.icon!);
            return row;
        });
    }
}
