#!/usr/bin/env bash
# Runs every test: formatting, shader validation and translation (naga), GPU kernels against their CPU
# twins, gradient checks and the end-to-end MovieLens bands. Installs the software adapter if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-adapter.sh
if [ -z "${WGREC_DATA_DIR:-}" ] && [ -d ../shared/data/ml-100k ]; then
    export WGREC_DATA_DIR="$(cd ../shared/data && pwd)"
fi
cargo fmt --all -- --check
cargo test --all-targets "$@"
