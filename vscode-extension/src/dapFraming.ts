/**
 * DAP's wire framing: `Content-Length: N\r\n\r\n` followed by N bytes of UTF-8 JSON. Split out of
 * the adapter process relay (and free of the `vscode` module) so it is tested on its own: chunks from
 * a pipe can end anywhere, including inside a header or a multi-byte character.
 */

const HEADER_END = Buffer.from('\r\n\r\n', 'ascii');

/** Splits a byte stream into DAP message bodies. */
export class MessageReader {
    private buffer = Buffer.alloc(0);

    constructor(private readonly onMessage: (body: string) => void) {}

    push(chunk: Buffer): void {
        this.buffer = Buffer.concat([this.buffer, chunk]);
        for (;;) {
            const headerEnd = this.buffer.indexOf(HEADER_END);
            if (headerEnd < 0) {
                return;
            }
            const header = this.buffer.subarray(0, headerEnd).toString('ascii');
            const match = /Content-Length:\s*(\d+)/i.exec(header);
            if (match === null) {
                throw new Error(`adapter sent a header without Content-Length: ${JSON.stringify(header)}`);
            }
            const length = Number(match[1]);
            const start = headerEnd + HEADER_END.length;
            if (this.buffer.length < start + length) {
                return;
            }
            const body = this.buffer.subarray(start, start + length).toString('utf8');
            this.buffer = this.buffer.subarray(start + length);
            this.onMessage(body);
        }
    }
}

/** Serialise one DAP message with its header. */
export function frame(message: unknown): Buffer {
    const body = Buffer.from(JSON.stringify(message), 'utf8');
    return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]);
}
