"""Command line of the harness (absl flags are read here only).

  python -m harness run --workload=fashion_mnist_resnet --submission=nesterov --seeds=0-4
  python -m harness list
  python -m harness discover-schedule --run=RUN_ID --first-steps=N [--round] [--out=FILE.json]
"""

from __future__ import annotations

import sys

from absl import app, flags
from absl import logging as absl_logging

from harness.spec import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("workload", None, "Workload name (python -m harness list shows them).")
flags.DEFINE_string("submission", None, "Built-in submission name or path to a submission module.")
flags.DEFINE_string("hparams", None, "Hyperparameters: inline JSON object or path to a JSON file; "
                    "missing keys take the submission's DEFAULT_HPARAMS. A list of objects gives "
                    "one per phase of a multi-phase workload.")
flags.DEFINE_string("config", None, "A named configuration of the submission (submissions/<name>/"
                    "configs/<config>.json, e.g. config_a): hparams and knobs from a paper; "
                    "--hparams/--knobs override its keys.")
flags.DEFINE_string("knobs", None, "Workload knobs (label_smoothing, gamma0, ...): JSON or file.")
flags.DEFINE_string("seeds", "0", "Seeds: 0-4, 0,3,7 or a mix.")
flags.DEFINE_integer("budget", None, "Override the workload's step budget (recorded with the run).")
flags.DEFINE_string("results", "results/results.db", "SQLite results database.")
flags.DEFINE_string("data_dir", None, "Dataset directory (default: the workload's; env vars work too).")
flags.DEFINE_bool("stop_at_target", False, "Stop a seed as soon as the validation target is reached.")
flags.DEFINE_integer("diagnostics_every", 10, "Record the submission's diagnostics (grafting: the "
                     "ratio per group) of every k-th step into the diagnostics table; 0: never.")
flags.DEFINE_integer("run", None, "discover-schedule: the run id of a grafted run.")
flags.DEFINE_integer("first-steps", None, "discover-schedule: median over the ratios of steps <= N.")
flags.DEFINE_bool("round", False, "discover-schedule: round each multiplier down to a power of 10.")
flags.DEFINE_string("out", None, "discover-schedule: write the JSON here (default: print it).")
flags.DEFINE_bool("progress", None, "Show a progress bar per run (default: when stderr is a terminal).")

flags.DEFINE_bool("distributed", False, "Multi-host: call jax.distributed.initialize first (one "
                  "process per host, same command on each); see harness/distributed.py.")
flags.DEFINE_string("coordinator_address", None, "With --distributed: host:port of process 0.")
flags.DEFINE_integer("num_processes", None, "With --distributed: number of processes.")
flags.DEFINE_integer("process_id", None, "With --distributed: index of this process.")

COMMANDS = ("run", "list", "discover-schedule")


def _run() -> None:
    from harness import inputs
    from harness.runner import SweepConfig, run_sweep

    if FLAGS.distributed:
        from harness import distributed
        distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)

    if not FLAGS.submission:
        raise UserError("--submission is required for `run`")
    workload = FLAGS.workload
    hparams = inputs.parse_json_mapping(FLAGS.hparams, "hparams", allow_list=True)
    knobs = inputs.parse_json_mapping(FLAGS.knobs, "knobs")
    config_label = None
    if FLAGS.config:
        from harness import configs, submissions
        named = configs.load_config(submissions.load(FLAGS.submission), FLAGS.config)
        if workload and workload != named.workload:
            raise UserError(f"config {named.name} is for workload {named.workload}, not {workload}; "
                            f"drop --workload or pass --workload={named.workload}")
        workload = named.workload
        config_label = configs.label(named.name, hparams, knobs)
        hparams = configs.merge_hparams(named.hparams, hparams)
        knobs = {**named.knobs, **knobs}
        print(f"config {named.name}: {named.source}", flush=True)
    if not workload:
        raise UserError("--workload is required for `run` (or --config naming one)")
    progress = sys.stderr.isatty() if FLAGS.progress is None else FLAGS.progress
    cfg = SweepConfig(
        workload=workload, submission=FLAGS.submission, hparams=hparams, knobs=knobs,
        seeds=tuple(inputs.parse_seeds(FLAGS.seeds)), budget=FLAGS.budget, results=FLAGS.results,
        data_dir=FLAGS.data_dir, stop_at_target=FLAGS.stop_at_target, progress=progress,
        diagnostics_every=FLAGS.diagnostics_every, config_label=config_label)
    run_sweep(cfg)


def _list() -> None:
    from harness import submissions
    from workloads import get_workload, workload_names

    print("workloads:")
    for name in workload_names():
        w = get_workload(name)
        phases = " then ".join(f"{p.steps} steps at batch {p.global_batch_size}"
                               + (f" x seq {p.seq_len}" if p.seq_len else "") for p in w.phases)
        print(f"  {name}: target {w.metric} {w.target} ({w.direction.value}), budget {w.step_budget} "
              f"steps ({phases}); knobs: " + (", ".join(f"{k}={v}" for k, v in w.knobs.items()) or "none"))
    print("submissions (named configs):")
    for name in submissions.builtin_names():
        configs = submissions.load(name).config_names()
        print(f"  {name}" + (f": {', '.join(configs)}" if configs else ""))


def _discover_schedule() -> None:
    from harness import discover

    if FLAGS.run is None or FLAGS["first-steps"].value is None:
        raise UserError("discover-schedule needs --run=RUN_ID and --first-steps=N")
    text = discover.discover_to_file(FLAGS.results, FLAGS.run, FLAGS["first-steps"].value,
                                     FLAGS.round, FLAGS.out)
    print(f"wrote {FLAGS.out}" if FLAGS.out else text, end="\n" if FLAGS.out else "")


def main(argv: list[str]) -> None:
    absl_logging.set_verbosity(absl_logging.WARNING)  # keep the terminal for progress and results
    if len(argv) != 2 or argv[1] not in COMMANDS:
        print(f"usage: python -m harness {{{'|'.join(COMMANDS)}}} [--flags]; see --help", file=sys.stderr)
        sys.exit(2)
    try:
        {"run": _run, "list": _list, "discover-schedule": _discover_schedule}[argv[1]]()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
