/**
 * Where the vmcore-dap clone, its venv and the adapter are, as seen from the compiled tests
 * (`vscode-extension/out/test/...` or `out/e2e/...`). Shared by the protocol and end-to-end tests.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The repository root: the directory holding `vscode-extension/` and `adapter/`. */
export function repoRoot(): string {
    let dir = __dirname;
    while (dir !== path.dirname(dir)) {
        if (fs.existsSync(path.join(dir, 'vscode-extension', 'package.json')) && fs.existsSync(path.join(dir, 'adapter'))) {
            return dir;
        }
        dir = path.dirname(dir);
    }
    throw new Error(`cannot find the vmcore-dap clone above ${__dirname}`);
}

/** The directory of the extension (its package.json). */
export function extensionDir(): string {
    return path.join(repoRoot(), 'vscode-extension');
}

/** `<repo>/.venv/bin/python`, which `make setup` creates. */
export function venvPython(): string {
    const python = path.join(repoRoot(), '.venv', 'bin', 'python');
    if (!fs.existsSync(python)) {
        throw new Error(`${python} does not exist (run 'make setup' in ${repoRoot()})`);
    }
    return python;
}

/** `<repo>/.venv/bin/vmcore-dap`, the adapter's console script (`pip install -e .` makes it). */
export function adapterScript(): string {
    const script = path.join(repoRoot(), '.venv', 'bin', 'vmcore-dap');
    if (!fs.existsSync(script)) {
        throw new Error(`${script} does not exist (run 'make setup', which installs the adapter into .venv)`);
    }
    return script;
}
