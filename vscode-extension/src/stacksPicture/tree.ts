/**
 * All tasks' kernel stacks merged by frame into one tree (outermost frame at the root), the data of
 * the icicle graph: a node's value is the number of tasks whose stack passes through it.
 */
import type { StackGroup } from '../kernelView/protocol';

export interface StackNode {
    name: string;
    value: number;
    module: string | null;
    /** task state letter -> number of tasks through this node */
    states: Record<string, number>;
    /** pc of the frame in the first group that reached this node (for its source) */
    pc: string | null;
    /** whether `pc` is a return address (every frame but the innermost of its stack) */
    returnAddress: boolean;
    threadIds: number[];
    children: StackNode[];
}

export function mergeStacks(groups: StackGroup[], rootName = 'all tasks'): StackNode {
    const root: StackNode = { name: rootName, value: 0, module: null, states: {}, pc: null, returnAddress: false, threadIds: [], children: [] };
    for (const group of groups) {
        let node = root;
        add(node, group);
        const outermostFirst = [...group.frames].reverse();
        outermostFirst.forEach((frame, depth) => {
            let child = node.children.find((c) => c.name === frame.function);
            if (child === undefined) {
                child = {
                    name: frame.function,
                    value: 0,
                    module: frame.module,
                    states: {},
                    pc: frame.pc,
                    returnAddress: depth !== outermostFirst.length - 1,
                    threadIds: [],
                    children: [],
                };
                node.children.push(child);
            }
            add(child, group);
            node = child;
        });
    }
    return root;
}

function add(node: StackNode, group: StackGroup): void {
    node.value += group.count;
    for (const [state, n] of Object.entries(group.states)) {
        node.states[state] = (node.states[state] ?? 0) + n;
    }
    node.threadIds.push(...group.threadIds);
}

/** The node's most frequent task state. */
export function dominantState(node: StackNode): string {
    return Object.entries(node.states).sort((a, b) => b[1] - a[1])[0]?.[0] ?? '?';
}
