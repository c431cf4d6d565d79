"""The host-side loop behind ``qd run``: build a job from a config, run it in compiled chunks with a
progress bar, and keep a run directory (config, metrics, plots, checkpoints, final archive) that a
resumed run continues exactly.

Run directory layout::

    RUN_DIR/config.yaml       the resolved config: the options this run uses (``qd.config.recorded_config``)
    RUN_DIR/metrics.csv       one row per iteration (iteration 0 = the initial batch)
    RUN_DIR/checkpoint.npz    the full algorithm state (atomic, every ``checkpoint_every`` iterations)
    RUN_DIR/archive.npz       the repertoire (``qd.save_archive``, with the task, algorithm and descriptor
                              names as metadata), written with every checkpoint and at the end
    RUN_DIR/archive.png       archive heatmap
    RUN_DIR/metrics.png       metric curves
    RUN_DIR/latent_space.png  learned behaviour spaces (TAXONS...): the archive's latents projected to 2-D,
                              coloured by the ground truth; reconstructions.png: images over their
                              reconstructions (both written at the end of the run, from its state)
    RUN_DIR/rewards.png       SERENE (metrics with ``explore_evaluations``): best reward per reward area
                              against evaluations; coverage.png: ground-truth coverage against evaluations
    RUN_DIR/reward_archive.npz  SERENE: the reward archive (written at the end of the run), with the task's
                              goal areas in its metadata; final_positions.png: the descriptors (final
                              positions) of the novelty and reward archives over the goal areas

``qd plot`` redraws the plots from ``archive.npz``, ``metrics.csv`` and (SERENE) ``reward_archive.npz`` alone
(no task, nothing compiled).
A file that is missing, empty, truncated, corrupt, of the wrong kind or written by another job raises
:class:`RunDirError` (one line naming the file and the problem).

Jobs are composed from the registered components (:mod:`qd.registry`; the built-ins are registered in
:mod:`qd.components`, the only layer that picks concrete emitters). Importing this module registers nothing.
"""

from __future__ import annotations

import csv
import datetime
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from qd import config as config_lib
from qd.cache import enable_compilation_cache
from qd.checkpoint import load_checkpoint, save_checkpoint
from qd.config import ConfigError, RunDirError, resolve_config
from qd.jobs import (  # noqa: F401  (Job and the helpers: their historic names here)
    BuildContext, Job, _checked_build, checked_devices, descriptor_bounds, genotype_template,
)
from qd.tasks.registry import get_task_spec

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.npz"
ARCHIVE_FILE = "archive.npz"
ARCHIVE_PLOT = "archive.png"
METRICS_PLOT = "metrics.png"
REWARD_ARCHIVE_FILE = "reward_archive.npz"
REWARDS_PLOT = "rewards.png"
COVERAGE_PLOT = "coverage.png"
FINAL_POSITIONS_PLOT = "final_positions.png"


def build_job(config: Dict[str, Any], registries: Optional[Dict[str, Any]] = None) -> Job:
    """Task + algorithm for a resolved config, built by the registered components (:mod:`qd.components`).

    Raises:
        ConfigError: a bad option discovered while building (e.g. bounds of the wrong length, bad task
            options, a batch that does not split over the emitters).
    """
    spec = get_task_spec(config["task"])
    try:
        task = spec.make(**config["task_options"])
    except (TypeError, ValueError) as e:  # an unknown option name, or a value the task rejects
        raise ConfigError(f"--task-option: bad options for task {config['task']!r}: {' '.join(str(e).split())}") from None
    ctx = BuildContext(config, task, registries or config_lib.default_registries())
    component, cfg = ctx.component("algorithm", config["algorithm"])
    return _checked_build(f"--algorithm {component.name}", component.build, cfg, ctx)


def build_archive(config: Dict[str, Any], task: Any) -> Any:
    """The empty archive of a resolved config's ``archive`` section."""
    return BuildContext(config, task, config_lib.default_registries()).archive()


def build_emitter(config: Dict[str, Any], task: Any) -> Any:
    """The emitter of a resolved config's ``emitter`` and ``scheduler`` sections."""
    return BuildContext(config, task, config_lib.default_registries()).emitter()


