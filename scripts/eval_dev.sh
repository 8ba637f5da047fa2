#!/usr/bin/env bash
# Reproduces README's "Does the mixture help?" tables: the dev split of both
# suites, single models against mixtures. Results go to logs/eval/ (JSONL,
# resumable: rerun after an interruption and finished pairs are skipped) and
# the PNG charts beside them. LIMIT_MIX limits the costly mixture configs to
# the first N dev problems (0 = the whole dev split); on a 2-core CPU the whole
# dev split of every config takes several hours.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_MIX=${LIMIT_MIX:-0}
limit() { if [ "$LIMIT_MIX" -gt 0 ]; then echo "--limit $LIMIT_MIX"; fi; }

moa-local eval humaneval --configs single:qwen2.5-coder-1.5b,single:qwen2.5-coder-0.5b
# shellcheck disable=SC2046
moa-local eval humaneval $(limit) \
  --configs classic,self-moa,self-moa+agree,self-moa+verify+agree,qwen-mix,qwen-mix-smol
moa-local eval ifbench --configs single:qwen2.5-coder-1.5b,single:qwen2.5-coder-0.5b
# shellcheck disable=SC2046
moa-local eval ifbench $(limit) --configs classic,moa,self-moa+router
