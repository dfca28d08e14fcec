/**
 * Mocha root hooks of the end-to-end run (e2e/.mocharc.json `require`): the installed extension and
 * its global storage (installedExtension.ts) are shared by every test file, so they are removed only
 * after the last file, and only when every test passed (a test that did not run because its `before`
 * hook failed counts as not passed); otherwise they stay for diagnosis.
 */
import type { Context, RootHookObject, Suite } from 'mocha';

import { installedExtensionRoot, removeInstalledExtension } from './installedExtension';

function allPassed(suite: Suite): boolean {
    return suite.tests.every((t) => t.state === 'passed' || t.isPending()) && suite.suites.every(allPassed);
}

export const mochaHooks: RootHookObject = {
    afterAll(this: Context) {
        const root = this.test?.parent;
        if (root !== undefined && allPassed(root)) {
            removeInstalledExtension();
            return;
        }
        const kept = installedExtensionRoot();
        if (kept !== undefined) {
            console.error(`    kept for diagnosis: ${kept} (the installed extension and its private adapter environment)`);
        }
    },
};
