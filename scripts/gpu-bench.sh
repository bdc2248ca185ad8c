#!/usr/bin/env bash
# One-shot GPU check for a Linux machine with an NVIDIA GPU, no Rust toolchain and no network: runs a
# prebuilt wgrec and prints one table. Steps: the adapters (stops without a GPU adapter), selftest of the
# GPU family, the kernel benchmark, the tutorial with both kernel families, top-100 of every user of the
# tutorial's joint model with both families (serving), one joint epoch of an
# ML-25M-sized synthetic set, and the PyTorch reference on CUDA on the same GPU. Each step has a time
# limit and the whole run a budget (BUDGET), so it ends within 8 minutes.
#   WGREC=FILE          the binary (default target/release/wgrec, built elsewhere with cargo build --release)
#   GL=DIR              Debian packages of Vulkan's loader (libvulkan1), unpacked into / when the loader is
#                       missing (default .gl); the NVIDIA driver brings its own ICD
#   DATA=DIR            holds ml-100k/ and ml-100k-split/ (default ../shared/data)
#   TORCH_REFERENCE=F   the PyTorch twin (default ../shared/reference/torch_multitask.py)
#   OUT=DIR             results (default out/gpu-bench)
#   BUDGET=SECONDS      the whole run's time limit (default 470)
set -uo pipefail
cd "$(dirname "$0")/.."
WGREC="${WGREC:-target/release/wgrec}"
GL="${GL:-.gl}"
DATA="${DATA:-../shared/data}"
REF="${TORCH_REFERENCE:-../shared/reference/torch_multitask.py}"
OUT="${OUT:-out/gpu-bench}"
mkdir -p "$OUT"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

if ! ldconfig -p | grep -q libvulkan.so.1; then
    if compgen -G "$GL/*.deb" >/dev/null; then
        for f in "$GL"/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -e "$icd" ]; then
    export VK_DRIVER_FILES="$icd"
fi
[ -x "$WGREC" ] || { echo "error: $WGREC not found or not executable (set WGREC)" >&2; exit 2; }

# Every step's name, seconds and exit status, for the table at the end.
steps="$OUT/steps.tsv"
: >"$steps"
# The whole run's budget: a step's limit is cut to what is left of it, and a step with under 5 s left is
# skipped (exit 124 in the table), so the run ends within BUDGET seconds whatever hangs.
BUDGET="${BUDGET:-470}"
deadline=$((SECONDS + BUDGET))
# Runs a step under a time limit; its output goes to $OUT/NAME.log.
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((deadline - SECONDS))
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "$limit" -lt 5 ]; then
        echo "== $name: skipped, the run's $BUDGET s are spent" >&2
        echo "skipped: the run's $BUDGET s budget is spent" >"$OUT/$name.log"
        printf '%s\t0\t124\n' "$name" >>"$steps"
        return
    fi
    echo "== $name" >&2
    local t0 t1 rc
    t0=$(date +%s.%N)
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    [ "$rc" -eq 124 ] && echo "   timed out after $limit s" >&2
    tail -n 3 "$OUT/$name.log" >&2
    printf '%s\t%s\t%s\n' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" "$rc" >>"$steps"
}

step adapters 60 "$WGREC" adapters
cat "$OUT/adapters.log"
if ! grep -E '^\*' "$OUT/adapters.log" | grep -qE 'DiscreteGpu|IntegratedGpu|VirtualGpu'; then
    echo "error: wgrec would use no GPU adapter here (see above); stopping" >&2
    exit 1
fi
step selftest 90 "$WGREC" selftest --kernels gpu
step bench 120 "$WGREC" --quiet bench --shape all --kernels gpu --out "$OUT/bench.json"
for family in gpu windowed; do
    step "tutorial-$family" 120 "$WGREC" --quiet --kernels "$family" tutorial \
        --data-dir "$DATA/ml-100k" --split-dir "$DATA/ml-100k-split" --metrics-out "$OUT/tutorial-$family.json"
