"""``qd run`` jobs for learned behaviour spaces: TAXONS and its variants (``--algorithm taxons``, ``taxo_n``,
``taxo_s``, ``nt``), the TAXONS paper's baselines (``ps``, ``rbd``, ``ibd``) and AURORA (``--algorithm
aurora``, with the config's emitters and scheduler); registered by :mod:`qd.components`.

What the encoder learns from, by task:

- tasks that draw themselves (the sparse-reward tasks: a ``render`` method and ``extras["final_state"]``):
  the 64x64 RGB image of the final state, through a convolutional autoencoder (``--autoencoder stax``, the
  STAX AE, default; ``taxons``, the ICRA AE with BatchNorm); with ``--views S`` (STAX's "multi") the
  frames at ``S`` time points of the episode (``extras["trajectory_states"]``), each encoded, the descriptor
  their ``S`` latents concatenated and the surprise the sum of their errors;
- other tasks with ``with_trajectory_samples`` (the Brax tasks): the torso's subsampled trajectory
  (``--trajectory-samples`` time points of x, y, z, flattened), through an MLP autoencoder.

Config values used: ``batch_size`` (evaluations per generation: ``batch_size // 2`` parents, 2 offspring
each; SERENE / STAX: 200), ``iterations`` (generations), ``sigma`` (Gaussian mutation; the sparse tasks
register 0.05), ``seed``. The novelty archive is an :class:`qd.UnstructuredArchive` of 16384 slots (IBD:
just what the run fills, since each slot holds a 12288-D image descriptor), 5 offspring per generation,
storing each agent's source (to re-encode it after a training) and its ground truth (for plots).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, NamedTuple

from pydantic import Field

from qd.jobs import BuildContext, Job, checked_devices, driver_job, genotype_clip, genotype_template
from qd.options import Choice, ConfigError, Model, NonNegativeInt, PositiveFloat, PositiveInt
from qd.exploration_jobs import NS_ARCHIVE_CAPACITY, NS_ARCHIVE_PER_GENERATION

LATENT_PLOT = "latent_space.png"
RECONSTRUCTION_PLOT = "reconstructions.png"


class LearnedSpaceConfig(Model):
    """The options every learned behaviour space shares (its autoencoder, its training, what it learns from)."""

    autoencoder: Choice("stax", "taxons") = Field(
        "stax", description="learned spaces: convolutional AE of the STAX code (default) or of the ICRA TAXONS code (BatchNorm)"
    )
    latent_dim: PositiveInt = Field(10, description="learned spaces: size of the learned descriptor (the AE's latent code)")
    ae_max_epochs: PositiveInt = Field(
        100, description="learned spaces: most epochs of one AE training (early stopping; TAXONS 100, AURORA 20)"
    )
    ae_learning_rate: PositiveFloat = Field(1e-3, description="learned spaces: Adam learning rate of the AE")
    ae_batch_size: PositiveInt = Field(128, description="learned spaces: AE training minibatch size")
    trajectory_samples: PositiveInt = Field(
        10, description="learned spaces on tasks without images (Brax): time points of the trajectory the AE learns from"
    )
    views: PositiveInt = Field(
        1, description="learned spaces on image tasks: frames per agent along its episode (STAX's multi), the last "
        "one final; the descriptor concatenates their latents",
    )


class TaxonsConfig(LearnedSpaceConfig):
    sigma: PositiveFloat = Field(0.1, description="Gaussian mutation sigma (emitter gaussian, algorithm ns)")
    schedule: Choice("stax", "icra") = Field(
        "stax", description="TAXONS: AE training schedule: stax (after exploration chunks 1, 3, 6, 10, ..., early "
        "stopping) or icra (every 30 generations, 5 epochs)",
    )
    insertion: Choice("random", "top") = Field(
        "random", description="TAXONS: archive 5 random offspring per generation (STAX) or the 5 best by the criterion (ICRA)"
    )
    warmup_generations: NonNegativeInt = Field(0, description="TAXONS: first generations that select by novelty only (ICRA: 30)")
    exploration_chunk: PositiveInt = Field(
        1000, description="TAXONS stax schedule: evaluations per exploration chunk (trainings after chunks 1, 3, 6, ...)"
    )


def _extras_template(task: Any) -> Dict[str, Any]:
    """One unbatched entry of the task's evaluation extras (:func:`qd.tasks.base.extras_template`)."""
    from qd.tasks.base import extras_template

    template = extras_template(task)
    if not isinstance(template, dict):
        raise ConfigError("learned behaviour spaces: the task's evaluation has no extras dict to learn from")
    return template


