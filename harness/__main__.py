"""Command line of the harness:

  python -m harness run --workload=fashion_mnist_resnet --submission=nesterov --seeds=0-4
  python -m harness list
  python -m harness discover-schedule --run=RUN_ID --first_steps=N [--round] [--out=FILE.json]
      (the same as `python -m scoring discover-schedule`)
"""

from __future__ import annotations

from absl import flags

from harness import cli
from harness.errors import UserError

COMMANDS = ("run", "list", "discover-schedule")


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
    string("seeds", "0", "Seeds: 0-4, 0,3,7 or a mix.")
    flags.DEFINE_integer("budget", None, "Override the workload's step budget (recorded with the run).",
                         flag_values=fv)
    string("results", "results/results.db", "SQLite results database.")
    string("data_dir", None, "Dataset directory (default: the workload's; env vars work too).")
    flags.DEFINE_bool("stop_at_target", False, "Stop a seed as soon as the validation target is reached.",
                      flag_values=fv)
    flags.DEFINE_integer("diagnostics_every", 10, "Record the submission's diagnostics (grafting: the "
                         "ratio per group) of every k-th step into the diagnostics table; 0: never.",
                         flag_values=fv)
    string("tensorboard_dir", None, "run: also write each run's evaluations (and diagnostics) as a "
           "TensorBoard log under this directory (needs the tensorboard extra; see harness/tensorboard.py).")
    string("run_ids_file", None, "run: append one line per recorded run, `run_id<TAB>seed<TAB>status`, "
           "to this file (for scripts).")
    flags.DEFINE_bool("progress", None, "Show a progress bar per run (default: when stderr is a terminal).",
                      flag_values=fv)
    flags.DEFINE_integer("run", None, "discover-schedule: the run id of a grafted run.", flag_values=fv)
    string("out", None, "discover-schedule: write the JSON here (default: print it).")
    from scoring.__main__ import define_discovery_flags

    define_discovery_flags(fv)

    flags.DEFINE_bool("distributed", False, "Multi-host: call jax.distributed.initialize first (one "
                      "process per host, same command on each); see harness/distributed.py.",
                      flag_values=fv)
    string("coordinator_address", None, "With --distributed: host:port of process 0.")
    flags.DEFINE_integer("num_processes", None, "With --distributed: number of processes.", flag_values=fv)
    flags.DEFINE_integer("process_id", None, "With --distributed: index of this process.", flag_values=fv)


def _run(fv: flags.FlagValues) -> None:
    from harness import plan
    from harness.runner import RunOptions, run_sweep

    if fv.distributed:
        from harness import distributed
        distributed.initialize(fv.coordinator_address, fv.num_processes, fv.process_id)
    if not fv.submission:
        raise UserError("--submission is required for `run`")
    hparams = cli.parse_json_mapping(fv.hparams, "hparams", allow_list=True)
    knobs = cli.parse_json_mapping(fv.knobs, "knobs")
    options = RunOptions(seeds=tuple(cli.parse_seeds(fv.seeds)), results=fv.results,
                         data_dir=fv.data_dir, stop_at_target=fv.stop_at_target,
                         progress=cli.progress_default(fv.progress),
                         diagnostics_every=fv.diagnostics_every, tensorboard_dir=fv.tensorboard_dir)
    run_plan = plan.build(fv.workload, fv.submission, config=fv.config, hparams=hparams, knobs=knobs,
                          budget=fv.budget)
    if run_plan.config is not None:
        print(f"config {run_plan.config.name}: {run_plan.config.source}", flush=True)
    summaries = run_sweep(run_plan, options)
    if fv.run_ids_file:
        try:
            with open(fv.run_ids_file, "a") as f:
                f.writelines(f"{s.run_id}\t{s.seed}\t{s.status}\n" for s in summaries)
        except OSError as e:
            raise UserError(f"cannot write --run_ids_file={fv.run_ids_file}: {e.strerror or e}") from None


def _list() -> None:
    from harness import submission_loader
    from harness.formatting import describe_phases
    from workloads import get_workload, workload_names

    print("workloads:")
    for name in workload_names():
        w = get_workload(name)
        print(f"  {name}: target {w.metric} {w.target} ({w.direction.value}); {describe_phases(w.phases)}")
        for k in w.KNOBS:
            print(f"      knob {k.name} = {k.default:g} in [{k.low:g}, {k.high:g}]: {k.doc}")
    print("submissions (named configs):")
    for name in submission_loader.builtin_names():
        configs = submission_loader.load(name).config_names()
        print(f"  {name}" + (f": {', '.join(configs)}" if configs else ""))


def main(argv: list[str], fv: flags.FlagValues) -> int:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise UserError(f"usage: python -m harness {{{'|'.join(COMMANDS)}}} [--flags]; see --help")
    if argv[1] == "run":
        _run(fv)
    elif argv[1] == "list":
        _list()
    else:
        from scoring.__main__ import run_discover_schedule

        print(run_discover_schedule(fv), end="")
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
