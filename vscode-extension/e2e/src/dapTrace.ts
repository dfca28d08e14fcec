/**
 * Reads the adapter's DAP trace (launch.json `logFile`, written by vmcore_dap.dap.transport as
 * `<-- {json}` for what VS Code sent and `--> {json}` for what the adapter answered), so a test can
 * compare what the workbench shows with what the adapter actually said.
 */
import * as fs from 'fs';

export interface DapMessage {
    direction: 'in' | 'out';
    type: string;
    seq: number;
    command?: string;
    event?: string;
    request_seq?: number;
    arguments?: Record<string, unknown>;
    body?: Record<string, unknown>;
}

const LINE = /(<--|-->) (\{.*\})\s*$/;

/** Every DAP message in the trace, in order (lines that are not messages are ignored). */
export function readDapTrace(logFile: string): DapMessage[] {
    const out: DapMessage[] = [];
    for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
        const m = LINE.exec(line);
        if (m === null) {
            continue;
        }
        try {
            out.push({ direction: m[1] === '<--' ? 'in' : 'out', ...(JSON.parse(m[2]) as Omit<DapMessage, 'direction'>) });
        } catch {
            // a message cut by the log's line handling: not one the tests look at
        }
    }
    return out;
}

export interface TraceFrame {
    name: string;
    line: number;
    instructionPointerReference?: string;
}

/**
 * The top frame of the thread of the first `stopped` event, as the adapter sent it in its first
 * successful `stackTrace` answer for that thread.
 */
export function topFrameOfStoppedThread(logFile: string): TraceFrame {
    const messages = readDapTrace(logFile);
    const stopped = messages.find((m) => m.direction === 'out' && m.event === 'stopped');
    const threadId = stopped?.body?.threadId;
    if (typeof threadId !== 'number') {
        throw new Error(`no stopped event with a threadId in ${logFile}`);
    }
    for (const request of messages) {
        if (request.direction !== 'in' || request.command !== 'stackTrace' || request.arguments?.threadId !== threadId) {
            continue;
        }
        if ((request.arguments?.startFrame ?? 0) !== 0) {
            continue;
        }
        const response = messages.find((m) => m.direction === 'out' && m.type === 'response' && m.request_seq === request.seq);
        const frames = response?.body?.stackFrames;
        if (Array.isArray(frames) && frames.length > 0) {
            return frames[0] as TraceFrame;
        }
    }
    throw new Error(`no stackTrace answer for thread ${threadId} in ${logFile}`);
}
