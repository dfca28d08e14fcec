/**
 * Debian's Chromium, headless, driven by playwright-core (which downloads no browser of its own).
 * A persistent context on a fresh profile directory, because Playwright's plain `launch()` refuses
 * `--user-data-dir`. Everything that would reach the network on its own is switched off.
 */
import * as fs from 'fs';

import { BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export async function launchBrowser(profileDir: string, timeoutMs = 60_000): Promise<BrowserContext> {
    if (!fs.existsSync(CHROMIUM)) {
        throw new Error(`${CHROMIUM} is missing (run scripts/setup-node.sh, which installs Debian's chromium)`);
    }
    return chromium.launchPersistentContext(profileDir, {
        executablePath: CHROMIUM,
        headless: true,
        timeout: timeoutMs,
        viewport: { width: 1600, height: 1100 },
        args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
        ],
    });
}
