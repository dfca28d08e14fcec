/**
 * The adapter's versions as the real adapter reports them (`--version` and the `initialize`
 * response, from this clone's venv), and how the extension compares them with the version it ships.
 */
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { DebugClient } from '@vscode/debugadapter-testsupport';

import {
    compareVersions,
    mismatchMessage,
    parseVersionLine,
    relation,
    versionsFromInitialize,
} from '../../src/adapterVersions';
import { adapterScript, extensionDir, repoRoot, venvPython } from '../support/repo';

const shipped = (JSON.parse(fs.readFileSync(path.join(extensionDir(), 'package.json'), 'utf8')) as { version: string }).version;

function drgnVersion(): string {
    return execFileSync(venvPython(), ['-c', 'import drgn; print(drgn.__version__)'], { encoding: 'utf8' }).trim();
}

describe('adapter versions', function () {
    this.timeout(60_000);

    it('parses what `vmcore-dap --version` and `vmcore-dap-lsp --version` print', () => {
        for (const program of ['vmcore-dap', 'vmcore-dap-lsp']) {
            const line = execFileSync(path.join(path.dirname(adapterScript()), program), ['--version'], { encoding: 'utf8' });
            const versions = parseVersionLine(line);
            assert.ok(versions !== undefined, `'${line}' parses`);
            assert.strictEqual(versions.adapter, shipped, 'the clone ships the version package.json says');
            assert.strictEqual(versions.drgn, drgnVersion());
        }
        assert.strictEqual(parseVersionLine('vmcore-dap 0.1.0'), undefined);
    });

    it("reads the versions in the real adapter's initialize response", async () => {
        const client = new DebugClient(venvPython(), adapterScript(), 'vmcore', {}, true);
        await client.start();
        try {
            const response = await client.initializeRequest({ adapterID: 'vmcore', clientID: 'vscode', linesStartAt1: true, columnsStartAt1: true });
            const versions = versionsFromInitialize(response.body);
            assert.ok(versions !== undefined, JSON.stringify(response.body));
            assert.strictEqual(versions.adapter, shipped);
            assert.strictEqual(versions.drgn, drgnVersion());
            assert.ok(versions.executable?.startsWith(repoRoot()), versions.executable);
            assert.strictEqual(relation(versions, shipped), 'same');
            assert.strictEqual(mismatchMessage(versions, shipped, 'the clone'), undefined);
        } finally {
            await client.stop();
        }
    });

    it('orders versions numerically', () => {
        assert.ok(compareVersions('0.10.0', '0.9.1') > 0);
        assert.ok(compareVersions('0.1.0', '0.1.1') < 0);
        assert.strictEqual(compareVersions('1.0', '1.0.0'), 0);
    });

    it('warns about an older, a newer and a silent adapter, naming where it comes from', () => {
        assert.match(mismatchMessage({ adapter: '0.0.9' }, '0.1.0', '/usr/bin/python3 (vmcoreDap.python setting)') ?? '',
            /^The adapter from \/usr\/bin\/python3 \(vmcoreDap\.python setting\) is vmcore-dap 0\.0\.9, older than this extension's 0\.1\.0/);
        assert.match(mismatchMessage({ adapter: '0.2.0' }, '0.1.0', 'x') ?? '', /newer than this extension's 0\.1\.0.*update the extension/);
        assert.match(mismatchMessage(versionsFromInitialize({ supportsConfigurationDoneRequest: true }), '0.1.0', 'x') ?? '', /does not report its version/);
    });
});
