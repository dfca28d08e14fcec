/**
 * What the extension does to a launch configuration before the adapter runs (paths, its own settings),
 * and the adapter's answer to `--check-launch` (the real adapter of this clone, on real files in a
 * temporary directory): one authority for what a configuration may say.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { AdapterCommand } from '../../src/adapterLocator';
import { VmcoreLaunchConfig } from '../../src/launchConfig';
import { checkWithAdapter, prepareLaunchConfig } from '../../src/launchValidation';
import { repoRoot, venvPython } from '../support/repo';

describe('launch configuration', () => {
    let dir: string;
    const base = (extra: Partial<VmcoreLaunchConfig>): VmcoreLaunchConfig => ({
        type: 'vmcore',
        request: 'launch',
        name: 't',
        vmcore: 'vmcore',
        ...extra,
    });
    const adapter = (): AdapterCommand => ({
        command: venvPython(),
        args: ['-m', 'vmcore_dap'],
        env: { PYTHONPATH: path.join(repoRoot(), 'adapter') },
        origin: 'this clone',
    });

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmcore-dap-validation-'));
        fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a dump\n');
        fs.writeFileSync(path.join(dir, 'empty'), '');
        fs.mkdirSync(path.join(dir, 'src'));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('makes relative paths absolute from the workspace folder, in every path attribute', () => {
        const { config, problems } = prepareLaunchConfig(
            base({
                vmlinux: 'vmlinux',
                sourceRoot: 'src',
                debugInfo: ['src'],
                debugInfoDirectories: ['dbg'],
                sourceFileMap: { '/build': 'src' },
                logFile: 'x.log',
            }),
            dir,
        );
        assert.deepStrictEqual(problems, []);
        assert.strictEqual(config.vmcore, path.join(dir, 'vmcore'));
        assert.strictEqual(config.vmlinux, path.join(dir, 'vmlinux'));
        assert.strictEqual(config.sourceRoot, path.join(dir, 'src'));
        assert.deepStrictEqual(config.debugInfo, [path.join(dir, 'src')]);
        assert.deepStrictEqual(config.debugInfoDirectories, [path.join(dir, 'dbg')]);
        assert.deepStrictEqual(config.sourceFileMap, { '/build': path.join(dir, 'src') });
        assert.strictEqual(config.logFile, path.join(dir, 'x.log'));
    });

    it('drops empty optional strings instead of passing "" to the adapter', () => {
        const { config } = prepareLaunchConfig(base({ vmlinux: '', sourceRoot: '', python: '', logFile: '' }), dir);
        for (const key of ['vmlinux', 'sourceRoot', 'python', 'logFile']) {
            assert.ok(!(key in config), `${key} removed`);
        }
    });

    it('refuses a logFile in a directory that does not exist (the adapter could not start)', () => {
        const { problems } = prepareLaunchConfig(base({ logFile: 'nowhere/x.log' }), dir);
        assert.strictEqual(problems.length, 1);
        assert.strictEqual(problems[0].attribute, 'logFile');
        assert.match(problems[0].message, /directory '.*nowhere' does not exist/);
    });

    it('leaves values of the wrong type for the adapter to explain', async () => {
        const { config } = prepareLaunchConfig(base({ stopOnPanic: 'yes' as unknown as boolean }), dir);
        const problems = await checkWithAdapter(adapter(), config);
        assert.deepStrictEqual(problems.map((p) => [p.attribute, p.severity]), [['stopOnPanic', 'error']]);
        assert.match(problems[0].message, /'stopOnPanic' in launch\.json must be true or false/);
    });

    it("reports the adapter's own checks, naming the path and the setting in launch.json", async () => {
        const { config } = prepareLaunchConfig(
            base({ vmcore: 'nope', vmlinux: 'notes.txt', debugInfo: ['gone.ko'], sourceRoot: 'empty' }),
            dir,
        );
        const problems = await checkWithAdapter(adapter(), config);
        const byAttribute = new Map(problems.map((p) => [p.attribute, p]));
        assert.deepStrictEqual([...byAttribute.keys()].sort(), ['debugInfo', 'sourceRoot', 'vmcore', 'vmlinux']);
        assert.match(byAttribute.get('vmcore')?.message ?? '', /^Cannot open vmcore '.*\/nope': no such file \(check 'vmcore' in launch\.json/);
        assert.match(byAttribute.get('vmlinux')?.message ?? '', /notes\.txt': it is not an ELF file/);
        assert.match(byAttribute.get('debugInfo')?.message ?? '', /gone\.ko': no such file or directory/);
        assert.strictEqual(byAttribute.get('sourceRoot')?.severity, 'warning');
        assert.ok(problems.filter((p) => p.attribute !== 'sourceRoot').every((p) => p.severity === 'error'));
    });

    it('refuses a directory given as the vmcore, saying what to point it at', async () => {
        const { config } = prepareLaunchConfig(base({ vmcore: 'src' }), dir);
        const problems = await checkWithAdapter(adapter(), config);
        assert.strictEqual(problems.length, 1);
        assert.match(problems[0].message, /it is a directory \(point 'vmcore' in launch\.json at the dump file/);
    });
});
