"""``qd run`` jobs for exploration algorithms: novelty search (``--algorithm ns``) and random search
(``--algorithm random``): their configuration classes and builders, registered by :mod:`qd.components`.

Config values used:

- ``batch_size``: evaluations per generation. Novelty search keeps ``batch_size // 2`` parents with 2
  offspring each (SERENE: 100 parents, 200 evaluations); random search draws ``batch_size`` genotypes.
- ``sigma`` (:class:`NoveltySearchConfig`): novelty search's Gaussian mutation (the sparse tasks register 0.05).
- ``iterations``: generations.

Novelty search's archive is an :class:`qd.UnstructuredArchive` of :data:`NS_ARCHIVE_CAPACITY` slots filled
with 5 random offspring per generation (SERENE / STAX); when full, later candidates are dropped and counted
in ``archive_overflow``. Its behaviour descriptor (``--descriptor``) is the task's (``task``, the default: the
ground truth on the sparse tasks) or ``signature``: the depth-``signature_depth`` signature
(:func:`qd.signatures.trajectory_signature`) of ``trajectory_samples`` ground-truth positions along the
episode (``task.with_trajectory_samples``), from the task's ``trajectory_start`` when it has one (the thesis'
SIGN descriptor, Paolo 2022); the archive is then unbounded, of :func:`qd.signatures.signature_dim`
dimensions, and the exploration metrics stay on the ground truth (``extras["gt_descriptor"]``). Random search offers every batch to the config's grid/CVT archive on the task's
descriptor (the ground truth for the sparse tasks), so its ``coverage`` is the ground-truth coverage.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Optional, Tuple

from pydantic import Field

from qd.jobs import BuildContext, Job, checked_devices, driver_job, genotype_clip, genotype_template
from qd.options import Choice, ConfigError, Model, PositiveFloat, PositiveInt

NS_ARCHIVE_CAPACITY = 16384  # SERENE-style 5 per generation: 3276 generations (655k evaluations at 200)
NS_ARCHIVE_PER_GENERATION = 5


def _ground_truth_spec(task: Any):
    bounds = task.descriptor_bounds
    if len(bounds[0]) != 2:
        raise ConfigError(f"--algorithm ns/random: the task's descriptor must be 2-D (ground-truth grid); got {len(bounds[0])}")
    return bounds, int(getattr(task, "num_reward_areas", 0))


class NoveltySearchConfig(Model):
    sigma: PositiveFloat = Field(0.1, description="Gaussian mutation sigma (emitter gaussian, algorithm ns)")
    descriptor: Choice("task", "signature") = Field(
        "task", description="novelty search's behaviour descriptor: the task's, or the signature of its trajectory"
    )
    trajectory_samples: PositiveInt = Field(10, description="trajectory points per episode (--descriptor signature)")
    signature_depth: PositiveInt = Field(2, description="signature truncation depth (--descriptor signature)")


@dataclasses.dataclass(frozen=True)
class SignatureDescriptorTask:
    """A task seen through the signature of its trajectory: ``evaluate`` returns the task's evaluation with
    ``descriptors = trajectory_signature(extras["trajectory"], depth, basepoint=start)`` ``(B, dim) float32``;
    ``extras`` keep ``gt_descriptor`` (the task's descriptor when the task gives none) and ``reward_area``, and
    lose ``trajectory`` / ``trajectory_states`` (nothing stores them). Any other attribute is the task's.

    Attributes:
        task: the task, recording the trajectory samples (``with_trajectory_samples(S)``).
        depth: signature depth.
        dim: the signature's length (``signature_dim(C, depth)``).
        channels: ``C``, the trajectory's channels.
        start: ``(C,)`` basepoint prepended to every path, or None.
    """

    task: Any
    depth: int
    dim: int
    channels: int
    start: Optional[Tuple[float, ...]] = None

    def evaluate(self, genotypes: Any, key: Any = None):
        from qd.signatures import trajectory_signature

        evaluation = self.task.evaluate(genotypes, key)
        extras = dict(evaluation.extras or {})
        trajectory = extras.pop("trajectory")
        extras.pop("trajectory_states", None)
        extras.setdefault("gt_descriptor", evaluation.descriptors)
        descriptors = trajectory_signature(trajectory, self.depth, basepoint=self.start)
        return evaluation.replace(descriptors=descriptors, extras=extras)

    @property
    def descriptor_bounds(self):
        """Unbounded: ``((-inf,) * dim, (inf,) * dim)``."""
        return (-float("inf"),) * self.dim, (float("inf"),) * self.dim

    @property
    def descriptor_names(self) -> Tuple[str, ...]:
        """``S(i,j,...)``: the iterated integral over channels ``i, j, ...`` (1-based), level after level."""
        words = [w for k in range(1, self.depth + 1) for w in itertools.product(range(1, self.channels + 1), repeat=k)]
        return tuple(f"signature S({','.join(map(str, w))})" for w in words)

    def __getattr__(self, name: str):
        if name == "task" or name.startswith("__"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.task, name)


def _signature_task(cfg: NoveltySearchConfig, task: Any, task_name: str) -> SignatureDescriptorTask:
    """The task seen through trajectory signatures (``--descriptor signature``)."""
    import jax
    import numpy as np

    from qd.signatures import signature_dim

    if not hasattr(task, "with_trajectory_samples"):
        raise ConfigError(f"--descriptor signature: task {task_name!r} records no trajectories (no with_trajectory_samples); use --descriptor task")
    start = getattr(task, "trajectory_start", None)
    if start is None and cfg.trajectory_samples < 2:
        raise ConfigError(f"--trajectory-samples: a signature of task {task_name!r} needs at least 2; got {cfg.trajectory_samples}")
    sampled = task.with_trajectory_samples(cfg.trajectory_samples)
    shapes = jax.eval_shape(
        lambda key: sampled.evaluate(sampled.initial_genotypes(key, 1), key), jax.random.PRNGKey(0)
    )
    channels = int(shapes.extras["trajectory"].shape[-1])
    start = None if start is None else tuple(float(x) for x in np.asarray(start).reshape(-1))
    return SignatureDescriptorTask(sampled, cfg.signature_depth, signature_dim(channels, cfg.signature_depth), channels, start)


class RandomSearchConfig(Model):
    pass


def build_novelty_search(cfg: NoveltySearchConfig, ctx: BuildContext) -> Job:
    """Novelty search on the task's descriptor (or its trajectory's signature), population ``batch_size // 2``,
    2 offspring per parent."""
    import jax

    from qd.algorithms import NoveltySearch
    from qd.archives import UnstructuredArchive

    config, task = ctx.config, ctx.task
    if config["batch_size"] < 2:
        raise ConfigError("--batch-size: novelty search needs at least 2 evaluations per generation")
    bounds, num_areas = _ground_truth_spec(task)
    template = genotype_template(task)
    if cfg.descriptor == "signature":
        task = _signature_task(cfg, task, config["task"])
        dim, lower, upper = task.dim, None, None  # unbounded
    else:
        dim, lower, upper = len(bounds[0]), bounds[0], bounds[1]
    archive = UnstructuredArchive.create(
        template,
        NS_ARCHIVE_CAPACITY,
        dim,
        lower=lower,
        upper=upper,
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

    def init_args(key):
        k_genotypes, k_algo = jax.random.split(key)
        return archive, task.initial_genotypes(k_genotypes, population), k_algo

    return driver_job(config, task, algo, init_args, archive_of=lambda s: s.archive)


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
    return driver_job(config, task, algo, lambda key: (archive, key), archive_of=lambda s: s.archive)
