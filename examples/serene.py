"""SERENE on Curling through the Python API: novelty search finds the reward areas, local emitters exploit them.

SERENE (Paolo et al., GECCO 2021; :mod:`qd.algorithms.serene`) spends its budget of evaluations in chunks of
1000, alternately on exploration (novelty search, 100 parents and 200 offspring a generation) and on
exploitation (one local emitter at a time, started from a rewarding agent that exploration found; FIT
evaluates 12 agents a step). The script prints, after every 100 iterations, the evaluations spent on each
phase, the reward areas found and the best reward in each area, then a summary.
The same run from the command line: ``qd run --algorithm serene --task curling --budget 6000``.

    python examples/serene.py [--budget 6000] [--emitter fit|cma_es|novelty] [--mode faithful|parallel] [--seed 0]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from emitters.local import CMAESEmitter, FitnessEmitter, NoveltyEmitter
from qd.algorithms.serene import Serene
from qd.archives import UnstructuredArchive
from qd.tasks.sparse import Curling


def best_rewards(metrics, areas: int) -> str:
    return "/".join(f"{float(metrics[f'best_reward_area_{i}'][-1]):.2f}" for i in range(areas))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=6_000, help="evaluations of the run (default 6000, about a minute)")
    parser.add_argument("--emitter", choices=("fit", "cma_es", "novelty"), default="fit", help="local emitter (default fit)")
    parser.add_argument("--mode", choices=("faithful", "parallel"), default="faithful",
                        help="faithful: one emitter at a time (the paper); parallel: every active emitter each iteration")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    task = Curling()
    clip = task.genotype_bounds  # (-5, 5)
    emitter = {"fit": lambda: FitnessEmitter(clip=clip), "novelty": lambda: NoveltyEmitter(clip=clip),
               "cma_es": lambda: CMAESEmitter(dim=task.num_params, clip=clip)}[args.emitter]()
    serene = Serene(task.evaluate, task.descriptor_bounds, task.num_reward_areas, emitter, args.budget,
                    mode=args.mode, chunk_evaluations=1000, sigma=0.05, genotype_bounds=clip)

    # The novelty archive A (5 random offspring a generation) and the reward archive R (every rewarding agent
    # offered), both on the ground truth: the ball's final position.
    template = jnp.zeros((task.num_params,))
    lower, upper = task.descriptor_bounds
    novelty_archive = UnstructuredArchive.create(template, 16_384, 2, lower, upper, policy="random", num_per_batch=5,
                                                 seed=args.seed)
    reward_archive = UnstructuredArchive.create(template, 16_384, 2, lower, upper, policy="threshold", threshold=0.0)
    k_genotypes, k_run = jax.random.split(jax.random.PRNGKey(args.seed))
    state, metrics = serene.init(novelty_archive, task.initial_genotypes(k_genotypes, 100), reward_archive, k_run)

    areas = task.num_reward_areas
    while int(state.phase) != 2:  # 2: the budget is spent (further iterations would evaluate nothing)
        state, metrics = serene.scan(state, 100)
        print(f"{int(metrics['num_evaluations'][-1]):6d} evaluations (explore {int(metrics['explore_evaluations'][-1])}, "
              f"exploit {int(metrics['exploit_evaluations'][-1])}): {int(metrics['reward_areas_found'][-1])}/{areas} "
              f"areas, best reward {best_rewards(metrics, areas)}, {int(metrics['active_emitters'][-1])} active emitters")

    print(f"\nSERENE ({args.emitter}, {args.mode}) on Curling, {int(metrics['num_evaluations'][-1])} evaluations:")
    print(f"  reward areas found: {int(metrics['reward_areas_found'][-1])}/{areas}")
    for i in range(areas):
        print(f"  area {i}: best reward {float(metrics[f'best_reward_area_{i}'][-1]):.3f}, "
              f"{int(metrics[f'area_evaluations_{i}'][-1])} emitter evaluations")
    print(f"  ground-truth coverage {float(metrics['gt_coverage'][-1]):.1%}; novelty archive "
          f"{int(state.archive.num_elites)} agents, reward archive {int(state.reward_archive.num_elites)}; emitters "
          f"promoted {int(metrics['emitters_promoted'][-1])}, dropped {int(metrics['candidates_dropped'][-1])}, "
          f"terminated {int(metrics['emitters_terminated'][-1])}")


if __name__ == "__main__":
    main()
