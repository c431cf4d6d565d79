"""Running one benchmark run (a configuration on a task) for all its seeds as one vmapped program.

Seed ``s`` of a run is the job ``qd run`` builds for the run's config with ``seed: s``, started from
``PRNGKey(s)``: :func:`run_seeds` builds the job of every seed (host only: the config's seed enters only
their setup, e.g. a CVT archive's centroids or an archive's PRNG key), stacks their ``init_args`` and runs
them with the first job's driver, ``Driver.init_seeds`` then compiled chunks of ``Driver.scan_seeds``: one
program for all seeds, no Python loop over them inside a chunk, and the same compiled chunk for every chunk
and every seed group (the last group is padded with copies of its first seed, whose results are dropped).
With the spec's ``split_seeds`` the seed axis is split over the local devices when it divides evenly (the ``qd``
command exposes one CPU device per core); off by default: on 2 shared cores it helped MAP-Elites on the arm
(1.30x against 1.18x on one device) but slowed novelty search on curling (0.61x against 1.04x). Phased algorithms (SERENE, STAX) are the exception (:func:`vmappable`): their seeds run one
after another with one compiled program. The seeds equal the separate runs (``tests/test_bench.py``).

Cost (``benchmarks/seeds_vmapped.py``, 2-core CPU): the iterations of MAP-Elites on the arm and of novelty
search on curling cost in proportion to their candidates, with little fixed overhead per iteration for
``vmap`` to share, so 8 seeds vmapped run only about 1.0-1.3x faster than 8 runs one after another.

Runs whose chunk programs are the same share them (:class:`SharedPrograms`, keyed by the lowered program):
configurations that differ only in settings the state carries (SERENE's phase scheduler) compile once. An
emitter's sigma is a constant of its program (traced, under ``vmap`` over seeds, it let XLA fuse the
mutation differently from a separate run: the seeds then differed from ``qd run`` by an ulp), so
configurations that differ in it compile their own.

A group of seeds must fit in memory: :func:`seeds_per_group` estimates a seed's footprint from its job's
setup (archives, initial batch) and fits as many as ``max_group_memory_gb`` allows.

Results are read off each seed's metric curves at fixed evaluation budgets (:func:`budget_rows`): at budget
``b``, the last iteration that had spent at most ``b`` evaluations.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from qd.bench.report import FIRST_REWARD, metric_rank
from qd.bench.spec import Run
from qd.config import ConfigError


def build_jobs(run: Run, seeds: Sequence[int]) -> List[Any]:
    """The job of each seed (:func:`qd.runner.build_job`), checked to be vmappable.

    Raises:
        ConfigError: a bad option found while building; a job without a driver (not vmappable).
    """
    from qd.runner import build_job

    jobs = []
    for seed in seeds:
        try:
            job = build_job(run.seed_config(seed))
        except ConfigError as e:
            raise ConfigError(f"qd bench: config {run.config_label!r} on task {run.task_label!r}: {e}") from None
        if job.driver is None or job.init_args is None:
            raise ConfigError(f"qd bench: config {run.config_label!r}: its job has no driver to vmap seeds over")
        jobs.append(job)
    return jobs


def _nbytes(tree: Any) -> int:
    return sum(int(np.prod(np.shape(x))) * np.dtype(getattr(x, "dtype", np.float32)).itemsize
               for x in jax.tree_util.tree_leaves(tree))


def seed_footprint(job: Any) -> int:
    """Estimated bytes of one seed's run: 4x its setup (the state, its copy in a chunk, the batch and its
    evaluation), at least 64 MiB (a rough bound: an estimate, not a measurement)."""
    setup = job.init_args(jax.random.PRNGKey(0))
    return max(4 * _nbytes(setup), 64 << 20)


def default_group_memory_gb() -> float:
    """A quarter of the machine's RAM (in GB)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 4 / 1e9
    except (ValueError, OSError, AttributeError):
        return 4.0