# --------------------------------------------------------------------------------------------- #
# Run directory
# --------------------------------------------------------------------------------------------- #
def new_run_dir(config: Dict[str, Any]) -> str:
    """A fresh ``output_dir/<name or timestamp-task-algorithm>`` folder (created).

    Raises:
        OSError: the folder cannot be created (``output_dir`` is a file, no permission, ...).
    """
    name = config["run_name"] or "{}-{}-{}".format(
        datetime.datetime.now().strftime("%Y%m%d-%H%M%S"), config["task"], config["algorithm"]["name"]
    )
    path = os.path.join(config["output_dir"], name)
    suffix = 1
    while os.path.exists(path):
        suffix += 1
        path = os.path.join(config["output_dir"], f"{name}-{suffix}")
    os.makedirs(path)
    return path


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _check_run_dir(run_dir: str) -> None:
    if not os.path.exists(run_dir):
        raise RunDirError(run_dir, "no such run directory")
    if not os.path.isdir(run_dir):
        raise RunDirError(run_dir, "not a run directory (a file, not a folder)")


def _check_file(path: str, missing: str) -> None:
    """RunDirError unless ``path`` is a non-empty regular file; ``missing`` says what its absence means."""
    if not os.path.exists(path):
        raise RunDirError(path, f"no such file ({missing})")
    if os.path.isdir(path):
        raise RunDirError(path, "is a folder, not a file")
    if os.path.getsize(path) == 0:
        raise RunDirError(path, "empty file")


def read_config(run_dir: str) -> Dict[str, Any]:
    """The config saved in a run directory, resolved: the options it does not record come from the defaults.

    Raises:
        RunDirError: no such folder, no ``config.yaml`` (not a run directory), or a ``config.yaml`` that is
            empty, not text, malformed YAML, not a mapping, or has a bad option (e.g. an unknown task).
    """
    _check_run_dir(run_dir)
    path = os.path.join(run_dir, CONFIG_FILE)
    _check_file(path, "not a run directory")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        saved = yaml.safe_load(text)
    except UnicodeDecodeError as e:
        raise RunDirError(path, f"not a text file (not UTF-8 at byte {e.start})") from None
    except yaml.YAMLError as e:
        raise RunDirError(path, f"not valid YAML: {config_lib.yaml_problem(e)}") from None
    except OSError as e:
        raise RunDirError(path, f"cannot read: {e.strerror or e}") from None
    if not isinstance(saved, dict):
        kind = "empty" if saved is None else f"a {type(saved).__name__}"
        raise RunDirError(path, f"must be a mapping of option: value; got {kind}")
    try:
        return resolve_config(saved)
    except ConfigError as e:
        raise RunDirError(path, _one_line(e)) from None


def _write_config(run_dir: str, config: Dict[str, Any]) -> None:
    """``config.yaml``: :func:`qd.config.recorded_config`, keys sorted, each section's ``name`` first."""
    recorded = config_lib.recorded_config(config)
    with open(os.path.join(run_dir, CONFIG_FILE), "w") as f:
        yaml.safe_dump({k: recorded[k] for k in sorted(recorded)}, f, sort_keys=False)