done
# The PyTorch twin on CUDA right after the tutorials, so the side-by-side survives a tight budget.
step torch-cuda 150 python3 "$REF" --data "$DATA" --seeds 0 --epochs-list 3 --configs 1,0 0,1 1,1 \
    --check-seed -1 --no-parts --device cuda --out "$OUT/torch-cuda.json"
# Serving: the joint model's top 100 for every user, training movies left out, with both families.
step save-joint 60 "$WGREC" --quiet --kernels gpu train --data-dir "$DATA/ml-100k" \
    --split-dir "$DATA/ml-100k-split" --rating-weight 1 --retrieval-weight 1 --save "$OUT/joint.safetensors"
for family in gpu windowed; do
    step "recommend-$family" 60 "$WGREC" --quiet --kernels "$family" recommend --model "$OUT/joint.safetensors" \
        --all-users -k 100 --exclude-seen --out "$OUT/recommend-$family.csv"
done
# ML-25M's size: 162,541 users, 59,047 movies, 25,000,095 ratings (20M train after the 80/20 split).
synth="$OUT/synth-25m"
if [ ! -e "$synth/ratings.csv" ]; then
    step synth 90 "$WGREC" --quiet synth --users 162541 --movies 59047 --ratings 25000095 --out "$synth"
fi
step epoch-25m 150 "$WGREC" --quiet --kernels gpu train --data-dir "$synth" --rating-weight 1 \
    --retrieval-weight 1 --epochs 1 --metrics-out "$OUT/epoch-25m.json"

python3 - "$OUT" <<'PY' | tee "$OUT/table.txt"
import json, os, sys
out = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def last_line(name):
    try:
        with open(os.path.join(out, name + ".log")) as f:
            lines = [l.strip() for l in f if l.strip()]
        return lines[-1] if lines else ""
    except OSError:
        return ""
def runs(d):
    parts = []
    for r in d["runs"]:
        t = r["test"]
        epochs = "/".join("%.3f" % h["seconds"] for h in r["history"])
        parts.append("(%g,%g) top-100 %.4f RMSE %.4f, epochs %s s" % (
            r["rating_weight"], r["retrieval_weight"],
            t["factorized_top_k/top_100_categorical_accuracy"], t["root_mean_squared_error"], epochs))
    return "; ".join(parts)
def result(name):
    if name == "adapters":
        return next((l[2:].strip() for l in open(os.path.join(out, "adapters.log")) if l.startswith("*")), "")
    if name == "bench":
        d = load("bench.json")
        return d and ", ".join("%s: epoch %.4f s, eval %.4f s" % (
            s["shape"], s["epoch_seconds"], s["eval_seconds"]) for s in d["shapes"])
    if name.startswith("tutorial-"):
        d = load(name + ".json")
        return d and runs(d)
    if name.startswith("recommend-"):
        if not os.path.exists(os.path.join(out, name + ".csv")):
            return None
        with open(os.path.join(out, name + ".csv")) as f:
            rows = sum(1 for _ in f) - 1
        return "%d (user, rank, title) rows" % rows
    if name == "epoch-25m":
        d = load("epoch-25m.json")
        return d and "epoch %.2f s, evaluation %.2f s, %s" % (
            d["runs"][0]["history"][0]["seconds"], d["runs"][0]["eval_seconds"], d["data"])
    if name == "torch-cuda":
        d = load("torch-cuda.json")
        return d and "; ".join("(%g,%g) steady epoch %.3f s" % (
            r["rating_weight"], r["retrieval_weight"], r["steady_epoch_seconds"]["mean"])
            for r in d.get("summary", []) if "steady_epoch_seconds" in r)
    return last_line(name)
print("%-18s %9s %5s  %s" % ("step", "seconds", "exit", "result"))
for line in open(os.path.join(out, "steps.tsv")):
    name, secs, rc = line.rstrip("\n").split("\t")
    try:
        r = result(name) or last_line(name)
    except Exception as e:
        r = "unreadable result: %r" % e
    print("%-18s %9s %5s  %s" % (name, secs, rc, r))
PY
