/** DAP framing on chunk boundaries a pipe can produce. */
import * as assert from 'assert';

import { frame, MessageReader } from '../../src/dapFraming';

function collect(): { reader: MessageReader; bodies: string[] } {
    const bodies: string[] = [];
    return { reader: new MessageReader((b) => bodies.push(b)), bodies };
}

describe('DAP framing', () => {
    const message = { seq: 1, type: 'event', event: 'output', body: { output: 'naïve → ü\n' } };

    it('round-trips a message through frame and MessageReader', () => {
        const { reader, bodies } = collect();
        reader.push(frame(message));
        assert.deepStrictEqual(bodies.map((b) => JSON.parse(b)), [message]);
    });

    it('reassembles a message delivered one byte at a time, multi-byte characters included', () => {
        const { reader, bodies } = collect();
        const bytes = frame(message);
        for (let i = 0; i < bytes.length; i++) {
            reader.push(bytes.subarray(i, i + 1));
        }
        assert.deepStrictEqual(bodies.map((b) => JSON.parse(b)), [message]);
    });

    it('splits two messages that arrive in one chunk', () => {
        const { reader, bodies } = collect();
        reader.push(Buffer.concat([frame({ seq: 1 }), frame({ seq: 2 })]));
        assert.deepStrictEqual(bodies.map((b) => JSON.parse(b).seq), [1, 2]);
    });

    it('counts Content-Length in bytes, not characters', () => {
        const framed = frame({ s: 'ü' }).toString('latin1');
        assert.match(framed, /^Content-Length: 10\r\n\r\n/); // {"s":"ü"} is 9 characters, 10 bytes
    });

    it('rejects a header without Content-Length', () => {
        const { reader } = collect();
        assert.throws(() => reader.push(Buffer.from('Content-Type: x\r\n\r\n{}')), /without Content-Length/);
    });
});
