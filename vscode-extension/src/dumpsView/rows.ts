/**
 * What the Dumps view shows, from `summary.json` (docs/triage.md): one row per cluster (biggest
 * first), its dumps under it, then the dumps that could not be read. No `vscode` import: the rows
 * are tested on real triage output.
 */
import * as path from 'path';

/** One dump as the summary lists it. */
export interface DumpEntry {
    vmcore: string;
    report: string | null;
    markdown: string | null;
    dump_time: string | null;
    kernel: string | null;
    crashed_pid: number | null;
    crashed_comm: string | null;
    launch: Record<string, unknown> | null;
}

export interface Cluster {
    signature: string;
    title: string;
    class: string;
    frames: string[];
    count: number;
    first_dump_time: string | null;
    last_dump_time: string | null;
    kernels: string[];
    representative: DumpEntry;
    representative_stack: string[];
    dumps: DumpEntry[];
}

export interface FailedDump {
    vmcore: string;
    report: string | null;
    error: { kind: string; message: string };
}

export interface TriageSummary {
    schema: string;
    schema_version: number;
    dump_count: number;
    failed_count: number;
    clusters: Cluster[];
    failed: FailedDump[];
}

/** Check that `value` is a summary this view understands (schema name and version 1). */
export function asSummary(value: unknown, where: string): TriageSummary {
    const summary = value as TriageSummary;
    if (summary?.schema !== 'vmcore-dap/triage-summary' || summary.schema_version !== 1) {
        throw new Error(`${where} is not a vmcore-dap triage summary of schema version 1 (re-run the triage with this extension's adapter)`);
    }
    return summary;
}

function shortTime(iso: string | null): string {
    return iso ? iso.replace('T', ' ').replace(/:\d\dZ$/, '') : '?';
}

/** `×5  SysRq crash in sysrq_handle_crash`. */
export function clusterLabel(cluster: Cluster): string {
    return `×${cluster.count}  ${cluster.title}`;
}

/** `6.1.0-50-cloud-amd64 · last 2026-12-04 22:22`. */
export function clusterDescription(cluster: Cluster): string {
    return `${cluster.kernels.join(', ')} · last ${shortTime(cluster.last_dump_time)}`;
}

/** The hover: signature, class, times, kernels, and the representative's stack (Markdown). */
export function clusterTooltip(cluster: Cluster): string {
    const stack = cluster.representative_stack.length ? cluster.representative_stack : ['(no crashed task)'];
    return [
        `**${cluster.title}**`,
        '',
        `Signature \`${cluster.signature}\` (${cluster.class}: ${cluster.frames.join(' ← ') || 'no frames'})`,
        '',
        `${cluster.count} dump${cluster.count === 1 ? '' : 's'}, ${shortTime(cluster.first_dump_time)} … ${shortTime(cluster.last_dump_time)}, on ${cluster.kernels.join(', ')}`,
        '',
        `Representative: \`${cluster.representative.vmcore}\``,
        '',
        '```',
        ...stack.map((line) => line.replace(/```/g, 'ʼʼʼ')),
        '```',
    ].join('\n');
}

/** `vmcore` (its directory's name when the file name alone says nothing). */
export function dumpLabel(dump: DumpEntry): string {
    const name = path.basename(dump.vmcore);
    return /^(vmcore|dump|core)(\.elf)?$/.test(name) ? `${path.basename(path.dirname(dump.vmcore))}/${name}` : name;
}

/** `PID 309 labcrash · 6.1.0-50-cloud-amd64 · 2026-12-04 22:20`. */
export function dumpDescription(dump: DumpEntry): string {
    const task = dump.crashed_pid !== null ? `PID ${dump.crashed_pid} ${dump.crashed_comm ?? ''}`.trim() : 'no crashed task';
    return `${task} · ${dump.kernel ?? '?'} · ${shortTime(dump.dump_time)}`;
}

/** The launch configuration that opens `dump` (the report's, named after the dump). */
export function dumpLaunch(dump: DumpEntry): Record<string, unknown> {
    const launch = dump.launch ?? { type: 'vmcore', request: 'launch', vmcore: dump.vmcore };
    return { ...launch, name: `vmcore: ${dumpLabel(dump)}` };
}

/** The Markdown report of a dump, as a path. */
export function reportPath(outputDir: string, dump: DumpEntry | FailedDump): string | undefined {
    const markdown = 'markdown' in dump ? dump.markdown : null;
    if (markdown) {
        return path.join(outputDir, markdown);
    }
    return dump.report ? path.join(outputDir, dump.report.replace(/\.json$/, '.md')) : undefined;
}

/** `Not readable (2)` group label and each failed dump's one-line reason. */
export function failedLabel(count: number): string {
    return `Could not be read (${count})`;
}

/** A progress line for one finished dump: `3/9 vmcore — NULL pointer dereference in labbug_walk`. */
export function progressMessage(done: number, total: number, vmcore: string, title: string | undefined, cached: boolean): string {
    return `${done}/${total} ${path.basename(vmcore)} — ${title ?? '?'}${cached ? ' (cached)' : ''}`;
}
