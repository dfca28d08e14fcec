/**
 * The Stacks picture: a webview with an icicle graph of all tasks' kernel stacks merged by frame
 * (d3-flame-graph, bundled under media/vendor by `npm run media`, no CDN). Clicking a frame offers
 * its tasks (selecting one selects it in the Call Stack) and opens the frame's source; the picture
 * can be saved as SVG.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';

import { KernelData, openSource, selectThread } from '../kernelView/protocol';
import { mergeStacks } from './tree';

export const OPEN_STACKS_PICTURE_COMMAND = 'vmcore-dap.openStacksPicture';
const VENDOR_FILES = ['d3.min.js', 'd3-flamegraph.umd.min.js', 'd3-flamegraph.css'];

interface FrameClick {
    type: 'frame';
    name: string;
    pc: string | null;
    returnAddress: boolean;
    threadIds: number[];
}

interface ExportSvg {
    type: 'exportSvg';
    svg: string;
}

type Message = FrameClick | ExportSvg | { type: 'ready' };

export class StacksPicture {
    private static current: StacksPicture | undefined;
    private readonly panel: vscode.WebviewPanel;

    static async show(extensionUri: vscode.Uri, data: KernelData): Promise<void> {
        const missing = VENDOR_FILES.filter((f) => !fs.existsSync(path.join(extensionUri.fsPath, 'media', 'vendor', f)));
        if (missing.length > 0) {
            throw new Error(`The Stacks picture's libraries are missing from media/vendor (${missing.join(', ')}): run 'npm run media' in the extension directory`);
        }
        StacksPicture.current?.panel.dispose();
        StacksPicture.current = new StacksPicture(extensionUri, data);
    }

    private constructor(private readonly extensionUri: vscode.Uri, private readonly data: KernelData) {
        const media = vscode.Uri.joinPath(extensionUri, 'media');
        this.panel = vscode.window.createWebviewPanel('vmcoreStacksPicture', 'Stacks picture', vscode.ViewColumn.Active, {
            enableScripts: true,
            localResourceRoots: [media],
            retainContextWhenHidden: true,
        });
        this.panel.webview.html = this.html();
        this.panel.webview.onDidReceiveMessage((m: Message) => void this.onMessage(m));
        this.panel.onDidDispose(() => {
            if (StacksPicture.current === this) {
                StacksPicture.current = undefined;
            }
        });
    }

    private async onMessage(message: Message): Promise<void> {
        try {
            if (message.type === 'ready') {
                const body = await this.data.stackGroups();
                const tree = mergeStacks(body.groups, `all tasks (${body.taskCount})`);
                await this.panel.webview.postMessage({ type: 'data', tree, taskCount: body.taskCount, groupCount: body.groupCount });
            } else if (message.type === 'frame') {
                await this.onFrame(message);
            } else if (message.type === 'exportSvg') {
                const target = await vscode.window.showSaveDialog({
                    filters: { SVG: ['svg'] },
                    defaultUri: vscode.Uri.file(path.join(vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? '', 'stacks.svg')),
                });
                if (target !== undefined) {
                    await vscode.workspace.fs.writeFile(target, Buffer.from(message.svg, 'utf8'));
                    void vscode.window.showInformationMessage(`Stacks picture saved as ${target.fsPath}`);
                }
            }
        } catch (err) {
            void vscode.window.showErrorMessage(`Stacks picture: ${err instanceof Error ? err.message : String(err)}`);
        }
    }

    private async onFrame(click: FrameClick): Promise<void> {
        const session = this.data.session;
        if (click.pc !== null) {
            try {
                const where = await session.customRequest('vmcore/frameSource', { pc: click.pc, returnAddress: click.returnAddress });
                await openSource(session, where.source, where.line);
            } catch {
                // no source for this frame: the task list is still useful
            }
        }
        const names = await this.data.threadNames();
        const items = click.threadIds.slice(0, 1000).map((id) => ({ label: names.get(id) ?? `thread ${id}`, id }));
        const picked = await vscode.window.showQuickPick(items, {
            title: `${click.name}: ${click.threadIds.length} tasks (pick one to select it in the Call Stack)`,
        });
        if (picked !== undefined) {
            await selectThread(session, picked.id);
        }
    }

    private html(): string {
        const webview = this.panel.webview;
        const uri = (...p: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', ...p)).toString();
        const nonce = Array.from({ length: 32 }, () => Math.floor(Math.random() * 36).toString(36)).join('');
        return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${webview.cspSource} data:; style-src ${webview.cspSource} 'unsafe-inline'; script-src 'nonce-${nonce}';">
<link rel="stylesheet" href="${uri('vendor', 'd3-flamegraph.css')}">
<link rel="stylesheet" href="${uri('stacksPicture', 'stacks.css')}">
<title>Stacks picture</title>
</head>
<body>
<div id="toolbar">
  <span id="title">Loading all tasks' stacks…</span>
  <label>Colour by <select id="colourBy"><option value="module">module</option><option value="state">state</option></select></label>
  <button id="reset" type="button">Reset zoom</button>
  <button id="export" type="button">Export SVG</button>
</div>
<div id="hover">Hover a frame: function and number of tasks. Click: its tasks and its source.</div>
<div id="chart"></div>
<script nonce="${nonce}" src="${uri('vendor', 'd3.min.js')}"></script>
<script nonce="${nonce}" src="${uri('vendor', 'd3-flamegraph.umd.min.js')}"></script>
<script nonce="${nonce}" src="${uri('stacksPicture', 'stacks.js')}"></script>
</body>
</html>`;
    }
}
