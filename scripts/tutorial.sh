#!/usr/bin/env bash
# Runs the TFRS multi-task tutorial (rating-only, retrieval-only, joint; 3 epochs each) on MovieLens 100K.
# Data: $WGREC_DATA_DIR, else ../shared/data next to the repository, else the cache directory.
# Extra arguments go to `wgrec tutorial` (e.g. --metrics-out results.json, --backend gl).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-adapter.sh
args=()
if [ -z "${WGREC_DATA_DIR:-}" ] && [ -d ../shared/data/ml-100k ]; then
    args+=(--data-dir ../shared/data/ml-100k)
    [ -d ../shared/data/ml-100k-split ] && args+=(--split-dir ../shared/data/ml-100k-split)
fi
cargo build --release --quiet
exec ./target/release/wgrec tutorial "${args[@]}" "$@"
