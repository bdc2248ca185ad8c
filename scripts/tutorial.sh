#!/usr/bin/env bash
# Runs the TFRS multi-task tutorial (rating-only, retrieval-only, joint; 3 epochs each) on MovieLens 100K.
# Data: $WGREC_DATA_DIR, else ../shared/data next to the repository, else the cache directory, where wgrec
# downloads MovieLens 100K on first use (--offline or WGREC_OFFLINE=1 to refuse; --dataset sample needs none).
# Extra arguments go to `wgrec tutorial` (e.g. --metrics-out results.json, --backend gl).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-adapter.sh
args=()
given=false # data options of the caller's win over ../shared/data
for a in "$@"; do
    case "$a" in --data-dir* | --dataset* | --split-dir* | --split=* | --split) given=true ;; esac
done
if ! $given && [ -z "${WGREC_DATA_DIR:-}" ] && [ -d ../shared/data/ml-100k ]; then
    args+=(--data-dir ../shared/data/ml-100k)
    [ -d ../shared/data/ml-100k-split ] && args+=(--split-dir ../shared/data/ml-100k-split)
fi
bin="${CARGO_TARGET_DIR:-target}/release/wgrec"
if [ -x "$bin" ]; then
    cargo build --release --quiet
else
    # The first build takes minutes: let cargo show its progress.
    echo "building wgrec (release; the first build takes a few minutes)" >&2
    cargo build --release
fi
exec "$bin" tutorial "${args[@]}" "$@"
