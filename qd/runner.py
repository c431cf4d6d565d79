"""The host-side loop behind ``qd run``: build a job from a config, run it in compiled chunks with a
progress bar, and keep a run directory (config, metrics, plots, checkpoints, final archive) that a
resumed run continues exactly.

Run directory layout::

    RUN_DIR/config.yaml       the resolved config
    RUN_DIR/metrics.csv       one row per iteration (iteration 0 = the initial batch)
    RUN_DIR/checkpoint.npz    the full algorithm state (atomic, every ``checkpoint_every`` iterations)
    RUN_DIR/archive.npz       the final repertoire (``Archive.to_dict``)
    RUN_DIR/archive.png       archive heatmap
    RUN_DIR/metrics.png       metric curves

Algorithms are composed here (this is the only layer that picks concrete emitters). New algorithms
register a builder with :func:`register_algorithm`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from qd import config as config_lib
from qd.archives import CVTArchive, GridArchive
from qd.cache import enable_compilation_cache
from qd.checkpoint import load_checkpoint, save_checkpoint
from qd.config import ConfigError, resolve_config
from qd.tasks.registry import get_task_spec

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.npz"
ARCHIVE_FILE = "archive.npz"
ARCHIVE_PLOT = "archive.png"
METRICS_PLOT = "metrics.png"


@dataclasses.dataclass
class Job:
    """A configured algorithm, ready to run.

    Attributes:
        config: the resolved config.
        task: the task object.
        init: ``key -> (state, metrics)``; the state is a pytree (checkpointed as such). ``metrics["iteration"]``
            is 0, or -1 when the initial batch is left for the first scanned iteration to evaluate.
        scan: ``(state, n) -> (state, metrics)``, ``n`` compiled iterations; metrics have shape ``(n,)``.
        archive_of: ``state -> Archive`` (the repertoire to save and plot).
    """

    config: Dict[str, Any]
    task: Any
    init: Callable[[jax.Array], Tuple[Any, Dict[str, jax.Array]]]
    scan: Callable[[Any, int], Tuple[Any, Dict[str, jax.Array]]]
    archive_of: Callable[[Any], Any]


ALGORITHMS: Dict[str, Callable[[Dict[str, Any], Any], Job]] = {}


def register_algorithm(name: str, builder: Callable[[Dict[str, Any], Any], Job]) -> None:
    """Make ``--algorithm NAME`` build its job with ``builder(config, task)``."""
    ALGORITHMS[name] = builder
    if name not in config_lib.ALGORITHM_NAMES:
        config_lib.ALGORITHM_NAMES.append(name)


# --------------------------------------------------------------------------------------------- #
# Building jobs
# --------------------------------------------------------------------------------------------- #
def genotype_template(task: Any) -> Any:
    """One zero genotype with the task's structure (computed abstractly: nothing runs)."""
    shapes = jax.eval_shape(lambda key: task.initial_genotypes(key, 1), jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape[1:], s.dtype), shapes)


def descriptor_bounds(config: Dict[str, Any], task: Any) -> Tuple[List[float], List[float]]:
    """The config's bounds, or the task's; checked for length against the task's descriptor.

    Raises:
        ConfigError: bounds of the wrong length, or lower >= upper.
    """
    task_lower, task_upper = task.descriptor_bounds
    d = len(task_lower)
    lower = list(config["lower"]) if config["lower"] is not None else list(task_lower)
    upper = list(config["upper"]) if config["upper"] is not None else list(task_upper)
    for name, value in (("lower", lower), ("upper", upper)):
        if len(value) != d:
            raise ConfigError(
                f"--{name}: task {config['task']!r} has {d} descriptor dimensions; got {len(value)} values"
            )
    if any(lo >= hi for lo, hi in zip(lower, upper)):
        raise ConfigError(f"--lower/--upper: each lower bound must be below its upper bound; got {lower}, {upper}")
    return lower, upper


