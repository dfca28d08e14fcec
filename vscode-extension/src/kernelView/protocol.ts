/**
 * The shapes of the adapter's custom `vmcore/*` responses (docs/custom-requests.md), and the calls
 * that fetch them from a debug session.
 */
import * as vscode from 'vscode';

export interface ThreadRef {
    threadId: number;
    pid: number;
    comm: string;
    state: string;
    name: string;
}

export interface DapSource {
    name?: string;
    path?: string;
    sourceReference?: number;
}

export interface SummaryBody {
    facts: { name: string; value: string }[];
    panic: string | null;
    oops: string | null;
    taint: string;
    taintDescription: string;
    report: string[];
    logTail: string[];
    crashedThreadId: number | null;
    faultingFrame: { threadId: number; name: string; line: number; source?: DapSource } | null;
}

export interface CpuRow {
    cpu: number;
    pid: number;
    comm: string;
    state: string;
    idle: boolean;
    function: string | null;
    threadId: number | null;
    crashed: boolean;
}

export interface GroupFrame {
    function: string;
    module: string | null;
    pc: string | null;
}

export interface StackGroup {
    count: number;
    states: Record<string, number>;
    stateLetters: string;
    frames: GroupFrame[];
    threadIds: number[];
    pids: number[];
}

export interface StackGroupsBody {
    taskCount: number;
    groupCount: number;
    seconds: number;
    unwound: number;
    groups: StackGroup[];
}

export interface BlockedRow {
    threadId: number | null;
    pid: number;
    comm: string;
    state: string;
    name: string;
    waited: string;
    lock: {
        kind: string;
        address: string | null;
        symbol: string | null;
        description: string;
        function: string;
        owner: ThreadRef | null;
        ownerTask: string | null;
        ownerIsReaderHint: boolean;
    } | null;
}

export interface ModuleRow {
    name: string;
    symbolStatus?: string;
    taints?: string;
    path?: string;
    isUserCode?: boolean;
}

/** Fetches the Kernel view's data from one `vmcore` session; each answer is requested once. */
export class KernelData {
    private readonly cache = new Map<string, Promise<unknown>>();

    constructor(readonly session: vscode.DebugSession) {}

    private once<T>(command: string, args?: object): Promise<T> {
        const key = command + JSON.stringify(args ?? {});
        let value = this.cache.get(key);
        if (value === undefined) {
            value = Promise.resolve(this.session.customRequest(command, args));
            value.catch(() => this.cache.delete(key));
            this.cache.set(key, value);
        }
        return value as Promise<T>;
    }

    summary(): Promise<SummaryBody> {
        return this.once('vmcore/summary');
    }
    cpus(): Promise<{ cpus: CpuRow[] }> {
        return this.once('vmcore/cpus');
    }
    stackGroups(): Promise<StackGroupsBody> {
        return this.once('vmcore/stackGroups');
    }
    blocked(): Promise<{ tasks: BlockedRow[] }> {
        return this.once('vmcore/blocked');
    }
    modules(): Promise<{ modules: ModuleRow[] }> {
        return this.once('modules', { startModule: 0, moduleCount: 0 });
    }
    threads(): Promise<{ threads: { id: number; name: string }[] }> {
        return this.once('threads');
    }
    /**
     * Every task's thread name. `vmcore/stackGroups` is awaited first: the adapter answers it from the
     * whole task list, which on a large dump (over 2,000 tasks) it completes only after the stop, so a
     * `threads` asked earlier would name the tasks of the stop alone. The view needs the groups anyway.
     */
    async threadNames(): Promise<Map<number, string>> {
        await this.stackGroups();
        const body = await this.threads();
        return new Map(body.threads.map((t) => [t.id, t.name]));
    }
}

/** Select a task in the Call Stack: the adapter re-sends `stopped` for it, asking for focus. */
export async function selectThread(session: vscode.DebugSession, threadId: number): Promise<void> {
    await session.customRequest('vmcore/selectThread', { threadId });
}

/** Open a DAP source at a line: a local file, or the adapter's content through a `debug:` URI. */
export async function openSource(session: vscode.DebugSession, source: DapSource | undefined, line: number): Promise<void> {
    if (source === undefined) {
        return;
    }
    let uri: vscode.Uri;
    if (source.sourceReference !== undefined && source.sourceReference > 0) {
        const query = `session=${encodeURIComponent(session.id)}&ref=${source.sourceReference}`;
        uri = vscode.Uri.from({ scheme: 'debug', path: source.path ?? source.name ?? 'source', query });
    } else if (source.path !== undefined) {
        uri = vscode.Uri.file(source.path);
    } else {
        return;
    }
    const position = new vscode.Position(Math.max(line - 1, 0), 0);
    await vscode.window.showTextDocument(uri, { selection: new vscode.Range(position, position), preview: true });
}
