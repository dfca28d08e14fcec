/**
 * The Stacks picture's merge (src/stacksPicture/tree.ts) of the real adapter's `vmcore/stackGroups`
 * into the icicle tree, on `oops-null` and on `many-tasks` (5,000+ tasks). Totals are checked
 * against the `threads` request (every task once, its state letter from its thread name), and each
 * node against the groups whose stacks pass through it.
 */
import * as assert from 'assert';

import type { StackGroup } from '../../src/kernelView/protocol';
import { dominantState, mergeStacks, StackNode } from '../../src/stacksPicture/tree';
import { withKernelAnswers } from './support/kernelAnswers';

/** Every node with its path of function names from the root (outermost first). */
function walk(node: StackNode, path: string[] = [], out: { node: StackNode; path: string[] }[] = []): { node: StackNode; path: string[] }[] {
    out.push({ node, path });
    for (const child of node.children) {
        walk(child, [...path, child.name], out);
    }
    return out;
}

function outermostFirst(group: StackGroup): string[] {
    return group.frames.map((f) => f.function).reverse();
}

function countBy<T>(items: T[], key: (t: T) => string): Map<string, number> {
    const counts = new Map<string, number>();
    for (const item of items) {
        counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
    }
    return counts;
}

for (const scenario of ['oops-null', 'many-tasks']) {
    describe(`Stacks picture merge on the ${scenario} sample (real adapter)`, function () {
        const real = withKernelAnswers(scenario);

        it('has a root as wide as all tasks, each task once, with the states the thread list shows', () => {
            const { stackGroups, threads } = real.answers();
            const root = mergeStacks(stackGroups.groups, 'all tasks');
            assert.strictEqual(root.value, threads.length, 'root width = number of threads');
            assert.strictEqual(stackGroups.taskCount, threads.length, 'taskCount = number of threads');
            assert.deepStrictEqual([...root.threadIds].sort((a, b) => a - b), threads.map((t) => t.id).sort((a, b) => a - b));
            const expectedStates = countBy(threads, (t) => t.state);
            assert.deepStrictEqual(new Map(Object.entries(root.states)), expectedStates, 'tasks per state');
            const mostFrequent = [...expectedStates.entries()].sort((a, b) => b[1] - a[1])[0][0];
            assert.strictEqual(dominantState(root), mostFrequent);
        });

        it("adds up: a node's width is its tasks, its children's plus the stacks ending there", () => {
            const { stackGroups } = real.answers();
            const root = mergeStacks(stackGroups.groups);
            const endingAt = new Map<string, number>();
            for (const g of stackGroups.groups) {
                const key = outermostFirst(g).join('\n');
                endingAt.set(key, (endingAt.get(key) ?? 0) + g.count);
            }
            let nodes = 0;
            for (const { node, path } of walk(root)) {
                nodes++;
                assert.strictEqual(node.threadIds.length, node.value, `${path.join(' → ')}: threadIds`);
                assert.strictEqual(new Set(node.threadIds).size, node.value, `${path.join(' → ')}: each task once`);
                const children = node.children.reduce((n, c) => n + c.value, 0);
                const ending = path.length === 0 ? 0 : endingAt.get(path.join('\n')) ?? 0;
                assert.strictEqual(node.value, children + ending, `${path.join(' → ')}: ${node.value} = ${children} in children + ${ending} ending here`);
                assert.strictEqual(Object.values(node.states).reduce((a, b) => a + b, 0), node.value, `${path.join(' → ')}: states`);
                assert.strictEqual(new Set(node.children.map((c) => c.name)).size, node.children.length, `${path.join(' → ')}: children merged by name`);
            }
            const frames = stackGroups.groups.reduce((n, g) => n + g.frames.length, 0);
            assert.ok(nodes - 1 < frames, `groups sharing outer frames share nodes (${nodes - 1} nodes for ${frames} group frames)`);
        });

        it("puts every group's tasks on every node of its stack, outermost frame at the top", () => {
            const { stackGroups } = real.answers();
            const root = mergeStacks(stackGroups.groups);
            for (const g of stackGroups.groups) {
                let node = root;
                for (const name of outermostFirst(g)) {
                    const child = node.children.find((c) => c.name === name);
                    assert.ok(child, `no node ${name} under ${node.name} for group ${g.frames.map((f) => f.function).join(' ← ')}`);
                    for (const id of g.threadIds) {
                        assert.ok(child.threadIds.includes(id), `thread ${id} on ${name}`);
                    }
                    node = child;
                }
                for (const child of node.children) {
                    assert.ok(!g.threadIds.some((id) => child.threadIds.includes(id)), `group's tasks go no deeper than ${node.name}`);
                }
            }
        });

        it('marks frames as return addresses except where a stack ends (the pc the source lookup takes as is)', () => {
            const { stackGroups } = real.answers();
            const root = mergeStacks(stackGroups.groups);
            for (const { node, path } of walk(root).slice(1)) {
                if (node.children.length === 0) {
                    assert.strictEqual(node.returnAddress, false, `${path.join(' → ')} is innermost`);
                }
            }
            const firstInnermost = stackGroups.groups[0].frames[0];
            const top = walk(root).find(({ path }) => path.join('\n') === outermostFirst(stackGroups.groups[0]).join('\n'));
            assert.ok(top);
            assert.strictEqual(top.node.pc, firstInnermost.pc, "the biggest group's innermost frame keeps its pc");
            const outer = root.children.find((c) => c.name === outermostFirst(stackGroups.groups[0])[0]);
            assert.ok(outer && outer.returnAddress, 'an outer frame is a return address');
        });
    });
}

describe('Stacks picture merge: the oops-null mutex pile-up (real adapter)', function () {
    const real = withKernelAnswers('oops-null');

    it("narrows to the waiters on the mutex below labbug's write handler, coloured D", () => {
        const { stackGroups, threads } = real.answers();
        const expected = real.session().sample.expected;
        const root = mergeStacks(stackGroups.groups);
        const waiters = walk(root).filter(({ node }) => node.name === 'labbug_wait_write');
        assert.strictEqual(waiters.length, 1, 'one labbug_wait_write node');
        const node = waiters[0].node;
        assert.strictEqual(node.module, 'labbug');
        const dIds = (expected.d_state_pids ?? []).map((pid) => threads.find((t) => t.pid === pid)!.id).sort((a, b) => a - b);
        assert.deepStrictEqual([...node.threadIds].sort((a, b) => a - b), dIds);
        assert.strictEqual(dominantState(node), 'D');
        const write = walk(root).filter(({ node: n }) => n.name === 'proc_reg_write');
        assert.strictEqual(write.length, 1, 'every write into labbug shares the proc_reg_write node');
        const holder = threads.find((t) => t.pid === expected.mutex_holder_pid)!.id;
        const crasher = threads.find((t) => t.pid === expected.crashed_pid)!.id;
        for (const id of [...dIds, holder, crasher]) {
            assert.ok(write[0].node.threadIds.includes(id), `thread ${id} writes through proc_reg_write`);
        }
        assert.ok(write[0].node.children.length >= 3, 'wait, hold and trigger branch under it');
    });
});
