"""Novelty search vs MAP-Elites vs random search on a sparse-reward task, at the same evaluation budget.

What ``examples/novelty_search.py`` and ``notebooks/02_novelty_search_sparse_rewards.ipynb`` run:
:func:`compare_exploration` runs the three methods (200 evaluations per generation), and
:func:`plot_exploration_comparison` draws the ground-truth coverage against the number of evaluations and
the final descriptors each method stored, over the task's reward areas.

MAP-Elites needs an emitter, which the core does not pick (``qd`` never imports ``emitters``): pass one, e.g.
``GaussianEmitter(batch_size=200, sigma=0.05, clip=(-5.0, 5.0))``; without one MAP-Elites is left out.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from qd.algorithms.checks import check_positive_int
from qd.algorithms.map_elites import MAPElites
from qd.algorithms.novelty_search import NoveltySearch
from qd.algorithms.random_search import RandomSearch
from qd.archives import GridArchive, UnstructuredArchive
from qd.metrics import GroundTruth

POPULATION = 100  # novelty search parents (SERENE); 2 offspring each
BATCH = 2 * POPULATION  # evaluations per generation, every method
RESOLUTION = 50  # cells per side of the ground-truth grid


def _curves(m0: Dict[str, Any], m: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Every metric from the initial batch on: ``m0`` then ``m``, or ``m`` alone after a lazy start (whose
    iteration 0 is the first entry of ``m``)."""
    if int(m0["iteration"]) < 0:
        return {k: np.asarray(v) for k, v in m.items()}
    return {k: np.concatenate([np.atleast_1d(np.asarray(m0[k])), np.asarray(v)]) for k, v in m.items()}


def _result(m0, m, state, areas: int) -> Dict[str, Any]:
    curves = _curves(m0, m)
    return dict(
        evals=curves["num_evaluations"],
        gt_coverage=curves["gt_coverage"],
        points=np.asarray(state.archive.elites()["descriptors"]),
        best_reward=[float(curves[f"best_reward_area_{i}"][-1]) for i in range(areas)],
    )


def compare_exploration(
    task: Any,
    budget: int,
    seed: int = 0,
    map_elites_emitter: Any = None,
    chunk_size: int = 100,
) -> Dict[str, Dict[str, Any]]:
    """Run novelty search, MAP-Elites (if ``map_elites_emitter`` is given) and random search on ``task``.

    Every method evaluates 200 genotypes per generation for ``generations = max(1, (budget - 100) // 200)``
    generations after its initial batch (novelty search: 100 parents, 2 offspring each, 5 random offspring
    archived per generation, sigma 0.05; MAP-Elites: a 50x50 grid over the descriptor bounds and an initial
    batch of 200; random search: 200 fresh ``task.initial_genotypes`` per generation).

    Args:
        task: a sparse-reward task with a 2-D descriptor (``descriptor_bounds``, ``num_reward_areas``,
            ``num_params``, ``evaluate``, ``initial_genotypes``), e.g. :class:`qd.tasks.sparse.Curling`.
        budget: about how many evaluations each method gets (>= 1).
        seed: seed of the runs (the same initial key for all three).
        map_elites_emitter: an emitter with ``batch_size == 200``, or None to leave MAP-Elites out.
        chunk_size: generations per compiled chunk.

    Returns:
        ``{name: result}`` for ``"novelty search"``, ``"MAP-Elites"`` (if run) and ``"random search"``, where
        ``result`` holds ``evals`` (``(G + 1,)`` int, evaluations after each generation, the initial batch
        first), ``gt_coverage`` (``(G + 1,)`` float, the fraction of the 50x50 ground-truth grid reached by
        every agent evaluated so far), ``points`` (``(n, 2)`` float32, the descriptors of the agents the
        method stored) and ``best_reward`` (a list: the best reward found in each reward area).

    Raises:
        ValueError: ``budget`` is not a positive integer; the task's descriptor is not 2-D;
            ``map_elites_emitter.batch_size != 200``.
    """
    check_positive_int("compare_exploration: budget", budget)
    lower, upper = task.descriptor_bounds
    if len(lower) != 2:
        raise ValueError(f"compare_exploration needs a task with a 2-D descriptor; got {len(lower)} dimensions")
    if map_elites_emitter is not None and map_elites_emitter.batch_size != BATCH:
        raise ValueError(
            f"compare_exploration: map_elites_emitter.batch_size must be {BATCH} (the other methods' batch); "
            f"got {map_elites_emitter.batch_size}"
        )
    generations = max(1, (int(budget) - POPULATION) // BATCH)
    k_init, k_run = jax.random.split(jax.random.key(int(seed)))
    template = jnp.zeros(task.num_params)
    areas = int(task.num_reward_areas)
    out: Dict[str, Dict[str, Any]] = {}

    archive = UnstructuredArchive.create(
        genotype_template=template, capacity=5 * generations + 5, descriptor_dim=2, lower=lower, upper=upper,
        policy="random", num_per_batch=5,
    )
    ns = NoveltySearch(task.evaluate, task.descriptor_bounds, areas, sigma=0.05, coverage_resolution=RESOLUTION)
    state, m0 = ns.init(archive, task.initial_genotypes(k_init, POPULATION), k_run)
    state, m = ns.run(state, generations, chunk_size=chunk_size)
    out["novelty search"] = _result(m0, m, state, areas)

    truth = GroundTruth.create(task.descriptor_bounds, areas, RESOLUTION)
    if map_elites_emitter is not None:
        grid = GridArchive.create(genotype_template=template, resolution=RESOLUTION, lower=lower, upper=upper)
        me = MAPElites(map_elites_emitter, task.evaluate, ground_truth=truth)
        state, m0 = me.init(grid, task.initial_genotypes(k_init, BATCH), k_run)
        state, m = me.run(state, generations, chunk_size=chunk_size)
        out["MAP-Elites"] = _result(m0, m, state, areas)

    grid = GridArchive.create(genotype_template=template, resolution=RESOLUTION, lower=lower, upper=upper)
    rs = RandomSearch(task.evaluate, task.initial_genotypes, BATCH, task.descriptor_bounds, areas, RESOLUTION)
    state, m0 = rs.init(grid, k_run)
    state, m = rs.run(state, generations, chunk_size=chunk_size)
    out["random search"] = _result(m0, m, state, areas)
    return out


def plot_exploration_comparison(task: Any, results: Dict[str, Dict[str, Any]], path: Optional[str] = None):
    """One panel of ground-truth coverage against evaluations, then one per method with the descriptors it
    stored over the task's reward areas (``task.area_metrics_args()``: centres ``(A, 2)``, radii ``(A,)``).

    Args:
        task: the task given to :func:`compare_exploration`.
        results: what :func:`compare_exploration` returned.
        path: also save the figure there (PNG, 110 dpi); None: only return it.

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(results), figsize=(4.2 * (1 + len(results)), 4))
    for name, r in results.items():
        axes[0].plot(r["evals"], r["gt_coverage"], label=name)
    axes[0].set_xlabel("evaluations")
    axes[0].set_ylabel(f"ground-truth coverage ({RESOLUTION}x{RESOLUTION})")
    axes[0].legend()
    axes[0].grid(alpha=0.3)
    centres, radii = task.area_metrics_args()
    (x0, y0), (x1, y1) = task.descriptor_bounds
    for ax, (name, r) in zip(axes[1:], results.items()):
        for c, rad in zip(centres, radii):
            ax.add_patch(plt.Circle(c, rad, color="red", alpha=0.3))
        ax.scatter(r["points"][:, 0], r["points"][:, 1], s=2)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_title(f"{name}: stored descriptors")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig
