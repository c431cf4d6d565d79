"""Novelty search vs MAP-Elites vs random search on Curling (sparse reward), with plots.

Each algorithm gets the same budget of evaluations (200 per generation). The figure shows the ground-truth
coverage on the 50x50 grid against the number of evaluations, and the final ball positions of every agent
each method stored, drawn over the two goal areas.

    python examples/novelty_search.py [--budget 20000] [--seed 0] [--out novelty_search.png]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from emitters import GaussianEmitter
from qd import GridArchive, MAPElites, UnstructuredArchive
from qd.algorithms import NoveltySearch, RandomSearch
from qd.tasks.sparse import Curling


def run_all(budget: int, seed: int):
    task = Curling()
    generations = max(1, (budget - 100) // 200)
    k_init, k_run = jax.random.split(jax.random.key(seed))
    lower, upper = task.descriptor_bounds
    template = jnp.zeros(task.num_params)
    out = {}

    # Novelty search (SERENE's exploration: 100 parents, 200 offspring, 5 random offspring archived).
    archive = UnstructuredArchive.create(template, 5 * generations + 5, 2, lower=lower, upper=upper, policy="random")
    ns = NoveltySearch(task.evaluate, task.descriptor_bounds, task.num_reward_areas, sigma=0.05)
    state, m0 = ns.init(archive, task.initial_genotypes(k_init, 100), k_run)
    state, m = ns.run(state, generations, chunk_size=100)
    out["novelty search"] = dict(
        evals=np.concatenate([[m0["num_evaluations"]], m["num_evaluations"]]),
        coverage=np.concatenate([[m0["gt_coverage"]], m["gt_coverage"]]),
        points=state.archive.elites()["descriptors"],
        best=[float(m[f"best_reward_area_{i}"][-1]) for i in range(task.num_reward_areas)],
    )

    # MAP-Elites on the ground truth (coverage = filled cells of its own 50x50 grid).
    grid = GridArchive.create(template, 50, lower, upper)
    me = MAPElites(GaussianEmitter(batch_size=200, sigma=0.05, clip=(-5.0, 5.0)), task.evaluate)
    state, m0 = me.init(grid, task.initial_genotypes(k_init, 200), k_run)
    state, m = me.run(state, generations, chunk_size=100)
    out["MAP-Elites"] = dict(
        evals=np.concatenate([[m0["num_evaluations"]], m["num_evaluations"]]),
        coverage=np.concatenate([[m0["coverage"]], m["coverage"]]),
        points=state.archive.elites()["descriptors"],
        best=[float(m["max_fitness"][-1])],
    )

    # Random search: fresh N(0, 1) genomes every generation.
    grid = GridArchive.create(template, 50, lower, upper)
    rs = RandomSearch(task.evaluate, task.initial_genotypes, 200, task.descriptor_bounds, task.num_reward_areas)
    state, m0 = rs.init(grid, k_run)
    state, m = rs.run(state, generations, chunk_size=100)
    out["random search"] = dict(
        evals=np.concatenate([[m0["num_evaluations"]], m["num_evaluations"]]),
        coverage=np.concatenate([[m0["gt_coverage"]], m["gt_coverage"]]),
        points=state.archive.elites()["descriptors"],
        best=[float(m[f"best_reward_area_{i}"][-1]) for i in range(task.num_reward_areas)],
    )
    return task, out


def plot(task, results, path=None):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(results), figsize=(4.2 * (1 + len(results)), 4))
    for name, r in results.items():
        axes[0].plot(r["evals"], r["coverage"], label=name)
    axes[0].set_xlabel("evaluations")
    axes[0].set_ylabel("ground-truth coverage (50x50)")
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
        ax.set_title(f"{name}: final ball positions")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="novelty_search.png")
    args = parser.parse_args()
    task, results = run_all(args.budget, args.seed)
    for name, r in results.items():
        print(f"{name:15s} {int(r['evals'][-1]):7d} evaluations: ground-truth coverage {r['coverage'][-1]:.3f}, "
              f"best reward {np.round(r['best'], 3).tolist()}")
    import matplotlib

    matplotlib.use("Agg")
    plot(task, results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