def build_archive(config: Dict[str, Any], task: Any):
    """The grid or CVT archive a config asks for (empty)."""
    lower, upper = descriptor_bounds(config, task)
    template = genotype_template(task)
    offset = float(getattr(task, "qd_offset", 0.0))
    if config["archive"] == "grid":
        res = list(config["resolution"])
        if len(res) == 1:
            res = res * len(lower)
        if len(res) != len(lower):
            raise ConfigError(f"--resolution: expected 1 or {len(lower)} values; got {len(res)}")
        return GridArchive.create(template, res, lower, upper, qd_offset=offset)
    return CVTArchive.create(template, lower, upper, num_cells=config["num_cells"], seed=config["seed"], qd_offset=offset)


def build_emitter(config: Dict[str, Any], task: Any):
    """The emitter a config asks for, clipped to the task's genotype bounds if it has any."""
    from emitters import GaussianEmitter, IsoLineEmitter

    clip = getattr(task, "genotype_bounds", None)
    clip = None if clip is None else (float(clip[0]), float(clip[1]))
    if config["emitter"] == "gaussian":
        return GaussianEmitter(batch_size=config["batch_size"], sigma=config["sigma"], clip=clip)
    return IsoLineEmitter(
        batch_size=config["batch_size"], iso_sigma=config["iso_sigma"], line_sigma=config["line_sigma"], clip=clip
    )


def checked_devices(config: Dict[str, Any]) -> Any:
    """The config's ``devices``, checked against this machine's devices.

    Raises:
        ConfigError: more devices than there are.
    """
    from qd.parallel import resolve_devices

    try:
        resolve_devices(config["devices"])
    except ValueError as e:
        raise ConfigError(f"--devices: {e}") from None
    return config["devices"]


def build_map_elites(config: Dict[str, Any], task: Any) -> Job:
    """MAP-Elites on the config's archive and emitter; the initial batch is ``batch_size`` random genotypes."""
    from qd.algorithms import MAPElites

    archive = build_archive(config, task)
    options = getattr(task, "compiler_options", None)
    algo = MAPElites(
        build_emitter(config, task), task.evaluate, compiler_options=options, devices=checked_devices(config)
    )

    def init(key):
        k_genotypes, k_algo = jax.random.split(key)
        return algo.init(archive, task.initial_genotypes(k_genotypes, config["batch_size"]), k_algo)

    return Job(config=config, task=task, init=init, scan=algo.scan, archive_of=lambda s: s.archive)


register_algorithm("map_elites", build_map_elites)


def build_job(config: Dict[str, Any]) -> Job:
    """Task + algorithm for a resolved config.

    Raises:
        ConfigError: a bad option discovered while building (e.g. bounds of the wrong length, bad task
            options).
    """
    spec = get_task_spec(config["task"])
    try:
        task = spec.make(**config["task_options"])
    except TypeError as e:
        raise ConfigError(f"--task-options: bad options for task {config['task']!r}: {e}") from None
    return ALGORITHMS[config["algorithm"]](config, task)


# --------------------------------------------------------------------------------------------- #
# Run directory
# --------------------------------------------------------------------------------------------- #
def new_run_dir(config: Dict[str, Any]) -> str:
    """A fresh ``output_dir/<name or timestamp-task-algorithm>`` folder (created)."""
    name = config["run_name"] or "{}-{}-{}".format(
        datetime.datetime.now().strftime("%Y%m%d-%H%M%S"), config["task"], config["algorithm"]
    )
    path = os.path.join(config["output_dir"], name)
    suffix = 1
    while os.path.exists(path):
        suffix += 1
        path = os.path.join(config["output_dir"], f"{name}-{suffix}")
    os.makedirs(path)
    return path


def read_config(run_dir: str) -> Dict[str, Any]:
    """The resolved config saved in a run directory.

    Raises:
        FileNotFoundError: the folder has no ``config.yaml`` (not a run directory).
    """
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir!r} is not a run directory (no {CONFIG_FILE})")
    with open(path) as f:
        return yaml.safe_load(f)


def _write_config(run_dir: str, config: Dict[str, Any]) -> None:
    with open(os.path.join(run_dir, CONFIG_FILE), "w") as f:
        yaml.safe_dump(config, f, sort_keys=True)


