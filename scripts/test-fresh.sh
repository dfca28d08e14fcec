#!/usr/bin/env bash
# make test-fresh: the whole of `make test` on samples built from scratch, phase by phase, timed.
#
# Every sample build is a new race (who took the mutex first, who ran on CPU 1, a task caught waking),
# so a test that passes on the samples of one cache proves little. This builds every sample again in a
# cache of its own, asks crash about the new dumps, and runs every test layer on them:
#
#   FRESH=samples (default)  a new $VMCORE_DAP_CACHE whose every top-level entry but samples/ (and tmp/)
#                            is a symbolic link into the shared cache: kernel packages, the kernel source
#                            tree, crash binaries, code-server and ctags indexes are reused; the samples
#                            and crash's answers about them (kept inside each sample) are new. (Only crash
#                            is made sure of in the shared cache first: its `make samples` would walk
#                            every sample there, other clones' included.)
#   FRESH=all                an empty $VMCORE_DAP_CACHE: kernels and Debian's crash packages are
#                            downloaded too, as on a fresh machine (the .venv and node_modules of
#                            the clone are kept).
#
# Phases (each a make target, in the order `make test` runs them): setup, samples (kernel packages and
# source tree when missing, then every vmcore), crash, answers, pytest, extension DAP tests, real-VS-Code
# tests. The test phases all run even when one fails. The table of times goes to stdout and to
# <runs>/<stamp>.times; the full log to <runs>/<stamp>.log, where <runs> is $VMCORE_DAP_FRESH_RUNS
# (default: fresh-runs/ in the shared cache). The fresh cache is removed after a run that passed
# (KEEP_FRESH=1 keeps it) and kept, for inspection, after one that failed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."

say() { printf '[test-fresh] %s\n' "$*" >&2; }

shared=${VMCORE_DAP_CACHE:-$HOME/.cache/vmcore-dap}
mode=${FRESH:-samples}
case "$mode" in
samples | all) ;;
*) say "FRESH=$mode: expected 'samples' (reuse kernels and crash) or 'all' (an empty cache)"; exit 2 ;;
esac
runs=${VMCORE_DAP_FRESH_RUNS:-$shared/fresh-runs}
stamp="$(date -u +%Y%m%dT%H%M%SZ)-$$"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo '+changes')"
fresh="$runs/$stamp"
log="$runs/$stamp.log"
times="$runs/$stamp.times"
mkdir -p "$fresh" || { say "cannot create $fresh (set VMCORE_DAP_FRESH_RUNS to a writable directory)"; exit 1; }
: >"$log"

if [ "$mode" = samples ]; then
    # crash (Debian's packages) is fetched into the shared cache if it is missing there (cheap when it
    # is not); kernel packages and the rest are reused when a make samples/test has already put them
    # there, and otherwise fetched into the fresh cache (and removed with it).
    say "shared cache $shared: crash (reused)"
    if ! VMCORE_DAP_CACHE="$shared" make --no-print-directory crash >>"$log" 2>&1; then
        say "fetching crash into the shared cache failed: see $log"
        exit 1
    fi
    for entry in "$shared"/*; do  # not the dot files: locks stay with their own cache
        [ -e "$entry" ] || continue
        name=$(basename "$entry")
        case "$name" in
        samples | tmp | fresh-runs) continue ;;
        esac
        [ "$entry" -ef "$runs" ] && continue
        ln -s "$entry" "$fresh/$name"
    done
fi
export VMCORE_DAP_CACHE="$fresh"
say "fresh cache $fresh ($mode); log $log"

declare -a names=() seconds=() results=()
failed=0
phase() {
    local name=$1
    shift
    local t0 t1 rc
    say "phase $name: $*"
    printf '\n===== phase %s: %s\n' "$name" "$*" >>"$log"
    t0=$(date +%s)
    "$@" >>"$log" 2>&1
    rc=$?
    t1=$(date +%s)
    names+=("$name")
    seconds+=($((t1 - t0)))
    if [ $rc -eq 0 ]; then results+=("passed"); else results+=("FAILED ($rc)"); failed=1; fi
    say "phase $name: ${results[-1]} in $((t1 - t0)) s"
    return $rc
}

summary() {
    {
        printf '# make test-fresh %s (FRESH=%s) on %s, commit %s at the start\n' "$stamp" "$mode" "$(hostname)" \
            "$commit"
        printf '%-22s %8s  %s\n' phase seconds result
        local i total=0
        for i in "${!names[@]}"; do
            printf '%-22s %8d  %s\n' "${names[$i]}" "${seconds[$i]}" "${results[$i]}"
            total=$((total + seconds[i]))
        done
        printf '%-22s %8d\n' total "$total"
        # What the builder says each vmcore took (manifest build_seconds; the rest of the samples phase
        # is kernel packages and the kernel source tree), and how each sample's races came out: who
        # crash's ps shows on each CPU, and how many tasks in each state.
        find "$fresh/samples" -name manifest.json 2>/dev/null | sort | xargs -r python3 -c '
import collections, json, pathlib, sys
total = 0
for path in map(pathlib.Path, sys.argv[1:]):
    m = json.loads(path.read_text())
    total += m.get("build_seconds", 0)
    line = "  vmcore %s on %s: %s s" % (m.get("scenario"), m.get("kernel_release"), m.get("build_seconds"))
    ps = path.parent / "crash" / "ps.txt"
    if ps.exists():
        rows = [r.split() for r in ps.read_text().splitlines()[1:] if r.strip()]
        on_cpu = ", ".join(f"CPU{r[3]} {r[9]} {r[5]}" for r in rows if r[0] == ">")
        states = collections.Counter(r[5] if r[0] == ">" else r[4] for r in rows)
        line += f"; on CPUs: {on_cpu}; states: {dict(states)}"
    print(line)
print(f"  vmcores built: {total} s")'
        printf '%s\n' "$(grep -E '^[=]+ .*(passed|failed|error).* in [0-9.]+s' "$log" | sed 's/^/  pytest: /')"
        grep -E '^ *[0-9]+ (passing|failing|pending)' "$log" | sed 's/^ */  mocha: /'
    } | tee "$times"
}

phase setup make --no-print-directory setup setup-node &&
    phase samples make --no-print-directory samples &&
    phase crash make --no-print-directory crash &&
    phase answers make --no-print-directory oracle
if [ $failed -eq 0 ]; then
    phase pytest make --no-print-directory test-python
    phase extension-dap make --no-print-directory test-extension-dap
    phase real-vscode make --no-print-directory test-extension-e2e
fi
summary
if [ $failed -eq 0 ] && [ "${KEEP_FRESH:-0}" != 1 ]; then
    rm -rf "$fresh"
    say "passed; removed $fresh (times in $times)"
else
    say "$([ $failed -eq 0 ] && echo passed || echo FAILED); kept $fresh (log $log, times $times)"
fi
exit $failed
