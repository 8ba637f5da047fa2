#!/usr/bin/env bash
# Reproduces docs/quality.md's "Does the mixture help?" tables: the dev split of both
# suites, single models against mixtures. Results go to logs/eval/ (JSONL,
# resumable: rerun after an interruption and finished pairs are skipped) and
# the PNG charts beside them.
#
# The best single model, the default and the verified cascade run on the whole
# dev split; LIMIT_MIX limits the other HumanEval configs (the 0.5B model and
# the first default `classic`) and IFBENCH_LIMIT the IFBench ones to the first
# N dev problems (0 = the whole dev split). On a 2-core CPU a Self-MoA config
# costs 30-110 s per HumanEval problem; docs/quality.md's figures were made with
# LIMIT_MIX=20 and IFBENCH_LIMIT=60 (30 and 10 for earlier defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_MIX=${LIMIT_MIX:-20}
IFBENCH_LIMIT=${IFBENCH_LIMIT:-60}
# The reasoning suites (issue 28's tables): items of the dev split, and how
# many each round adds. Their records are the committed ones in docs/records/,
# so only what is missing runs.
GSM8K_LIMIT=${GSM8K_LIMIT:-200}
ARC_LIMIT=${ARC_LIMIT:-200}
GYM_LIMIT=${GYM_LIMIT:-40}
limit() { if [ "$1" -gt 0 ]; then echo "--limit $1"; fi; }
# The three configs advance together, a round at a time, so that a stopped run
# leaves every config on the same items: rounds SUITE LIMIT STEP.
REASONING_CONFIGS=single:qwen2.5-coder-1.5b,single:qwen2.5-coder-0.5b,moa
rounds() {
  local n
  for ((n = $3; n < $2 + $3; n += $3)); do
    moa-local eval "$1" --limit $((n < $2 ? n : $2)) --configs "$REASONING_CONFIGS" \
      --log-dir docs/records
  done
}

moa-local eval humaneval --configs single:qwen2.5-coder-1.5b,moa,self-moa-verify
# shellcheck disable=SC2046
moa-local eval humaneval $(limit "$LIMIT_MIX") \
  --configs single:qwen2.5-coder-0.5b,classic
# Pruning a weak proposer: the two Qwen models with and without SmolLM2 135M.
# shellcheck disable=SC2046
moa-local eval humaneval $(limit "$LIMIT_MIX") \
  --configs single:qwen2.5-coder-1.5b,single:qwen2.5-coder-0.5b,qwen-mix,qwen-mix-smol
# shellcheck disable=SC2046
moa-local eval ifbench $(limit "$IFBENCH_LIMIT") \
  --configs single:qwen2.5-coder-1.5b,moa
# Votes over checkable answers: GSM8K, ARC-Challenge and four reasoning-gym
# tasks (seed 0; --limit counts per task). BIG-bench's data left the index.
rounds gsm8k "$GSM8K_LIMIT" 20
rounds arc "$ARC_LIMIT" 25
rounds reasoning-gym "$GYM_LIMIT" 5
# What each logged candidate scores, and the choices among them (no model runs).
python scripts/candidates.py humaneval --configs moa
python scripts/candidates.py ifbench --configs moa
for suite in gsm8k arc reasoning-gym; do
  python scripts/candidates.py "$suite" --configs moa --log-dir docs/records
done
# The refinement layouts (two-layer Self-MoA of the 0.5B, first 20 problems).
moa-local eval humaneval --limit 20 --config scripts/layouts.toml \
  --configs single:qwen2.5-coder-0.5b,s2-references,s2-continue
