/**
 * The Dumps view (Explorer): triage a folder of vmcores in the background, list the clusters of
 * dumps with the same crash signature, open a dump in the debugger with one click.
 *
 * "Triage Dumps in Folder…" runs `vmcore-dap triage` (triageRun.ts) with the adapter the extension
 * would start for a debug session, into the extension's storage (one directory per folder: the
 * reports there are triage's cache, so a second run reads only new dumps), showing progress in a
 * cancellable notification. Hovering a cluster shows its signature and representative stack;
 * clicking a dump starts a `vmcore` session with the launch configuration from its report.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import * as vscode from 'vscode';

import { findAdapter } from '../adapterDescriptorFactory';
import { AdapterCommand, AdapterNotFoundError } from '../adapterLocator';
import { AdapterSetup } from '../adapterSetup';
import { reportingErrors } from '../notifications';
import {
    asSummary,
    Cluster,
    clusterDescription,
    clusterLabel,
    clusterTooltip,
    DumpEntry,
    dumpDescription,
    dumpLabel,
    dumpLaunch,
    FailedDump,
    failedLabel,
    progressMessage,
    reportPath,
    TriageSummary,
} from './rows';
import { runTriage } from './triageRun';

export const DUMPS_VIEW_ID = 'vmcore-dap.dumpsView';
export const TRIAGE_COMMAND = 'vmcore-dap.dumps.triage';
export const OPEN_DUMP_COMMAND = 'vmcore-dap.dumps.openDump';
export const OPEN_REPORT_COMMAND = 'vmcore-dap.dumps.openReport';

type Node =
    | { kind: 'cluster'; cluster: Cluster }
    | { kind: 'dump'; dump: DumpEntry; cluster: Cluster }
    | { kind: 'failedGroup'; failed: FailedDump[] }
    | { kind: 'failed'; failed: FailedDump };

interface Loaded {
    folder: string;
    output: string;
    summary: TriageSummary;
}

class DumpsTreeProvider implements vscode.TreeDataProvider<Node> {
    private readonly changed = new vscode.EventEmitter<Node | undefined>();
    readonly onDidChangeTreeData = this.changed.event;
    loaded: Loaded | undefined;

    show(loaded: Loaded | undefined): void {
        this.loaded = loaded;
        this.changed.fire(undefined);
    }

    getChildren(node?: Node): Node[] {
        const summary = this.loaded?.summary;
        if (summary === undefined) {
            return [];
        }
        if (node === undefined) {
            const roots: Node[] = summary.clusters.map((cluster) => ({ kind: 'cluster', cluster }));
            return summary.failed.length ? [...roots, { kind: 'failedGroup', failed: summary.failed }] : roots;
        }
        if (node.kind === 'cluster') {
            return node.cluster.dumps.map((dump) => ({ kind: 'dump', dump, cluster: node.cluster }));
        }
        return node.kind === 'failedGroup' ? node.failed.map((failed) => ({ kind: 'failed', failed })) : [];
    }

    getTreeItem(node: Node): vscode.TreeItem {
        switch (node.kind) {
            case 'cluster': {
                const item = new vscode.TreeItem(clusterLabel(node.cluster), vscode.TreeItemCollapsibleState.Expanded);
                item.id = `cluster:${node.cluster.signature}`;
                item.description = clusterDescription(node.cluster);
                item.tooltip = new vscode.MarkdownString(clusterTooltip(node.cluster));
                item.iconPath = new vscode.ThemeIcon('bug');
                item.contextValue = 'cluster';
                return item;
            }
            case 'dump': {
                const item = new vscode.TreeItem(dumpLabel(node.dump), vscode.TreeItemCollapsibleState.None);
                item.id = `dump:${node.dump.vmcore}`;
                item.description = dumpDescription(node.dump);
                item.tooltip = new vscode.MarkdownString(`\`${node.dump.vmcore}\`\n\n${clusterTooltip(node.cluster)}`);
                item.iconPath = new vscode.ThemeIcon(node.dump.vmcore === node.cluster.representative.vmcore ? 'star-full' : 'file-binary');
                item.contextValue = 'dump';
                item.command = { command: OPEN_DUMP_COMMAND, title: 'Open in debugger', arguments: [node.dump] };
                return item;
            }
            case 'failedGroup': {
                const item = new vscode.TreeItem(failedLabel(node.failed.length), vscode.TreeItemCollapsibleState.Collapsed);
                item.id = 'failed';
                item.iconPath = new vscode.ThemeIcon('warning');
                return item;
            }
            case 'failed': {
                const item = new vscode.TreeItem(path.basename(node.failed.vmcore), vscode.TreeItemCollapsibleState.None);
                item.id = `failed:${node.failed.vmcore}`;
                item.description = node.failed.error.message;
                item.tooltip = `${node.failed.vmcore}\n\n${node.failed.error.message}`;
                item.iconPath = new vscode.ThemeIcon('error');
                item.contextValue = 'failedDump';
                return item;
            }
        }
    }
}

/** Where the triage of `folder` is kept: one directory per folder in the extension's storage. */
function outputFor(context: vscode.ExtensionContext, folder: string): string {
    const digest = crypto.createHash('sha256').update(folder).digest('hex').slice(0, 12);
    return path.join(context.globalStorageUri.fsPath, 'triage', `${path.basename(folder)}-${digest}`);
}

