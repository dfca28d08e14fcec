/**
 * The adapter's answers the Kernel view and the Stacks picture are built from, fetched from a real
 * session (see adapterSession.ts), plus what the `threads` request says independently of them: each
 * task's thread id, PID and state letter as its thread name shows it (`PID 310 labcrash [R] CPU0`).
 */
import type { BlockedRow, CpuRow, ModuleRow, StackGroupsBody, SummaryBody } from '../../../src/kernelView/protocol';
import { AdapterSession, openSample, SAMPLE_TIMEOUT_MS } from './adapterSession';

export interface ThreadFacts {
    id: number;
    name: string;
    pid: number;
    state: string;
}

export interface KernelAnswers {
    stackGroups: StackGroupsBody;
    blocked: { tasks: BlockedRow[] };
    cpus: { cpus: CpuRow[] };
    summary: SummaryBody;
    modules: { modules: ModuleRow[] };
    threads: ThreadFacts[];
    /** thread id -> thread name, as the view gets it from `threads` */
    names: Map<number, string>;
}

export async function kernelAnswers(session: AdapterSession): Promise<KernelAnswers> {
    // As the view does (KernelData.threadNames): the groups first, which the adapter answers from the
    // whole task list (listed after the stop on a large dump), then `threads`, which then lists every task.
    const stackGroups = await session.request<StackGroupsBody>('vmcore/stackGroups');
    const threads = (await session.request<{ threads: { id: number; name: string }[] }>('threads')).threads.map((t) => {
        const m = /^PID (\d+) .* \[([A-Z]+)\]/.exec(t.name);
        if (m === null) {
            throw new Error(`thread name '${t.name}' is not 'PID <pid> <comm> [<state>] ...'`);
        }
        return { id: t.id, name: t.name, pid: Number(m[1]), state: m[2] };
    });
    return {
        stackGroups,
        blocked: await session.request('vmcore/blocked'),
        cpus: await session.request('vmcore/cpus'),
        summary: await session.request('vmcore/summary'),
        modules: await session.request('modules', { startModule: 0, moduleCount: 0 }),
        threads,
        names: new Map(threads.map((t) => [t.id, t.name])),
    };
}

/** The thread of `pid`; PIDs are unique except 0 (every CPU's idle task). */
export function threadOfPid(answers: KernelAnswers, pid: number): ThreadFacts {
    const found = answers.threads.filter((t) => t.pid === pid);
    if (found.length !== 1) {
        throw new Error(`${found.length} threads have PID ${pid}`);
    }
    return found[0];
}

/**
 * Register mocha hooks that open `scenario` in a real adapter before the suite, fetch its answers
 * and close it after (keeping its DAP trace when a test failed); returns getters for the suite.
 */
export function withKernelAnswers(scenario: string): { answers: () => KernelAnswers; session: () => AdapterSession } {
    let session: AdapterSession | undefined;
    let answers: KernelAnswers | undefined;
    let failed = false;
    before(async function () {
        this.timeout(SAMPLE_TIMEOUT_MS);
        session = await openSample(scenario);
        answers = await kernelAnswers(session);
    });
    afterEach(function () {
        failed ||= this.currentTest?.state === 'failed';
    });
    after(async function () {
        this.timeout(15_000);
        await session?.close(failed);
    });
    return {
        answers: () => answers ?? assertNever(`the ${scenario} session did not open`),
        session: () => session ?? assertNever(`the ${scenario} session did not open`),
    };
}

function assertNever(message: string): never {
    throw new Error(message);
}
