"""Leaderboard aggregation: pure functions over DataFrames loaded from the results store.

The runs and evals come from the database through harness.store.ResultsReader; nothing here
imports a workload, a submission or JAX.

Time-to-target semantics
------------------------
A run's *steps to target* is the step of the **first** eval whose validation metric reached the
workload's target (``>= target`` when the direction is ``maximize``, ``<= target`` when it is
``minimize``); its *seconds to target* is the training time (eval, logging and compilation
excluded) recorded at that same eval. Reaching the target between two evals is only detected at
the next eval, so the resolution is the eval interval. A run that never reached the target has
``steps_to_target`` NULL in the store; here a miss counts as ``inf``, so that the median over seeds
is ``inf`` as soon as at least half of the seeds missed. ``time_to_target`` recomputes the value
from a run's evals with exactly these semantics.

Which runs count
----------------
One (row, seed) counts once: its latest attempt (the highest run id). Older attempts stay in the
database and are counted in the row's ``superseded`` column only, so re-running a seed after a
crash neither adds a seed nor shifts a median. The latest attempt counts by its status:

* ``completed`` or ``diverged``: with what it reached (a diverged run usually misses);
* ``interrupted`` or ``failed`` (killed, or an error): a seed that missed the target, with no best
  validation metric, until the seed is run again to completion (killing or crashing a weak seed
  cannot improve a row);
* ``running``: in progress, not counted yet (column ``running``).

A row is ranked once it has a finished seed (one whose latest attempt is ``completed`` or
``diverged``; column ``finished``). A row without one (its seeds still running, or every one
interrupted or failed) has no rank (``<NA>``) and comes after the ranked rows of its section: a run
in progress is not a failure, and a row with nothing measured yet is not last of the field.

Uncertainty: scoring/statistics.py (Wilson interval of the success fraction, exact order-statistic
intervals of the medians).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.formatting import compact_pairs
from scoring.statistics import median_interval, wilson_interval
from workloads.targets import variant_key

FINISHED_STATUSES: tuple[str, ...] = ("completed", "diverged")
#: Latest attempts that count as a seed that missed the target (module docstring).
INCOMPLETE_STATUSES: tuple[str, ...] = ("interrupted", "failed")

#: Columns of the leaderboard DataFrame, in order. ``published``: empty on a measured row; on a row
#: of a paper's number (scoring/published_board.py, never ranked) the number as printed, with its unit.
LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "workload", "global_batch_size", "tuning_budget", "rank", "submission", "config_id", "study_id", "hparams",
    "metric", "direction", "target",
    "seeds", "finished", "reached", "reached_count", "success", "success_ci_low", "success_ci_high",
    "median_steps", "steps_ci_low", "steps_ci_high", "steps_ci_level",
    "median_best_valid", "best_valid_ci_low", "best_valid_ci_high", "best_valid_ci_level",
    "median_final_train", "median_final_test", "median_train_seconds", "median_seconds_to_target",
    "diverged", "failed", "interrupted", "running", "superseded", "published",
)

#: The leaderboard's sections: rows are ranked within each (sort_leaderboard).
SECTION_KEYS: tuple[str, ...] = ("workload", "global_batch_size", "tuning_budget")

#: Columns of the learning-curve DataFrame, in order.
CURVE_COLUMNS: tuple[str, ...] = (
    "workload", "config_id", "study_id", "step", "seeds", "valid_median", "valid_min", "valid_max",
    "train_loss_median", "train_loss_min", "train_loss_max",
)


# --- selecting ------------------------------------------------------------------------------


def select_workload(runs: pd.DataFrame, workload: str | None) -> pd.DataFrame:
    """The runs of one workload (all runs when ``workload`` is None).

    Raises UserError when the store holds no runs, or none of ``workload`` (naming those present).
    """
    if runs.empty:
        raise UserError("the results database holds no runs yet; run `python -m harness run ...` first")
    if workload is None:
        return runs
    present = sorted(runs["workload"].unique())
    if workload not in present:
        raise UserError(f"no runs of workload {workload!r} in the results database; workloads present: "
                        f"{', '.join(present)}")
    return runs[runs["workload"] == workload]


# --- per-run and per-sample statistics ----------------------------------------------------------


def time_to_target(evals: pd.DataFrame, target: float, direction: str) -> tuple[int, float] | None:
    """(step, train_seconds) of the first eval whose validation metric reached ``target``.

    ``evals`` holds the evals of one run (columns ``step``, ``train_seconds``, ``valid_metric``);
    ``direction`` is ``maximize`` (reached when ``>= target``) or ``minimize`` (``<= target``).
    NaN metrics never reach the target. Returns None when no eval reached it.
    """
    ordered = evals.sort_values("step")
    values = ordered["valid_metric"].astype(float)
    hit = values >= target if direction == "maximize" else values <= target
    if not hit.any():
        return None
    first = ordered[hit.to_numpy()].iloc[0]
    return int(first["step"]), float(first["train_seconds"])


def rescore(runs: pd.DataFrame, evals: pd.DataFrame, targets: Mapping[str, float]) -> pd.DataFrame:
    """The runs scored against ``targets`` (workload -> target; a batch-size variant's own entry,
    ``workload@batch=B``, first) instead of the targets recorded with them: ``target``,
    ``steps_to_target`` and ``seconds_to_target`` recomputed from each run's evals with
    ``time_to_target``. Runs of workloads not in ``targets`` are unchanged.

    Targets are revised (a new target-setting run, new data); the evals keep every run scorable
    against the new one. A run stopped at its old target (``--stop_at_target``) has no evals past
    it, so a higher target counts as missed.
    """
    out = runs.copy()
    by_run = dict(tuple(evals.groupby("run_id"))) if not evals.empty else {}
    for index, run in out.iterrows():
        variant = variant_key(run["workload"], int(run["global_batch_size"]))
        target = targets.get(variant, targets.get(run["workload"]))
        if target is None:
            continue
        run_evals = by_run.get(run["run_id"])
        hit = None if run_evals is None else time_to_target(run_evals, float(target), run["direction"])
        out.at[index, "target"] = float(target)
        out.at[index, "steps_to_target"] = math.nan if hit is None else float(hit[0])
        out.at[index, "seconds_to_target"] = math.nan if hit is None else hit[1]
    return out


def misses_as_inf(values: Iterable[float | None]) -> np.ndarray:
    """The values as a float array, with None/NaN (target missed) replaced by ``inf``."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    arr[np.isnan(arr)] = np.inf
    return arr


