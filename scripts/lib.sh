# Shell functions shared by the set-up scripts (sourced, not run). The caller defines say().

# apt_ensure PKG...: install the Debian packages that are missing, as root, idempotently; refresh the
# package lists once if the first attempt fails; exit with a clear message when not root or apt fails.
apt_ensure() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        say "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
        exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    local logf=/tmp/vmcore-dap-apt.log
    # Wait for another apt/dpkg (a second clone's set-up) rather than fail on its lock.
    local wait=(-o DPkg::Lock::Timeout=900)
    if ! DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y --no-install-recommends "${missing[@]}" >"$logf" 2>&1; then
        say "apt-get install failed, refreshing the package lists once"
        apt-get "${wait[@]}" update >>"$logf" 2>&1 || { say "apt-get update failed (no access to the Debian registry?): see $logf"; exit 1; }
        DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y --no-install-recommends "${missing[@]}" >>"$logf" 2>&1 \
            || { say "apt-get install ${missing[*]} failed: see $logf"; exit 1; }
    fi
}
