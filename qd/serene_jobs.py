"""``qd run --algorithm serene``: SERENE (Paolo et al., GECCO 2021; :mod:`qd.algorithms.serene`), novelty
search to find reward areas and one local emitter per rewarding agent to exploit them, the budget spent in
chunks of evaluations; its configuration class and builder, registered by :mod:`qd.components`.

Config values used:

- ``budget`` (:class:`SereneConfig`): evaluations of the whole run, the initial population included. A
  SERENE job is **budget-driven** (:attr:`qd.jobs.Job.budget`): :func:`qd.runner.run` runs compiled chunks
  of ``chunk_size`` iterations until the budget is spent, so ``iterations`` is not used.
- ``batch_size``: evaluations per novelty-search generation: ``batch_size // 2`` parents with 2 offspring
  each (SERENE: 100 parents, 200 evaluations); the initial population is ``batch_size // 2`` genomes.
- ``sigma``: novelty search's Gaussian mutation (the sparse tasks register 0.05, SERENE's value).
- ``seed``, ``devices``.

Stores: the novelty archive ``A`` (the archive of record, ``archive.npz``) is an :class:`qd.UnstructuredArchive`
of :data:`~qd.exploration_jobs.NS_ARCHIVE_CAPACITY` slots, 5 random offspring per generation, on the task's
descriptor; the reward archive ``R`` (every rewarding agent an emitter archived) has as many slots, saved at
the end of the run as ``reward_archive.npz`` with the task's goal areas in its metadata (see
:func:`qd.runner.write_plots`: ``final_positions.png``). The local emitters are clipped to the task's
genotype bounds.

Host-side checks, each a one-line :class:`~qd.options.ConfigError` before anything compiles: a task whose
descriptor is not a bounded 2-D ground truth, a genotype that is not one flat vector, a budget smaller than
one chunk (``--chunk-evaluations``), a batch of fewer than 2 evaluations.
"""

from __future__ import annotations

import math
from typing import Any, Dict

from pydantic import Field

from qd.exploration_jobs import NS_ARCHIVE_CAPACITY, NS_ARCHIVE_PER_GENERATION
from qd.jobs import BuildContext, Job, checked_devices, driver_job, flat_genotype_dim, genotype_clip, genotype_template
from qd.options import Choice, ConfigError, Model, PositiveFloat, PositiveInt

# The local emitters of emitters.local by option value, and the phase schedulers' rules
# (qd.algorithms.phase_schedulers.SCHEDULERS, written out: resolving a config imports no JAX program).
LOCAL_EMITTERS = ("fit", "cma_es", "novelty")
PHASE_SCHEDULERS = ("alternating", "fixed", "time", "ucb")
SERENE_MODES = ("faithful", "parallel")


class SereneConfig(Model):
    budget: PositiveInt = Field(
        100_000, description="SERENE: evaluations of the whole run, the initial population included (the run "
        "ends within one iteration of it; --iterations is not used)",
    )
    local_emitter: Choice(*LOCAL_EMITTERS) = Field(
        "fit", description="SERENE: the emitter that exploits a reward area: fit (elitist on the reward, 6 parents, "
        "12 evaluations a step), cma_es (CMA-ES, 6 a step) or novelty (elitist on novelty, 12 a step)",
    )
    mode: Choice(*SERENE_MODES) = Field(
        "faithful", description="SERENE: faithful (one emitter steps at a time, as in the paper) or parallel "
        "(every active emitter steps in the same iteration; our variant)",
    )
    phase_scheduler: Choice(*PHASE_SCHEDULERS) = Field(
        "alternating", description="SERENE: what each chunk is spent on: alternating (explore, exploit, ...), "
        "fixed (explore with probability 0.5), time (explore with probability budget left / budget) or ucb "
        "(a two-armed bandit rewarded by the change in the number of emitters)",
    )
    chunk_evaluations: PositiveInt = Field(
        1000, description="SERENE: evaluations per chunk, each spent on exploration or on exploitation (at "
        "most --budget; not --chunk-size, the iterations per compiled program)",
    )
    emitter_slots: PositiveInt = Field(
        32, description="SERENE: emitters alive at once (candidates wait while every slot is taken; parallel "
        "mode steps them all in one iteration)",
    )
    sigma: PositiveFloat = Field(
        0.05, description="Gaussian mutation sigma (emitter gaussian, algorithms ns and serene: novelty search's)"
    )