def median_with_misses(values: Iterable[float | None]) -> float:
    """Median where a miss (None/NaN) counts as ``inf``; NaN for no values at all.

    The result is ``inf`` exactly when at least half of the values are misses.
    """
    arr = misses_as_inf(values)
    return float(np.median(arr)) if arr.size else math.nan


def _median(values: pd.Series) -> float:
    """Median ignoring NaN; NaN when nothing is left."""
    clean = values.dropna()
    return float(clean.median()) if len(clean) else math.nan


def compact_hparams(hparams_json: str) -> str:
    """A recorded JSON object as harness.formatting.compact_pairs; other input unchanged."""
    try:
        hparams = json.loads(hparams_json)
    except (TypeError, ValueError):
        return str(hparams_json)
    if not isinstance(hparams, dict):
        return str(hparams_json)
    return compact_pairs(hparams)


def describe_config(run: pd.Series) -> str:
    """What distinguishes a configuration: the named config it started from with what was set on
    top (``config=mlperf learning_rate=10``), else the hyperparameters and knobs the user set (not
    the defaults), e.g. ``learning_rate=0.7,momentum=0.95 knobs:gamma0=0.4``; "defaults" if none."""
    label = run.get("config_label")
    if isinstance(label, str) and label:
        return "config=" + label
    given = run.get("hparams_given")
    if not isinstance(given, str):  # databases written before the column existed
        return compact_hparams(run["hparams"])
    parts = [compact_hparams(given) if given != "{}" else "defaults"]
    knobs_given = run.get("knobs_given")
    if isinstance(knobs_given, str) and knobs_given != "{}":
        parts.append("knobs:" + compact_hparams(knobs_given))
    return " ".join(parts)


