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
limit() { if [ "$1" -gt 0 ]; then echo "--limit $1"; fi; }

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
# Votes over checkable answers: four BIG-bench tasks, 40 dev examples each.
moa-local eval bigbench --limit 40 --configs single:qwen2.5-coder-1.5b,moa
# What each logged candidate scores, and the choices among them (no model runs).
python scripts/candidates.py humaneval --configs moa
python scripts/candidates.py ifbench --configs moa
python scripts/candidates.py bigbench --configs moa
# The refinement layouts (two-layer Self-MoA of the 0.5B, first 20 problems).
moa-local eval humaneval --limit 20 --config scripts/layouts.toml \
  --configs single:qwen2.5-coder-0.5b,s2-references,s2-continue
