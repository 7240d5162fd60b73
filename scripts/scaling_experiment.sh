#!/usr/bin/env bash
# Steps to target against batch size on fashion_mnist_resnet (Shallue et al. 2019 style; issue 16 §2):
# nesterov and adamw at their default hyperparameters, at four global batch sizes (fixed epochs: 234,
# 117, 59 and 30 steps), 5 seeds each, then `python -m scoring scaling` (table and log-log plot with
# the perfect-scaling line). About 30-40 s of training per seed at every batch size here (the same
# examples per run), so roughly 30 minutes on 2 CPU cores.
#   scripts/scaling_experiment.sh      (SEEDS=0-4 BATCHES="640 1280 2560 5120" SUBMISSIONS="nesterov adamw"
#                                       RESULTS=results/scaling/scaling.db OUT=docs/scaling;
#                                       LR_SCALING=sqrt|linear declares that learning-rate rule from
#                                       the default batch 1,280 (harness/lr_scaling.py);
#                                       BUDGET=N shortens every run, for a dry run)
# The same command continues an interrupted experiment (finished seeds are skipped); the database is
# copied to SNAPSHOT (default OUT/scaling.db, tracked) after each batch size and restored from it when
# RESULTS is missing (a fresh clone).
set -euo pipefail
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-0-4}
BATCHES=${BATCHES:-640 1280 2560 5120}
SUBMISSIONS=${SUBMISSIONS:-nesterov adamw}
DB=${RESULTS:-results/scaling/scaling.db}
OUT=${OUT:-docs/scaling}
WORKLOAD=fashion_mnist_resnet
SNAPSHOT=${SNAPSHOT:-$OUT/scaling.db}  # tracked copy of the git-ignored DB: a fresh clone continues from it
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mkdir -p "$OUT"
restore_if_missing "$DB" "$SNAPSHOT"
hparams=()
if [[ -n "${LR_SCALING:-}" ]]; then
  hparams=(--hparams="{\"lr_scaling\": \"$LR_SCALING\", \"lr_reference_batch_size\": 1280}")
fi
for submission in $SUBMISSIONS; do
  for batch in $BATCHES; do
    "$PY" -m harness run --workload="$WORKLOAD" --submission="$submission" --batch_size="$batch" \
      --seeds="$SEEDS" --results="$DB" ${BUDGET:+--budget=$BUDGET} "${hparams[@]}"
    snapshot "$DB" "$SNAPSHOT"
  done
done
"$PY" -m scoring scaling --workload="$WORKLOAD" --results="$DB" --out="$OUT/$WORKLOAD.png" \
  | tee "$OUT/$WORKLOAD.txt"
"$PY" -m scoring leaderboard --workload="$WORKLOAD" --results="$DB" --out="$OUT/leaderboard"
