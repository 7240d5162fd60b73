#!/usr/bin/env bash
# Steps to target against batch size on fashion_mnist_resnet (Shallue et al. 2019 style; issue 16 §2):
# nesterov and adamw at their default hyperparameters, at four global batch sizes (fixed epochs: 234,
# 117, 59 and 30 steps), 5 seeds each, then `python -m scoring scaling` (table and log-log plot with
# the perfect-scaling line). Every run sees the same examples. The published run (2026-12-03) was
# made with the unrolled scan bounded at 32 micro-batches: its seeds at 2,560 and 5,120 cost 2-3 times
# those at 640 and 1,280 (adamw 111-146 s per seed at 1,280, 207-259 s at 2,560, side by side under
# the same load) and compiled for 3-6 minutes. The bound is now 128 (harness/training.MAX_UNROLL;
# `python -m harness.bench_unroll`: 2.4-4.8x faster steps at 40 and 80 micro-batches,
# docs/performance.md). About 1 hour alone on 2 CPU cores with the old bound.
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
