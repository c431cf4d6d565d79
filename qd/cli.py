"""The ``qd`` command line.

- ``qd run [options]``: run a job (the built-in default with no options) into a new run directory.
- ``qd run --resume RUN_DIR``: continue an interrupted run from its last checkpoint.
- ``qd plot RUN_DIR``: redraw a run's plots from its checkpoint and metrics.
- ``qd replay RUN_DIR [--elite best|CELL]``: an HTML page of one elite's episode (Brax tasks).
- ``qd tasks``: the registered tasks.
- ``qd bench SPEC`` / ``qd bench --preset NAME [--quick]``: benchmark configurations across tasks and seeds
  (:mod:`qd.bench`) into a bench directory; ``qd bench --resume BENCH_DIR`` skips its finished runs.

Bad options fail with one line that names the option and the accepted values, before anything compiles;
a bad file (a ``--config`` file, or a run directory's ``config.yaml``, ``metrics.csv``, ``checkpoint.npz``
or ``archive.npz`` that is missing, empty, truncated, corrupt, of the wrong kind or another job's) fails with
one line that names the file and the problem: ``qd <command>: error: ...`` on stderr, exit status 2.
Third-party import noise (Brax's maintenance warning) goes to the ``qd`` logger at debug level.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import warnings
from typing import Any, Dict, List, Optional

import yaml

from qd.config import ConfigError, RunDirError

log = logging.getLogger("qd")

def _run_options():
    """``qd run``'s options, generated from the run options and the registered components' configuration
    classes (:func:`qd.config.cli_options`): ``(flag, dest, argparse kwargs)``."""
    from qd.config import cli_options

    return cli_options()


def _parse_task_options(items: Optional[List[str]]) -> Optional[Dict[str, Any]]:
    if not items:
        return None
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--task-option: expected KEY=VALUE; got {item!r}")
        try:
            options[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            from qd.config import yaml_problem

            raise ConfigError(f"--task-option: {key}: {value!r} is not a YAML value: {yaml_problem(e)}") from None
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qd", description="Quality-diversity optimisation in JAX.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a job (the built-in default when no option is given)")
    options = _run_options()
    for flag, _, kwargs in options:
        run.add_argument(flag, **kwargs)
    run.set_defaults(_option_dests=[dest for _, dest, _ in options])
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

    tasks = sub.add_parser("tasks", help="list the registered tasks")

    bench = sub.add_parser("bench", help="benchmark configurations across tasks and seeds (seeds vmapped)")
    bench.add_argument("spec", nargs="?", metavar="SPEC", help="YAML or TOML spec file (see qd.bench.spec)")
    bench.add_argument("--preset", metavar="NAME", help="a built-in spec: sparse-emitters or qd-emitters")
    bench.add_argument("--quick", action="store_true", help="the preset at small budgets and few seeds")
    bench.add_argument("--seeds", type=int, metavar="N", help="override the spec's seeds with 0..N-1")
    bench.add_argument("--output-dir", default="benches", metavar="DIR", help="parent of bench directories (default: benches)")
    bench.add_argument("--resume", metavar="BENCH_DIR", help="continue an interrupted bench, skipping finished runs")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.commands = {"run": run, "plot": plot, "replay": replay, "tasks": tasks, "bench": bench}  # for their own errors
    return parser


def _interrupted(run_dir: Optional[str]) -> None:
    """Say on stderr what Ctrl-C left behind: the command that resumes the run, with its real folder."""
    from qd.runner import CHECKPOINT_FILE

    if run_dir is None:
        message = "interrupted before the run directory was created: nothing to resume"
    elif os.path.isfile(os.path.join(run_dir, CHECKPOINT_FILE)):
        message = f"interrupted: continue from the last checkpoint with `qd run --resume {shlex.quote(run_dir)}`"
    else:
        message = f"interrupted before the first checkpoint: nothing to resume in {run_dir}"
    print("\n" + message, file=sys.stderr)


def _cmd_run(args) -> int:
    from qd import runner
    from qd.config import load_config_file, resolve_config

    overrides = {dest: getattr(args, dest) for dest in args._option_dests}
    started: Dict[str, str] = {}  # the run directory, once runner.run has created it
    kwargs = dict(progress=not args.no_progress, on_run_dir=lambda path: started.setdefault("run_dir", path))
    if args.resume:
        given = [k for k, v in overrides.items() if v is not None and k != "iterations"]
        if given or args.config or args.task_option:
            raise ConfigError("--resume: only --iterations may be changed when resuming a run")
        config = runner.read_config(args.resume)
        if overrides["iterations"] is not None:
            config["iterations"] = overrides["iterations"]
        config = resolve_config(config)
        try:
            runner.run(config, run_dir=args.resume, resume=True, **kwargs)
        except KeyboardInterrupt:
            _interrupted(started.get("run_dir"))
            return 130
        print(f"run directory: {args.resume}")
        return 0
    overrides["task_options"] = _parse_task_options(args.task_option)
    file_config = load_config_file(args.config) if args.config else None
    config = resolve_config(overrides, file_config)
    try:
        _, run_dir = runner.run(config, **kwargs)
    except KeyboardInterrupt:
        _interrupted(started.get("run_dir"))
        return 130
    print(f"run directory: {run_dir}")
    return 0


def _cmd_plot(args) -> int:
    from qd import runner

    runner.plot_run(args.run_dir)  # archive.npz and metrics.csv only: no task, nothing compiled
    print(f"wrote {os.path.join(args.run_dir, runner.ARCHIVE_PLOT)} and {os.path.join(args.run_dir, runner.METRICS_PLOT)}")
    return 0


def _cmd_replay(args) -> int:
    import os

    import jax

    from qd import runner

    if runner.read_config(args.run_dir).get("compilation_cache"):
        runner.enable_compilation_cache()  # as the run did: a second replay skips the episode's compilation
    job, state, _ = runner.load_run(args.run_dir)
    from qd.tasks.brax import BraxTask
    from qd.tasks.brax import replay as replay_lib

    if not isinstance(job.task, BraxTask):
        raise ConfigError(f"replay: task {job.config['task']!r} has no episode to render (Brax tasks only)")

    archive = job.archive_of(state)
    cell = runner.select_elite(archive, args.elite)
    genotype = jax.tree_util.tree_map(lambda x: x[cell], archive.genotypes)
    path = args.output or os.path.join(args.run_dir, f"replay_{args.elite}.html")
    # The elite runs again alone: on chaotic tasks its return can differ from the archived (batched) score
    # unless the run used the task option batch_invariant, so both are shown, in the page and here
    # (qd.tasks.brax.replay's docstring says why).
    archived = float(archive.fitnesses[cell])
    episode = replay_lib.replay_episode(job.task, genotype)
    replay_lib.write_page(replay_lib.render_page(job.task, episode, archived, label=f"cell {cell}"), path)
    print(f"wrote {path} (cell {cell}, {episode.steps} steps)")
    print(replay_lib.score_line(archived, episode.fitness))
    return 0


def _cmd_tasks(args) -> int:
    from qd.tasks.registry import TASKS

    for name in sorted(TASKS):
        print(f"{name:20s} {TASKS[name].description}")
    return 0


def _bench_spec(args) -> Optional[Dict[str, Any]]:
    from qd import bench
    from qd.config import read_mapping_file

    if args.preset is not None and args.spec is not None:
        raise ConfigError("give a SPEC file or --preset, not both")
    if args.quick and args.preset is None:
        raise ConfigError("--quick: only with --preset (write small budgets in your own spec)")
    if args.preset is not None:
        spec = bench.preset(args.preset, quick=args.quick)
    elif args.spec is not None:
        spec = read_mapping_file(args.spec, what="qd bench")
    elif args.resume is not None:
        spec = None
    else:
        raise ConfigError("give a SPEC file, --preset NAME (" + ", ".join(bench.preset_names()) + ") or --resume BENCH_DIR")
    if args.seeds is not None:
        if args.seeds < 1:
            raise ConfigError(f"--seeds: must be a positive integer; got {args.seeds}")
        spec = dict(spec if spec is not None else bench.read_bench_spec(args.resume), seeds=args.seeds)
    return spec


def _cmd_bench(args) -> int:
    from qd import bench

    spec = _bench_spec(args)
    started: Dict[str, str] = {}

    def on_bench_dir(path: str) -> None:
        started["dir"] = path
        print(f"bench directory: {path}", file=sys.stderr)

    try:
        results = bench.run(spec, bench_dir=args.resume, output_dir=args.output_dir, resume=args.resume is not None,
                            progress=not args.no_progress, on_bench_dir=on_bench_dir)
    except KeyboardInterrupt:
        where = started.get("dir")
        message = "nothing to resume" if where is None else f"continue with `qd bench --resume {shlex.quote(where)}`"
        print(f"\ninterrupted: {message}", file=sys.stderr)
        return 130
    print(results.markdown)
    print(f"bench directory: {results.bench_dir} (report.html, report.md, results.csv, plots/)")
    return 0


COMMANDS = {"bench": _cmd_bench, "run": _cmd_run, "plot": _cmd_plot, "replay": _cmd_replay, "tasks": _cmd_tasks}


# Third-party warnings that say nothing about the user's run: (category, message prefix, file of the warning
# ending with). Each goes to the "qd" logger at debug level instead of stderr.
_NOISE_WARNINGS = (
    # brax.io.mjcf.load, on every Brax environment built (Brax 0.14).
    (UserWarning, "Brax System, piplines and environments are not actively being maintained",
     os.path.join("brax", "io", "mjcf.py")),
)


def _route_third_party_warnings() -> None:
    """Send the warnings of :data:`_NOISE_WARNINGS` to the ``qd`` log at debug level (others unchanged)."""
    show = warnings.showwarning
    if getattr(show, "_qd_router", False):
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        for kind, prefix, source in _NOISE_WARNINGS:
            if issubclass(category, kind) and text.startswith(prefix) and str(filename).endswith(source):
                log.debug("%s:%s: %s: %s", filename, lineno, category.__name__, text)
                return
        show(message, category, filename, lineno, file, line)

    showwarning._qd_router = True
    warnings.showwarning = showwarning


def _os_error(e: OSError) -> str:
    if e.filename is not None:
        return f"{e.filename}: {e.strerror or e}"
    return " ".join(str(e).split())


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``qd`` command; returns the exit status.

    Returns:
        0 on success; 2 for a bad option or a bad file (one line ``qd <command>: error: ...`` on stderr,
        argparse's usage errors included); 130 after Ctrl-C (the message says how to resume).
    """
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # reported by the subcommand's parser: "qd run: error: unrecognized arguments: ..."
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # argparse: --help (0) or a usage error (2, already printed)
        return e.code if isinstance(e.code, int) else 2
    from qd.parallel import use_cpu_cores

    use_cpu_cores()  # one JAX CPU device per core (before JAX computes anything), for --devices
    _route_third_party_warnings()
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, RunDirError) as e:
        message = " ".join(str(e).split())
        prefix = f"qd {args.command}: "
        message = message[len(prefix):] if message.startswith(prefix) else message  # qd.bench's own prefix
        print(f"qd {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder that cannot be read or created (FileNotFoundError included)
        print(f"qd {args.command}: error: {_os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
