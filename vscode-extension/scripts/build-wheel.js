// Builds the adapter's wheel from this clone into bundled/ (which the .vsix carries) and dist/ (the build
// outputs CI keeps). Run by `vscode:prepublish`, so `npm run package` (vsce) always ships the adapter of
// the same commit as the compiled extension.
//
// The wheel is built by scripts/build_wheel.py (from a clean copy of the sources, so nothing an earlier
// build left in setuptools' build/ ships; the Python tests build it the same way). The Python used:
// $VMCORE_DAP_BUILD_PYTHON, else the clone's .venv, else python3. The extension and the adapter share one version number (the extension compares the adapter's
// version with its own): a difference between package.json and vmcore_dap/__init__.py stops the build.
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const extensionDir = path.resolve(__dirname, '..');
const repo = path.dirname(extensionDir);
const bundled = path.join(extensionDir, 'bundled');
const dist = path.join(repo, 'dist');

function fail(message) {
    console.error(`build-wheel: ${message}`);
    process.exit(1);
}

const extensionVersion = JSON.parse(fs.readFileSync(path.join(extensionDir, 'package.json'), 'utf8')).version;
const init = fs.readFileSync(path.join(repo, 'adapter', 'vmcore_dap', '__init__.py'), 'utf8');
const adapterVersion = (/^__version__ = "([^"]+)"/m.exec(init) || [])[1];
if (adapterVersion !== extensionVersion) {
    fail(`package.json says version ${extensionVersion} but adapter/vmcore_dap/__init__.py says ${adapterVersion}: ` +
        'release them together (set both to the same version)');
}

const venvPython = path.join(repo, '.venv', 'bin', 'python');
const python = process.env.VMCORE_DAP_BUILD_PYTHON || (fs.existsSync(venvPython) ? venvPython : 'python3');

fs.rmSync(bundled, { recursive: true, force: true });
fs.mkdirSync(bundled, { recursive: true });
try {
    execFileSync(python, [path.join(repo, 'scripts', 'build_wheel.py'), bundled], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' },
    });
} catch (e) {
    fail(`scripts/build_wheel.py failed (${e.message}); is PyPI reachable for setuptools?`);
}
const wheelName = `vmcore_dap-${adapterVersion}-py3-none-any.whl`;
const built = fs.readdirSync(bundled);
if (built.length !== 1 || built[0] !== wheelName) {
    fail(`expected ${wheelName} in ${bundled}, found ${built.join(', ') || 'nothing'}`);
}
fs.mkdirSync(dist, { recursive: true });
for (const old of fs.readdirSync(dist).filter((n) => /^vmcore_dap-.*\.whl$/.test(n))) {
    fs.rmSync(path.join(dist, old));
}
fs.copyFileSync(path.join(bundled, wheelName), path.join(dist, wheelName));
console.log(`build-wheel: ${path.join(bundled, wheelName)} (${Math.round(fs.statSync(path.join(bundled, wheelName)).size / 1024)} KiB), copied to ${dist}`);
