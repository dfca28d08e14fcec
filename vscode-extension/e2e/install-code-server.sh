#!/usr/bin/env bash
# Install the pinned code-server (code-server/package-lock.json) into the cache outside the clone, once,
# and print the directory it lives in. The end-to-end test calls this to find its VS Code; setup-node.sh
# calls it to pre-install. The directory name carries a hash of the lock file and the Node version, so a
# fresh clone reuses the same install and a change of either installs afresh beside it.
# Needs: node 20, npm, build-essential, libkrb5-dev (kerberos builds from source), ripgrep (Debian's rg
# stands in for the one @vscode/ripgrep would download from the internet).
set -euo pipefail

spec_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/code-server"
cache="${VMCORE_DAP_CACHE:-$HOME/.cache/vmcore-dap}"
version="$(node -p 'require(process.argv[1]).dependencies["code-server"]' "$spec_dir/package.json")"
key="$( { cat "$spec_dir/package.json" "$spec_dir/package-lock.json"; node --version; } | sha256sum | cut -c1-12)"
dest="$cache/code-server/$version-$key"
marker="$dest/.installed"

log() { echo "install-code-server: $*" >&2; }

if [[ -f "$marker" && -x "$dest/node_modules/.bin/code-server" ]]; then
    echo "$dest"
    exit 0
fi

mkdir -p "$cache/code-server"
exec 9>"$cache/code-server/.lock-$version-$key"
flock 9
if [[ -f "$marker" && -x "$dest/node_modules/.bin/code-server" ]]; then  # installed while we waited
    echo "$dest"
    exit 0
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [[ "$node_major" != 20 ]]; then
    log "code-server $version needs Node 20, found $(node --version) (install Debian's nodejs 20 or use nvm)"
    exit 1
fi
for tool in rg cc make; do
    command -v "$tool" >/dev/null || { log "missing '$tool' (run scripts/setup-node.sh as root)"; exit 1; }
done

# @vscode/ripgrep (inside code-server's postinstall) downloads rg from GitHub with no fallback; give it
# Debian's rg in the cache file it looks for first.
rg_cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
rg_tar="$rg_cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
if [[ ! -s "$rg_tar" ]]; then
    mkdir -p "$rg_cache"
    rg_stage="$(mktemp -d)"
    cp "$(command -v rg)" "$rg_stage/rg"
    tar -C "$rg_stage" -czf "$rg_tar.tmp" rg && mv "$rg_tar.tmp" "$rg_tar"
    rm -rf "$rg_stage"
fi

log "installing code-server $version into $dest (takes several minutes; log: $dest.log)"
rm -rf "$dest"
mkdir -p "$dest"
cp "$spec_dir/package.json" "$spec_dir/package-lock.json" "$dest/"
if ! (
    cd "$dest"
    export npm_config_unsafe_perm=true   # root: let code-server's postinstall run as us
    export npm_config_yes=true           # ~/.npmrc may say yes=false, which cancels `npx node-gyp`
    export npm_config_nodedir=/usr       # build native modules against the local Node headers
    export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
    npm ci --no-audit --no-fund
) >"$dest.log" 2>&1; then
    log "npm ci failed; last lines of $dest.log:"
    tail -n 30 "$dest.log" >&2
    exit 1
fi
if [[ ! -x "$dest/node_modules/.bin/code-server" ]]; then
    log "npm ci succeeded but $dest/node_modules/.bin/code-server is missing (see $dest.log)"
    exit 1
fi
date -u +%FT%TZ >"$marker"
echo "$dest"
