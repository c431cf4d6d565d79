"""Per-iteration QD metrics computed on device from an archive.

- QD-score: ``sum over elites of (fitness - qd_offset)`` (Pugh et al. 2016), with the archive's
  documented ``qd_offset`` (a lower bound of the task's fitness) so that every elite counts positively.
- coverage: filled cells / cells.
- max and mean fitness over elites (``-inf`` and ``0`` for an empty archive).
"""

from __future__ import annotations

from typing import Dict

import jax
import jax.numpy as jnp

from qd.archives.base import Archive

METRIC_NAMES = ("qd_score", "coverage", "max_fitness", "mean_fitness", "num_elites")


def archive_metrics(archive: Archive) -> Dict[str, jax.Array]:
    """QD metrics of ``archive`` as a dict of scalars (jittable; ``O(C)``).

    Returns:
        ``qd_score`` (float32), ``coverage`` (float32 in ``[0, 1]``), ``max_fitness`` (float32),
        ``mean_fitness`` (float32), ``num_elites`` (int32).
    """
    n = archive.num_elites
    fit = jnp.where(archive.filled, archive.fitnesses, 0.0)
    return {
        "qd_score": archive.qd_score(),
        "coverage": archive.coverage.astype(jnp.float32),
        "max_fitness": jnp.max(jnp.where(archive.filled, archive.fitnesses, -jnp.inf)),
        "mean_fitness": jnp.sum(fit) / jnp.maximum(n, 1),
        "num_elites": n,
    }


# --------------------------------------------------------------------------------------------- #
# Exploration metrics for sparse-reward tasks (TAXONS / SERENE / STAX evaluation protocol)
# --------------------------------------------------------------------------------------------- #
from typing import Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402
from flax import struct  # noqa: E402


@struct.dataclass
class ExplorationStats:
    """Running statistics over every agent an exploration process evaluated (a jittable pytree).

    Attributes:
        counts: ``(R * R,) int32`` histogram of ground-truth descriptors on an ``R x R`` grid (row-major, the
            first descriptor dimension varies slowest); descriptors outside the bounds are clipped in.
        best_reward: ``(A,) float32`` running maximum reward per reward area (0 until found).
        found: ``(A,) bool`` whether an agent has earned a reward in the area.
        lower, upper, resolution: static grid definition.
    """

    counts: jax.Array
    best_reward: jax.Array
    found: jax.Array
    lower: tuple = struct.field(pytree_node=False, default=())
    upper: tuple = struct.field(pytree_node=False, default=())
    resolution: int = struct.field(pytree_node=False, default=50)


def exploration_init(lower: Sequence[float], upper: Sequence[float], num_areas: int, resolution: int = 50) -> ExplorationStats:
    """Empty statistics on an ``resolution x resolution`` grid over ``[lower, upper]`` (2-D) and ``num_areas``."""
    lower = tuple(float(x) for x in lower)
    upper = tuple(float(x) for x in upper)
    if len(lower) != 2 or len(upper) != 2:
        raise ValueError(f"ground-truth coverage needs 2-D bounds; got {lower}, {upper}")
    return ExplorationStats(
        counts=jnp.zeros((resolution * resolution,), jnp.int32),
        best_reward=jnp.zeros((max(int(num_areas), 1),), jnp.float32),
        found=jnp.zeros((max(int(num_areas), 1),), bool),
        lower=lower,
        upper=upper,
        resolution=int(resolution),
    )


def exploration_update(
    stats: ExplorationStats,
    gt_descriptors: jax.Array,
    rewards: jax.Array,
    areas: jax.Array,
    mask: Optional[jax.Array] = None,
) -> ExplorationStats:
    """Add a batch: ``gt_descriptors (B, 2)``, ``rewards (B,)``, ``areas (B,) int32`` (``-1`` = none).

    ``mask (B,) bool`` excludes agents from the *coverage* histogram (SERENE counts only the exploration
    process's agents there); rewards of every agent update the per-area maxima.
    """
    lo = jnp.asarray(stats.lower, jnp.float32)
    hi = jnp.asarray(stats.upper, jnp.float32)
    r = stats.resolution
    cell = jnp.clip(jnp.floor((gt_descriptors - lo) / (hi - lo) * r).astype(jnp.int32), 0, r - 1)
    index = cell[:, 0] * r + cell[:, 1]
    ok = jnp.all(jnp.isfinite(gt_descriptors), axis=1)
    if mask is not None:
        ok = ok & mask
    counts = stats.counts.at[jnp.where(ok, index, r * r)].add(1, mode="drop")
    num_areas = stats.best_reward.shape[0]
    valid = (areas >= 0) & jnp.isfinite(rewards)
    target = jnp.where(valid, areas, num_areas)
    best = stats.best_reward.at[target].max(jnp.where(valid, rewards, 0.0), mode="drop")
    found = stats.found.at[target].set(True, mode="drop")
    return stats.replace(counts=counts, best_reward=best, found=found)


