"""TAXONS on Curling through the Python API: novelty search in a learned behaviour space.

TAXONS (Paolo et al., ICRA 2020) never sees the ball's position: each agent's descriptor is the latent code
of an autoencoder trained online on the rendered 64x64 image of the episode's final state, novelty is
measured in that latent space and surprise is the reconstruction error. The ground truth (the ball's final
position) is only stored alongside, to measure how much of it the search covered and to colour the plots.

The script prints the ground-truth coverage (50x50 grid over every evaluated agent), the last training loss
and the number of trainings after each chunk, then writes ``latent_space.png`` (the archive's latent codes,
PCA, coloured by the true final x and y) and ``reconstructions.png`` (archived images over their
reconstructions). The defaults take a couple of minutes on 2 CPU cores; the STAX setting is
``--generations 500 --max-epochs 100`` (100,000 evaluations).

    python examples/taxons.py [--generations 30] [--chunk 5] [--max-epochs 20] [--seed 0] [--out-dir .]

The same run from the command line: ``qd run --algorithm taxons --task curling`` (``qd/learned_jobs.py``).
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from qd.algorithms import Taxons
from qd.archives import UnstructuredArchive
from qd.learned import Autoencoder, stax_autoencoder
from qd.plotting import plot_latent_space, plot_reconstructions, save_figure
from qd.tasks.base import extras_template as extras_template_of
from qd.tasks.sparse import Curling

PARENTS = 100  # SERENE / STAX: 100 parents, 2 offspring each, so 200 evaluations per generation
LATENT_DIM = 10
ARCHIVED = ("final_state", "gt_descriptor")  # what the archive keeps of each agent: its source, its ground truth


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=30, help="generations of 200 evaluations")
    parser.add_argument("--chunk", type=int, default=5,
                        help="generations per exploration chunk: the AE trains after chunks 1, 3, 6, 10, ...")
    parser.add_argument("--max-epochs", type=int, default=20, help="most epochs of one AE training (early stopping)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=".")
    args = parser.parse_args()

    task = Curling()
    autoencoder = Autoencoder(stax_autoencoder(LATENT_DIM), render=task.render)
    taxons = Taxons(task.evaluate, task.descriptor_bounds, task.num_reward_areas, autoencoder,
                    chunk_generations=args.chunk, max_epochs=args.max_epochs, sigma=0.05)

    # The novelty archive: 5 random offspring per generation, and with each one (in ``extras``) the source its
    # image is drawn from (re-encoded after every training) and its ground truth. The extras template is one
    # unbatched entry of what the task's evaluation returns, computed from shapes only (nothing runs).
    key = jax.random.key(args.seed)
    k_genotypes, k_run = jax.random.split(key)
    extras_template = extras_template_of(task, keys=ARCHIVED)
    archive = UnstructuredArchive.create(jnp.zeros(task.num_params), 5 * (args.generations + 1), LATENT_DIM,
                                         policy="random", num_per_batch=5, extras_template=extras_template,
                                         seed=args.seed)

    state, m0 = taxons.init(archive, task.initial_genotypes(k_genotypes, PARENTS), k_run)

    def progress(state, m):
        print(f"{int(m['num_evaluations'][-1]):7d} evaluations: gt coverage {m['gt_coverage'][-1]:.3f}, "
              f"ae_loss {m['ae_loss'][-1]:.5f}, trainings {int(m['ae_trainings'][-1])}", flush=True)

    state, metrics = taxons.run(state, args.generations, chunk_size=args.chunk, callback=progress)

    import matplotlib

    matplotlib.use("Agg")
    elites = state.algo.archive.elites()  # the archived agents, as numpy arrays
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "latent_space.png")
    save_figure(plot_latent_space(elites["descriptors"], elites["extras"]["gt_descriptor"]), path)
    print(f"wrote {path}")

    shown = np.linspace(0, len(elites["descriptors"]) - 1, 8).astype(int)  # 8 agents across the archive
    sources = jax.tree_util.tree_map(lambda x: x[shown], elites["extras"]["final_state"])
    images, reconstructions = autoencoder.reconstruct(state.algo.ae, sources)
    path = os.path.join(args.out_dir, "reconstructions.png")
    save_figure(plot_reconstructions(images, reconstructions), path)
    print(f"wrote {path}")

    print(f"TAXONS, {int(metrics['num_evaluations'][-1])} evaluations, {int(metrics['ae_trainings'][-1])} AE trainings: "
          f"ground-truth coverage {metrics['gt_coverage'][-1]:.3f}, {len(elites['descriptors'])} agents archived")


if __name__ == "__main__":
    main()
