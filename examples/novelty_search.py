"""Novelty search vs MAP-Elites vs random search on Curling (sparse reward), with plots.

Each algorithm gets the same budget of evaluations (200 per generation). The figure shows the ground-truth
coverage on the 50x50 grid against the number of evaluations, and the final ball positions of every agent
each method stored, drawn over the two goal areas. The runs and the figure are
:func:`qd.algorithms.compare_exploration` and :func:`qd.algorithms.plot_exploration_comparison` (what
notebook 02 calls too).

    python examples/novelty_search.py [--budget 20000] [--seed 0] [--out novelty_search.png]
"""

from __future__ import annotations

import argparse

import numpy as np

from emitters import GaussianEmitter
from qd.algorithms import compare_exploration, plot_exploration_comparison
from qd.tasks.sparse import Curling


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="novelty_search.png")
    args = parser.parse_args()
    task = Curling()
    emitter = GaussianEmitter(batch_size=200, sigma=0.05, clip=(-5.0, 5.0))
    results = compare_exploration(task, args.budget, args.seed, map_elites_emitter=emitter)
    for name, r in results.items():
        print(f"{name:15s} {int(r['evals'][-1]):7d} evaluations: ground-truth coverage {r['gt_coverage'][-1]:.3f}, "
              f"best reward {np.round(r['best_reward'], 3).tolist()}")
    import matplotlib

    matplotlib.use("Agg")
    plot_exploration_comparison(task, results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
