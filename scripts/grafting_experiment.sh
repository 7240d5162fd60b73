#!/usr/bin/env bash
# Agarwal et al. Sec. 5 on pydocs_bert: AdamW, SGD, AdamW#SGD (layer-wise grafting, ratios recorded
# every step), then SGD with the per-layer medians of the grafted run's first steps as fixed
# learning-rate multipliers. Ends with the leaderboard and the ratio plot.
#   scripts/grafting_experiment.sh            (SEEDS=0-4 FIRST_STEPS=50 RESULTS=results/pydocs/pydocs.db;
#                                              BUDGET=N shortens every run, for a dry run; ADAMW=0
#                                              skips AdamW when RESULTS already holds its runs)
set -euo pipefail
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-0-4}
DB=${RESULTS:-results/pydocs/pydocs.db}
FIRST=${FIRST_STEPS:-50}
OUT=$(dirname "$DB")
mkdir -p "$OUT"
run() { "$PY" -m harness run --workload=pydocs_bert --seeds="$SEEDS" --results="$DB" ${BUDGET:+--budget=$BUDGET} "$@"; }

# D = SGD with momentum on the same schedule shape as AdamW's config (cosine, 10% warmup), so the
# recorded ratio ||s_AdamW|| / ||s_SGD|| is the per-layer correction of D's learning rate (D's own
# learning rate cancels in the graft; sgd_corrected must use the same one). M = the tuned AdamW config.
D='"learning_rate": 1.0, "momentum": 0.9, "schedule": "cosine", "warmup_fraction": 0.1'
# The SGD baseline: D's settings with the best learning rate of {1.0, 0.3, 0.1} on seed 0
# (reference_results/README.md); override with SGD_LR.
SGD="\"learning_rate\": ${SGD_LR:-0.1}, \"momentum\": 0.9, \"schedule\": \"cosine\", \"warmup_fraction\": 0.1"
if [[ "${ADAMW:-1}" != 0 ]]; then run --submission=adamw --config=pydocs_bert; fi
run --submission=sgd --hparams="{$SGD}"
# M: AdamW's config pydocs_bert (applied to the graft's child M as M.*); D: the SGD settings above.
graft_ids="$OUT/graft_run_ids.tsv"
rm -f "$graft_ids"
D_graft=$(sed 's/"\([a-z_]*\)":/"D.\1":/g' <<< "$D")  # the same settings, keys prefixed D.
run --submission=adam_graft_sgd --config=pydocs_bert --diagnostics_every=1 --run_ids_file="$graft_ids" \
  --hparams="{$D_graft}"
# The ratios of the first seed whose grafted run completed (lines: run_id, seed, status; in seed order).
graft_run=$(awk -F'\t' '$3 == "completed" {print $1; exit}' "$graft_ids")
"$PY" -m scoring discover-schedule --run="$graft_run" --first_steps="$FIRST" --results="$DB" \
  --out="$OUT/pydocs_corrections.json"
run --submission=sgd_corrected --hparams="{$D, \"corrections\": \"$OUT/pydocs_corrections.json\"}"
"$PY" -m scoring leaderboard --workload=pydocs_bert --results="$DB" --out="$OUT/grafting"
"$PY" -m scoring diagnostics --run="$graft_run" --results="$DB" --out="$OUT/grafting_ratios.png"
