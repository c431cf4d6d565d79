"""Cell archives with a per-cell acceptance threshold: the optimisation archive of CMA-MAE.

CMA-MAE (Fontaine & Nikolaidis, "Covariance Matrix Adaptation MAP-Annealing", GECCO 2023,
arXiv:2205.10752) keeps, besides each cell's elite, an acceptance threshold ``t_e`` per cell. A candidate
enters cell ``e`` when its fitness beats ``t_e`` (not the elite's fitness), and ``t_e`` then moves towards
the fitnesses that beat it with a learning rate ``alpha``: ``t_e <- (1 - alpha) t_e + alpha f``
(the paper's Algorithm 1). ``alpha = 1`` gives CMA-ME's archive (the threshold is the elite's fitness),
``alpha = 0`` freezes every threshold at ``threshold_min``, so that ranking by ``f - t_e`` ranks by
fitness and the emitters run CMA-ES. Empty cells have threshold ``threshold_min``.

Because a candidate may replace a *better* elite (its fitness beats the threshold, not the elite), the
archive's elites are not the best solutions found: CMA-MAE reports its metrics on a separate plain result
archive that receives every candidate (:class:`qd.algorithms.CMAMAE`).

Batch rule (the paper's appendix, "batch threshold update", as pyribs 0.12 implements it in
``GridArchive.add``). For the ``n_e >= 1`` candidates of a batch that fall in cell ``e`` and beat its
threshold ``t_e`` (the threshold before the batch), with mean fitness ``m_e``::

    t_e <- (1 - alpha)^(n_e) t_e + m_e (1 - (1 - alpha)^(n_e))

i.e. ``n_e`` sequential updates with the mean fitness in place of each one. With ``threshold_min = -inf``
(only allowed with ``alpha = 1``: CMA-ME) the new threshold is the fitness of the stored elite instead
(the cell's best). Note that with ``alpha = 1`` and a *finite* ``threshold_min`` the rule gives the mean of
the cell's accepted fitnesses, which is the stored elite's fitness only when one candidate of the batch
entered the cell (pyribs behaves the same way).

Which candidate is stored: among a cell's candidates that beat its threshold, the one of highest fitness,
the lowest batch index on ties (as :class:`qd.archives.cell.CellArchive` and pyribs).

:class:`qd.AddResult` of a threshold archive:

- ``status``: :data:`NEW` / :data:`IMPROVED` for the stored candidate of a cell that was empty / filled,
  :data:`NOT_ADDED` for every other one (the project's convention: status says whether the candidate is
  now an elite; candidates that beat the threshold but lost to a better one of the same batch are
  ``NOT_ADDED``, where pyribs reports them as added; :func:`emitters.cma_me.batch_status` recovers pyribs'
  status from the result);
- ``improvement``: ``fitness - t_e`` (pyribs' ``value``) with ``t_e = threshold_min`` for an empty cell;
  with ``threshold_min = -inf``, ``fitness - qd_offset`` for an empty cell (as the plain cell archives;
  pyribs uses ``fitness - 0``: the same ranking); ``-inf`` for a rejected candidate (non-finite fitness or
  descriptor, cell ``-1``).

The classes add three fields to :class:`qd.GridArchive` / :class:`qd.CVTArchive`: ``thresholds (C,)
float32`` (a pytree leaf), and the static ``learning_rate`` and ``threshold_min``. The plain archives are
untouched (same state layout, same behaviour).

Saving. :func:`qd.save_archive` / :meth:`to_dict` store a threshold archive like its plain kind plus the
array ``thresholds (C,) float32``; :meth:`config` adds ``learning_rate`` and ``threshold_min`` (floats;
the saved description writes ``-inf`` as the string ``"-inf"``, as every non-finite configuration number).
:func:`qd.load_archive` rebuilds the same kind, bit for bit (thresholds, elites, a CVT's centroids), so the
loaded archive's next ``add`` is the original's. :func:`qd.archives.elite_table` and :meth:`to_csv` add a ``threshold`` column (each elite's
cell threshold) after ``fitness``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.archives.base import IMPROVED, NEW, NOT_ADDED, AddResult, scatter
from qd.archives.cell import CellArchive
from qd.archives.cvt import CVTArchive
from qd.archives.grid import GridArchive

__all__ = [
    "ThresholdCVTArchive",
    "ThresholdGridArchive",
    "check_cma_mae_settings",
    "with_thresholds",
]


def check_cma_mae_settings(learning_rate, threshold_min) -> Tuple[float, float]:
    """``(learning_rate, threshold_min)`` as floats, checked on the host (pyribs' rules).

    Raises:
        ValueError: ``learning_rate`` not a number in ``[0, 1]``; ``threshold_min`` NaN or ``+inf``;
            ``threshold_min = -inf`` with ``learning_rate != 1`` (only CMA-ME's archive may have no floor).
    """
    try:
        lr, tmin = float(learning_rate), float(threshold_min)
    except (TypeError, ValueError):
        raise ValueError(
            f"learning_rate and threshold_min must be numbers; got {learning_rate!r}, {threshold_min!r}"
        ) from None
    if not 0.0 <= lr <= 1.0:
        raise ValueError(f"learning_rate must be in [0, 1]; got {learning_rate!r}")
    if math.isnan(tmin) or tmin == math.inf:
        raise ValueError(f"threshold_min must be a finite number or -inf; got {threshold_min!r}")
    if tmin == -math.inf and lr != 1.0:
        raise ValueError("threshold_min can only be -inf when learning_rate is 1 (CMA-ME's archive)")
    return lr, tmin


def _threshold_add(archive, genotypes, descriptors, fitnesses, extras):
    """The shared ``add`` of the threshold archives (module docstring). ``O(B + C)`` plus ``index``."""
    descriptors, fitnesses = archive._validate(genotypes, descriptors, fitnesses, extras)
    finite_descriptor, valid = archive._admissible(descriptors, fitnesses)
    lower = jnp.asarray(archive.lower, jnp.float32)
    descriptors = archive._clip(jnp.where(finite_descriptor[:, None], descriptors, lower))
    batch, cells = fitnesses.shape[0], archive.capacity
    cell = archive.index(descriptors)
    fit = jnp.where(valid, fitnesses, -jnp.inf)
    tmin = archive.threshold_min
    unbounded = tmin == -math.inf

    was_filled = archive.filled[cell]
    threshold = jnp.where(was_filled, archive.thresholds[cell], jnp.float32(tmin))  # before the batch
    can = valid & (fit > threshold)

    # The stored candidate of a cell: its best (lowest batch index on ties), if it beats the threshold.
    best_fit = jax.ops.segment_max(fit, cell, num_segments=cells)
    is_best = valid & (fit == best_fit[cell])
    order = jnp.arange(batch, dtype=jnp.int32)
    first = jax.ops.segment_min(jnp.where(is_best, order, batch), cell, num_segments=cells)
    stored = is_best & (first[cell] == order) & can
    status = jnp.where(stored, jnp.where(was_filled, IMPROVED, NEW), NOT_ADDED).astype(jnp.int32)

    base = jnp.float32(archive.qd_offset) if unbounded else jnp.float32(tmin)
    improvement = fit - jnp.where(was_filled, threshold, base)
    improvement = jnp.where(valid, improvement, -jnp.inf).astype(jnp.float32)

    target = jnp.where(stored, cell, cells)  # out of range -> dropped
    if unbounded:  # CMA-ME: the threshold is the stored elite's fitness
        thresholds = archive.thresholds.at[target].set(fit, mode="drop")
    else:
        count = jax.ops.segment_sum(can.astype(jnp.int32), cell, num_segments=cells)
        total = jax.ops.segment_sum(jnp.where(can, fit, 0.0), cell, num_segments=cells)
        n = count[cell].astype(jnp.float32)
        ratio = jnp.power(jnp.float32(1.0 - archive.learning_rate), n)
        mean = total[cell] / jnp.maximum(n, 1.0)
        new_threshold = ratio * threshold + mean * (1.0 - ratio)
        thresholds = archive.thresholds.at[target].set(new_threshold, mode="drop")

    new = archive.replace(
        genotypes=scatter(archive.genotypes, target, genotypes),
        fitnesses=archive.fitnesses.at[target].set(fit, mode="drop"),
        descriptors=archive.descriptors.at[target].set(descriptors, mode="drop"),
        extras=None if archive.extras is None else scatter(archive.extras, target, extras),
        filled=archive.filled.at[target].set(True, mode="drop"),
        thresholds=thresholds,
    )
    reported_cell = jnp.where(finite_descriptor, cell, -1).astype(jnp.int32)
    return new, AddResult(cell=reported_cell, status=status, improvement=improvement)


_ADD_DOC = """Insert a batch: a candidate enters its cell when its fitness beats the cell's threshold.

        Args / errors as :meth:`qd.GridArchive.add` (``genotypes`` pytree with leading axis ``B``,
        ``descriptors (B, d)``, ``fitnesses (B,)``, ``extras``); the threshold rule, the batch update and
        the ``AddResult`` are in :mod:`qd.archives.threshold`.

        Returns:
            ``(archive, AddResult)``; ``archive.thresholds (C,)`` updated for every cell that received a
            candidate above its threshold.
        """


class _ThresholdMethods:
    """What both threshold archives add to their plain kind (a mixin before it in the bases, no fields)."""

    def add(self, genotypes, descriptors, fitnesses, extras=None):
        return _threshold_add(self, genotypes, descriptors, fitnesses, extras)

    add.__doc__ = _ADD_DOC

    def config(self) -> dict:
        """The plain kind's configuration plus ``learning_rate`` and ``threshold_min`` (floats)."""
        return {**super().config(), "learning_rate": float(self.learning_rate), "threshold_min": float(self.threshold_min)}

    def to_dict(self) -> dict:
        """The plain kind's :meth:`to_dict` plus ``thresholds (C,) float32``."""
        return {**super().to_dict(), "thresholds": np.asarray(self.thresholds, np.float32)}

    def replace_storage_from_dict(self, data: dict):
        """Inverse of :meth:`to_dict` (thresholds included).

        Raises:
            ValueError: a key is missing or an array has the wrong shape.
        """
        restored = super().replace_storage_from_dict(data)
        thresholds = data.get("thresholds")
        if thresholds is None or np.shape(thresholds) != (self.capacity,):
            raise ValueError(f"archive data has no array 'thresholds' of shape ({self.capacity},)")
        return restored.replace(thresholds=jnp.asarray(thresholds, jnp.float32))


@struct.dataclass
class ThresholdGridArchive(_ThresholdMethods, GridArchive):
    """A :class:`qd.GridArchive` with CMA-MAE's per-cell thresholds (:mod:`qd.archives.threshold`).

    Create it with :meth:`create` (the grid's arguments plus ``learning_rate`` and ``threshold_min``) or
    :func:`with_thresholds` of an empty grid archive.

    Attributes:
        thresholds: ``(C,) float32``, each cell's acceptance threshold (``threshold_min`` in empty cells).
        learning_rate: static ``alpha`` in ``[0, 1]``.
        threshold_min: static threshold of an empty cell (``-inf`` only with ``alpha = 1``).
    """

    thresholds: jax.Array = None
    learning_rate: float = struct.field(pytree_node=False, default=1.0)
    threshold_min: float = struct.field(pytree_node=False, default=-math.inf)

    @classmethod
    def create(cls, *args, learning_rate: float = 1.0, threshold_min: float = -math.inf, **kwargs) -> "ThresholdGridArchive":
        """An empty threshold grid: :meth:`qd.GridArchive.create`'s arguments, ``learning_rate``, ``threshold_min``.

        Raises:
            ValueError: as :meth:`qd.GridArchive.create` and :func:`check_cma_mae_settings`.
        """
        return with_thresholds(GridArchive.create(*args, **kwargs), learning_rate, threshold_min)


@struct.dataclass
class ThresholdCVTArchive(_ThresholdMethods, CVTArchive):
    """A :class:`qd.CVTArchive` with CMA-MAE's per-cell thresholds (:mod:`qd.archives.threshold`).

    Attributes: as :class:`ThresholdGridArchive`.
    """

    thresholds: jax.Array = None
    learning_rate: float = struct.field(pytree_node=False, default=1.0)
    threshold_min: float = struct.field(pytree_node=False, default=-math.inf)

    @classmethod
    def create(cls, *args, learning_rate: float = 1.0, threshold_min: float = -math.inf, **kwargs) -> "ThresholdCVTArchive":
        """An empty threshold CVT archive: :meth:`qd.CVTArchive.create`'s arguments, ``learning_rate``,
        ``threshold_min``.

        Raises:
            ValueError: as :meth:`qd.CVTArchive.create` and :func:`check_cma_mae_settings`.
        """
        return with_thresholds(CVTArchive.create(*args, **kwargs), learning_rate, threshold_min)


def with_thresholds(archive: CellArchive, learning_rate: float, threshold_min: float):
    """The threshold version of a grid or CVT archive (same storage and configuration), every threshold at
    ``threshold_min``.

    Meant for an empty archive (CMA-MAE starts from one); elites already stored keep their place, with
    threshold ``threshold_min`` (``-inf``: their next challenger always enters).

    Args:
        archive: a :class:`qd.GridArchive` or :class:`qd.CVTArchive` (not a threshold archive already).
        learning_rate: ``alpha`` in ``[0, 1]``.
        threshold_min: the threshold of an empty cell.

    Returns:
        :class:`ThresholdGridArchive` or :class:`ThresholdCVTArchive`, ``thresholds (C,) float32``.

    Raises:
        TypeError: ``archive`` is not a plain grid or CVT archive.
        ValueError: as :func:`check_cma_mae_settings`.
    """
    lr, tmin = check_cma_mae_settings(learning_rate, threshold_min)
    kinds = {GridArchive: ThresholdGridArchive, CVTArchive: ThresholdCVTArchive}
    cls = kinds.get(type(archive))
    if cls is None:
        raise TypeError(f"with_thresholds: needs a GridArchive or CVTArchive; got {type(archive).__name__}")
    fields = {f.name: getattr(archive, f.name) for f in dataclasses.fields(archive)}
    return cls(
        **fields,
        thresholds=jnp.full((archive.capacity,), tmin, jnp.float32),
        learning_rate=lr,
        threshold_min=tmin,
    )
