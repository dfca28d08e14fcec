/**
 * Adapter lookup with real interpreters: the clone's .venv (which has vmcore_dap, and stands in for a
 * private environment too), the system python3 (which has not), and paths that do not exist.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { AdapterNotFoundError, locateAdapter, LocatorInputs, PRIVATE_ENVIRONMENT_ORIGIN } from '../../src/adapterLocator';
import { adapterScript, extensionDir, repoRoot, venvPython } from '../support/repo';

describe('locateAdapter', function () {
    this.timeout(60_000);
    const lines: string[] = [];
    let outside: string; // an "extension directory" that is not in a clone

    const inputs = (extra: Partial<LocatorInputs>): LocatorInputs => ({
        extensionDir: extensionDir(),
        pythonExtensionInterpreter: async () => undefined,
        log: (l) => lines.push(l),
        ...extra,
    });

    before(() => {
        outside = fs.mkdtempSync(path.join(os.tmpdir(), 'vmcore-dap-ext-'));
    });
    after(() => fs.rmSync(outside, { recursive: true, force: true }));

    it("finds the clone's venv and puts <clone>/adapter on PYTHONPATH", async () => {
        const found = await locateAdapter(inputs({}));
        assert.strictEqual(found.command, venvPython());
        assert.deepStrictEqual(found.args, ['-m', 'vmcore_dap']);
        assert.ok(found.env.PYTHONPATH?.split(path.delimiter).includes(path.join(repoRoot(), 'adapter')));
        assert.match(found.origin, /venv/);
    });

    it('prefers the launch configuration over the settings', async () => {
        const found = await locateAdapter(inputs({ configPython: venvPython(), settingPython: '/nonexistent/python' }));
        assert.strictEqual(found.origin, '"python" in launch.json');
    });

    it('runs an adapterPath executable as it is', async () => {
        const found = await locateAdapter(inputs({ settingAdapterPath: adapterScript() }));
        assert.strictEqual(found.command, adapterScript());
        assert.deepStrictEqual(found.args, []);
    });

    it('reports an explicit interpreter that does not exist instead of falling back', async () => {
        await assert.rejects(locateAdapter(inputs({ settingPython: '/nonexistent/python3' })), (e: unknown) => {
            assert.ok(e instanceof AdapterNotFoundError);
            assert.match(e.message, /'\/nonexistent\/python3' \(vmcoreDap\.python setting\) cannot import vmcore_dap: no such interpreter/);
            assert.strictEqual(e.setting, 'vmcoreDap.python');
            assert.strictEqual(e.nothingConfigured, false, 'a broken setting is reported, not replaced by a set-up');
            return true;
        });
    });

    it('uses the private environment outside a clone, before the Python extension and python3', async () => {
        const found = await locateAdapter(inputs({
            extensionDir: outside,
            privateEnvironmentPython: () => venvPython(),
            pythonExtensionInterpreter: async () => '/usr/bin/python3',
        }));
        assert.strictEqual(found.origin, PRIVATE_ENVIRONMENT_ORIGIN);
        assert.strictEqual(found.command, venvPython());
        assert.deepStrictEqual(found.env, {}, 'no PYTHONPATH: the environment has the package installed');
    });

    it('prefers the clone it runs from to the private environment', async () => {
        const found = await locateAdapter(inputs({ privateEnvironmentPython: () => '/nonexistent/private/python' }));
        assert.match(found.origin, /venv/);
    });

    it('tells pip to install the bundled wheel when the extension carries one', async () => {
        const wheel = '/x/bundled/vmcore_dap-0.1.0-py3-none-any.whl';
        await assert.rejects(
            locateAdapter(inputs({ extensionDir: outside, bundledWheel: wheel, pythonExtensionInterpreter: async () => '/usr/bin/python3' })),
            (e: unknown) => e instanceof AdapterNotFoundError && e.installCommand === `/usr/bin/python3 -m pip install ${wheel}` && e.nothingConfigured,
        );
    });

    it('says how to install the adapter when no interpreter has it', async function () {
        const python3 = '/usr/bin/python3';
        await assert.rejects(
            locateAdapter(inputs({ extensionDir: outside, pythonExtensionInterpreter: async () => python3 })),
            (e: unknown) => {
                assert.ok(e instanceof AdapterNotFoundError);
                assert.match(e.message, /No module named 'vmcore_dap'/);
                assert.strictEqual(e.installCommand, `${python3} -m pip install <path of the vmcore-dap source>`);
                assert.ok(e.message.includes(e.installCommand));
                assert.strictEqual(e.nothingConfigured, true, 'nothing configured: the extension may offer its set-up');
                return true;
            },
        );
    });

    it('rejects an adapterPath that is neither an executable nor a package directory', async () => {
        await assert.rejects(locateAdapter(inputs({ configAdapterPath: outside })), /neither an executable vmcore-dap nor a directory/);
    });

    it('logs every candidate it tried', () => {
        assert.ok(lines.some((l) => l.includes('vmcore_dap at ')), lines.join('\n'));
    });
});
