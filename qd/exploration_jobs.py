"""``qd run`` jobs for exploration algorithms: novelty search (``--algorithm ns``) and random search
(``--algorithm random``). Part of the composition layer (imported by :mod:`qd.runner`).

Config keys used (see :mod:`qd.config`):

- ``batch_size``: evaluations per generation. Novelty search keeps ``batch_size // 2`` parents with 2
  offspring each (SERENE: 100 parents, 200 evaluations); random search draws ``batch_size`` genotypes.
- ``sigma``: novelty search's Gaussian mutation (the sparse tasks register 0.05).
- ``iterations``: generations.

Novelty search's archive is an :class:`qd.UnstructuredArchive` of :data:`NS_ARCHIVE_CAPACITY` slots filled
with 5 random offspring per generation (SERENE / STAX); when full, later candidates are dropped and counted
in ``archive_overflow``. Random search offers every batch to the config's grid/CVT archive on the task's
descriptor (the ground truth for the sparse tasks), so its ``coverage`` is the ground-truth coverage.
"""

from __future__ import annotations

from typing import Any, Dict

import jax

from qd.config import ConfigError
from qd.runner import Job, build_archive, checked_devices, genotype_template, register_algorithm

NS_ARCHIVE_CAPACITY = 16384  # SERENE-style 5 per generation: 3276 generations (655k evaluations at 200)
NS_ARCHIVE_PER_GENERATION = 5


def _ground_truth_spec(task: Any):
    bounds = task.descriptor_bounds
    if len(bounds[0]) != 2:
        raise ConfigError(f"--algorithm ns/random: the task's descriptor must be 2-D (ground-truth grid); got {len(bounds[0])}")
    return bounds, int(getattr(task, "num_reward_areas", 0))


def build_novelty_search(config: Dict[str, Any], task: Any) -> Job:
    """Novelty search on the task's descriptor, population ``batch_size // 2``, 2 offspring per parent."""
    from qd.algorithms import NoveltySearch
    from qd.archives import UnstructuredArchive

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
    clip = getattr(task, "genotype_bounds", None)
    algo = NoveltySearch(
        task.evaluate,
        bounds,
        num_areas,
        offspring_per_parent=2,
        sigma=config["sigma"],
        genotype_bounds=None if clip is None else (float(clip[0]), float(clip[1])),
        compiler_options=getattr(task, "compiler_options", None),
        devices=checked_devices(config),
    )
    population = config["batch_size"] // 2

    def init(key):
        k_genotypes, k_algo = jax.random.split(key)
        return algo.init(archive, task.initial_genotypes(k_genotypes, population), k_algo)

    return Job(config=config, task=task, init=init, scan=algo.scan, archive_of=lambda s: s.archive)


def build_random_search(config: Dict[str, Any], task: Any) -> Job:
    """Random search: ``batch_size`` fresh ``task.initial_genotypes`` per generation."""
    from qd.algorithms import RandomSearch

    bounds, num_areas = _ground_truth_spec(task)
    archive = build_archive(config, task)
    algo = RandomSearch(
        task.evaluate, task.initial_genotypes, config["batch_size"], bounds, num_areas,
        compiler_options=getattr(task, "compiler_options", None), devices=checked_devices(config),
    )
    return Job(config=config, task=task, init=lambda key: algo.init(archive, key), scan=algo.scan, archive_of=lambda s: s.archive)


register_algorithm("ns", build_novelty_search, uses=("sigma",))  # no archive bounds, no emitter
register_algorithm("random", build_random_search, uses=("archive",))  # no emitter
