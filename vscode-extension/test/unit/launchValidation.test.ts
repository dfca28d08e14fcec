/** Launch configuration checks on real files in a temporary directory. */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { VmcoreLaunchConfig } from '../../src/launchConfig';
import { validateLaunchConfig } from '../../src/launchValidation';

describe('validateLaunchConfig', () => {
    let dir: string;
    const base = (extra: Partial<VmcoreLaunchConfig>): VmcoreLaunchConfig => ({
        type: 'vmcore',
        request: 'launch',
        name: 't',
        vmcore: 'vmcore',
        ...extra,
    });

    before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmcore-dap-validation-'));
        fs.writeFileSync(path.join(dir, 'vmcore'), Buffer.concat([Buffer.from('KDUMP   '), Buffer.alloc(64)]));
        fs.writeFileSync(path.join(dir, 'elfcore'), Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(64)]));
        fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a dump\n');
        fs.writeFileSync(path.join(dir, 'empty'), '');
        fs.mkdirSync(path.join(dir, 'src'));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('accepts a kdump-compressed vmcore and makes relative paths absolute', () => {
        const { config, problems } = validateLaunchConfig(
            base({ vmlinux: 'elfcore', sourceRoot: 'src', debugInfo: ['src'], logFile: 'x.log' }),
            dir,
        );
        assert.deepStrictEqual(problems, []);
        assert.strictEqual(config.vmcore, path.join(dir, 'vmcore'));
        assert.strictEqual(config.vmlinux, path.join(dir, 'elfcore'));
        assert.strictEqual(config.sourceRoot, path.join(dir, 'src'));
        assert.deepStrictEqual(config.debugInfo, [path.join(dir, 'src')]);
        assert.strictEqual(config.logFile, path.join(dir, 'x.log'));
    });

    it('rejects a missing vmcore attribute and a missing file, naming the path', () => {
        const none = validateLaunchConfig(base({ vmcore: '' }), dir).problems;
        assert.strictEqual(none[0]?.severity, 'error');
        assert.match(none[0].message, /No vmcore given/);
        const missing = validateLaunchConfig(base({ vmcore: 'nope' }), dir).problems;
        assert.strictEqual(missing[0]?.severity, 'error');
        assert.ok(missing[0].message.includes(path.join(dir, 'nope')));
        assert.match(missing[0].message, /no such file/);
    });

    it('rejects an empty vmcore and a directory, warns about an unknown format', () => {
        assert.match(validateLaunchConfig(base({ vmcore: 'empty' }), dir).problems[0].message, /empty/);
        assert.match(validateLaunchConfig(base({ vmcore: 'src' }), dir).problems[0].message, /directory/);
        const unknown = validateLaunchConfig(base({ vmcore: 'notes.txt' }), dir).problems;
        assert.strictEqual(unknown[0]?.severity, 'warning');
        assert.match(unknown[0].message, /does not look like a kernel crash dump/);
    });

    it('rejects a vmlinux that is not ELF, a sourceRoot that is not a directory, missing debugInfo', () => {
        const problems = validateLaunchConfig(
            base({ vmlinux: 'notes.txt', sourceRoot: 'vmcore', debugInfo: ['gone.ko'] }),
            dir,
        ).problems;
        const byAttr = new Map(problems.map((p) => [p.attribute, p]));
        assert.match(byAttr.get('vmlinux')?.message ?? '', /not an ELF file/);
        assert.match(byAttr.get('sourceRoot')?.message ?? '', /not a directory/);
        assert.match(byAttr.get('debugInfo')?.message ?? '', /gone\.ko/);
        assert.ok(problems.every((p) => p.severity === 'error'));
    });

    it('drops empty optional strings instead of passing "" to the adapter', () => {
        const { config } = validateLaunchConfig(base({ vmlinux: '', sourceRoot: '', python: '', logFile: '' }), dir);
        for (const key of ['vmlinux', 'sourceRoot', 'python', 'logFile']) {
            assert.ok(!(key in config), `${key} removed`);
        }
    });
});
