/**
 * package.json against the adapter contract and the packaging rules: the launch attributes are exactly
 * the contract's, each documented with a default; engines.vscode admits 1.100.3 (the real-VS-Code test)
 * and @types/vscode is not newer than engines.vscode (vsce refuses to package otherwise); the package
 * carries the adapter's wheel of the same version, built before every packaging.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import { LAUNCH_ATTRIBUTES } from '../../src/launchConfig';
import { extensionDir, repoRoot } from '../support/repo';

interface Manifest {
    version: string;
    scripts: Record<string, string>;
    engines: { vscode: string };
    devDependencies: Record<string, string>;
    contributes: {
        debuggers: {
            type: string;
            label: string;
            configurationAttributes: { launch: { required: string[]; properties: Record<string, { description?: string; default?: unknown }> } };
            initialConfigurations: Record<string, unknown>[];
            configurationSnippets: { label: string; body: Record<string, unknown> }[];
        }[];
        menus: { 'explorer/context': { command: string; when: string }[] };
        commands: { command: string; title: string }[];
    };
}

const manifest = JSON.parse(fs.readFileSync(path.join(extensionDir(), 'package.json'), 'utf8')) as Manifest;

function version(spec: string): number[] {
    const m = /(\d+)\.(\d+)\.(\d+)/.exec(spec);
    assert.ok(m, `no version in '${spec}'`);
    return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function compare(a: number[], b: number[]): number {
    for (let i = 0; i < 3; i++) {
        if (a[i] !== b[i]) {
            return a[i] - b[i];
        }
    }
    return 0;
}

describe('package.json', () => {
    const debuggerEntry = manifest.contributes.debuggers.find((d) => d.type === 'vmcore');

    it('contributes the vmcore debugger with the contract launch attributes, each documented', () => {
        assert.ok(debuggerEntry);
        assert.strictEqual(debuggerEntry.label, 'Linux vmcore (drgn)');
        const launch = debuggerEntry.configurationAttributes.launch;
        assert.deepStrictEqual(Object.keys(launch.properties).sort(), [...LAUNCH_ATTRIBUTES].sort());
        assert.deepStrictEqual(launch.required, ['vmcore']);
        for (const [name, prop] of Object.entries(launch.properties)) {
            assert.ok(prop.description && prop.description.length > 20, `${name} has a description`);
            assert.ok('default' in prop, `${name} has a default`);
        }
        // Empty means the adapter's standard directories: accepting the default must not narrow the search.
        assert.deepStrictEqual(launch.properties.debugInfoDirectories.default, []);
        assert.strictEqual(launch.properties.stopOnPanic.default, true);
    });

    it('has the three snippets and an initial configuration that picks the vmcore', () => {
        assert.ok(debuggerEntry);
        const labels = debuggerEntry.configurationSnippets.map((s) => s.label);
        for (const want of ['Open a vmcore', 'vmcore with explicit vmlinux', 'vmcore with a kernel source tree']) {
            assert.ok(labels.some((l) => l.endsWith(want)), `snippet '${want}' in ${labels.join(', ')}`);
        }
        for (const snippet of debuggerEntry.configurationSnippets) {
            for (const key of Object.keys(snippet.body)) {
                assert.ok(['type', 'request', 'name', ...LAUNCH_ATTRIBUTES].includes(key), `snippet attribute ${key}`);
            }
        }
        assert.strictEqual(debuggerEntry.initialConfigurations[0].vmcore, '${command:vmcore-dap.pickVmcore}');
    });

    it('allows VS Code 1.100.3, with @types/vscode no newer than engines.vscode', () => {
        const engine = manifest.engines.vscode;
        assert.ok(engine.startsWith('^1.'), `engines.vscode '${engine}' is a caret range on 1.x`);
        assert.ok(compare(version(engine), [1, 100, 3]) <= 0, `engines.vscode '${engine}' admits 1.100.3`);
        const types = manifest.devDependencies['@types/vscode'];
        assert.ok(compare(version(types), version(engine)) <= 0, `@types/vscode ${types} <= engines ${engine}`);
    });

    it('offers "Open vmcore in debugger" on vmcore*, *.vmcore and dump.* only', () => {
        const entry = manifest.contributes.menus['explorer/context'].find((m) => m.command === 'vmcore-dap.openVmcore');
        assert.ok(entry);
        const m = /resourceFilename =~ \/(.*)\/$/.exec(entry.when);
        assert.ok(m, `when clause '${entry.when}'`);
        const re = new RegExp(m[1]);
        for (const yes of ['vmcore', 'vmcore.202501011200', 'vmcore-incomplete', 'web1.vmcore', 'dump.202501011200']) {
            assert.ok(re.test(yes), `${yes} matches`);
        }
        for (const no of ['vmlinux', 'dmesg.txt', 'mydump', 'core.vmcore.txt']) {
            assert.ok(!re.test(no), `${no} does not match`);
        }
    });

    it('has the version of the adapter it carries, and builds that wheel before every packaging', () => {
        const init = fs.readFileSync(path.join(repoRoot(), 'adapter', 'vmcore_dap', '__init__.py'), 'utf8');
        assert.strictEqual(/^__version__ = "([^"]+)"/m.exec(init)?.[1], manifest.version, 'one version for the extension and the adapter');
        assert.match(manifest.scripts['vscode:prepublish'], /npm run compile && node scripts\/build-wheel\.js/);
        assert.match(manifest.scripts.package, /^vsce package /, 'vsce runs vscode:prepublish itself');
        const ignore = fs.readFileSync(path.join(extensionDir(), '.vscodeignore'), 'utf8').split('\n');
        assert.ok(ignore.includes('!bundled/vmcore_dap-*.whl'), '.vscodeignore lets the wheel in');
        assert.ok(manifest.contributes.commands.some((c) => c.command === 'vmcore-dap.setUpAdapter'), 'the set-up has a command');
    });
});
