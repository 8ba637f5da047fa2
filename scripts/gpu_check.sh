#!/usr/bin/env bash
# Check moa-local on a machine with an NVIDIA GPU, and print the figures
# docs/performance.md keeps: peak VRAM against the GPU's budget, decoding speed
# batched against one stream, and the default mixture's time and score.
#
#   scripts/gpu_check.sh [VENV_DIR]      (default: .venv-gpu)
#
# 1. builds llama-cpp-python with CUDA in a fresh venv (about 10 min the first
#    time; pip caches the wheel), with the [nvidia] and [eval] extras;
# 2. `moa-local doctor`: the GPU, its budget, and the backend llama.cpp was
#    built with (it must say CUDA);
# 3. `moa-local bench --plans moa` (naive against optimized, equal tokens);
# 4. scripts/bench_batch.py: the three samples of one layer decoded in one
#    batch against one after another;
# 5. `moa-local eval humaneval --limit 20 --configs single:qwen2.5-coder-1.5b,moa`;
# while nvidia-smi samples the GPU's memory every 200 ms; the peak is printed
# beside the budget doctor computed. Needs the network (pip, the starter
# model's wheel) and nvidia-smi. CI never has a GPU: run it by hand.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${1:-.venv-gpu}"
OUT="${OUT:-logs/gpu-check}"
mkdir -p "$OUT"

command -v nvidia-smi > /dev/null || { echo "error: nvidia-smi not found: this check needs an NVIDIA GPU and its driver" >&2; exit 2; }

echo "== building llama-cpp-python with CUDA in $VENV"
python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
CMAKE_ARGS="-DGGML_CUDA=on -DLLAVA_BUILD=OFF" pip install -q -e '.[llamacpp,nvidia,eval]'

echo "== doctor"
moa-local doctor | tee "$OUT/doctor.txt"
grep -q "built with CUDA" "$OUT/doctor.txt" || { echo "error: llama-cpp-python was not built with CUDA (see $OUT/doctor.txt)" >&2; exit 1; }
moa-local doctor --json > "$OUT/doctor.json"

nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$OUT/vram.csv" &
SAMPLER=$!
trap 'kill $SAMPLER 2> /dev/null || true' EXIT

echo "== bench --plans moa"
moa-local bench --plans moa --json | tee "$OUT/bench.json"

echo "== batched decoding against one stream"
python scripts/bench_batch.py --models qwen2.5-coder-1.5b --json | tee "$OUT/bench_batch.json"

echo "== eval humaneval, first 20"
moa-local eval humaneval --limit 20 --configs single:qwen2.5-coder-1.5b,moa \
    --log-dir "$OUT/eval" | tee "$OUT/eval.txt"

kill "$SAMPLER" 2> /dev/null || true
python3 - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
used = [int(v) for v in (out / "vram.csv").read_text().split() if v.strip().isdigit()]
budgets = json.loads((out / "doctor.json").read_text())["budgets"]
gpus = {name: b["mb"] for name, b in budgets.items() if name != "cpu"}
peak = max(used, default=0)
print(f"peak VRAM {peak} MiB (nvidia-smi, whole GPU); budgets: "
      + ", ".join(f"{name} {mb} MiB" for name, mb in gpus.items()))
if gpus and peak > max(gpus.values()):
    print("WARNING: the peak exceeds the budget")
EOF
