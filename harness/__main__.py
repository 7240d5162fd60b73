"""Command line of the harness:

  python -m harness run --workload=fashion_mnist_resnet --submission=nesterov --seeds=0-4
  python -m harness tune --workload=fashion_mnist_resnet --submission=nesterov --trials=16 --confirm_seeds=50
  python -m harness list
  python -m harness discover-schedule --run=RUN_ID|--study=NAME --first_steps=N [--round] [--out=FILE.json]
      (the same as `python -m scoring discover-schedule`)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from absl import flags

from harness import audit, cli
from harness.errors import UserError

if TYPE_CHECKING:  # the commands import JAX when they run, not when flags are parsed
    from harness.ray_cluster import RaySettings
    from harness.runner import RunOptions

COMMANDS = ("run", "tune", "list", "discover-schedule")
#: The flags of `run` that `tune` does not take.
RUN_ONLY_FLAGS = ("seeds", "many_seeds", "rerun", "run_ids_file")
#: The flags of `tune` besides those of `run` (harness/study.py).
TUNE_FLAGS = ("trials", "max_trials", "search_space", "study", "study_seed", "confirm_seeds", "select", "studies")
#: The flags that only go with --ray.
RAY_FLAGS = ("ray_workers", "ray_cpus", "ray_compilation_cache")


class RayAddressParser(flags.ArgumentParser):
    """--ray (a local cluster), --ray=auto, --ray=HOST:PORT, --noray: a flag that takes a value or none."""

    def parse(self, argument: str) -> str | None:
        from harness.ray_cluster import LOCAL  # imports no Ray

        value = str(argument).strip()
        if value.lower() in ("true", "1"):
            return LOCAL
        if value.lower() in ("false", "0"):
            return None
        if not value:
            raise ValueError("--ray= needs an address (auto or HOST:PORT), or none for a local cluster")
        return value

    def flag_type(self) -> str:
        return "ray address"


def define_flags(fv: flags.FlagValues) -> None:
    def string(name: str, default: str | None, help_: str) -> None:
        flags.DEFINE_string(name, default, help_, flag_values=fv)

    string("workload", None, "Workload name (python -m harness list shows them).")
    string("submission", None, "Built-in submission name, path to a submission module, or M#D.")
    string("hparams", None, "Hyperparameters: inline JSON object or path to a JSON file; missing keys "
           "take the submission's DEFAULT_HPARAMS. A list of objects gives one per phase of a "
           "multi-phase workload.")
    string("config", None, "A named configuration of the submission (submissions/<name>/configs/"
           "<config>.json, e.g. config_a; for M#D also its children's, as M./D.): hparams and knobs "
           "from a paper; --hparams/--knobs override its keys.")
    string("knobs", None, "Workload knobs (label_smoothing, gamma0, ...): JSON or file.")
    string("seeds", "0", "Seeds: 0-4, 0,3,7 or a mix; distinct ints in [0, 2^31).")
    flags.DEFINE_bool("many_seeds", False, f"run: allow --seeds of more than {cli.MANY_SEEDS:,} seeds.",
                      flag_values=fv)
    flags.DEFINE_integer("budget", None, "Override the workload's step budget (recorded with the run).",
                         flag_values=fv)
    flags.DEFINE_integer("batch_size", None, "Run the workload's variant at this global batch size (of its "
                         "first phase; default: the workload's own): steps by the "
                         "workload's scaling rule (fixed epochs, or a paper's listed counts), micro-batch kept; "
                         "recorded with the run, its own leaderboard row (harness/batch_scaling.py). --budget "
                         "then overrides the steps.", flag_values=fv)
    string("results", "results/results.db", "SQLite results database.")
    string("data_dir", None, "Dataset directory (default: the workload's; env vars work too).")
    flags.DEFINE_bool("stop_at_target", False, "Stop a seed as soon as the validation target is reached.",
                      flag_values=fv)
    flags.DEFINE_integer("diagnostics_every", 10, "Record the submission's diagnostics (grafting: the "
                         "ratio per group) of every k-th step into the diagnostics table; 0: never.",
                         flag_values=fv)
    string("tensorboard_dir", None, "run: also write each run's evaluations (and diagnostics) as a "
           "TensorBoard log under this directory (needs the tensorboard extra; see harness/tensorboard.py).")
    flags.DEFINE_integer("checkpoint_every", None, "Checkpoint each run at the first evaluation at least this "
                         "many steps after the last checkpoint (orbax; the latest is kept, removed when the run "
                         "ends); re-running the same command resumes an interrupted run from it, bit for bit. "
                         "0: never; default: the workload's (full-scale workloads: every evaluation, CPU ones: "
                         "never).",
                         flag_values=fv)
    string("checkpoint_dir", None, "Where checkpoints go (default: next to --results, e.g. "
           "results/results.checkpoints).")
    flags.DEFINE_bool("rerun", False, "run: run seeds again whose latest attempt of this row already finished "
                      "(default: they are skipped, so that the same command continues a sweep).", flag_values=fv)
    flags.DEFINE_float("divergence_factor", 100.0, "End a run as diverged when its mean training loss between "
                       "evaluations exceeds this multiple of its first (finite losses of 1e7 are divergence too); "
                       "0: only non-finite losses.", flag_values=fv)
    string("run_ids_file", None, "run: append one line per recorded run, `run_id<TAB>seed<TAB>status`, "
           "to this file (for scripts).")
    flags.DEFINE_bool("progress", None, "Show a progress bar per run (default: when stderr is a terminal).",
                      flag_values=fv)
    flags.DEFINE_integer("trials", None, "tune: feasible trials per study (N).", flag_values=fv)
    flags.DEFINE_integer("max_trials", None, "tune: trials in all per study, at most (default 3N; diverged "
                         "trials are infeasible and do not count).", flag_values=fv)
    string("search_space", None, "tune: a search space JSON file (AlgoPerf format; default the "
           "submission's search_space.json).")
    string("study", None, "tune: the study's name (default from submission, workload, search space and "
           "seed); the same command continues it. discover-schedule: a grafted study (its selected "
           "trial's run).")
    flags.DEFINE_integer("study_seed", 0, "tune: seeds the quasi-random points and the trials' seeds.",
                         flag_values=fv)
    flags.DEFINE_integer("confirm_seeds", 50, "tune: the selected point is run on seeds 0..K-1.",
                         flag_values=fv)
    flags.DEFINE_enum("select", "best_valid", ["best_valid", "steps_to_target"], "tune: how the best "
                      "feasible trial is chosen (Nado et al.: best validation metric; AlgoPerf: fewest steps "
                      "to the target, best validation breaking ties).", flag_values=fv)
    flags.DEFINE_integer("studies", 1, "tune: independent studies (study seeds K, K+1, ...; the score is the "
                         "median over studies).", flag_values=fv)
    flags.DEFINE_integer("run", None, "discover-schedule: the run id of a grafted run.", flag_values=fv)
    string("out", None, "discover-schedule: write the JSON here (default: print it).")
    from scoring.__main__ import define_discovery_flags

    define_discovery_flags(fv)

    flags.DEFINE_flag(flags.Flag(RayAddressParser(), None, "ray", None, "run/tune: the runs as Ray work "
                                 "(harness/ray_runner.py; needs the ray extra): --ray starts a local Ray cluster, "
                                 "--ray=auto or --ray=HOST:PORT joins one (`ray start --head`).", boolean=True),
                      flag_values=fv)
    flags.DEFINE_integer("ray_workers", None, "With --ray: worker processes (default: as many as the cluster's "
                         "CPUs hold at --ray_cpus each, one GPU each where there are GPUs).", flag_values=fv)
    flags.DEFINE_integer("ray_cpus", 1, "With --ray: CPUs per run (one: one XLA compute thread per worker).",
                         flag_values=fv)
    string("ray_compilation_cache", None, "With --ray: the workers' JAX compilation cache directory, shared "
           "by the workers of a machine (default ~/.cache/largebatch-bench/jax-compilation-cache).")

    flags.DEFINE_bool("distributed", False, "Multi-host: call jax.distributed.initialize first (one "
                      "process per host, same command on each); see harness/distributed.py.",
                      flag_values=fv)
    string("coordinator_address", None, "With --distributed: host:port of process 0.")
    flags.DEFINE_integer("num_processes", None, "With --distributed: number of processes.", flag_values=fv)
    flags.DEFINE_integer("process_id", None, "With --distributed: index of this process.", flag_values=fv)


def _run_options(fv: flags.FlagValues, seeds: Sequence[int]) -> RunOptions:
    from harness.runner import RunOptions

    return RunOptions(seeds=seeds, results=fv.results, data_dir=fv.data_dir, stop_at_target=fv.stop_at_target,
                      progress=cli.progress_default(fv.progress), diagnostics_every=fv.diagnostics_every,
                      tensorboard_dir=fv.tensorboard_dir, checkpoint_every=fv.checkpoint_every,
                      checkpoint_dir=fv.checkpoint_dir, rerun=fv.rerun, divergence_factor=fv.divergence_factor)


def _ray_settings(fv: flags.FlagValues) -> RaySettings | None:
    """What --ray and its flags ask for (None: no Ray; nothing of Ray imported); the flags that do
    not go with it refused."""
    if fv.ray is None:
        given = [name for name in RAY_FLAGS if fv[name].present]
        if given:
            raise UserError(f"--{given[0]} goes with --ray")
        return None
    for name, clash in (("distributed", fv.distributed), ("tensorboard_dir", fv.tensorboard_dir),
                        ("checkpoint_every", fv.checkpoint_every)):
        if clash:
            raise UserError(f"--{name} does not go with --ray (a Ray worker that dies runs its run again "
                            "from the start; one run per host group is --distributed's)")
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise UserError("--ray needs Ray: install the ray extra (pip install -e '.[ray]'; make setup does)")
    from harness.ray_cluster import RaySettings, default_compilation_cache

    settings = RaySettings(fv.ray, fv.ray_workers, fv.ray_cpus,
                           fv.ray_compilation_cache or default_compilation_cache())
    settings.check()
    return settings


def _tune(fv: flags.FlagValues) -> None:
    from harness import study

    if not fv.submission or fv.trials is None:
        raise UserError("`tune` needs --submission and --trials=N (feasible trials per study)")
    if fv.stop_at_target:
        raise UserError("--stop_at_target does not go with `tune`: trials are compared at the full budget")
    spec = study.StudySpec(
        workload=fv.workload, submission=fv.submission, trials=fv.trials, max_trials=fv.max_trials,
        search_space=fv.search_space, hparams=cli.parse_json_mapping(fv.hparams, "hparams", allow_list=True),
        config=fv.config, knobs=cli.parse_json_mapping(fv.knobs, "knobs"), budget=fv.budget,
        batch_size=fv.batch_size, study=fv.study,
        study_seed=fv.study_seed, confirm_seeds=fv.confirm_seeds, select=fv.select, studies=fv.studies)
    ray = _ray_settings(fv)
    with audit.protecting(fv.data_dir, fv.results):
        study.run_studies(spec, _run_options(fv, ()), cli.command_line("harness tune", fv), ray)


def _run(fv: flags.FlagValues) -> None:
    from harness import plan
    from harness.runner import raise_if_failed, run_sweep

    if fv.distributed:
        from harness import distributed
        distributed.initialize(fv.coordinator_address, fv.num_processes, fv.process_id)
    if not fv.submission:
        raise UserError("--submission is required for `run`")
    hparams = cli.parse_json_mapping(fv.hparams, "hparams", allow_list=True)
    knobs = cli.parse_json_mapping(fv.knobs, "knobs")
    # checked before anything is loaded or compiled (ranges, never materialised)
    options = _run_options(fv, cli.parse_seeds(fv.seeds, many=fv.many_seeds))
    ray = _ray_settings(fv)
    with audit.protecting(fv.data_dir, fv.results):  # the submission may not open them (harness/audit.py)
        run_plan = plan.build(fv.workload, fv.submission, config=fv.config, hparams=hparams, knobs=knobs,
                              budget=fv.budget, batch_size=fv.batch_size)
        if run_plan.config is not None:
            print(f"config {run_plan.config.name}: {run_plan.config.source}", flush=True)
        if ray is None:
            summaries = run_sweep(run_plan, options)
        else:
            from harness import ray_runner

            spec = ray_runner.PlanSpec(fv.workload, fv.submission, fv.config, hparams, knobs, fv.budget,
                                       fv.batch_size)
            summaries = ray_runner.run_sweep(run_plan, spec, options, ray)
    if fv.run_ids_file:
        try:
            with open(fv.run_ids_file, "a") as f:
                f.writelines(f"{s.run_id}\t{s.seed}\t{s.status}\n" for s in summaries)
        except OSError as e:
            raise UserError(f"cannot write --run_ids_file={fv.run_ids_file}: {e.strerror or e}") from None
    raise_if_failed(summaries)


def _list() -> None:
    from harness import batch_scaling, submission_loader
    from harness.formatting import describe_phases
    from workloads import get_workload, workload_names

    print("workloads:")
    for name in workload_names():
        w = get_workload(name)
        print(f"  {name}: target {w.metric} {w.target} ({w.direction.value}); {describe_phases(w.phases)}")
        print(f"      {batch_scaling.describe(w)}")
        for k in w.KNOBS:
            print(f"      knob {k.name} = {k.default:g} in [{k.low:g}, {k.high:g}]: {k.doc}")
    print("submissions (named configs):")
    for name in submission_loader.builtin_names():
        configs = submission_loader.load(name).config_names()
        print(f"  {name}" + (f": {', '.join(configs)}" if configs else ""))


def main(argv: list[str], fv: flags.FlagValues) -> int:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise UserError(f"usage: python -m harness {{{'|'.join(COMMANDS)}}} [--flags]; see --help")
    if argv[1] != "tune":
        given = [name for name in TUNE_FLAGS if fv[name].present]
        if given:
            raise UserError(f"--{given[0]} is a flag of `tune`, not of `{argv[1]}`")
    else:
        given = [name for name in RUN_ONLY_FLAGS if fv[name].present]
        if given:
            raise UserError(f"--{given[0]} is a flag of `run`, not of `tune` (a study chooses its seeds: "
                            "--study_seed, --confirm_seeds)")
    if argv[1] == "run":
        _run(fv)
    elif argv[1] == "tune":
        _tune(fv)
    elif argv[1] == "list":
        _list()
    else:
        from scoring.__main__ import run_discover_schedule

        print(run_discover_schedule(fv), end="")
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
