"""STAX on Curling through the Python API: SERENE in a behaviour space learned online, no descriptor designed.

STAX (Paolo et al., Evolutionary Computation 2023; :mod:`qd.algorithms.stax`) is SERENE (see
``examples/serene.py``) whose descriptor is the latent code of an autoencoder trained on 64x64 images of each
episode's final state (rendered in JAX), after exploration chunks 1, 3, 6, 10, ...; every stored descriptor is
recomputed after each training. STAX-P (the default here, the variant the STAX paper plots as STAX) keeps the
parents by NSGA-II on novelty and surprise (the reconstruction error); STAX picks novelty or surprise at random
each generation. The ground truth (the ball's final position) is used only to report coverage and rewards.
The same run from the command line: ``qd run --algorithm stax_p --task curling --budget 6000``.

    python examples/stax.py [--budget 6000] [--variant stax_p|stax|stax_nt] [--emitter fit|cma_es|novelty] [--seed 0]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from emitters.local import CMAESEmitter, FitnessEmitter, NoveltyEmitter
from qd.algorithms.stax import VARIANTS, Stax
from qd.archives import UnstructuredArchive
from qd.learned import Autoencoder, stax_autoencoder
from qd.tasks.base import extras_template
from qd.tasks.sparse import Curling


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=6_000, help="evaluations of the run (default 6000)")
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="stax_p", help="stax_p (NSGA-II on novelty and "
                        "surprise), stax (novelty or surprise at random), stax_nt (untrained encoder, novelty)")
    parser.add_argument("--emitter", choices=("fit", "cma_es", "novelty"), default="fit", help="local emitter (default fit)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    task = Curling()
    clip = task.genotype_bounds  # (-5, 5)
    emitter = {"fit": lambda: FitnessEmitter(clip=clip), "novelty": lambda: NoveltyEmitter(clip=clip),
               "cma_es": lambda: CMAESEmitter(dim=task.num_params, clip=clip)}[args.emitter]()
    autoencoder = Autoencoder(stax_autoencoder(latent_dim=10), render=task.render)  # the STAX code's conv AE
    selection, train = VARIANTS[args.variant]
    stax = Stax(task.evaluate, task.descriptor_bounds, task.num_reward_areas, emitter, args.budget, autoencoder,
                selection=selection, train=train, chunk_evaluations=1000, sigma=0.05, genotype_bounds=clip)

    # Both archives keep each agent's final state (to re-encode it after a training) and its ground truth.
    stored = extras_template(task, keys=("final_state", "gt_descriptor", "reward_area"))
    latent = stax.algorithm.descriptor_dim(stored["final_state"])
    template = jnp.zeros((task.num_params,))
    novelty_archive = UnstructuredArchive.create(template, 16_384, latent, policy="random", num_per_batch=5,
                                                 extras_template=stored, seed=args.seed)
    reward_archive = UnstructuredArchive.create(template, 16_384, latent, policy="threshold", threshold=0.0,
                                                extras_template=stored)
    k_genotypes, k_run = jax.random.split(jax.random.PRNGKey(args.seed))
    state, metrics = stax.init(novelty_archive, task.initial_genotypes(k_genotypes, 100), reward_archive, k_run)

    areas = task.num_reward_areas
    best = lambda m: "/".join(f"{float(m[f'best_reward_area_{i}'][-1]):.2f}" for i in range(areas))
    while int(state.phase) != 2:  # 2: the budget is spent
        state, metrics = stax.scan(state, 100)
        print(f"{int(metrics['num_evaluations'][-1]):6d} evaluations (explore {int(metrics['explore_evaluations'][-1])}, "
              f"exploit {int(metrics['exploit_evaluations'][-1])}): {int(metrics['reward_areas_found'][-1])}/{areas} "
              f"areas, best reward {best(metrics)}, {int(metrics['ae_trainings'][-1])} AE trainings "
              f"(loss {float(metrics['ae_loss'][-1]):.4f})")

    print(f"\n{args.variant} ({args.emitter}) on Curling, {int(metrics['num_evaluations'][-1])} evaluations:")
    print(f"  reward areas found: {int(metrics['reward_areas_found'][-1])}/{areas}, best reward {best(metrics)}")
    print(f"  ground-truth coverage {float(metrics['gt_coverage'][-1]):.1%} (never seen by the algorithm); "
          f"{int(metrics['ae_trainings'][-1])} trainings; reward archive {int(state.reward_archive.num_elites)} agents")


if __name__ == "__main__":
    main()