def _ground_truth(task: Any, task_name: str):
    """``(bounds, num_reward_areas)`` of a task with a bounded 2-D descriptor (SERENE's ground truth)."""
    lower, upper = task.descriptor_bounds
    if len(lower) != 2:
        raise ConfigError(
            f"--algorithm serene: task {task_name!r} has a {len(lower)}-D descriptor; SERENE needs a 2-D ground "
            "truth (a sparse-reward task: point2d, curling, hard_maze, redundant_arm, ant_maze)"
        )
    if not all(math.isfinite(float(x)) for x in (*lower, *upper)):
        raise ConfigError(f"--algorithm serene: task {task_name!r} has unbounded descriptors; SERENE's ground-truth grid needs bounds")
    return (lower, upper), int(getattr(task, "num_reward_areas", 0))


def local_emitter(name: str, dim: int, clip: Any) -> Any:
    """The local emitter of ``--local-emitter NAME`` on ``D = dim`` genes, clipped to ``clip``."""
    from emitters.local import CMAESEmitter, FitnessEmitter, NoveltyEmitter

    if name == "cma_es":
        return CMAESEmitter(dim=dim, clip=clip)
    return (NoveltyEmitter if name == "novelty" else FitnessEmitter)(clip=clip)


def goal_areas(task: Any) -> Dict[str, Any]:
    """What ``reward_archive.npz``'s metadata says of the task's reward areas, for ``final_positions.png``:
    ``goal_centres`` ``(A, 2)`` and ``goal_radii`` ``(A,)`` as lists (empty without reward areas)."""
    import numpy as np

    if getattr(task, "goal_centres", None) is None or getattr(task, "goal_radii", None) is None:
        return {"goal_centres": [], "goal_radii": []}
    centres = np.asarray(task.goal_centres, np.float64).reshape(-1, 2)
    radii = np.broadcast_to(np.asarray(task.goal_radii, np.float64), (centres.shape[0],))
    return {"goal_centres": centres.tolist(), "goal_radii": radii.tolist()}


def _checked(cfg: SereneConfig, ctx: BuildContext, who: str):
    """The host-side checks shared by SERENE and STAX: ``(bounds, num_reward_areas, genes D)``.

    Raises:
        ConfigError: fewer than 2 evaluations per generation; a budget below one chunk; no bounded 2-D ground
            truth; a genotype that is not one flat vector.
    """
    config = ctx.config
    if config["batch_size"] < 2:
        raise ConfigError(f"--batch-size: {who}'s novelty search needs at least 2 evaluations per generation "
                          f"(batch_size // 2 parents, 2 offspring each); got {config['batch_size']}")
    if cfg.chunk_evaluations > cfg.budget:
        raise ConfigError(f"--budget: {cfg.budget} evaluations is less than one chunk (--chunk-evaluations {cfg.chunk_evaluations})")
    bounds, num_areas = _ground_truth(ctx.task, config["task"])
    dim = flat_genotype_dim(ctx, f"--algorithm {who.lower()}", f"{who}'s novelty search and local emitters work on flat genomes")
    return bounds, num_areas, dim


def _serene_options(cfg: SereneConfig, config: Dict[str, Any], task: Any) -> Dict[str, Any]:
    """The keywords of :class:`qd.algorithms.serene.Serene` (and ``Stax``) that come from the config."""
    from qd.algorithms.phase_schedulers import PhaseScheduler

    clip = genotype_clip(task)
    return dict(mode=cfg.mode, emitter_slots=cfg.emitter_slots, chunk_evaluations=cfg.chunk_evaluations,
                scheduler=PhaseScheduler(cfg.phase_scheduler), offspring_per_parent=2, sigma=cfg.sigma,
                genotype_bounds=clip, compiler_options=getattr(task, "compiler_options", None),
                devices=checked_devices(config))


