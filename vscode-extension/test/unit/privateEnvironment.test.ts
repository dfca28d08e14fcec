/**
 * The private adapter environment's safety rules, with real interpreters and a real pip: a set-up
 * that fails or is cancelled removes what it made and leaves the record (and so the environment
 * later sessions use) as it was; a record whose interpreter is gone is not trusted; and the Python
 * search says what it needs and how to get it. The successful set-up, which downloads drgn and its
 * friends, is the real-VS-Code test's first session (e2e/src/firstSession.e2e.test.ts).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { BundledWheel, bundledWheel, ENVIRONMENTS_DIR, PrivateEnvironment, RECORD_FILE, SetupError } from '../../src/privateEnvironment';
import { findSetupPython, probePython, PythonNotFoundError, PythonProbe, SetupPython, unfitness } from '../../src/pythonFinder';
import { runProcess } from '../../src/processRunner';
import { venvPython } from '../support/repo';

describe('private adapter environment', function () {
    this.timeout(180_000);
    let scratch: string;
    let python: SetupPython;
    const lines: string[] = [];
    const options = (extra: { signal?: AbortSignal; progress?: (step: string) => void } = {}) => ({
        log: (l: string) => lines.push(l),
        progress: extra.progress ?? (() => undefined),
        signal: extra.signal,
    });

    before(async () => {
        scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vmcore-dap-env-'));
        python = await findSetupPython(['python3'], (l) => lines.push(l));
    });
    after(() => fs.rmSync(scratch, { recursive: true, force: true }));

    /** A storage directory whose record names a working environment made earlier (here: the clone's venv). */
    function storageWithRecord(name: string): { env: PrivateEnvironment; record: string } {
        const storage = path.join(scratch, name);
        const previous = path.join(storage, ENVIRONMENTS_DIR, 'vmcore-dap-0.0.9-earlier');
        fs.mkdirSync(previous, { recursive: true });
        const record = JSON.stringify({ directory: previous, python: venvPython(), adapterVersion: '0.0.9' });
        fs.writeFileSync(path.join(storage, RECORD_FILE), record);
        return { env: new PrivateEnvironment(storage), record };
    }

    /** A file named like the adapter wheel that pip refuses (not a zip archive). */
    function brokenWheel(): BundledWheel {
        const dir = path.join(scratch, 'bundled');
        fs.mkdirSync(dir, { recursive: true });
        const file = path.join(dir, 'vmcore_dap-0.1.0-py3-none-any.whl');
        fs.writeFileSync(file, 'not a wheel');
        return { path: file, version: '0.1.0' };
    }

    it('finds a real Python 3.11+ with venv and ensurepip', async () => {
        assert.ok(unfitness(python) === undefined, JSON.stringify(python));
        assert.ok(path.isAbsolute(python.executable));
    });

    it('judges Pythons by version and by their venv module', () => {
        const probe = (version: [number, number, number], ensurepip = true): PythonProbe => ({
            candidate: 'python3', executable: '/usr/bin/python3', version, hasVenv: true, hasEnsurepip: ensurepip,
        });
        assert.match(unfitness(probe([3, 9, 2])) ?? '', /3\.9\.2 is older than 3\.11/);
        assert.match(unfitness(probe([3, 11, 2], false)) ?? '', /lacks the venv module's pip/);
        assert.strictEqual(unfitness(probe([3, 13, 0])), undefined);
    });

    it('says which Python it needs and how to install it on each distribution when none fits', async () => {
        await assert.rejects(findSetupPython(['/nonexistent/python3', 'no-such-python3.99'], () => undefined), (e: unknown) => {
            assert.ok(e instanceof PythonNotFoundError);
            assert.match(e.message, /needs Python 3\.11 or newer with its venv module/);
            assert.match(e.message, /\/nonexistent\/python3/);
            for (const distro of [/Debian 12\+ \/ Ubuntu 24\.04\+: sudo apt install python3 python3-venv/, /Ubuntu 22\.04: sudo apt install python3\.11 python3\.11-venv/,
                /Fedora: sudo dnf install python3/, /RHEL .*: sudo dnf install python3\.11/]) {
                assert.match(e.message, distro);
            }
            return true;
        });
    });

    it('reports a program that is not a Python', async () => {
        const probe = await probePython('/bin/true');
        assert.strictEqual(typeof probe, 'string');
    });

    it('removes a failed set-up and keeps the record of the environment in use', async () => {
        const { env, record } = storageWithRecord('failed');
        await assert.rejects(env.create(brokenWheel(), python, options()), (e: unknown) => {
            assert.ok(e instanceof SetupError && !e.cancelled, String(e));
            assert.match(e.message, /^Installing vmcore_dap-0\.1\.0-py3-none-any\.whl and its dependencies failed: .+/);
            assert.match(e.message, /PyPI/);
            return true;
        });
        assert.strictEqual(fs.readFileSync(env.recordFile, 'utf8'), record, 'the record is untouched');
        assert.deepStrictEqual(fs.readdirSync(path.join(env.storageDir, ENVIRONMENTS_DIR)), ['vmcore-dap-0.0.9-earlier'], 'only the earlier environment is left');
        assert.strictEqual(env.read()?.adapterVersion, '0.0.9');
    });

    it('removes a cancelled set-up and says nothing was changed', async () => {
        const { env, record } = storageWithRecord('cancelled');
        const abort = new AbortController();
        // Cancel as the user would, while the environment is being created.
        const created = env.create(brokenWheel(), python, options({ signal: abort.signal, progress: () => abort.abort() }));
        await assert.rejects(created, (e: unknown) => e instanceof SetupError && e.cancelled && /nothing was changed/.test(e.message));
        assert.strictEqual(fs.readFileSync(env.recordFile, 'utf8'), record);
        assert.deepStrictEqual(fs.readdirSync(path.join(env.storageDir, ENVIRONMENTS_DIR)), ['vmcore-dap-0.0.9-earlier']);
    });

    it('does not trust a record whose interpreter is gone', () => {
        const storage = path.join(scratch, 'stale');
        fs.mkdirSync(storage, { recursive: true });
        fs.writeFileSync(path.join(storage, RECORD_FILE), JSON.stringify({ directory: storage, python: path.join(storage, 'bin', 'python'), adapterVersion: '0.1.0' }));
        const why: string[] = [];
        assert.strictEqual(new PrivateEnvironment(storage).read((l) => why.push(l)), undefined);
        assert.match(why.join('\n'), /no longer runs/);
    });

    it('finds no wheel in a development checkout and the one `npm run package` bundles otherwise', () => {
        const dir = path.join(scratch, 'extension');
        fs.mkdirSync(dir);
        assert.strictEqual(bundledWheel(dir), undefined);
        fs.mkdirSync(path.join(dir, 'bundled'), { recursive: true });
        fs.writeFileSync(path.join(dir, 'bundled', 'vmcore_dap-1.2.3-py3-none-any.whl'), '');
        assert.deepStrictEqual(bundledWheel(dir), { path: path.join(dir, 'bundled', 'vmcore_dap-1.2.3-py3-none-any.whl'), version: '1.2.3' });
    });

    it('runs processes to the end, reporting lines and a missing program', async () => {
        const seen: string[] = [];
        const ok = await runProcess('python3', ['-c', 'print("one"); import sys; print("two", file=sys.stderr)'], { onLine: (l) => seen.push(l) });
        assert.strictEqual(ok.code, 0);
        assert.deepStrictEqual(seen.sort(), ['one', 'two']);
        const missing = await runProcess('/nonexistent/program', []);
        assert.strictEqual(missing.failure, 'no such program');
    });
});
