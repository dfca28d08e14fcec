/**
 * One real VS Code window for a test file: a run directory, code-server, headless Chromium on the
 * workbench, screenshots, and the clean-up rule (run directory deleted after a passing file, kept with
 * a failure screenshot after a failing one). It composes runDir, codeServer and browser; a test file
 * calls `Workbench.open` in `before`, `noteFailure` in `afterEach` and `close` in `after`.
 */
import * as fs from 'fs';
import * as path from 'path';

import type { BrowserContext, Page } from 'playwright-core';

import { extensionDir } from '../../test/support/repo';
import { launchBrowser } from './browser';
import { CodeServer, ensureCodeServer, freePort } from './codeServer';
import { installedExtension, InstalledExtension, requireAdapterSetUp } from './installedExtension';
import { createRunDir, RunDir } from './runDir';
import { withTimeout } from './timeouts';
import { waitForWorkbench } from './workbench';

export const E2E_DIR = path.join(extensionDir(), 'e2e');
/** Where the tests save their screenshots (git-ignored; docs/images holds chosen copies). */
export const SCREENSHOTS = path.join(E2E_DIR, 'screenshots');

/**
 * Move the mouse where it shows no tooltip or hover: the empty middle of the status bar. A mouse left
 * where a palette row was clicked rests on whatever appears there next (a new tab, the debug toolbar)
 * and its tooltip ends up in the screenshots.
 */
export async function parkMouse(page: Page): Promise<void> {
    const viewport = page.viewportSize() ?? { width: 1600, height: 1100 };
    await page.mouse.move(viewport.width / 2, viewport.height - 8, { steps: 4 });
}

export interface WorkbenchOptions {
    /** The launch configuration "Start Debugging" runs, or null for a workspace without launch.json. */
    launchConfig: Record<string, unknown> | null;
    otherConfigs?: Record<string, unknown>[];
    /** Workspace settings added to the offline ones. */
    settings?: Record<string, unknown>;
    /** Symlinks to create in the workspace: name -> target. */
    links?: Record<string, string>;
    /**
     * The run's first window, whose first session sets up the adapter. Every other window requires
     * the set-up done (requireAdapterSetUp), so a failed set-up fails them at once, not by timeouts.
     */
    firstSession?: boolean;
}

export class Workbench {
    private failed = false;

    private constructor(
        readonly extension: InstalledExtension,
        readonly run: RunDir,
        private readonly server: CodeServer,
        private readonly browser: BrowserContext,
        readonly page: Page,
    ) {}

    /** Start code-server on a fresh workspace and load the workbench in Chromium (about 10 s). */
    static async open(options: WorkbenchOptions): Promise<Workbench> {
        const installDir = ensureCodeServer(E2E_DIR);
        const extension = installedExtension(E2E_DIR, installDir);
        if (!options.firstSession) {
            requireAdapterSetUp(extension);
        }
        const run = createRunDir(E2E_DIR, extension, options.launchConfig, options.otherConfigs ?? [], options.settings ?? {});
        for (const [name, target] of Object.entries(options.links ?? {})) {
            fs.symlinkSync(target, path.join(run.workspace, name));
        }
        console.log(`    run directory: ${run.root}`);
        const server = await CodeServer.start({
            installDir,
            port: await freePort(),
            userDataDir: run.userDataDir,
            extensionsDir: run.extensionsDir,
            workspace: run.workspace,
            logFile: run.codeServerLog,
        });
        let browser: BrowserContext | undefined;
        try {
            browser = await launchBrowser(run.browserProfile);
            const page = browser.pages()[0] ?? (await browser.newPage());
            page.setDefaultTimeout(30_000);
            await withTimeout(page.goto(`${server.url}?folder=${encodeURIComponent(run.workspace)}`), 60_000, 'open the workbench');
            await waitForWorkbench(page);
            fs.mkdirSync(SCREENSHOTS, { recursive: true });
            return new Workbench(extension, run, server, browser, page);
        } catch (e) {
            await browser?.close().catch(() => undefined);
            await server.stop();
            throw e;
        }
    }

    /**
     * Save `name` (a .png) in e2e/screenshots. `clip` limits it to a region, which keeps the files
     * small enough for docs/images.
     */
    async screenshot(name: string, clip?: { x: number; y: number; width: number; height: number }): Promise<string> {
        const file = path.join(SCREENSHOTS, name);
        await this.page.screenshot({ path: file, clip, timeout: 15_000 });
        return file;
    }

    /** Call from `afterEach`: on the first failing test, take `failure-<tag>.png` and remember to keep the run. */
    async noteFailure(state: string | undefined, tag: string): Promise<void> {
        if (state !== 'failed' || this.failed) {
            return;
        }
        this.failed = true;
        const shot = await this.screenshot(`failure-${tag}.png`).catch(() => undefined);
        if (shot !== undefined) {
            console.error(`    failure screenshot: ${shot}`);
        }
    }

    /** Close the browser and code-server; delete the run directory unless a test failed. */
    async close(): Promise<void> {
        await this.browser.close().catch(() => undefined);
        await this.server.stop();
        if (this.failed) {
            console.error(`    kept for diagnosis: ${this.run.root} (adapter-dap.log, code-server.log, user-data/logs)`);
        } else {
            fs.rmSync(this.run.root, { recursive: true, force: true });
        }
    }
}
