#!/usr/bin/env bash
# Install what the VS Code extension and its two test layers need on a fresh Debian 12 machine (as root),
# idempotently:
#   - Debian packages: chromium (the browser the end-to-end test drives), libkrb5-dev + build-essential
#     (code-server's kerberos module builds from source), ripgrep (stands in for the rg that
#     @vscode/ripgrep would download), nodejs/npm only when no node is on PATH;
#   - vscode-extension/node_modules from its package-lock.json (`npm ci`, skipped while the lock is
#     unchanged: a stamp in node_modules records its hash), then the compiled extension (tsc);
#   - code-server 4.100.3 in $VMCORE_DAP_CACHE/code-server/<version>-<hash>/ (vscode-extension/e2e/
#     install-code-server.sh; outside the clone, reused by every clone).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."

say() { printf '[setup-node] %s\n' "$*" >&2; }

# shellcheck source=lib.sh
. "$here/lib.sh"

apt_ensure chromium libkrb5-dev build-essential ripgrep python3
command -v node >/dev/null || apt_ensure nodejs npm
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    say "Node $(node --version) is too old: the extension's tests and code-server 4.100.3 need Node 20"
    exit 1
fi

# npm settings that the installs below depend on (a user's ~/.npmrc may say otherwise).
export npm_config_yes=true npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

cd vscode-extension
stamp="node_modules/.installed-$( { cat package-lock.json; node --version; } | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    say "installing the extension's npm packages (npm ci)"
    if ! npm ci --no-audit --no-fund >/tmp/vmcore-dap-npm-ci.log 2>&1; then
        say "npm ci failed (is the npm registry reachable?): last lines of /tmp/vmcore-dap-npm-ci.log:"
        tail -20 /tmp/vmcore-dap-npm-ci.log >&2
        exit 1
    fi
    rm -f node_modules/.installed-*
    touch "$stamp"
fi
npx --no-install tsc -p ./

code_server_dir="$(e2e/install-code-server.sh)"
say "extension side ready: node $(node --version), $(chromium --version 2>/dev/null | head -1), code-server in $code_server_dir"
