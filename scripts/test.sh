#!/usr/bin/env bash
# Runs every test: formatting, shader validation and translation (naga), GPU kernels against their CPU
# twins, gradient checks and the end-to-end MovieLens bands. Installs the software adapter if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-adapter.sh
if [ -z "${WGREC_DATA_DIR:-}" ] && [ -d ../shared/data/ml-100k ]; then
    export WGREC_DATA_DIR="$(cd ../shared/data && pwd)"
fi
# Mesa 22.3's lavapipe (Debian 12's) crashes now and then in its worker threads on long runs of small
# dispatches (README "Known issues"); with no worker threads it has not. The variable only affects
# llvmpipe/lavapipe, never a real GPU. Set LP_NUM_THREADS yourself to test the threaded driver.
export LP_NUM_THREADS="${LP_NUM_THREADS:-0}"
cargo fmt --all -- --check
cargo test --all-targets "$@"
