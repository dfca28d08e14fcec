/**
 * What the Kernel view's rows say (src/kernelView/rows.ts and the group label of filter.ts) on the
 * real adapter's answers for `oops-null`: checked against the sample's manifest and the `threads`
 * request.
 */
import * as assert from 'assert';

import { groupLabel } from '../../src/kernelView/filter';
import {
    cpuRow,
    faultRow,
    frameModuleTag,
    groupId,
    groupTooltip,
    lockOwnerRow,
    MAX_MEMBERS,
    memberRows,
    moduleRow,
    panicHeadline,
} from '../../src/kernelView/rows';
import { threadOfPid, withKernelAnswers } from './support/kernelAnswers';

describe('Kernel view rows on the oops-null sample (real adapter)', function () {
    const real = withKernelAnswers('oops-null');

    it('labels a group ×count, its states and its first four functions, innermost first', () => {
        const { stackGroups } = real.answers();
        for (const g of stackGroups.groups) {
            const m = /^×(\d+) ([A-Z]+) {2}(.*?)( ← …)?$/.exec(groupLabel(g));
            assert.ok(m, `label '${groupLabel(g)}'`);
            assert.strictEqual(Number(m[1]), g.count);
            assert.strictEqual(m[2], g.stateLetters);
            assert.deepStrictEqual(m[3].split(' ← '), g.frames.slice(0, 4).map((f) => f.function));
            assert.strictEqual(m[4] !== undefined, g.frames.length > 4, `'…' only when frames are left out: '${groupLabel(g)}'`);
        }
        const sleepers = stackGroups.groups[0];
        assert.ok(groupLabel(sleepers).includes('do_nanosleep'), `the biggest group is the nanosleep pile-up: '${groupLabel(sleepers)}'`);
    });

    it('gives every group a distinct tree id (VS Code rejects duplicates) and a tooltip with every frame', () => {
        const { stackGroups } = real.answers();
        const ids = stackGroups.groups.map(groupId);
        assert.strictEqual(new Set(ids).size, ids.length, 'distinct group ids');
        for (const g of stackGroups.groups) {
            const lines = groupTooltip(g).split('\n');
            assert.match(lines[0], new RegExp(`^${g.count} tasks \\(`));
            assert.deepStrictEqual(lines.slice(1), g.frames.map((f) => f.function));
        }
    });

    it('tags module frames with their module, not the kernel itself nor <user mode>', () => {
        const { stackGroups } = real.answers();
        const frames = stackGroups.groups.flatMap((g) => g.frames);
        const tags = new Set(frames.map(frameModuleTag));
        assert.deepStrictEqual([...tags].sort(), ['[labbug]', undefined]);
        const user = frames.find((f) => f.function === '<user mode>');
        assert.ok(user, 'the spinning task is in user mode');
        assert.strictEqual(frameModuleTag(user), undefined);
    });

    it(`lists the first ${MAX_MEMBERS} members of the sleepers' group by thread name, then how many more`, () => {
        const answers = real.answers();
        const expected = real.session().sample.expected;
        const sleepers = answers.stackGroups.groups[0];
        assert.ok(sleepers.count >= Number(expected.sleepers) && sleepers.count > MAX_MEMBERS, `${sleepers.count} sleepers`);
        const rows = memberRows(sleepers, answers.names);
        assert.strictEqual(rows.tasks.length, MAX_MEMBERS);
        assert.strictEqual(rows.more, `… ${sleepers.count - MAX_MEMBERS} more`);
        rows.tasks.forEach((row, i) => {
            assert.ok(row.label.startsWith(`PID ${sleepers.pids[i]} `), `row ${i} '${row.label}' is PID ${sleepers.pids[i]}`);
            assert.strictEqual(row.threadId, sleepers.threadIds[i]);
        });
        const waiters = answers.stackGroups.groups.find((g) => g.stateLetters === 'D');
        assert.ok(waiters);
        const waitRows = memberRows(waiters, answers.names);
        assert.strictEqual(waitRows.more, undefined);
        assert.deepStrictEqual(
            waitRows.tasks.map((r) => r.threadId).sort((a, b) => a! - b!),
            (expected.d_state_pids ?? []).map((pid) => threadOfPid(answers, pid).id).sort((a, b) => a - b),
        );
    });

    it("names the mutex holder as the D tasks' lock owner, and the row selects the holder's thread", () => {
        const answers = real.answers();
        const expected = real.session().sample.expected;
        const holder = threadOfPid(answers, expected.mutex_holder_pid!);
        assert.strictEqual(answers.blocked.tasks.length, expected.d_state_pids?.length);
        for (const task of answers.blocked.tasks) {
            assert.ok(task.lock, `PID ${task.pid} has a lock`);
            const row = lockOwnerRow(task.lock);
            assert.strictEqual(row.label, `owner: ${holder.name}`);
            assert.strictEqual(row.threadId, holder.id);
            assert.strictEqual(row.icon, 'person');
        }
        const unknown = lockOwnerRow({ ...answers.blocked.tasks[0].lock!, owner: null });
        assert.match(unknown.label, /^owner: task 0x[0-9a-f]+ \(not in the task list\)$/);
        assert.strictEqual(unknown.threadId, undefined, 'an owner outside the task list cannot be selected');
    });

    it('shows each CPU with its task, the crashed one flagged and clickable', () => {
        const answers = real.answers();
        const expected = real.session().sample.expected;
        const rows = answers.cpus.cpus.map(cpuRow);
        const crashed = rows.find((r) => r.label.startsWith(`CPU${expected.crashed_cpu} `));
        assert.ok(crashed, rows.map((r) => r.label).join(', '));
        assert.strictEqual(crashed.label, `CPU${expected.crashed_cpu}  PID ${expected.crashed_pid} ${expected.crashed_comm} [R]`);
        assert.strictEqual(crashed.description, `in ${expected.function}  (crashed)`);
        assert.strictEqual(crashed.icon, 'flame');
        assert.strictEqual(crashed.threadId, threadOfPid(answers, expected.crashed_pid).id);
        const spinner = rows.find((r) => r.label.startsWith(`CPU${String(expected.spin_cpu)} `));
        assert.ok(spinner);
        assert.strictEqual(spinner.description, 'in <user mode>');
        assert.strictEqual(spinner.icon, 'play');
    });

    it('heads the Panic section with the oops line and the panic, then the faulting frame at its line', () => {
        const { summary } = real.answers();
        const expected = real.session().sample.expected;
        const head = panicHeadline(summary);
        assert.strictEqual(head.label, expected.oops_line);
        assert.strictEqual(head.description, expected.panic);
        const fault = faultRow(summary);
        assert.ok(fault);
        assert.strictEqual(fault.label, `→ ${expected.function}`);
        assert.strictEqual(fault.description, `${expected.file}:${expected.line}`);
        assert.strictEqual(faultRow({ ...summary, faultingFrame: null }), undefined);
    });

    it('shows the labbug module as tainted with its symbols loaded, and warns when symbols are missing', () => {
        const { modules } = real.answers();
        const labbug = modules.modules.find((m) => m.name === 'labbug');
        assert.ok(labbug, modules.modules.map((m) => m.name).join(', '));
        const row = moduleRow(labbug);
        assert.match(row.description ?? '', /^taint [A-Z]*O[A-Z]* · Symbols loaded$/, 'an out-of-tree module taints O');
        assert.strictEqual(row.icon, 'pass');
        assert.ok(row.tooltip?.endsWith('labbug.ko'), `tooltip ${row.tooltip}`);
        // The adapter's phrases for missing debug info (adapter/vmcore_dap/dump/kernel/modules.py) must warn.
        for (const missing of ['Symbols not found (names from kallsyms only)', 'Symbols not loaded', 'Symbols incomplete (supplementary file not found)']) {
            assert.strictEqual(moduleRow({ ...labbug, symbolStatus: missing }).icon, 'warning', missing);
        }
        assert.strictEqual(moduleRow({ ...labbug, symbolStatus: undefined }).icon, 'warning', 'no status');
    });
});