class LearnedSpace(NamedTuple):
    """What a learned-space job is built on: the task (recording what the encoder needs), the extras entry
    holding each agent's source, the autoencoder, and the extras an archive stores (source, ground truth)."""

    task: Any
    source_key: str
    autoencoder: Any
    extras_template: Dict[str, Any]


def learned_space(task: Any, cfg: LearnedSpaceConfig, where: str) -> LearnedSpace:
    """The learned space of ``cfg`` on ``task`` (images or trajectories, see the module docstring).

    Raises:
        ConfigError: a task with neither images nor trajectories.
    """
    import jax.numpy as jnp

    from qd.learned import autoencoders
    from qd.learned.training import Autoencoder

    frames = 1
    if callable(getattr(task, "render", None)):
        source_key, render = "final_state", task.render
        if cfg.views > 1:  # STAX's "multi": the frames at cfg.views time points, the last one final
            task, source_key, frames = task.with_trajectory_samples(cfg.views), "trajectory_states", cfg.views
        make = {"stax": autoencoders.stax_autoencoder, "taxons": autoencoders.taxons_autoencoder}[cfg.autoencoder]
        model = make(cfg.latent_dim)
    elif callable(getattr(task, "with_trajectory_samples", None)):
        task, source_key = task.with_trajectory_samples(cfg.trajectory_samples), "trajectory"
        render = lambda trajectory: jnp.reshape(trajectory, (trajectory.shape[0], -1))  # flattened
        model = None
    else:
        raise ConfigError(f"{where}: the task neither renders images nor records trajectories, so there is nothing to learn from")
    everything = _extras_template(task)
    if source_key not in everything:
        raise ConfigError(f"{where}: the task's evaluation returns no {source_key!r} to learn from")
    if model is None:
        model = autoencoders.MLPAutoencoder(input_dim=int(everything[source_key].size), latent_dim=cfg.latent_dim)
    autoencoder = Autoencoder(model, render=render, learning_rate=cfg.ae_learning_rate, batch_size=cfg.ae_batch_size,
                              frames=frames)
    stored = {k: everything[k] for k in (source_key, "gt_descriptor", "reward_area") if k in everything}
    return LearnedSpace(task, source_key, autoencoder, stored)


def _ground_truth(task: Any):
    from qd.metrics import GroundTruth

    bounds = task.descriptor_bounds
    if len(bounds[0]) != 2:
        return None
    return GroundTruth.create(bounds, int(getattr(task, "num_reward_areas", 0)), 50, "TAXONS")