def _job(cfg: SereneConfig, config: Dict[str, Any], task: Any, driver: Any, dim: int, bounds=None, extras=None,
         more_artifacts=None, descriptor_names=None) -> Job:
    """The budget-driven job of a SERENE driver: its novelty archive (5 random offspring a generation) and
    reward archive (every rewarding agent offered) of ``dim``-D descriptors (within ``bounds`` when given,
    storing ``extras`` when given), ``batch_size // 2`` initial genomes, and artifacts that save the reward
    archive (then ``more_artifacts(state, run_dir)``)."""
    import jax

    from qd.archives import UnstructuredArchive

    lower, upper = (None, None) if bounds is None else bounds
    template = genotype_template(task)
    archive = UnstructuredArchive.create(
        template, NS_ARCHIVE_CAPACITY, dim, lower=lower, upper=upper, policy="random",
        num_per_batch=NS_ARCHIVE_PER_GENERATION, extras_template=extras,
        qd_offset=float(getattr(task, "qd_offset", 0.0)), seed=config["seed"],
    )
    rewards = UnstructuredArchive.create(template, NS_ARCHIVE_CAPACITY, dim, lower=lower, upper=upper,
                                         policy="threshold", threshold=0.0, extras_template=extras)
    population = config["batch_size"] // 2
    goals = goal_areas(task)

    def init_args(key):
        k_genotypes, k_algo = jax.random.split(key)
        return archive, task.initial_genotypes(k_genotypes, population), rewards, k_algo

    def artifacts(state, run_dir):
        from qd.runner import save_reward_archive

        save_reward_archive(run_dir, state.reward_archive, goals)
        if more_artifacts is not None:
            more_artifacts(state, run_dir)

    return driver_job(config, task, driver, init_args, archive_of=lambda s: s.archive, artifacts=artifacts,
                      budget=cfg.budget, descriptor_names=descriptor_names)


def build_serene(cfg: SereneConfig, ctx: BuildContext) -> Job:
    """SERENE on the task's ground truth: novelty search of ``batch_size // 2`` parents, the config's local
    emitter, mode, phase scheduler, chunks and slots; a budget-driven job (``Job.budget = cfg.budget``) whose
    ``artifacts`` save the reward archive (``reward_archive.npz``).

    Raises:
        ConfigError: see the module docstring (host-side checks, before anything compiles).
    """
    from qd.algorithms.serene import Serene

    config, task = ctx.config, ctx.task
    bounds, num_areas, dim = _checked(cfg, ctx, "SERENE")
    options = _serene_options(cfg, config, task)
    emitter = local_emitter(cfg.local_emitter, dim, options["genotype_bounds"])
    algo = Serene(task.evaluate, bounds, num_areas, emitter, cfg.budget, **options)
    return _job(cfg, config, task, algo, 2, bounds=bounds)


# --------------------------------------------------------------------------------------------- #
# STAX: SERENE in a learned behaviour space
# --------------------------------------------------------------------------------------------- #
from qd.learned_jobs import LearnedSpaceConfig, learned_space, write_learned_space_plots  # noqa: E402


class StaxConfig(SereneConfig, LearnedSpaceConfig):
    """SERENE's options and those of a learned behaviour space (autoencoder, latent size, AE training, views)."""


def build_stax(variant: str):
    """The builder of one STAX variant (:data:`qd.algorithms.stax.VARIANTS`: ``stax``, ``stax_p``, ``stax_nt``):
    SERENE's job whose descriptor is the latent code of an autoencoder trained online on the task's images
    (64x64, rendered in JAX from the final state, or ``--views`` frames along the episode)."""

    def build(cfg: StaxConfig, ctx: BuildContext) -> Job:
        from qd.algorithms.stax import VARIANTS, Stax

        config = ctx.config
        bounds, num_areas, dim = _checked(cfg, ctx, variant.upper())
        task, source_key, autoencoder, stored = learned_space(ctx.task, cfg, f"--algorithm {variant}")
        selection, train = VARIANTS[variant]
        options = _serene_options(cfg, config, task)
        emitter = local_emitter(cfg.local_emitter, dim, options["genotype_bounds"])
        algo = Stax(task.evaluate, bounds, num_areas, emitter, cfg.budget, autoencoder, selection=selection, train=train,
                    source_key=source_key, max_epochs=cfg.ae_max_epochs, **options)
        algo.name = variant
        latent = algo.algorithm.descriptor_dim(stored[source_key])
        plots = lambda state, run_dir: write_learned_space_plots(run_dir, algo.algorithm, state.algo)
        return _job(cfg, config, task, algo, latent, extras=stored, more_artifacts=plots,
                    descriptor_names=[f"latent {i + 1}" for i in range(latent)])

    return build