def seeds_per_group(num_seeds: int, footprint: int, given: Optional[int] = None, max_gb: Optional[float] = None) -> int:
    """Seeds vmapped together: ``given`` (capped at ``num_seeds``), else as many of ``footprint`` bytes as fit
    in ``max_gb`` GB (default :func:`default_group_memory_gb`), at least 1."""
    if given is not None:
        return max(1, min(int(given), num_seeds))
    limit = (max_gb or default_group_memory_gb()) * 1e9
    return max(1, min(num_seeds, int(limit // max(footprint, 1))))


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def _evaluations(states: Any) -> np.ndarray:
    return np.asarray(jax.device_get(states.num_evaluations)).reshape(-1)


def _append(curves: Dict[str, List[np.ndarray]], metrics: Dict[str, Any]) -> None:
    for name, value in jax.device_get(metrics).items():
        value = np.asarray(value)
        curves.setdefault(name, []).append(value.reshape(value.shape[0], -1))


def _chunk_plan(run: Run, config: Dict[str, Any], evaluations: int) -> Tuple[int, Optional[int]]:
    """``(iterations per chunk, chunks)`` after the initial batch: equal chunks that reach the largest budget
    with the fixed ``batch_size`` evaluations per iteration; budget-driven jobs: ``chunk_size``, None (until
    every seed has spent the budget)."""
    chunk = int(config["chunk_size"])
    if "budget" in config["algorithm"]:
        return chunk, None
    remaining = max(0, math.ceil((max(run.budgets) - evaluations) / int(config["batch_size"])))
    if remaining == 0:
        return 1, 0
    chunks = math.ceil(remaining / chunk)
    return math.ceil(remaining / chunks), chunks


def seed_sharding(count: int) -> Any:
    """A sharding of the seed axis over every local device when ``count`` seeds split evenly (on a CPU the
    ``qd`` command exposes one device per core: the seeds' halves then run on both cores), else None."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.local_devices()
    if len(devices) < 2 or count % len(devices):
        return None
    return NamedSharding(Mesh(np.array(devices), ("seeds",)), PartitionSpec("seeds"))


def vmappable(driver: Any) -> bool:
    """Whether seeds of this driver's algorithm run vmapped: not for phased algorithms (SERENE, STAX), whose
    emitter steps branch on their data (under ``vmap`` every such branch computes both sides: measured 28x
    slower than the seeds one after another on curling), nor for algorithms that say ``vmap_seeds = False``
    (TAXONS, AURORA: their AE training is a ``lax.cond`` that would run every generation). Their seeds run one
    after another with the same compiled programs."""
    return not getattr(driver, "_phased", False) and getattr(driver.algorithm, "vmap_seeds", True)


class SharedPrograms:
    """The drivers of one bench by :meth:`~qd.algorithms.driver.Driver.program_key`: a run whose chunk program
    is one an earlier run compiled scans its states with that run's driver, reusing its compiled programs
    instead of compiling its own. Configurations of the same shapes whose settings are traced values of the
    state (SERENE's phase scheduler) share programs this way; a setting that is a constant of the program (a
    batch size, an archive's size, an emitter's sigma, another emitter) gives another key.

    Attributes:
        shared: ``{run id: id of the run whose compiled programs it ran}``.
    """

    def __init__(self):
        self._owners: Dict[str, Tuple[str, Any]] = {}
        self._chosen: Dict[str, Any] = {}  # run id -> its scanning driver (every seed group uses one driver)
        self.shared: Dict[str, str] = {}

    def driver(self, run: Run, config: Dict[str, Any], driver: Any, states: Any, seeds: bool) -> Any:
        """The driver to scan ``states`` (``run``'s, started by ``driver``) with: the first driver seen whose
        first chunk program (the pending initial batch, else a chunk of :func:`_chunk_plan`) has the same key.
        Decided once per run (a lowering), for its first seed group."""
        if run.id not in self._chosen:
            n = 1 if states.pending else _chunk_plan(run, config, int(_evaluations(states).min()))[0]
            key = driver.program_key(states, n, seeds=seeds)
            owner_id, owner = self._owners.setdefault(key, (run.id, driver))
            if owner_id != run.id:
                self.shared[run.id] = owner_id
            self._chosen[run.id] = owner
        return self._chosen[run.id]


def _scanner(driver: Any, seeds: bool) -> Callable:
    """``scan(states, n) -> (states, {metric: (S, n)})``: ``scan_seeds``, or ``scan`` of one seed (``S = 1``)."""
    if seeds:
        return driver.scan_seeds

    def scan(state, n):
        state, metrics = driver.scan(state, n)
        return state, {k: np.asarray(v)[None] for k, v in jax.device_get(metrics).items()}

    return scan


def _chunks(run: Run, config: Dict[str, Any], states: Any, driver: Any, seeds: bool, curves: Dict[str, List],
            on_evaluations: Optional[Callable[[int], None]], programs: Optional[SharedPrograms] = None) -> Any:
    """The loop after the initial batch: equal compiled chunks up to the run's largest budget, with
    ``driver``, or the driver of ``programs`` that compiled the same program."""
    if programs is not None:
        driver = programs.driver(run, config, driver, states, seeds)
    scan = _scanner(driver, seeds)
    if states.pending:  # the lazy initial batch: a chunk of its own, as `qd run`
        states, metrics = scan(states, 1)
        _append(curves, metrics)
    chunk, chunks = _chunk_plan(run, config, int(_evaluations(states).min()))
    top, done = max(run.budgets), 0
    while (chunks is None and _evaluations(states).min() < top) or (chunks is not None and done < chunks):
        states, metrics = scan(states, chunk)
        _append(curves, metrics)
        done += 1
        if on_evaluations is not None:
            on_evaluations(int(min(_evaluations(states).min(), top)))
    return states


def run_group(run: Run, driver: Any, jobs: Sequence[Any], on_evaluations: Optional[Callable[[int], None]] = None,
              split: bool = False, programs: Optional[SharedPrograms] = None) -> Dict[str, np.ndarray]:
    """Run the seeds of ``jobs`` (one per seed, the same run) as one vmapped program up to the run's largest
    budget, with ``driver`` (the first group's: every group runs the same compiled programs); with ``split``
    the seed axis is sharded over the local devices when it splits evenly (:func:`seed_sharding`).

    Args:
        run: the run.
        driver: the driver of the run's jobs.
        jobs: one job per seed (:func:`build_jobs`).
        on_evaluations: called with the evaluations every seed has spent so far (the least of them), after
            each chunk (a progress bar).
        split: shard the seeds over the local devices.
        programs: the bench's :class:`SharedPrograms` (the seeds are started by ``driver``, then scanned by
            the driver that compiled the same program first), or None.

    Returns:
        ``{metric: (S, T) array}``: every seed's metric curves, ``T`` iterations (the initial batch first).
    """
    args = [job.init_args(jax.random.PRNGKey(int(job.config["seed"]))) for job in jobs]
    *setup, keys = _stack(args)
    states, metrics = driver.init_seeds(*setup, keys, seed_axes=(0,) * len(setup))
    sharding = seed_sharding(len(jobs)) if split else None
    if sharding is not None:
        states = jax.device_put(states, sharding)
    curves: Dict[str, List[np.ndarray]] = {}
    if int(np.asarray(metrics["iteration"]).reshape(-1)[0]) == 0:
        _append(curves, metrics)
    _chunks(run, jobs[0].config, states, driver, True, curves, on_evaluations, programs)
    return {name: np.concatenate(parts, axis=1) for name, parts in curves.items()}


def run_one(run: Run, driver: Any, job: Any, on_evaluations: Optional[Callable[[int], None]] = None,
            programs: Optional[SharedPrograms] = None) -> Dict[str, np.ndarray]:
    """One seed alone (``driver.init`` / ``driver.scan``, the compiled programs shared by every seed): the
    curves ``{metric: (1, T)}`` of :func:`run_group`."""
    state, metrics = driver.init(*job.init_args(jax.random.PRNGKey(int(job.config["seed"]))))
    curves: Dict[str, List[np.ndarray]] = {}
    if int(metrics["iteration"]) == 0:
        _append(curves, {k: np.reshape(v, (1, 1)) for k, v in jax.device_get(metrics).items()})
    _chunks(run, job.config, state, driver, False, curves, on_evaluations, programs)
    return {name: np.concatenate(parts, axis=1) for name, parts in curves.items()}


def run_seeds(run: Run, seeds: Sequence[int], group: int, on_evaluations: Optional[Callable[[int], None]] = None,
              on_group: Optional[Callable[[int, int], None]] = None, split: bool = False,
              programs: Optional[SharedPrograms] = None) -> Dict[str, np.ndarray]:
    """Every seed of ``run`` in vmapped groups of ``group`` seeds: ``{metric: (len(seeds), T)}``.

    The last group is padded to ``group`` seeds with copies of its first seed (dropped from the results), so
    every group runs the same compiled programs. Algorithms that :func:`vmappable` excludes run their seeds
    one after another (groups of one, not vmapped). ``on_group(index, count)`` is called before each group;
    ``split``, ``programs``: see :func:`run_group`.
    """
    seeds = list(seeds)
    parts: List[Dict[str, np.ndarray]] = []
    driver = None
    starts = list(range(0, len(seeds), group))
    for index, start in enumerate(starts):
        mine = seeds[start:start + group]
        if on_group is not None:
            on_group(index, len(starts))
        padded = mine + [mine[0]] * (group - len(mine)) if len(starts) > 1 else mine
        jobs = build_jobs(run, padded)
        driver = driver or jobs[0].driver
        if vmappable(driver):
            curves = run_group(run, driver, jobs, on_evaluations, split, programs)
        else:
            curves = _concatenate_seeds([run_one(run, driver, job, on_evaluations, programs) for job in jobs[:len(mine)]])
        parts.append({k: v[:len(mine)] for k, v in curves.items()})
    return _concatenate_seeds(parts)


def _concatenate_seeds(parts: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """The seeds of ``parts`` (``{metric: (S_i, T_i)}`` each) as ``{metric: (sum S_i, max T_i)}``. A budget-driven
    run's seeds may take different numbers of iterations to spend the budget (SERENE's sampling schedulers
    choose other chunks): a shorter curve is continued with its last value (the run had ended), so that every
    seed keeps the whole of its curve."""
    length = max(next(iter(p.values())).shape[1] for p in parts)
    pad = lambda x: np.pad(x, ((0, 0), (0, length - x.shape[1])), mode="edge")
    return {k: np.concatenate([pad(p[k]) for p in parts], axis=0) for k in parts[0]}


def _first_reward(curves: Dict[str, np.ndarray]) -> Optional[np.ndarray]:
    """``(S,)`` evaluations spent when each seed first found a reward area (NaN: never), or None."""
    found = curves.get("reward_areas_found")
    if found is None:
        return None
    evaluations = curves["num_evaluations"].astype(np.float64)
    hit = found >= 1
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), evaluations[np.arange(len(first)), first], np.nan)


def reported_metrics(curves: Dict[str, np.ndarray]) -> List[str]:
    """The metrics a run reports: the QD metrics, then (sparse tasks) the exploration metrics, the best reward
    of each area and the evaluations to the first reward (:data:`qd.bench.report.METRIC_ORDER`, in the
    report's column order)."""
    names = [m for m in curves if metric_rank(m)[0] < 2]  # the ordered metrics and the areas' best rewards
    if "reward_areas_found" in curves:
        names.append(FIRST_REWARD)
    return sorted(names, key=metric_rank)


def budget_rows(run: Run, seeds: Sequence[int], curves: Dict[str, np.ndarray]) -> List[Dict[str, Any]]:
    """Tidy rows (:mod:`qd.bench.report`) of every seed at each of the run's curve points.

    At budget ``b`` a seed's metrics are those of its last iteration with at most ``b`` evaluations
    (``evaluations`` records how many that was); ``evaluations_to_first_reward`` is NaN for a seed that had
    found no reward area within ``b``.
    """
    evaluations = curves["num_evaluations"].astype(np.int64)  # (S, T)
    first = _first_reward(curves)
    names = reported_metrics(curves)
    rows = []
    for i, seed in enumerate(seeds):
        for b in run.curve:
            upto = np.flatnonzero(evaluations[i] <= b)
            if not upto.size:
                continue
            t = int(upto[-1])
            base = dict(config=run.config_label, task=run.task_label, seed=int(seed), budget=int(b),
                        evaluations=int(evaluations[i, t]))
            for name in names:
                if name == FIRST_REWARD:
                    value = first[i] if first[i] <= b else np.nan
                else:
                    value = curves[name][i, t]
                rows.append({**base, "metric": name, "value": float(value)})
    return rows