def build_taxons(variant: str) -> Callable[[TaxonsConfig, BuildContext], Job]:
    """The builder of one TAXONS variant (:data:`qd.algorithms.taxons.VARIANTS`)."""

    def build(cfg: TaxonsConfig, ctx: BuildContext) -> Job:
        import jax
        import jax.numpy as jnp

        from qd.algorithms.driver import Driver
        from qd.algorithms.novelty_search import novelty_archive_metrics
        from qd.algorithms.taxons import VARIANTS, TaxonsAlgorithm
        from qd.archives import UnstructuredArchive

        config = ctx.config
        where = f"--algorithm {variant}"
        if config["batch_size"] < 2 or config["batch_size"] % 2:
            raise ConfigError(f"--batch-size: {variant} needs an even number of evaluations per generation (2 per parent)")
        descriptor, criterion, train = VARIANTS[variant]
        task, source_key, autoencoder, extras_template = learned_space(ctx.task, cfg, where)
        if descriptor == "image" and source_key == "trajectory":
            raise ConfigError(f"{where}: the image descriptor needs a task that renders images (a sparse-reward task)")
        algorithm = TaxonsAlgorithm(
            autoencoder, descriptor=descriptor, criterion=criterion, train=train, source_key=source_key,
            warmup_generations=cfg.warmup_generations, schedule=cfg.schedule, sigma=cfg.sigma,
            chunk_generations=max(1, cfg.exploration_chunk // config["batch_size"]), max_epochs=cfg.ae_max_epochs,
            genotype_bounds=genotype_clip(task),
        )
        template = genotype_template(task)
        dim = algorithm.descriptor_dim(template, extras_template[source_key])
        capacity = NS_ARCHIVE_CAPACITY
        if descriptor == "image":  # 48 kB per slot: only the slots this run can fill
            capacity = min(capacity, NS_ARCHIVE_PER_GENERATION * (config["iterations"] + 1))
        archive = UnstructuredArchive.create(
            template, capacity, dim, policy="random" if cfg.insertion == "random" else "most_novel",
            num_per_batch=NS_ARCHIVE_PER_GENERATION, extras_template=extras_template,
            qd_offset=float(getattr(task, "qd_offset", 0.0)), seed=config["seed"],
        )
        driver = Driver(algorithm, task.evaluate, metrics_fn=novelty_archive_metrics, ground_truth=_ground_truth(task),
                        compiler_options=getattr(task, "compiler_options", None), devices=checked_devices(config))
        driver.name = variant
        population = config["batch_size"] // 2

        def init_args(key):
            k_genotypes, k_algo = jax.random.split(key)
            return archive, task.initial_genotypes(k_genotypes, population), k_algo

        def artifacts(state, run_dir):
            write_learned_space_plots(run_dir, algorithm, state.algo)

        names = {"latent": "latent", "genotype": "gene", "random": "random", "image": "pixel"}[descriptor]
        return driver_job(config, task, driver, init_args, archive_of=lambda s: s.archive, artifacts=artifacts,
                          descriptor_names=[f"{names} {i + 1}" for i in range(dim)])

    return build


def write_learned_space_plots(run_dir: str, algorithm: Any, state: Any, max_points: int = 4000) -> None:
    """``latent_space.png`` (a 2-D PCA projection of the archive's descriptors, coloured by the ground truth)
    and, with an encoder on images, ``reconstructions.png`` (a few archived images over their
    reconstructions) in ``run_dir``."""
    import jax
    import numpy as np

    from qd.plotting import plot_latent_space, plot_reconstructions, save_figure

    archive = algorithm.archive(state)
    filled = np.asarray(archive.filled)
    if not filled.any():
        return
    descriptors = np.asarray(archive.descriptors)[filled][:max_points]
    truth = archive.extras.get("gt_descriptor") if isinstance(archive.extras, dict) else None
    colour = None if truth is None else np.asarray(truth)[filled][:max_points]
    save_figure(plot_latent_space(descriptors, colour), os.path.join(run_dir, LATENT_PLOT))
    ae = getattr(state, "ae", None)
    render = getattr(getattr(algorithm, "autoencoder", None), "render", None)
    if ae is None or render is None or getattr(algorithm, "source_key", None) != "final_state":
        return
    index = np.flatnonzero(filled)[np.linspace(0, filled.sum() - 1, min(8, int(filled.sum()))).astype(int)]
    sources = jax.tree_util.tree_map(lambda x: x[index], archive.extras[algorithm.source_key])
    images, recon = algorithm.autoencoder.reconstruct(ae, sources)
    save_figure(plot_reconstructions(np.asarray(images), np.asarray(recon)), os.path.join(run_dir, RECONSTRUCTION_PLOT))


class AuroraConfig(LearnedSpaceConfig):
    ae_max_epochs: PositiveInt = Field(
        20, description="learned spaces: most epochs of one AE training (early stopping; TAXONS 100, AURORA 20)"
    )
    target_size: PositiveInt = Field(1024, description="AURORA: number of elites the container-size control aims at")
    train_every: PositiveInt = Field(10, description="AURORA: first AE training after this many generations, then at doubling intervals")
    csc_rule: Choice("aurora", "qdax") = Field("aurora", description="AURORA: container-size control rule")


def build_aurora(cfg: AuroraConfig, ctx: BuildContext) -> Job:
    """AURORA with the config's emitters (and scheduler) in a container of ``2 * target_size`` slots."""
    import jax

    from qd.algorithms.aurora import Aurora
    from qd.archives import UnstructuredContainer

    config = ctx.config
    task, source_key, autoencoder, extras_template = learned_space(ctx.task, cfg, "--algorithm aurora")
    emitter = BuildContext(config, task, ctx.registries).emitter()
    driver = Aurora(emitter, autoencoder, task.evaluate, ground_truth=_ground_truth(task),
                    compiler_options=getattr(task, "compiler_options", None), devices=checked_devices(config),
                    target_size=cfg.target_size, source_key=source_key, train_every=cfg.train_every,
                    max_epochs=cfg.ae_max_epochs, csc_rule=cfg.csc_rule)
    dim = driver.algorithm.latent_dim(extras_template[source_key])
    container = UnstructuredContainer.create(genotype_template(task), 2 * cfg.target_size, dim,
                                             extras_template=extras_template,
                                             qd_offset=float(getattr(task, "qd_offset", 0.0)))

    def init_args(key):
        k_genotypes, k_algo = jax.random.split(key)
        return container, task.initial_genotypes(k_genotypes, config["batch_size"]), k_algo

    def artifacts(state, run_dir):
        write_learned_space_plots(run_dir, driver.algorithm, state.algo)

    return driver_job(config, task, driver, init_args, archive_of=lambda s: s.container, artifacts=artifacts,
                      descriptor_names=[f"latent {i + 1}" for i in range(dim)])