# --- the leaderboard -----------------------------------------------------------------------------


def describe_study(study: Mapping[str, Any]) -> str:
    """How a row of a tuning study's confirmation runs is described (harness/study.py)."""
    return (f"tuned: {int(study['feasible_trials'])} feasible of {int(study['trials_run'])} trials, search "
            f"space {study['search_space_hash']}, select {study['select_rule']} (study {study['name']})")


def latest_attempts(runs: pd.DataFrame) -> pd.DataFrame:
    """The latest attempt (highest run id) of each (workload, submission, config, study, seed)."""
    keys = [k for k in ("workload", "submission", "config_id", "study_id", "seed") if k in runs.columns]
    return runs.sort_values("run_id").groupby(keys, dropna=False).tail(1)


def _row(key: tuple[str, str, str, int], group: pd.DataFrame, study: Mapping[str, Any] | None
         ) -> dict[str, Any]:
    workload, submission, config_id, study_id = key
    latest = latest_attempts(group)
    counted = latest[latest["status"] != "running"]
    finished = counted[counted["status"].isin(FINISHED_STATUSES)]
    seeds = len(counted)
    # a seed whose latest attempt was interrupted or failed counts as a miss (module docstring)
    steps = finished["steps_to_target"].tolist() + [math.nan] * (seeds - len(finished))
    reached_count = int(finished["steps_to_target"].notna().sum())
    success_low, success_high = wilson_interval(reached_count, seeds)
    steps_low, steps_high, steps_level = median_interval(misses_as_inf(steps))
    valid_low, valid_high, valid_level = median_interval(finished["best_valid"].dropna())
    first = group.iloc[0]
    return {
        "workload": workload,
        "global_batch_size": int(first["global_batch_size"]),
        "tuning_budget": int(study["trials"]) if study is not None else 0,
        "submission": submission,
        "config_id": config_id,
        "study_id": study_id,
        "hparams": describe_study(study) if study is not None else describe_config(first),
        "metric": first["metric"],
        "direction": first["direction"],
        "target": float(first["target"]),
        "seeds": seeds,
        "finished": len(finished),
        "reached": f"{reached_count}/{seeds}",
        "reached_count": reached_count,
        "success": reached_count / seeds if seeds else math.nan,
        "success_ci_low": success_low,
        "success_ci_high": success_high,
        "median_steps": median_with_misses(steps),
        "steps_ci_low": steps_low,
        "steps_ci_high": steps_high,
        "steps_ci_level": steps_level,
        "median_best_valid": _median(finished["best_valid"]),
        "best_valid_ci_low": valid_low,
        "best_valid_ci_high": valid_high,
        "best_valid_ci_level": valid_level,
        "median_final_train": _median(finished["final_train"]),
        "median_final_test": _median(finished["final_test"]),
        "median_train_seconds": _median(finished["train_seconds"]),
        "median_seconds_to_target": median_with_misses(finished["seconds_to_target"].tolist()),
        "diverged": int((finished["status"] == "diverged").sum()),
        "failed": int((counted["status"] == "failed").sum()),
        "interrupted": int((counted["status"] == "interrupted").sum()),
        "running": len(latest) - seeds,
        "superseded": len(group) - len(latest),
        "published": "",  # a measured row; published rows: scoring/published_board.py
    }