def _read_metrics_rows(path: str, partial_last_row: bool = False) -> Tuple[List[str], List[List[float]]]:
    """``(header, rows)`` of a metrics file, checked: every row has a number in each column.

    Args:
        partial_last_row: drop a malformed last row that has no line end instead of raising: a run killed
            while appending leaves one, and resuming drops it with the other rows written after the
            checkpoint. A complete (newline-terminated) malformed row is still an error.

    Raises:
        RunDirError: empty, not text, no ``iteration`` column, a ragged row or a value that is not a number.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise RunDirError(path, f"not a text file (not UTF-8 at byte {e.start})") from None
    except csv.Error as e:
        raise RunDirError(path, f"not a CSV file: {_one_line(e)}") from None
    except OSError as e:
        raise RunDirError(path, f"cannot read: {e.strerror or e}") from None
    if not rows or not rows[0]:
        raise RunDirError(path, "empty file (no header line)")
    header = rows[0]
    if header[0] != "iteration":
        raise RunDirError(path, f"the first column must be 'iteration'; got {header[0][:40]!r}")
    body = []
    last = len(rows) if partial_last_row and not _ends_with_newline(path) else -1
    for line, row in enumerate(rows[1:], start=2):
        if line == last and (len(row) != len(header) or not all(map(_is_number, row))):
            break
        if len(row) != len(header):
            raise RunDirError(path, f"line {line} has {len(row)} fields; the header has {len(header)}")
        try:
            body.append([float(x) for x in row])
        except ValueError:
            bad = next(x for x in row if not _is_number(x))
            raise RunDirError(path, f"line {line}: {bad[:40]!r} is not a number") from None
    return header, body


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class MetricsLog:
    """``metrics.csv``: one row per iteration, appended after every chunk (flushed).

    Raises (constructor):
        RunDirError: an existing file that is not a metrics file (see :func:`read_metrics`).
    """

    def __init__(self, path: str):
        self.path = path
        self.columns: Optional[List[str]] = None
        if os.path.exists(path):
            if os.path.isdir(path):
                raise RunDirError(path, "is a folder, not a file")
            if os.path.getsize(path) > 0:
                self.columns = _read_metrics_rows(path, partial_last_row=True)[0]

    def truncate(self, last_iteration: int) -> None:
        """Drop rows after ``last_iteration`` (rows written after the checkpoint a run resumes from).

        Raises:
            RunDirError: the file is not a metrics file (see :func:`read_metrics`).
        """
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return
        header, body = _read_metrics_rows(self.path, partial_last_row=True)
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        keep = [header] + [r for r, values in zip(rows[1:], body) if values[0] <= last_iteration]
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerows(keep)

    def append(self, metrics: Dict[str, np.ndarray]) -> None:
        """Append the rows of ``metrics`` (``{name: (n,) array}``, ``iteration`` included).

        Raises:
            RunDirError: the file's header names columns these metrics do not have (another job's file).
        """
        if self.columns is None:
            self.columns = ["iteration"] + sorted(k for k in metrics if k != "iteration")
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        missing = [c for c in self.columns if c not in metrics]
        if missing:
            raise RunDirError(
                self.path, f"has columns this run does not write ({', '.join(missing[:5])}): written by another job?"
            )
        n = len(np.atleast_1d(metrics["iteration"]))
        cols = [np.atleast_1d(np.asarray(metrics[c])) for c in self.columns]
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            for i in range(n):
                writer.writerow([_fmt(c[i]) for c in cols])


def _fmt(x) -> str:
    return str(int(x)) if np.issubdtype(np.asarray(x).dtype, np.integer) else repr(float(x))


def read_metrics(run_dir: str) -> Dict[str, np.ndarray]:
    """``metrics.csv`` of a run directory as ``{column: (rows,) float64 array}``.

    Raises:
        RunDirError: no such folder or file, a folder in its place, an empty file, not text, no
            ``iteration`` column, a ragged row, or a value that is not a number (the message gives the line).
    """
    _check_run_dir(run_dir)
    path = os.path.join(run_dir, METRICS_FILE)
    _check_file(path, "the run stopped before its first iteration?")
    header, body = _read_metrics_rows(path)
    values = np.asarray(body, dtype=np.float64).reshape(-1, len(header))
    return {name: values[:, i] for i, name in enumerate(header)}


def archive_metadata(config: Dict[str, Any], task: Any, descriptor_names: Optional[List[str]] = None) -> Dict[str, Any]:
    """What ``archive.npz`` carries beside the archive: task, algorithm and, if the task (or, for a learned
    descriptor space, the job: ``descriptor_names``) names them, the descriptor axes (so that ``qd plot``
    labels them without building the task)."""
    metadata: Dict[str, Any] = {"task": config["task"], "algorithm": config["algorithm"]["name"]}
    names = descriptor_names if descriptor_names is not None else getattr(task, "descriptor_names", None)
    if names is not None:
        metadata["descriptor_names"] = [str(n) for n in names]
    return metadata


def save_run_archive(run_dir: str, archive: Any, metadata: Dict[str, Any]) -> None:
    """Write ``archive.npz`` atomically (``qd.save_archive``) with ``metadata`` (:func:`archive_metadata`)."""
    from qd.archives import save_archive

    save_archive(os.path.join(run_dir, ARCHIVE_FILE), archive, metadata=metadata)


def load_run_archive(run_dir: str) -> Tuple[Any, Dict[str, Any]]:
    """``(archive, metadata)`` from a run directory's ``archive.npz``, without building the task.

    Raises:
        RunDirError: no such folder or file, or a file that is empty, truncated, corrupt or not an archive.
    """
    from qd.archives import load_archive, read_archive_metadata

    _check_run_dir(run_dir)
    path = os.path.join(run_dir, ARCHIVE_FILE)
    _check_file(path, "the run stopped before its first checkpoint?")
    try:
        return load_archive(path), dict(read_archive_metadata(path) or {})
    except (OSError, ValueError) as e:  # documented: ValueError for an unreadable or wrong-kind file
        raise RunDirError(path, _without_prefix(_one_line(e), path)) from None


def _without_prefix(message: str, path: str) -> str:
    for prefix in (f"{path}: ", f"{path!r}: ", f"{os.path.abspath(path)}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def archive_title(archive: Any, metrics: Optional[Dict[str, np.ndarray]] = None, metadata: Optional[Dict[str, Any]] = None) -> str:
    """The archive plot's title: what the archive is and holds, and the ground-truth coverage of an
    exploration run (``gt_coverage`` in ``metrics``, last row).

    ``"novelty archive: N agents"`` for an unstructured archive (its fill fraction is not a coverage), else
    ``"N elites, coverage X%"``; prefixed with ``task (algorithm)`` when ``metadata`` names them.
    """
    from qd.archives import UnstructuredArchive

    n = int(np.asarray(archive.filled).sum())
    if isinstance(archive, UnstructuredArchive):
        title = f"novelty archive: {n} agents"
    else:
        title = f"{n} elites, coverage {n / archive.capacity:.1%}"
    gt = (metrics or {}).get("gt_coverage")
    if gt is not None and len(gt):
        title += f"; ground-truth coverage {float(gt[-1]):.1%}"
    metadata = metadata or {}
    if metadata.get("task"):
        what = f"{metadata['task']} ({metadata['algorithm']})" if metadata.get("algorithm") else str(metadata["task"])
        title = f"{what}: {title}"
    return title


def write_plots(run_dir: str, archive: Any, metadata: Optional[Dict[str, Any]] = None) -> None:
    """(Re)draw ``archive.png`` and ``metrics.png`` in a run directory from ``archive`` and ``metrics.csv``.

    Args:
        run_dir: the run directory.
        archive: the repertoire to draw.
        metadata: ``archive.npz``'s metadata (:func:`archive_metadata`): task, algorithm, descriptor names.

    Raises:
        RunDirError: ``metrics.csv`` is missing or unreadable (see :func:`read_metrics`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.figure
    import matplotlib.pyplot as plt

    from qd.plotting import ground_truth_view, plot_archive, plot_metrics

    metrics = read_metrics(run_dir)
    metadata = metadata or {}
    title = archive_title(archive, metrics, metadata)
    names = metadata.get("descriptor_names")
    in_truth = ground_truth_view(archive)  # learned descriptors: draw the archive where its agents ended up
    if in_truth is not None:
        archive, names, title = in_truth, ["ground-truth descriptor 1", "ground-truth descriptor 2"], title + " (ground truth)"
    drawn = plot_archive(archive, descriptor_names=names)
    if isinstance(drawn, matplotlib.figure.Figure):  # d >= 3: one panel per pair of dimensions
        figure = drawn
        figure.suptitle(title)
    else:
        figure = drawn.figure
        drawn.set_title(title)
    figure.savefig(os.path.join(run_dir, ARCHIVE_PLOT), dpi=120, bbox_inches="tight")
    plt.close(figure)
    fig = plot_metrics(metrics)
    fig.savefig(os.path.join(run_dir, METRICS_PLOT), dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_exploration_plots(run_dir, archive, metrics, metadata)


def save_reward_archive(run_dir: str, reward_archive: Any, goals: Dict[str, Any]) -> None:
    """Write ``reward_archive.npz`` atomically (``qd.save_archive``), ``goals`` as its metadata.

    Args:
        run_dir: the run directory.
        reward_archive: SERENE's reward archive (a 2-D :class:`qd.UnstructuredArchive`).
        goals: ``{"goal_centres": (A, 2) list, "goal_radii": (A,) list}`` (JSON-serialisable), the task's
            reward areas in descriptor units (:func:`qd.serene_jobs.goal_areas`).
    """
    from qd.archives import save_archive

    save_archive(os.path.join(run_dir, REWARD_ARCHIVE_FILE), reward_archive, metadata=dict(goals))


def write_exploration_plots(run_dir: str, archive: Any, metrics: Dict[str, np.ndarray],
                            metadata: Optional[Dict[str, Any]] = None) -> None:
    """SERENE's pictures in a run directory (nothing for other runs):

    - ``rewards.png`` (best reward per reward area against evaluations) and ``coverage.png`` (ground-truth
      coverage against evaluations), when ``metrics`` has SERENE's ``explore_evaluations`` column;
    - ``final_positions.png``, when the run directory has a ``reward_archive.npz``
      (:func:`save_reward_archive`): the descriptors of ``archive`` (the novelty archive) and of the reward
      archive within ``archive``'s bounds, over the goal areas of its metadata drawn as circles.

    Args:
        run_dir: the run directory.
        archive: the run's archive of record (SERENE's novelty archive), 2-D descriptors.
        metrics: ``metrics.csv``'s columns (:func:`read_metrics`).
        metadata: ``archive.npz``'s metadata (descriptor names, task, algorithm).

    Raises:
        RunDirError: an unreadable ``reward_archive.npz``.
    """
    from qd.plotting import plot_final_positions, plot_metrics, save_figure

    if "explore_evaluations" in metrics:
        if any(k.startswith("best_reward_area_") for k in metrics):
            save_figure(plot_metrics(metrics, keys=["best_reward_area_*"]), os.path.join(run_dir, REWARDS_PLOT))
        if "gt_coverage" in metrics:
            save_figure(plot_metrics(metrics, keys=["gt_coverage"]), os.path.join(run_dir, COVERAGE_PLOT))
    path = os.path.join(run_dir, REWARD_ARCHIVE_FILE)
    if not os.path.isfile(path):
        return
    from qd.archives import load_archive, read_archive_metadata

    try:
        rewards, goals = load_archive(path), dict(read_archive_metadata(path) or {})
    except (OSError, ValueError) as e:
        raise RunDirError(path, _without_prefix(_one_line(e), path)) from None
    metadata = metadata or {}
    names = metadata.get("descriptor_names")
    from qd.plotting import ground_truth_view

    in_truth = ground_truth_view(rewards)  # STAX: learned descriptors; draw where the agents ended up
    if in_truth is not None:
        rewards, names = in_truth, ["ground-truth descriptor 1", "ground-truth descriptor 2"]
        archive = ground_truth_view(archive) or archive
    points = {name: np.asarray(a.descriptors)[np.asarray(a.filled)] for name, a in
              (("novelty archive", archive), ("reward archive", rewards))}
    title = f"{metadata['task']} ({metadata.get('algorithm', '')}): final positions" if metadata.get("task") else "final positions"
    fig = plot_final_positions(points, goals.get("goal_centres", []), goals.get("goal_radii", []),
                               (np.asarray(archive.lower), np.asarray(archive.upper)),
                               descriptor_names=names, title=title)
    save_figure(fig, os.path.join(run_dir, FINAL_POSITIONS_PLOT))


def plot_run(run_dir: str) -> None:
    """``qd plot``: redraw a run directory's plots from ``archive.npz`` and ``metrics.csv`` alone (no task is
    built, nothing is compiled).

    Raises:
        RunDirError: a missing or unreadable ``archive.npz`` or ``metrics.csv``.
    """
    archive, metadata = load_run_archive(run_dir)
    write_plots(run_dir, archive, metadata)


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


# Options that do not change what a checkpoint holds: a run may resume with other values.
_RUN_ONLY_OPTIONS = ("iterations", "output_dir", "run_name", "compilation_cache", "checkpoint_every", "chunk_size", "devices")


def _job_signature(config: Dict[str, Any]) -> Dict[str, Any]:
    """What a checkpoint must match: the recorded options, flat (``archive.resolution``), run-only ones left out."""
    import json

    recorded = config_lib.flat_items(config_lib.recorded_config(config))
    return json.loads(json.dumps({k: v for k, v in recorded.items() if k not in _RUN_ONLY_OPTIONS}))


def _saved_signature(saved: Dict[str, Any], path: str) -> Dict[str, Any]:
    """A checkpoint's job signature in today's form: those written before config sections (flat options,
    ``algorithm: map_elites``) are resolved again, so old run directories resume."""
    if isinstance(saved.get("algorithm"), str):
        try:
            return _job_signature(resolve_config(saved))
        except ConfigError as e:
            raise RunDirError(path, f"its job's options are no longer valid: {_one_line(e)}") from None
    return saved


def _save_run_checkpoint(run_dir: str, state: Any, iteration: int, config: Dict[str, Any]) -> None:
    save_checkpoint(os.path.join(run_dir, CHECKPOINT_FILE), state, {"iteration": iteration, "job": _job_signature(config)})


def load_run_checkpoint(run_dir: str, job: Job) -> Tuple[Any, Dict[str, Any]]:
    """The state and metadata of a run directory's ``checkpoint.npz``, checked against ``job``.

    Raises:
        RunDirError: no such file, or a file that is empty, truncated, corrupt, not a checkpoint, or written by
            another job (other options, or arrays of other shapes than ``job``'s state).
    """
    _check_run_dir(run_dir)
    path = os.path.join(run_dir, CHECKPOINT_FILE)
    _check_file(path, "the run stopped before its first checkpoint?")
    template = jax.eval_shape(job.init, jax.random.PRNGKey(job.config["seed"]))[0]
    try:
        state, metadata = load_checkpoint(path, template)
    except (OSError, ValueError) as e:
        raise RunDirError(path, _without_prefix(_one_line(e), path)) from None
    iteration = metadata.get("iteration")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < -1:
        raise RunDirError(path, f"not a run checkpoint: no iteration count in its metadata (got {iteration!r})")
    saved = metadata.get("job")
    if saved is not None:
        saved = _saved_signature(saved, path)
        current = _job_signature(job.config)
        differ = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if differ:
            details = ", ".join(f"{k}: {saved.get(k)!r} vs {current.get(k)!r}" for k in differ[:3])
            raise RunDirError(path, f"written by another job than this folder's config.yaml ({details})")
    return state, metadata


def load_run(run_dir: str) -> Tuple[Job, Any, Dict[str, Any]]:
    """Rebuild the job of a run directory and load its last checkpoint: ``(job, state, metadata)``.

    Raises:
        RunDirError: a missing or unreadable ``config.yaml`` or ``checkpoint.npz``, or a checkpoint of
            another job.
        ConfigError: the saved task options are rejected by the task (see :func:`build_job`).
    """
    job = build_job(read_config(run_dir))
    state, metadata = load_run_checkpoint(run_dir, job)
    return job, state, metadata


# --------------------------------------------------------------------------------------------- #
# The loop
# --------------------------------------------------------------------------------------------- #
def progress_fields(metrics: Dict[str, np.ndarray]) -> Dict[str, str]:
    """The progress bar's postfix for a chunk's metrics (``{name: (n,) array}``): the last value of each
    metric present, in this order: ``evals``, ``qd_score``, then ``gt_cov`` (the ground-truth coverage of
    an exploration run, ``gt_coverage``) when present, else ``coverage`` (the archive's), then ``areas``
    (reward areas found / areas, on sparse-reward tasks), then ``max_fit``, then for learned behaviour
    spaces ``ae_loss`` (the last training's loss, ``-`` before the first) and ``trainings``, then for SERENE
    ``explore`` and ``exploit`` (evaluations spent on each phase, the initial population in neither) and
    ``best`` (the best reward of each reward area, ``0.31/0.00``).

    A novelty-search archive's fill fraction is not a coverage, so an exploration run shows ``gt_cov`` only.
    """
    last = {k: np.asarray(v).reshape(-1)[-1] for k, v in metrics.items() if np.asarray(v).size}
    fields: Dict[str, str] = {}
    if "num_evaluations" in last:
        fields["evals"] = str(int(last["num_evaluations"]))
    if "qd_score" in last:
        fields["qd_score"] = f"{float(last['qd_score']):.4g}"
    if "gt_coverage" in last:
        fields["gt_cov"] = f"{float(last['gt_coverage']):.1%}"
    elif "coverage" in last:
        fields["coverage"] = f"{float(last['coverage']):.1%}"
    num_areas = sum(k.startswith("best_reward_area_") for k in last)
    if "reward_areas_found" in last and num_areas:
        fields["areas"] = f"{int(last['reward_areas_found'])}/{num_areas}"
    if "max_fitness" in last:
        fields["max_fit"] = f"{float(last['max_fitness']):.4g}"
    if "ae_trainings" in last:  # a learned behaviour space: its encoder's last training loss, and how many
        fields["ae_loss"] = f"{float(last['ae_loss']):.4g}" if np.isfinite(last.get("ae_loss", np.nan)) else "-"
        fields["trainings"] = str(int(last["ae_trainings"]))
    if "explore_evaluations" in last and "exploit_evaluations" in last:  # SERENE
        fields["explore"] = str(int(last["explore_evaluations"]))
        fields["exploit"] = str(int(last["exploit_evaluations"]))
        if num_areas:
            best = [float(last.get(f"best_reward_area_{i}", np.nan)) for i in range(num_areas)]
            fields["best"] = "/".join(f"{b:.2f}" if np.isfinite(b) else "-" for b in best)
    return fields


class _Progress:
    """A tqdm bar over iterations (``unit="it"``) or evaluations (``"eval"``, budget-driven runs) with the QD
    metrics in its postfix (:func:`progress_fields`); :meth:`update` advances it by ``n`` units."""

    def __init__(self, total: int, initial: int, enabled: bool, unit: str = "it"):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True)
        self.t0, self.evals0 = time.perf_counter(), None

    def update(self, n: int, metrics: Dict[str, np.ndarray]) -> None:
        if self.bar is None:
            return
        fields = progress_fields(metrics)
        if "num_evaluations" in metrics:
            evals = np.asarray(metrics["num_evaluations"]).reshape(-1)
            if self.evals0 is None:
                self.evals0 = int(evals[-1]) - int(evals[-1] - evals[0])
            rate = (int(evals[-1]) - self.evals0) / max(time.perf_counter() - self.t0, 1e-9)
            fields["evals_per_s"] = f"{rate:.3g}"
        self.bar.set_postfix(fields, refresh=False)
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
    on_run_dir: Optional[Callable[[str], None]] = None,
) -> Tuple[Any, str]:
    """Run (or resume) a job, keeping its run directory up to date.

    Args:
        config: a resolved config (:func:`qd.config.resolve_config`).
        run_dir: where to write; a new folder under ``output_dir`` when None. Required with ``resume``.
        resume: continue from ``run_dir``'s checkpoint (its metrics after the checkpoint are dropped).
        progress: show a progress bar.
        on_chunk: called with the iteration count after each chunk is saved (tests use it to interrupt).
        on_run_dir: called with the run directory as soon as it exists, before anything compiles (the
            command line uses it to say which folder to resume after Ctrl-C).

    Returns:
        ``(final_state, run_dir)``.

    Raises:
        ConfigError: a bad option found while building the job (before the run directory is created).
        RunDirError: resuming from a run directory whose checkpoint or metrics are missing, unreadable or
            another job's.
        OSError: the run directory cannot be created or written.

    Chunks of ``chunk_size`` iterations follow iteration 0, the initial batch (evaluated by ``init`` or,
    when ``init`` leaves it pending, by a first chunk of one iteration), so chunk boundaries are multiples
    of ``chunk_size``; checkpoints are written only on them, so a resumed run executes exactly the same
    compiled chunks as an uninterrupted one and ends with the same archive. ``archive.npz`` is rewritten
    with every checkpoint, so ``qd plot`` works on an interrupted run.

    A budget-driven job (``job.budget``, SERENE) ignores ``iterations``: it runs whole chunks of
    ``chunk_size`` iterations until the state's ``num_evaluations`` reaches the budget (the last chunk's
    iterations after that evaluate nothing), checkpoints on the same chunk boundaries (and after the last
    chunk), and its progress bar counts evaluations up to the budget. ``metrics.csv`` keeps the rows up to
    the iteration that reached the budget and drops those after it (the rows of iterations that evaluated
    nothing); a resumed run writes the same rows. At the end ``job.artifacts`` writes the job's own files,
    then the plots are drawn (:func:`write_plots`).
    """
    if resume and run_dir is None:
        raise ValueError("run(resume=True) needs the run directory to resume")
    if config["compilation_cache"]:
        enable_compilation_cache()
    job = build_job(config)
    metadata = archive_metadata(config, job.task, job.descriptor_names)

    def checkpoint(state, iteration):
        _save_run_checkpoint(run_dir, state, iteration, config)
        save_run_archive(run_dir, job.archive_of(state), metadata)

    if resume:
        if on_run_dir is not None:
            on_run_dir(run_dir)
        state, saved = load_run_checkpoint(run_dir, job)
        done = int(saved["iteration"])
        log = MetricsLog(os.path.join(run_dir, METRICS_FILE))
        log.truncate(done)
    else:
        run_dir = run_dir or new_run_dir(config)
        os.makedirs(run_dir, exist_ok=True)
        if on_run_dir is not None:
            on_run_dir(run_dir)
        _write_config(run_dir, config)
        log = MetricsLog(os.path.join(run_dir, METRICS_FILE))
        state, metrics = job.init(jax.random.PRNGKey(config["seed"]))
        metrics = jax.device_get(metrics)
        # Iteration -1: the initial batch is pending and the first chunk evaluates it as iteration 0.
        done = int(metrics["iteration"])
        if done == 0:
            log.append(metrics)
        checkpoint(state, done)

    if job.budget is None:
        state = _run_iterations(job, state, done, config, log, checkpoint, progress, on_chunk)
    else:
        state = _run_budget(job, state, done, config, log, checkpoint, progress, on_chunk)
    archive = job.archive_of(state)
    save_run_archive(run_dir, archive, metadata)
    if job.artifacts is not None:
        job.artifacts(state, run_dir)
    write_plots(run_dir, archive, metadata)
    return state, run_dir


