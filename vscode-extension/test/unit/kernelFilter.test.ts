/**
 * The Kernel view's filter (src/kernelView/filter.ts) on what the real adapter sends for the
 * `oops-null` sample. Expected answers come from the sample's manifest (the guest's own facts) and
 * from the `threads` request, not from the filter's own code.
 */
import * as assert from 'assert';

import { blockedMatches, cpuMatches, groupMatches, isEmpty, parseFilter } from '../../src/kernelView/filter';
import type { StackGroup } from '../../src/kernelView/protocol';
import { blockedEmptyText, groupsHeader } from '../../src/kernelView/rows';
import { withKernelAnswers } from './support/kernelAnswers';

function pidsOf(groups: StackGroup[]): number[] {
    return groups.flatMap((g) => g.pids).sort((a, b) => a - b);
}

function hasFunction(group: StackGroup, name: string): boolean {
    return group.frames.some((f) => f.function.toLowerCase().includes(name.toLowerCase()));
}

describe('Kernel view filter: parsing what the user types', () => {
    it('splits state letters, modules and function words, case-insensitively', () => {
        const f = parseFilter('  state:d,s module:LabBug Mutex function:Walk ');
        assert.deepStrictEqual(f.states, ['D', 'S']);
        assert.deepStrictEqual(f.modules, ['labbug']);
        assert.deepStrictEqual(f.functions, ['mutex', 'walk']);
        assert.strictEqual(f.text, 'state:d,s module:LabBug Mutex function:Walk');
        assert.strictEqual(isEmpty(f), false);
    });

    it('treats blank text as no filter', () => {
        assert.strictEqual(isEmpty(parseFilter('   ')), true);
    });

    it('rejects an unknown key naming it and the keys it knows', () => {
        assert.throws(() => parseFilter('mutex comm:labwait'), /Unknown filter 'comm:' in 'comm:labwait' \(use state:, module:, function:/);
    });
});

describe('Kernel view filter on the oops-null sample (real adapter)', function () {
    const real = withKernelAnswers('oops-null');

    it("a bare function name keeps exactly the groups with a frame of that function: the crashed task's", () => {
        const { stackGroups } = real.answers();
        const expected = real.session().sample.expected;
        const filter = parseFilter(expected.function);
        const shown = stackGroups.groups.filter((g) => groupMatches(filter, g));
        assert.ok(shown.length > 0 && shown.length < stackGroups.groups.length, `${shown.length} of ${stackGroups.groups.length} groups shown`);
        assert.ok(pidsOf(shown).includes(expected.crashed_pid), `crashed PID ${expected.crashed_pid} in ${pidsOf(shown).join(', ')}`);
        for (const g of stackGroups.groups) {
            assert.strictEqual(shown.includes(g), hasFunction(g, expected.function), `group ${g.frames.map((f) => f.function).join(' ← ')}`);
        }
        const upper = stackGroups.groups.filter((g) => groupMatches(parseFilter(expected.function.toUpperCase()), g));
        assert.deepStrictEqual(upper, shown, 'function names match case-insensitively');
    });

    it('mutex_lock state:D keeps exactly the tasks the scenario blocked on the mutex', () => {
        const { stackGroups } = real.answers();
        const expected = real.session().sample.expected;
        const shown = stackGroups.groups.filter((g) => groupMatches(parseFilter('mutex_lock state:D'), g));
        assert.deepStrictEqual(pidsOf(shown), [...(expected.d_state_pids ?? [])].sort((a, b) => a - b));
    });

    it('terms combine: module:labbug alone keeps the crasher, the holder and the waiters; with state:D only the waiters', () => {
        const { stackGroups } = real.answers();
        const expected = real.session().sample.expected;
        const labbug = stackGroups.groups.filter((g) => groupMatches(parseFilter('module:labbug'), g));
        for (const pid of [expected.crashed_pid, expected.mutex_holder_pid!, ...(expected.d_state_pids ?? [])]) {
            assert.ok(pidsOf(labbug).includes(pid), `PID ${pid} in module:labbug groups (${pidsOf(labbug).join(', ')})`);
        }
        for (const g of labbug) {
            assert.ok(g.frames.some((f) => f.module === 'labbug'), `group ${g.frames.map((f) => f.function).join(' ← ')} has a labbug frame`);
        }
        const waiting = stackGroups.groups.filter((g) => groupMatches(parseFilter('module:labbug state:D'), g));
        assert.deepStrictEqual(pidsOf(waiting), [...(expected.d_state_pids ?? [])].sort((a, b) => a - b));
    });

    it('state:I keeps every group with an idle-state task, and their I tasks are all the [I] threads', () => {
        const { stackGroups, threads } = real.answers();
        const shown = stackGroups.groups.filter((g) => groupMatches(parseFilter('state:I'), g));
        const hidden = stackGroups.groups.filter((g) => !shown.includes(g));
        const idleThreads = threads.filter((t) => t.state === 'I').length;
        assert.ok(idleThreads > 0, 'the sample has kworkers in state I');
        assert.strictEqual(shown.reduce((n, g) => n + (g.states.I ?? 0), 0), idleThreads);
        assert.ok(hidden.every((g) => (g.states.I ?? 0) === 0), 'no hidden group has an I task');
    });

    it('says how many groups the filter keeps, out of all, in the first row of Stack groups', () => {
        const { stackGroups, threads } = real.answers();
        assert.strictEqual(groupsHeader(stackGroups, parseFilter(''), stackGroups.groups.length).label, `${threads.length} tasks in ${stackGroups.groups.length} groups`);
        const filter = parseFilter('module:labbug state:D');
        const shown = stackGroups.groups.filter((g) => groupMatches(filter, g)).length;
        assert.strictEqual(groupsHeader(stackGroups, filter, shown).label, `1 of ${stackGroups.groups.length} groups match 'module:labbug state:D'`);
    });

    it("on CPUs, the faulting function keeps only the crashed CPU; state:D keeps none", () => {
        const { cpus } = real.answers();
        const expected = real.session().sample.expected;
        assert.ok(cpus.cpus.length >= 2, `${cpus.cpus.length} CPUs`);
        const kept = cpus.cpus.filter((c) => cpuMatches(parseFilter(expected.function), c)).map((c) => c.cpu);
        assert.deepStrictEqual(kept, [expected.crashed_cpu]);
        assert.deepStrictEqual(cpus.cpus.filter((c) => cpuMatches(parseFilter('state:D'), c)), []);
        assert.strictEqual(cpus.cpus.filter((c) => cpuMatches(parseFilter('state:R'), c)).length, cpus.cpus.length, 'both CPUs run an R task');
    });

    it("on Blocked, the lock's symbol or function keeps the D tasks; another state leaves the 'no match' row", () => {
        const { blocked } = real.answers();
        const expected = real.session().sample.expected;
        const pids = (filter: string) => blocked.tasks.filter((t) => blockedMatches(parseFilter(filter), t)).map((t) => t.pid).sort((a, b) => a - b);
        const dPids = [...(expected.d_state_pids ?? [])].sort((a, b) => a - b);
        assert.deepStrictEqual(pids(''), dPids);
        assert.deepStrictEqual(pids('labbug_mutex'), dPids, 'the mutex by its symbol');
        assert.deepStrictEqual(pids('mutex_lock state:D'), dPids, 'the slow path function');
        assert.deepStrictEqual(pids('state:S'), []);
        assert.deepStrictEqual(pids('rwsem'), []);
        assert.strictEqual(blockedEmptyText(blocked.tasks.length), 'No blocked task matches the filter');
        assert.strictEqual(blockedEmptyText(0), 'No task in D state');
    });
});
