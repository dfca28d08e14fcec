/**
 * The extension as users get it: the .vsix that `npm run package` makes, installed with
 * `code-server --install-extension` — never this clone's folder — into an extensions directory every
 * window of the test run shares, with one global storage directory shared likewise (each run
 * directory links `User/globalStorage/<publisher>.<name>` to it). So the first session of the run
 * (firstSession.e2e.test.ts, which .mocharc.json loads first) finds no adapter and performs the set-up,
 * and every later window uses the private environment it made, as a user's later windows do.
 *
 * The .vsix is `$VMCORE_DAP_VSIX` when set (`make test` packages once and passes it), else it is built
 * here. Code-server and its extension host run without this clone's venv (codeServer.cleanEnvironment).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { extensionDir, repoRoot } from '../../test/support/repo';
import { cleanEnvironment } from './codeServer';

export interface InstalledExtension {
    /** The package that was installed. */
    vsix: string;
    /** `<publisher>.<name>`: the extension's id and its global storage directory's name. */
    id: string;
    version: string;
    /** code-server's --extensions-dir, holding the installed extension. */
    extensionsDir: string;
    /** Where the installed extension lives: `<extensionsDir>/<id>-<version>`. */
    installedDir: string;
    /** The extension's global storage, shared by every window of the run. */
    storageDir: string;
    /** Parent of the above; removed when the whole run passed. */
    root: string;
}

let installed: InstalledExtension | undefined;

function manifest(): { publisher: string; name: string; version: string } {
    return JSON.parse(fs.readFileSync(path.join(extensionDir(), 'package.json'), 'utf8')) as {
        publisher: string;
        name: string;
        version: string;
    };
}

/** `$VMCORE_DAP_VSIX`, or a .vsix packaged now with `npm run package` (the wheel and out/ of this clone). */
function packagedVsix(version: string): string {
    const given = process.env.VMCORE_DAP_VSIX;
    if (given) {
        if (!fs.existsSync(given)) {
            throw new Error(`VMCORE_DAP_VSIX names ${given}, which does not exist (run 'make package')`);
        }
        return path.resolve(given);
    }
    console.log('    packaging the extension (npm run package) …');
    execFileSync('npm', ['run', '--silent', 'package'], { cwd: extensionDir(), stdio: ['ignore', 'ignore', 'inherit'], timeout: 10 * 60_000 });
    const vsix = path.join(repoRoot(), 'dist', `vmcore-dap-${version}.vsix`);
    if (!fs.existsSync(vsix)) {
        throw new Error(`npm run package did not make ${vsix}`);
    }
    return vsix;
}

/** Install the .vsix once per test process (about 5 s, plus packaging when no .vsix is given). */
export function installedExtension(e2eDir: string, codeServerDir: string): InstalledExtension {
    if (installed !== undefined) {
        return installed;
    }
    const { publisher, name, version } = manifest();
    const vsix = packagedVsix(version);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const root = path.join(e2eDir, '.run', `${stamp}-${process.pid}-installed`);
    const extensionsDir = path.join(root, 'extensions');
    const storageDir = path.join(root, 'global-storage');
    const scratch = path.join(root, 'install-user-data');
    for (const dir of [extensionsDir, storageDir, scratch]) {
        fs.mkdirSync(dir, { recursive: true });
    }
    const config = path.join(root, 'code-server-config.yaml');
    fs.writeFileSync(config, '');
    const out = execFileSync(
        path.join(codeServerDir, 'node_modules', '.bin', 'code-server'),
        ['--config', config, '--user-data-dir', scratch, '--extensions-dir', extensionsDir, '--install-extension', vsix],
        { encoding: 'utf8', env: cleanEnvironment(), timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const id = `${publisher}.${name}`;
    const installedDir = path.join(extensionsDir, `${id}-${version}`);
    if (!fs.existsSync(path.join(installedDir, 'package.json'))) {
        throw new Error(`code-server --install-extension ${vsix} did not install ${installedDir}:\n${out}`);
    }
    console.log(`    installed ${path.basename(vsix)} into ${extensionsDir}`);
    installed = { vsix, id, version, extensionsDir, installedDir, storageDir, root };
    return installed;
}

/** The record the private environment set-up writes (privateEnvironment.ts), or undefined. */
export function adapterRecord(ext: InstalledExtension): { directory: string; python: string; adapterVersion: string } | undefined {
    const file = path.join(ext.storageDir, 'adapter-environment.json');
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { directory: string; python: string; adapterVersion: string }) : undefined;
}

/** Throw unless the first session of the run has set up the adapter (every window but the first needs it). */
export function requireAdapterSetUp(ext: InstalledExtension): void {
    if (adapterRecord(ext) === undefined) {
        throw new Error(
            `no private adapter environment in ${ext.storageDir}: the first session's set-up ` +
                '(firstSession.e2e.test.ts, loaded first by e2e/.mocharc.json) failed or did not run',
        );
    }
}

/** The shared directory of this run, if the extension was installed. */
export function installedExtensionRoot(): string | undefined {
    return installed?.root;
}

/** Remove the shared directory after a run in which every test passed (called by the root hook). */
export function removeInstalledExtension(): void {
    if (installed !== undefined) {
        fs.rmSync(installed.root, { recursive: true, force: true });
        installed = undefined;
    }
}
