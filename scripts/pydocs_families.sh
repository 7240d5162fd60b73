#!/usr/bin/env bash
# The optimizer families of the papers on pydocs_bert, each with its named config: Adam (no weight
# decay), LAMB as You et al. Algorithm 2, LAMB as Google's implementation. AdamW (the baseline,
# --config=pydocs_bert) is run by scripts/grafting_experiment.sh: run that first with the same
# RESULTS and the leaderboard at the end compares all of them (ADAMW=1 runs AdamW here too).
#   scripts/pydocs_families.sh      (SEEDS=0-4 RESULTS=results/pydocs/pydocs.db; BUDGET=N for a dry run)
set -euo pipefail
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-0-4}
DB=${RESULTS:-results/pydocs/pydocs.db}
OUT=$(dirname "$DB")
mkdir -p "$OUT"
run() { "$PY" -m harness run --workload=pydocs_bert --seeds="$SEEDS" --results="$DB" ${BUDGET:+--budget=$BUDGET} "$@"; }

run --submission=adamw --config=pydocs_bert_adam
if [[ -n "${ADAMW:-}" ]]; then run --submission=adamw --config=pydocs_bert; fi
run --submission=lamb --config=pydocs_bert
run --submission=lamb --config=pydocs_bert_google
"$PY" -m scoring leaderboard --workload=pydocs_bert --results="$DB" --out="$OUT/leaderboard"
