#!/usr/bin/env bash
# Runs wgrec's tutorial and the PyTorch reference (same model, same split, CPU) one after the other on this
# machine and prints both wall times and their ratio.
#   DATA=DIR            data root holding ml-100k/ and ml-100k-split/ (default ../shared/data)
#   TORCH_REFERENCE=F   the reference script (default ../shared/reference/torch_multitask.py)
#   TORCH_THREADS=N     torch threads (default 2); OUT=DIR results (default out/compare)
# Extra arguments go to `wgrec tutorial` (e.g. --backend gl). PyTorch is installed into .venv-torch on first
# use (pip install torch numpy, as the reference's header says; several GB).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-adapter.sh
DATA="${DATA:-../shared/data}"
REF="${TORCH_REFERENCE:-../shared/reference/torch_multitask.py}"
THREADS="${TORCH_THREADS:-2}"
OUT="${OUT:-out/compare}"
for f in "$DATA/ml-100k/u.item" "$DATA/ml-100k-split/train.data" "$REF"; do
    [ -e "$f" ] || { echo "error: $f not found (set DATA / TORCH_REFERENCE)" >&2; exit 2; }
done
mkdir -p "$OUT"
cargo build --release --quiet
venv=.venv-torch
if ! "$venv/bin/python" -c 'import torch' >/dev/null 2>&1; then
    echo "installing PyTorch into $venv (first use)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch numpy
fi

now() { date +%s.%N; }
peak_rss() { # peak RSS in MiB of a command, from GNU time when it is there
    if [ -x /usr/bin/time ]; then /usr/bin/time -f '%M' -o "$1" "${@:2}"; else "${@:2}"; echo 0 >"$1"; fi
}

echo "== wgrec tutorial ==" >&2
t0=$(now)
peak_rss "$OUT/wgrec.rss" ./target/release/wgrec --quiet tutorial --data-dir "$DATA/ml-100k" \
    --split-dir "$DATA/ml-100k-split" --metrics-out "$OUT/wgrec.json" "$@"
t1=$(now)
echo "== PyTorch reference, $THREADS threads ==" >&2
"$venv/bin/python" "$REF" --data "$DATA" --seeds 0 --epochs-list 3 --configs 1,0 0,1 1,1 \
    --check-seed -1 --no-parts --threads "$THREADS" --out "$OUT/torch.json" >&2
t2=$(now)

python3 - "$OUT" "$t0" "$t1" "$t2" "$THREADS" <<'EOF'
import json, sys
out, t0, t1, t2, threads = sys.argv[1], *map(float, sys.argv[2:5]), sys.argv[5]
w = json.load(open(f"{out}/wgrec.json"))
t = json.load(open(f"{out}/torch.json"))
wg_wall, th_wall = t1 - t0, t2 - t1
wg_work = sum(r["train_seconds"] + r["eval_seconds"] for r in w["runs"])
th_work = sum(sum(cp["epoch_seconds"]) + cp["eval_seconds"]
              for r in t["worker_results"] for cp in r["checkpoints"].values())
th_rss = max(r["peak_rss_mib"] for r in t["worker_results"])
wg_rss = float(open(f"{out}/wgrec.rss").read().strip() or 0) / 1024
a = w["adapter"]
print(f"adapter: {a['name']} ({a['backend']}, {a['device_type']}); torch threads: {threads}")
print(f"{'':28}{'wgrec':>10}{'PyTorch':>10}{'ratio':>8}")
print(f"{'wall, whole tutorial (s)':28}{wg_wall:>10.1f}{th_wall:>10.1f}{wg_wall / th_wall:>8.2f}")
print(f"{'train + eval only (s)':28}{wg_work:>10.1f}{th_work:>10.1f}{wg_work / th_work:>8.2f}")
print(f"{'peak RSS (MiB)':28}{wg_rss:>10.0f}{th_rss:>10.0f}")
print(f"{'':28}{'top-100':>10}{'RMSE':>10}")
for r in w["runs"]:
    cfg = (r["rating_weight"], r["retrieval_weight"])
    tr = next(x for x in t["worker_results"] if (x["rating_weight"], x["retrieval_weight"]) == cfg)
    cp = tr["checkpoints"]["3"]
    print(f"  ({cfg[0]:g}, {cfg[1]:g}) wgrec  {r['test']['factorized_top_k/top_100_categorical_accuracy']:>10.4f}"
          f"{r['test']['root_mean_squared_error']:>10.4f}")
    print(f"  ({cfg[0]:g}, {cfg[1]:g}) torch  {cp['top_100']:>10.4f}{cp['rmse']:>10.4f}")
EOF
