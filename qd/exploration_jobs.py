"""``qd run`` jobs for exploration algorithms: novelty search (``--algorithm ns``) and random search
(``--algorithm random``): their configuration classes and builders, registered by :mod:`qd.components`.

Config values used:

- ``batch_size``: evaluations per generation. Novelty search keeps ``batch_size // 2`` parents with 2
  offspring each (SERENE: 100 parents, 200 evaluations); random search draws ``batch_size`` genotypes.
- ``sigma`` (:class:`NoveltySearchConfig`): novelty search's Gaussian mutation (the sparse tasks register 0.05).
- ``iterations``: generations.

Novelty search's archive is an :class:`qd.UnstructuredArchive` of :data:`NS_ARCHIVE_CAPACITY` slots filled
with 5 random offspring per generation (SERENE / STAX); when full, later candidates are dropped and counted
in ``archive_overflow``. Random search offers every batch to the config's grid/CVT archive on the task's
descriptor (the ground truth for the sparse tasks), so its ``coverage`` is the ground-truth coverage.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from qd.jobs import BuildContext, Job, checked_devices, genotype_clip, genotype_template
from qd.options import ConfigError, Model, PositiveFloat

NS_ARCHIVE_CAPACITY = 16384  # SERENE-style 5 per generation: 3276 generations (655k evaluations at 200)
NS_ARCHIVE_PER_GENERATION = 5


def _ground_truth_spec(task: Any):
    bounds = task.descriptor_bounds
    if len(bounds[0]) != 2:
        raise ConfigError(f"--algorithm ns/random: the task's descriptor must be 2-D (ground-truth grid); got {len(bounds[0])}")
    return bounds, int(getattr(task, "num_reward_areas", 0))


class NoveltySearchConfig(Model):
    sigma: PositiveFloat = Field(0.1, description="Gaussian mutation sigma (emitter gaussian, algorithm ns)")


class RandomSearchConfig(Model):
    pass


def build_novelty_search(cfg: NoveltySearchConfig, ctx: BuildContext) -> Job:
    """Novelty search on the task's descriptor, population ``batch_size // 2``, 2 offspring per parent."""
    import jax

    from qd.algorithms import NoveltySearch
    from qd.archives import UnstructuredArchive

    config, task = ctx.config, ctx.task
    if config["batch_size"] < 2:
        raise ConfigError("--batch-size: novelty search needs at least 2 evaluations per generation")
    bounds, num_areas = _ground_truth_spec(task)
    template = genotype_template(task)
    archive = UnstructuredArchive.create(
        template,
        NS_ARCHIVE_CAPACITY,
        len(bounds[0]),
        lower=bounds[0],
        upper=bounds[1],
        policy="random",
        num_per_batch=NS_ARCHIVE_PER_GENERATION,
        qd_offset=float(getattr(task, "qd_offset", 0.0)),
        seed=config["seed"],
    )
    algo = NoveltySearch(
        task.evaluate,
        bounds,
        num_areas,
        offspring_per_parent=2,
        sigma=cfg.sigma,
        genotype_bounds=genotype_clip(task),
        compiler_options=getattr(task, "compiler_options", None),
        devices=checked_devices(config),
    )
    population = config["batch_size"] // 2

    def init(key):
        k_genotypes, k_algo = jax.random.split(key)
        return algo.init(archive, task.initial_genotypes(k_genotypes, population), k_algo)

    return Job(config=config, task=task, init=init, scan=algo.scan, archive_of=lambda s: s.archive)


def build_random_search(cfg: RandomSearchConfig, ctx: BuildContext) -> Job:
    """Random search: ``batch_size`` fresh ``task.initial_genotypes`` per generation, offered to the config's
    archive."""
    from qd.algorithms import RandomSearch

    config, task = ctx.config, ctx.task
    bounds, num_areas = _ground_truth_spec(task)
    archive = ctx.archive()
    algo = RandomSearch(
        task.evaluate, task.initial_genotypes, config["batch_size"], bounds, num_areas,
        compiler_options=getattr(task, "compiler_options", None), devices=checked_devices(config),
    )
    return Job(config=config, task=task, init=lambda key: algo.init(archive, key), scan=algo.scan, archive_of=lambda s: s.archive)