def exploration_metrics(stats: ExplorationStats) -> Dict[str, jax.Array]:
    """Scalars: ``gt_coverage`` (filled cells / R^2), ``uniformity`` (1 - Jensen-Shannon distance between the
    normalised histogram and the uniform distribution over all cells, natural log as scipy's default, so it
    lies in ``[1 - sqrt(ln 2), 1]``), ``reward_areas_found``, and ``best_reward_area_<i>`` per area."""
    counts = stats.counts.astype(jnp.float32)
    n = counts.shape[0]
    total = jnp.sum(counts)
    p = counts / jnp.maximum(total, 1.0)
    u = jnp.full((n,), 1.0 / n)
    m = 0.5 * (p + u)
    kl_pm = jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0) / m), 0.0))
    kl_um = jnp.sum(u * jnp.log(u / m))
    js = jnp.sqrt(jnp.maximum(0.5 * (kl_pm + kl_um), 0.0))
    out = {
        "gt_coverage": jnp.mean(stats.counts > 0).astype(jnp.float32),
        "uniformity": jnp.where(total > 0, 1.0 - js, 0.0).astype(jnp.float32),
        "reward_areas_found": jnp.sum(stats.found, dtype=jnp.int32),
    }
    for i in range(stats.best_reward.shape[0]):
        out[f"best_reward_area_{i}"] = stats.best_reward[i]
    return out


@struct.dataclass
class GroundTruth:
    """Where a task's ground truth lives, for the exploration metrics of any algorithm (static, hashable).

    Tasks that give ground truth (the sparse tasks) put ``"gt_descriptor"`` ``(B, 2)`` and ``"reward_area"``
    ``(B,) int32`` (``-1``: none) in ``Evaluation.extras``; :func:`exploration_observe` reads them.

    Attributes:
        lower, upper: bounds of the 2-D ground-truth grid (the task's ``descriptor_bounds``).
        num_reward_areas: ``A``, the reward areas tracked (``best_reward_area_<i>`` for ``i < A``).
        resolution: cells per side of the ground-truth grid (50, as TAXONS / SERENE / STAX).
    """

    lower: tuple = struct.field(pytree_node=False, default=())
    upper: tuple = struct.field(pytree_node=False, default=())
    num_reward_areas: int = struct.field(pytree_node=False, default=0)
    resolution: int = struct.field(pytree_node=False, default=50)

    @classmethod
    def create(cls, bounds: Sequence[Sequence[float]], num_reward_areas: int, resolution: int = 50, where: str = "GroundTruth") -> "GroundTruth":
        """A checked ground truth from ``bounds = (lower, upper)``.

        Raises:
            ValueError: the bounds are not 2-D; ``num_reward_areas`` is not an integer ``>= 0``;
                ``resolution`` is not an integer ``>= 1``. Messages start with ``where``.
        """
        for name, value, low in (("num_reward_areas", num_reward_areas, 0), ("coverage_resolution", resolution, 1)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{where}: {name} must be an integer >= {low}; got {value!r}")
        truth = cls(tuple(float(x) for x in bounds[0]), tuple(float(x) for x in bounds[1]), int(num_reward_areas), int(resolution))
        truth.init()  # checks the bounds
        return truth

    @classmethod
    def of_task(cls, task) -> Optional["GroundTruth"]:
        """The ground truth of a task that has one (``num_reward_areas`` and 2-D ``descriptor_bounds``, as the
        sparse tasks), else None."""
        areas = getattr(task, "num_reward_areas", None)
        bounds = getattr(task, "descriptor_bounds", None)
        if areas is None or bounds is None or len(bounds[0]) != 2:
            return None
        return cls.create(bounds, int(areas))

    def init(self) -> ExplorationStats:
        """Empty statistics (:func:`exploration_init`)."""
        return exploration_init(self.lower, self.upper, self.num_reward_areas, self.resolution)


def ground_truth_of(evaluation) -> "tuple[jax.Array, jax.Array]":
    """``(gt_descriptor (B, 2), reward_area (B,) int32)`` of an :class:`qd.Evaluation`: its extras when present,
    else its descriptors and "no area" (``-1``)."""
    extras = evaluation.extras if isinstance(evaluation.extras, dict) else {}
    gt = extras.get("gt_descriptor", evaluation.descriptors)
    area = extras.get("reward_area", jnp.full(evaluation.fitnesses.shape, -1, jnp.int32))
    return gt, area


def exploration_observe(stats: ExplorationStats, evaluation, coverage_mask: Optional[jax.Array] = None,
                        counted: Optional[jax.Array] = None) -> ExplorationStats:
    """:func:`exploration_update` with a batch's evaluation (ground truth from :func:`ground_truth_of`, the
    fitnesses as rewards).

    ``coverage_mask (B,) bool``: the agents the coverage histogram counts (None: all); ``counted (B,) bool``:
    the rows that are evaluations at all (padding rows are False: they update nothing; None: all).
    """
    gt, area = ground_truth_of(evaluation)
    rewards = evaluation.fitnesses
    if counted is not None:
        area = jnp.where(counted, area, -1)
        coverage_mask = counted if coverage_mask is None else coverage_mask & counted
    return exploration_update(stats, gt, rewards, area, coverage_mask)