def sort_leaderboard(board: pd.DataFrame) -> pd.DataFrame:
    """Order rows within each workload, global batch size and tuning budget and number them
    (column ``rank``, from 1).

    Rows are compared only at one batch size (a batch-size variant's rows, `--batch_size`, rank
    among themselves: steps at another batch are another race; the smaller batch comes first) and
    at equal tuning budgets (Nado et al.: tuning dominates comparisons): the groups are the
    feasible-trial budgets of tuning studies, largest first, then the rows of fixed hyperparameters
    (budget 0). Within a group, keys: median steps to target ascending, then median best validation
    metric (larger first when the direction is ``maximize``, smaller first when ``minimize``); NaN
    sorts last; submission, config_id and study break remaining ties deterministically.

    Rows without a finished seed (column ``finished`` 0; module docstring) come after the ranked
    rows of their group, in the same order, and get no rank (``<NA>``; ``rank`` is a nullable int).
    """
    if board.empty:
        return board.assign(rank=pd.Series(dtype="Int64"))
    signed_valid = np.where(board["direction"] == "minimize", board["median_best_valid"],
                            -board["median_best_valid"])
    keyed = board.assign(_valid_key=signed_valid,
                         _steps_key=board["median_steps"].fillna(np.inf),
                         _unranked=board["finished"] == 0)
    keyed = keyed.assign(_budget_key=-keyed["tuning_budget"])
    keyed = keyed.sort_values(["workload", "global_batch_size", "_budget_key", "_unranked", "_steps_key",
                               "_valid_key", "submission", "config_id", "study_id"], na_position="last",
                              kind="mergesort")
    rank = keyed.groupby(list(SECTION_KEYS)).cumcount() + 1  # the unranked rows come last
    keyed["rank"] = rank.astype("Int64").mask(keyed["_unranked"])
    return keyed.drop(columns=["_valid_key", "_steps_key", "_unranked", "_budget_key"]).reset_index(drop=True)


def workload_labels(board: pd.DataFrame) -> pd.Series:
    """Per leaderboard row, the workload as a problem of its own: the name, or for a workload
    whose rows have several batch sizes ``name@batch=B`` (workloads/targets.variant_key)."""
    several = board.groupby("workload")["global_batch_size"].transform("nunique") > 1
    labels = [variant_key(w, int(b)) if many else w
              for w, b, many in zip(board["workload"], board["global_batch_size"], several)]
    return pd.Series(labels, index=board.index, dtype=object)


def with_study_ids(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that are leaderboard material, with ``study_id`` -1 outside studies: a study's
    trials are left out (``python -m scoring study`` shows them); its confirmation runs form the
    study's row."""
    if "study_id" not in runs.columns:  # a database from before studies
        return runs.assign(study_id=-1)
    kept = runs[runs["study_role"].fillna("") != "trial"]
    return kept.assign(study_id=kept["study_id"].fillna(-1).astype(int))


def leaderboard(runs: pd.DataFrame, studies: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (workload, submission, config_id, study), ranked within each workload and
    tuning budget (sort_leaderboard). `studies`: ResultsReader.studies(), for rows of studies.

    Columns are ``LEADERBOARD_COLUMNS``. Statistics count each seed by its latest attempt (see the
    module docstring); a configuration without a finished seed still gets a row, after the ranked
    ones, without a rank.
    """
    runs = with_study_ids(runs)
    if runs.empty:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    by_id = {int(s["study_id"]): s for s in studies.to_dict("records")} if studies is not None else {}
    groups = runs.groupby(["workload", "submission", "config_id", "study_id"], sort=True)
    board = pd.DataFrame([_row(key, group, by_id.get(key[3])) for key, group in groups])
    return sort_leaderboard(board)[list(LEADERBOARD_COLUMNS)]


def learning_curves(runs: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """Per (workload, config_id, step): median, min and max over finished seeds of the validation
    metric and of the train loss (columns ``CURVE_COLUMNS``; non-finite values are ignored)."""
    runs = latest_attempts(with_study_ids(runs))
    finished = runs[runs["status"].isin(FINISHED_STATUSES)][["run_id", "workload", "config_id", "study_id"]]
    joined = evals.merge(finished, on="run_id", how="inner")
    if joined.empty:
        return pd.DataFrame(columns=list(CURVE_COLUMNS))
    joined = joined.replace([np.inf, -np.inf], np.nan)
    grouped = joined.groupby(["workload", "config_id", "study_id", "step"], sort=True)
    curves = grouped.agg(
        seeds=("run_id", "nunique"),
        valid_median=("valid_metric", "median"), valid_min=("valid_metric", "min"),
        valid_max=("valid_metric", "max"),
        train_loss_median=("train_loss", "median"), train_loss_min=("train_loss", "min"),
        train_loss_max=("train_loss", "max"),
    ).reset_index()
    return curves[list(CURVE_COLUMNS)]
