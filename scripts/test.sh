#!/usr/bin/env bash
# Runs every test: formatting, shader validation and translation (naga), GPU kernels against their CPU
# twins, gradient checks and the end-to-end MovieLens bands. Installs the software adapter if needed, and
# Chromium for the serve page's browser test.
# Ends with the tests that could not run here (no adapter, no data) and why; in CI (CI=true) those fail.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-adapter.sh
# The page test (tests/serve_http.rs) drives headless Chromium; install Debian's where apt can.
if ! command -v chromium >/dev/null 2>&1 && [ -z "${WGREC_CHROMIUM:-}" ] && command -v apt-get >/dev/null 2>&1; then
    echo "chromium not found: installing it for the page test (tests/serve_http.rs)" >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    { $SUDO apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
        || echo "warning: could not install chromium; the page test will be skipped (a failure in CI)" >&2
fi
if [ -z "${WGREC_DATA_DIR:-}" ] && [ -d ../shared/data/ml-100k ]; then
    export WGREC_DATA_DIR="$(cd ../shared/data && pwd)"
fi
# Mesa 22.3's lavapipe (Debian 12's) crashes now and then inside the driver on long runs of small
# dispatches (README "Known issues"); fewer with no worker threads. The variable only affects
# llvmpipe/lavapipe, never a real GPU. Set LP_NUM_THREADS yourself to test the threaded driver.
export LP_NUM_THREADS="${LP_NUM_THREADS:-0}"
cargo fmt --all -- --check
# Module import cycles first: a cycle is a layout error, reported in a second (tests/module_cycles.rs).
cargo test --quiet --test module_cycles

# A test that returns early for lack of an adapter or data reads `ok` in libtest's summary; the skip
# helpers (tests/common/skip.rs) append `name<TAB>reason` here instead, and the list is printed last.
log="$(mktemp)"
skips="$(mktemp)"
export WGREC_SKIP_LOG="$skips"
report_skips() {
    local n
    n=$(sort -u "$skips" | grep -c . || true)
    if [ "$n" -eq 0 ]; then
        echo "no test skipped"
    elif [ "$n" -eq 1 ]; then
        sort -u "$skips" | awk -F'\t' '{ printf "skipped 1 test: %s (%s)\n", $1, $2 }'
    else
        echo "skipped $n tests:"
        sort -u "$skips" | awk -F'\t' '{ printf "  %s (%s)\n", $1, $2 }'
    fi
}
finish() {
    local rc=$?
    report_skips
    # The helpers already fail in CI; this also catches a skip recorded some other way.
    if [ "$rc" -eq 0 ] && [ "${CI:-}" = true ] && [ -s "$skips" ]; then
        echo "error: CI=true and tests were skipped" >&2
        rc=1
    fi
    rm -f "$log" "$skips"
    exit "$rc"
}
trap finish EXIT
set +e
cargo test --all-targets --no-fail-fast "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] && exit 0

# A test binary killed by a signal (SIGSEGV/SIGABRT from the driver) is run once more; a failed assertion,
# a compile error or a second crash fails the run.
failures=$(grep -c "process didn't exit successfully" "$log" || true)
crashes=$(grep -E "process didn't exit successfully: .*\(signal: " "$log" | sed -E 's/.*deps\/([A-Za-z0-9_]+)-[0-9a-f]+`.*/\1/' | sort -u)
crash_count=$(grep -cE "process didn't exit successfully: .*\(signal: " "$log" || true)
if [ "$failures" -eq 0 ] || [ "$failures" -ne "$crash_count" ]; then
    exit "$rc"
fi
for target in $crashes; do
    echo "warning: test binary '$target' was killed by a signal (the lavapipe crash, README \"Known issues\"); running it again once" >&2
    if [ "$target" = wgrec ]; then
        cargo test --lib --bins "$@"
    else
        cargo test --test "$target" "$@"
    fi
done
