#!/usr/bin/env bash
# Reproduces README's "Does the mixture help?" tables: the dev split of both
# suites, single models against mixtures. Results go to logs/eval/ (JSONL,
# resumable: rerun after an interruption and finished pairs are skipped) and
# the PNG charts beside them.
#
# LIMIT_SINGLE / LIMIT_MIX limit the single-model and the mixture configs to
# the first N dev problems (0 = the whole dev split). On a 2-core CPU a
# Self-MoA config costs 60-110 s per HumanEval problem, so the whole dev split
# of every config takes several hours; README's current figures were made with
# LIMIT_SINGLE=20 LIMIT_MIX=10 (HumanEval) and IFBENCH_LIMIT=6.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_SINGLE=${LIMIT_SINGLE:-0}
LIMIT_MIX=${LIMIT_MIX:-0}
IFBENCH_LIMIT=${IFBENCH_LIMIT:-0}
limit() { if [ "$1" -gt 0 ]; then echo "--limit $1"; fi; }

# shellcheck disable=SC2046
moa-local eval humaneval $(limit "$LIMIT_SINGLE") \
  --configs single:qwen2.5-coder-1.5b,single:qwen2.5-coder-0.5b
# shellcheck disable=SC2046
moa-local eval humaneval $(limit "$LIMIT_MIX") \
  --configs single:qwen2.5-coder-1.5b,single:qwen2.5-coder-0.5b,self-moa+agree,self-moa-verify
# shellcheck disable=SC2046
moa-local eval ifbench $(limit "$IFBENCH_LIMIT") \
  --configs single:qwen2.5-coder-1.5b,self-moa+agree