def _run_iterations(job: Job, state: Any, done: int, config: Dict[str, Any], log: "MetricsLog",
                    checkpoint: Callable[[Any, int], None], progress: bool, on_chunk: Optional[Callable[[int], None]]) -> Any:
    """:func:`run`'s loop over ``config["iterations"]`` iterations, from iteration ``done``."""
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
                checkpoint(state, done)
                last_checkpoint = done
            bar.update(n, metrics)
            if on_chunk is not None:
                on_chunk(done)
    finally:
        bar.close()
    return state


def _evaluations(state: Any) -> int:
    """The evaluations a run state has spent (its ``num_evaluations``, read from the device)."""
    return int(np.asarray(jax.device_get(state.num_evaluations)).reshape(-1)[0])


def within_budget(metrics: Dict[str, np.ndarray], budget: int) -> Dict[str, np.ndarray]:
    """A chunk's metrics ``{name: (n,) array}`` up to the first row whose ``num_evaluations`` reaches
    ``budget`` (all of them when none does): the rows after it are iterations that evaluated nothing."""
    evals = np.asarray(metrics["num_evaluations"]).reshape(-1)
    reached = np.flatnonzero(evals >= budget)
    if not reached.size:
        return metrics
    keep = int(reached[0]) + 1
    return {k: np.asarray(v)[:keep] for k, v in metrics.items()}