class MetricsLog:
    """``metrics.csv``: one row per iteration, appended after every chunk (flushed)."""

    def __init__(self, path: str):
        self.path = path
        self.columns: Optional[List[str]] = None
        if os.path.exists(path):
            with open(path) as f:
                header = f.readline().strip()
            self.columns = header.split(",") if header else None

    def truncate(self, last_iteration: int) -> None:
        """Drop rows after ``last_iteration`` (rows written after the checkpoint a run resumes from)."""
        if not os.path.exists(self.path):
            return
        with open(self.path) as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        keep = [rows[0]] + [r for r in rows[1:] if int(float(r[0])) <= last_iteration]
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerows(keep)

    def append(self, metrics: Dict[str, np.ndarray]) -> None:
        if self.columns is None:
            self.columns = ["iteration"] + sorted(k for k in metrics if k != "iteration")
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        n = len(np.atleast_1d(metrics["iteration"]))
        cols = [np.atleast_1d(np.asarray(metrics[c])) for c in self.columns]
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            for i in range(n):
                writer.writerow([_fmt(c[i]) for c in cols])


def _fmt(x) -> str:
    return str(int(x)) if np.issubdtype(np.asarray(x).dtype, np.integer) else repr(float(x))


def read_metrics(run_dir: str) -> Dict[str, np.ndarray]:
    """``metrics.csv`` of a run directory as ``{column: (rows,) float64 array}``."""
    with open(os.path.join(run_dir, METRICS_FILE)) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], np.asarray(rows[1:], dtype=np.float64).reshape(-1, len(rows[0]))
    return {name: body[:, i] for i, name in enumerate(header)}


