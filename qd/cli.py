"""The ``qd`` command line.

- ``qd run [options]``: run a job (the built-in default with no options) into a new run directory.
- ``qd run --resume RUN_DIR``: continue an interrupted run from its last checkpoint.
- ``qd plot RUN_DIR``: redraw a run's plots from its checkpoint and metrics.
- ``qd replay RUN_DIR [--elite best|CELL]``: an HTML page of one elite's episode (Brax tasks).
- ``qd tasks``: the registered tasks.

Bad options fail with one line that names the option and the accepted values, before anything compiles.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional

import yaml

from qd.config import ConfigError

# Option name -> (argparse kwargs); the config key is the option name with '-' replaced by '_'.
_RUN_OPTIONS = {
    "algorithm": dict(help="algorithm (map_elites, ...)"),
    "task": dict(help="task name (see `qd tasks`)"),
    "iterations": dict(type=int, help="iterations after the initial batch"),
    "batch-size": dict(type=int, help="candidates evaluated per iteration"),
    "seed": dict(type=int, help="random seed (a run is reproducible from its seed and config)"),
    "archive": dict(help="grid or cvt"),
    "resolution": dict(type=int, nargs="+", help="grid cells per descriptor dimension"),
    "num-cells": dict(type=int, help="CVT cells"),
    "lower": dict(type=float, nargs="+", help="descriptor lower bounds (default: the task's)"),
    "upper": dict(type=float, nargs="+", help="descriptor upper bounds (default: the task's)"),
    "emitter": dict(help="iso_line or gaussian"),
    "iso-sigma": dict(type=float, help="iso+line isotropic sigma"),
    "line-sigma": dict(type=float, help="iso+line line sigma"),
    "sigma": dict(type=float, help="Gaussian emitter sigma"),
    "devices": dict(type=lambda v: v if v == "all" else int(v) if v.isdigit() else v,
                    help="devices each batch's evaluation is split over: a count or 'all' (one per CPU core)"),
    "chunk-size": dict(type=int, help="iterations per compiled chunk"),
    "checkpoint-every": dict(type=int, help="iterations between checkpoints"),
    "output-dir": dict(help="parent folder of run directories (default: runs)"),
    "run-name": dict(help="run directory name (default: timestamp-task-algorithm)"),
    "compilation-cache": dict(type=lambda v: {"true": True, "false": False}.get(v.lower(), v),
                              help="true/false: JAX's persistent compilation cache (default true)"),
}


def _parse_task_options(items: Optional[List[str]]) -> Optional[Dict[str, Any]]:
    if not items:
        return None
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--task-option: expected KEY=VALUE; got {item!r}")
        options[key] = yaml.safe_load(value)
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qd", description="Quality-diversity optimisation in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a job (the built-in default when no option is given)")
    for name, kwargs in _RUN_OPTIONS.items():
        run.add_argument(f"--{name}", **kwargs)
    run.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="task option (repeatable)")
    run.add_argument("--config", metavar="FILE", help="YAML or TOML file of options")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    plot = sub.add_parser("plot", help="redraw the plots of a run directory")
    plot.add_argument("run_dir", metavar="RUN_DIR")

    replay = sub.add_parser("replay", help="write an HTML page of one elite's episode (Brax tasks)")
    replay.add_argument("run_dir", metavar="RUN_DIR")
    replay.add_argument("--elite", default="best", help="'best' (default) or a cell index")
    replay.add_argument("--output", metavar="FILE", help="HTML file (default: RUN_DIR/replay_<elite>.html)")

    sub.add_parser("tasks", help="list the registered tasks")
    return parser


def _cmd_run(args) -> int:
    from qd import runner
    from qd.config import load_config_file, resolve_config

    overrides = {name.replace("-", "_"): getattr(args, name.replace("-", "_")) for name in _RUN_OPTIONS}
    if args.resume:
        given = [k for k, v in overrides.items() if v is not None and k != "iterations"]
        if given or args.config or args.task_option:
            raise ConfigError("--resume: only --iterations may be changed when resuming a run")
        config = runner.read_config(args.resume)
        if overrides["iterations"] is not None:
            config["iterations"] = overrides["iterations"]
        config = resolve_config(config)
        runner.run(config, run_dir=args.resume, resume=True, progress=not args.no_progress)
        print(f"run directory: {args.resume}")
        return 0
    overrides["task_options"] = _parse_task_options(args.task_option)
    file_config = load_config_file(args.config) if args.config else None
    config = resolve_config(overrides, file_config)
    _, run_dir = runner.run(config, progress=not args.no_progress)
    print(f"run directory: {run_dir}")
    return 0


def _cmd_plot(args) -> int:
    from qd import runner

    job, state, _ = runner.load_run(args.run_dir)
    runner.write_plots(args.run_dir, job.archive_of(state))
    print(f"wrote {args.run_dir}/{runner.ARCHIVE_PLOT} and {args.run_dir}/{runner.METRICS_PLOT}")
    return 0


def _cmd_replay(args) -> int:
    import os

    import jax

    from qd import runner

    if runner.read_config(args.run_dir).get("compilation_cache"):
        runner.enable_compilation_cache()  # as the run did: a second replay skips the episode's compilation
    job, state, _ = runner.load_run(args.run_dir)
    from qd.tasks.brax import BraxTask, replay_html

    if not isinstance(job.task, BraxTask):
        raise ConfigError(f"replay: task {job.config['task']!r} has no episode to render (Brax tasks only)")

    archive = job.archive_of(state)
    cell = runner.select_elite(archive, args.elite)
    genotype = jax.tree_util.tree_map(lambda x: x[cell], archive.genotypes)
    path = args.output or os.path.join(args.run_dir, f"replay_{args.elite}.html")
    replay_html(job.task, genotype, path)
    print(f"wrote {path} (cell {cell}, fitness {float(archive.fitnesses[cell]):.4g})")
    return 0


def _cmd_tasks(args) -> int:
    from qd.tasks.registry import TASKS

    for name in sorted(TASKS):
        print(f"{name:20s} {TASKS[name].description}")
    return 0


COMMANDS = {"run": _cmd_run, "plot": _cmd_plot, "replay": _cmd_replay, "tasks": _cmd_tasks}


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``qd`` command; returns the exit status (2 for a bad option)."""
    args = _parser().parse_args(argv)
    from qd.parallel import use_cpu_cores

    use_cpu_cores()  # one JAX CPU device per core (before JAX computes anything), for --devices
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, FileNotFoundError) as e:
        print(f"qd {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: continue with `qd run --resume RUN_DIR` from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