def _run_budget(job: Job, state: Any, done: int, config: Dict[str, Any], log: "MetricsLog",
                checkpoint: Callable[[Any, int], None], progress: bool, on_chunk: Optional[Callable[[int], None]]) -> Any:
    """:func:`run`'s loop of a budget-driven job: whole chunks until ``job.budget`` evaluations are spent."""
    budget, chunk, every = int(job.budget), config["chunk_size"], config["checkpoint_every"]
    shown = min(_evaluations(state), budget)
    bar = _Progress(budget, shown, progress, unit="eval")
    last_checkpoint = done
    try:
        while _evaluations(state) < budget:
            n = 1 if done < 0 else chunk  # a pending initial batch is a chunk of its own
            state, metrics = job.scan(state, n)
            metrics = within_budget(jax.device_get(metrics), budget)
            done += n
            log.append(metrics)
            evaluations = min(int(np.asarray(metrics["num_evaluations"]).reshape(-1)[-1]), budget)
            if done - last_checkpoint >= every or evaluations >= budget:
                checkpoint(state, done)
                last_checkpoint = done
            bar.update(evaluations - shown, metrics)
            shown = evaluations
            if on_chunk is not None:
                on_chunk(done)
    finally:
        bar.close()
    return state


def resolve_and_run(overrides: Dict[str, Any], config_file: Optional[str] = None, **kwargs) -> Tuple[Any, str]:
    """Convenience: :func:`resolve_config` then :func:`run`."""
    file_config = config_lib.load_config_file(config_file) if config_file else None
    return run(resolve_config(overrides, file_config), **kwargs)