def write_plots(run_dir: str, archive: Any) -> None:
    """(Re)draw ``archive.png`` and ``metrics.png`` in a run directory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qd.plotting import plot_archive, plot_metrics

    ax = plot_archive(archive)
    ax.set_title(f"archive ({int(archive.num_elites)} elites, coverage {float(archive.coverage):.1%})")
    ax.figure.savefig(os.path.join(run_dir, ARCHIVE_PLOT), dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    fig = plot_metrics(read_metrics(run_dir))
    fig.savefig(os.path.join(run_dir, METRICS_PLOT), dpi=120, bbox_inches="tight")
    plt.close(fig)


def select_elite(archive: Any, elite: str) -> int:
    """The cell of ``elite``: ``"best"`` (highest fitness) or a cell index given as text.

    Raises:
        ConfigError: not ``best`` nor an integer, out of range, or an empty cell.
    """
    if elite == "best":
        if int(archive.num_elites) == 0:
            raise ConfigError("--elite: the archive is empty")
        return int(archive.best().cells[0])
    try:
        cell = int(elite)
    except ValueError:
        raise ConfigError(f"--elite: expected 'best' or a cell index; got {elite!r}") from None
    if not 0 <= cell < archive.capacity:
        raise ConfigError(f"--elite: cell {cell} is out of range 0..{archive.capacity - 1}")
    if not bool(archive.filled[cell]):
        raise ConfigError(f"--elite: cell {cell} is empty; filled cells: see archive.npz['filled']")
    return cell


def load_run(run_dir: str) -> Tuple[Job, Any, Dict[str, Any]]:
    """Rebuild the job of a run directory and load its last checkpoint: ``(job, state, metadata)``."""
    job = build_job(read_config(run_dir))
    template = jax.eval_shape(job.init, jax.random.PRNGKey(0))[0]
    state, metadata = load_checkpoint(os.path.join(run_dir, CHECKPOINT_FILE), template)
    return job, state, metadata


# --------------------------------------------------------------------------------------------- #
# The loop
# --------------------------------------------------------------------------------------------- #
class _Progress:
    """A tqdm bar over iterations with the QD metrics in its postfix."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True)
        self.t0, self.evals0 = time.perf_counter(), None

    def update(self, n: int, metrics: Dict[str, np.ndarray]) -> None:
        if self.bar is None:
            return
        evals = int(metrics["num_evaluations"][-1])
        if self.evals0 is None:
            self.evals0 = evals - int(metrics["num_evaluations"][-1] - metrics["num_evaluations"][0])
        rate = (evals - self.evals0) / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix(
            evals=evals,
            qd_score=f"{float(metrics['qd_score'][-1]):.4g}",
            coverage=f"{float(metrics['coverage'][-1]):.1%}",
            max_fit=f"{float(metrics['max_fitness'][-1]):.4g}",
            evals_per_s=f"{rate:.3g}",
            refresh=False,
        )
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(
    config: Dict[str, Any],
    run_dir: Optional[str] = None,
    resume: bool = False,
    progress: bool = True,
    on_chunk: Optional[Callable[[int], None]] = None,
) -> Tuple[Any, str]:
    """Run (or resume) a job, keeping its run directory up to date.

    Args:
        config: a resolved config (:func:`qd.config.resolve_config`).
        run_dir: where to write; a new folder under ``output_dir`` when None. Required with ``resume``.
        resume: continue from ``run_dir``'s checkpoint (its metrics after the checkpoint are dropped).
        progress: show a progress bar.
        on_chunk: called with the iteration count after each chunk is saved (tests use it to interrupt).

    Returns:
        ``(final_state, run_dir)``.

    Chunks of ``chunk_size`` iterations follow iteration 0, the initial batch (evaluated by ``init`` or,
    when ``init`` leaves it pending, by a first chunk of one iteration), so chunk boundaries are multiples
    of ``chunk_size``; checkpoints are written only on them, so a resumed run executes exactly the same
    compiled chunks as an uninterrupted one and ends with the same archive.
    """
    if config["compilation_cache"]:
        enable_compilation_cache()
    job = build_job(config)
    if resume:
        template = jax.eval_shape(job.init, jax.random.PRNGKey(config["seed"]))[0]
        state, metadata = load_checkpoint(os.path.join(run_dir, CHECKPOINT_FILE), template)
        done = int(metadata["iteration"])
        log = MetricsLog(os.path.join(run_dir, METRICS_FILE))
        log.truncate(done)
    else:
        run_dir = run_dir or new_run_dir(config)
        os.makedirs(run_dir, exist_ok=True)
        _write_config(run_dir, config)
        log = MetricsLog(os.path.join(run_dir, METRICS_FILE))
        state, metrics = job.init(jax.random.PRNGKey(config["seed"]))
        metrics = jax.device_get(metrics)
        # Iteration -1: the initial batch is pending and the first chunk evaluates it as iteration 0.
        done = int(metrics["iteration"])
        if done == 0:
            log.append(metrics)
        save_checkpoint(os.path.join(run_dir, CHECKPOINT_FILE), state, {"iteration": done})

    total, chunk, every = config["iterations"], config["chunk_size"], config["checkpoint_every"]
    bar = _Progress(total + 1, done + 1, progress)  # counts iteration 0 (the initial batch) too
    last_checkpoint = done
    try:
        while done < total:
            n = 1 if done < 0 else min(chunk, total - done)  # a pending initial batch is a chunk of its own
            state, metrics = job.scan(state, n)
            metrics = jax.device_get(metrics)
            done += n
            log.append(metrics)
            if done - last_checkpoint >= every or done == total:
                save_checkpoint(os.path.join(run_dir, CHECKPOINT_FILE), state, {"iteration": done})
                last_checkpoint = done
            bar.update(n, metrics)
            if on_chunk is not None:
                on_chunk(done)
    finally:
        bar.close()
    archive = job.archive_of(state)
    from qd.checkpoint import atomic_savez

    atomic_savez(os.path.join(run_dir, ARCHIVE_FILE), archive.to_dict())
    write_plots(run_dir, archive)
    return state, run_dir


def resolve_and_run(overrides: Dict[str, Any], config_file: Optional[str] = None, **kwargs) -> Tuple[Any, str]:
    """Convenience: :func:`resolve_config` then :func:`run`."""
    file_config = config_lib.load_config_file(config_file) if config_file else None
    return run(resolve_config(overrides, file_config), **kwargs)


# Exploration algorithms (novelty search, random search) register themselves here.
import qd.exploration_jobs  # noqa: E402,F401
