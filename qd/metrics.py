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
