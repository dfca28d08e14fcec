/**
 * The adapter's versions, as it reports them (`vmcore-dap --version`, and the `vmcoreDap` key of its
 * `initialize` response: adapter/vmcore_dap/versions.py), and how they compare with the version this
 * extension ships. The extension and the adapter are released together with one version number
 * (package.json's `version` = the Python package's `__version__`; test/unit/manifest.test.ts and
 * scripts/build-wheel.js hold them equal), so any other adapter version is a mismatch worth a warning:
 * an older adapter lacks requests the views send, a newer one may answer in ways this extension does
 * not know. No `vscode` import.
 */

export interface AdapterVersions {
    adapter: string;
    drgn?: string;
    python?: string;
    /** The interpreter the adapter runs on (initialize only). */
    executable?: string;
}

/** The key of the `initialize` response body that holds the versions. */
export const INITIALIZE_KEY = 'vmcoreDap';

const VERSION_LINE = /^vmcore-dap(?:-lsp)? (\S+) \(drgn (\S+), Python (\S+)\)$/m;

/** Parse `vmcore-dap 0.1.0 (drgn 0.3.0, Python 3.11.2)`; undefined when the text is not that. */
export function parseVersionLine(text: string): AdapterVersions | undefined {
    const m = VERSION_LINE.exec(text.trim());
    return m === null ? undefined : { adapter: m[1], drgn: m[2], python: m[3] };
}

/** The versions in an `initialize` response body; undefined for an adapter too old to send them. */
export function versionsFromInitialize(body: unknown): AdapterVersions | undefined {
    if (typeof body !== 'object' || body === null) {
        return undefined;
    }
    const info = (body as Record<string, unknown>)[INITIALIZE_KEY];
    if (typeof info !== 'object' || info === null) {
        return undefined;
    }
    const fields = info as Record<string, unknown>;
    if (typeof fields.adapterVersion !== 'string') {
        return undefined;
    }
    const text = (key: string) => (typeof fields[key] === 'string' ? (fields[key] as string) : undefined);
    return { adapter: fields.adapterVersion, drgn: text('drgnVersion'), python: text('pythonVersion'), executable: text('pythonExecutable') };
}

/** Compare dotted versions numerically (`0.10.0` > `0.9.1`); a non-numeric part compares as text. */
export function compareVersions(a: string, b: string): number {
    const pa = a.split(/[.+-]/);
    const pb = b.split(/[.+-]/);
    for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
        const x = pa[i] ?? '0';
        const y = pb[i] ?? '0';
        const nx = Number(x);
        const ny = Number(y);
        const order = Number.isInteger(nx) && Number.isInteger(ny) ? nx - ny : x.localeCompare(y);
        if (order !== 0) {
            return Math.sign(order);
        }
    }
    return 0;
}

/** How the running adapter relates to the shipped version. */
export type VersionRelation = 'same' | 'older' | 'newer' | 'unknown';

export function relation(running: AdapterVersions | undefined, shipped: string): VersionRelation {
    if (running === undefined) {
        return 'unknown';
    }
    const order = compareVersions(running.adapter, shipped);
    return order === 0 ? 'same' : order < 0 ? 'older' : 'newer';
}

/** One line for the log: `vmcore-dap 0.1.0, drgn 0.3.0, Python 3.11.2 (/usr/bin/python3)`. */
export function describeVersions(v: AdapterVersions): string {
    const parts = [`vmcore-dap ${v.adapter}`];
    if (v.drgn !== undefined) {
        parts.push(`drgn ${v.drgn}`);
    }
    if (v.python !== undefined) {
        parts.push(`Python ${v.python}${v.executable !== undefined ? ` (${v.executable})` : ''}`);
    }
    return parts.join(', ');
}

/**
 * The warning for an adapter whose version is not `shipped`, or undefined when it is. `where` names
 * the adapter ("the private environment", "/usr/bin/python3 (vmcoreDap.python setting)").
 */
export function mismatchMessage(running: AdapterVersions | undefined, shipped: string, where: string): string | undefined {
    switch (relation(running, shipped)) {
        case 'same':
            return undefined;
        case 'unknown':
            return `The adapter from ${where} does not report its version: it is older than this extension's ` +
                `vmcore-dap ${shipped}, and some views may fail`;
        case 'older':
            return `The adapter from ${where} is vmcore-dap ${running!.adapter}, older than this extension's ` +
                `${shipped}: some views may fail`;
        case 'newer':
            return `The adapter from ${where} is vmcore-dap ${running!.adapter}, newer than this extension's ` +
                `${shipped}: some views may not show what it sends (update the extension)`;
    }
}