async function chooseFolder(): Promise<string | undefined> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    const other = 'Choose another folder…';
    const items = [...folders.map((f) => ({ label: f.name, description: f.uri.fsPath, path: f.uri.fsPath })), { label: other, description: '', path: '' }];
    const picked = await vscode.window.showQuickPick(items, { title: 'Triage the vmcores in which folder?', placeHolder: 'a folder searched for kdump/ELF dumps' });
    if (picked === undefined) {
        return undefined;
    }
    if (picked.label !== other) {
        return picked.path;
    }
    const chosen = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Triage' });
    return chosen?.[0]?.fsPath;
}

/** The adapter a debug session would get; with none installed, the extension's set-up is offered first. */
async function triageAdapter(
    context: vscode.ExtensionContext,
    folder: vscode.WorkspaceFolder | undefined,
    log: vscode.LogOutputChannel,
    setup: AdapterSetup,
): Promise<AdapterCommand> {
    const find = () => findAdapter({}, folder, context.extensionUri.fsPath, log, setup);
    try {
        return await find();
    } catch (e) {
        if (e instanceof AdapterNotFoundError && e.nothingConfigured && (await setup.offerSetUp(e.message))) {
            return find();
        }
        throw e;
    }
}

export function registerDumpsView(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, setup: AdapterSetup): void {
    const provider = new DumpsTreeProvider();
    const view = vscode.window.createTreeView(DUMPS_VIEW_ID, { treeDataProvider: provider, showCollapseAll: true });

    const triage = async (target?: vscode.Uri): Promise<void> => {
        const folder = target?.fsPath ?? (await chooseFolder());
        if (folder === undefined) {
            return;
        }
        const workspaceFolder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(folder));
        const settings = vscode.workspace.getConfiguration('vmcoreDap', workspaceFolder?.uri);
        const adapter = await triageAdapter(context, workspaceFolder, log, setup);
        const output = outputFor(context, folder);
        fs.mkdirSync(output, { recursive: true });
        const request = {
            adapter,
            paths: [folder],
            output,
            debugInfoDirs: settings.get<string[]>('triage.debugInfoDirectories') ?? [],
            scheduler: settings.get<string>('triage.scheduler') || undefined,
        };
        log.info(`triage of ${folder} into ${output} (adapter from ${adapter.origin})`);
        const outcome = await vscode.window.withProgress(
            { location: vscode.ProgressLocation.Notification, title: `Triage of ${path.basename(folder)}`, cancellable: true },
            (progress, token) =>
                runTriage(
                    request,
                    (event) => {
                        if (event.event === 'dump' && event.total) {
                            const message = progressMessage(event.done ?? 0, event.total, event.vmcore ?? '', event.title, event.cached === true);
                            progress.report({ message, increment: 100 / event.total });
                            log.info(`triage: ${message}`);
                        } else if (event.event === 'message' && event.text) {
                            log.info(`triage: ${event.text}`);
                        }
                    },
                    (stop) => token.onCancellationRequested(stop),
                ),
        );
        if (outcome.summaryPath === undefined || !fs.existsSync(outcome.summaryPath)) {
            throw new Error(outcome.errors.slice(-3).join(' ') || `vmcore-dap triage exited with status ${outcome.exitCode}`);
        }
        const summary = asSummary(JSON.parse(fs.readFileSync(outcome.summaryPath, 'utf8')), outcome.summaryPath);
        provider.show({ folder, output, summary });
        await vscode.commands.executeCommand('setContext', 'vmcoreDap.dumpsTriaged', true);
        view.message = `${path.basename(folder)}: ${summary.dump_count} dumps, ${summary.clusters.length} signatures` + (summary.failed_count ? `, ${summary.failed_count} unreadable` : '');
        if (summary.dump_count === 0) {
            void vscode.window.showInformationMessage(`No vmcore found in ${folder}`);
        }
    };

    context.subscriptions.push(
        view,
        vscode.commands.registerCommand(TRIAGE_COMMAND, reportingErrors(log, 'Triage dumps', triage)),
        vscode.commands.registerCommand(
            'vmcore-dap.dumps.refresh',
            reportingErrors(log, 'Triage dumps', async () => triage(provider.loaded ? vscode.Uri.file(provider.loaded.folder) : undefined)),
        ),
        vscode.commands.registerCommand(
            OPEN_DUMP_COMMAND,
            reportingErrors(log, 'Open dump', async (dump: DumpEntry) => {
                const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(dump.vmcore)) ?? vscode.workspace.workspaceFolders?.[0];
                const started = await vscode.debug.startDebugging(folder, dumpLaunch(dump) as vscode.DebugConfiguration);
                if (!started) {
                    throw new Error(`the debug session for ${dump.vmcore} did not start (see the vmcore Output channel)`);
                }
            }),
        ),
        vscode.commands.registerCommand(
            OPEN_REPORT_COMMAND,
            reportingErrors(log, 'Open report', async (node: Node) => {
                const entry = node.kind === 'cluster' ? node.cluster.representative : node.kind === 'dump' ? node.dump : node.kind === 'failed' ? node.failed : undefined;
                const file = entry && provider.loaded ? reportPath(provider.loaded.output, entry) : undefined;
                if (file === undefined) {
                    throw new Error('no report for this row');
                }
                await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(file));
            }),
        ),
    );
}
