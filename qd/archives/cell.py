"""Elitist insertion shared by the tessellation archives (grid and CVT).

MAP-Elites keeps, in each cell of a fixed tessellation of the descriptor space, the best candidate
ever seen (Mouret & Clune 2015). The tessellation is the only thing grid and CVT archives differ in: they
implement :meth:`CellArchive.index`; the insertion below is common to both.
"""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.archives.base import IMPROVED, NEW, NOT_ADDED, AddResult, Archive, scatter


@struct.dataclass
class CellArchive(Archive):
    """An archive over a fixed tessellation: one elite per cell."""

    def index(self, descriptors: jax.Array) -> jax.Array:
        """Cell of each descriptor: ``(B, d) float32 -> (B,) int32``. Descriptors must be in bounds."""
        raise NotImplementedError

    def add(self, genotypes, descriptors, fitnesses, extras=None) -> Tuple["CellArchive", AddResult]:
        """Insert a batch of candidates, keeping the best one per cell.

        Args:
            genotypes: pytree with leading axis ``B``, same structure and trailing shapes as stored.
            descriptors: ``(B, d)`` floating; finite values outside ``[lower, upper]`` are clipped to the
                bounds (the clipped descriptor is what gets stored). A descriptor with any non-finite entry
                (NaN, +-inf) is rejected: the candidate is never stored, gets status ``NOT_ADDED``,
                improvement ``-inf`` and cell ``-1``.
            fitnesses: ``(B,)`` floating. Non-finite values (NaN, +-inf) are rejected: the candidate is
                never stored and gets status ``NOT_ADDED`` and improvement ``-inf``.
            extras: pytree with leading axis ``B``; required when the archive was created with an extras
                template, ignored otherwise.

        Returns:
            ``(archive, AddResult)``. A candidate is stored when it is the best of its cell within the batch
            (ties broken towards the lowest batch index, so the result is deterministic) and strictly
            better than the incumbent elite.

        Raises:
            ValueError: at trace time, for a descriptor of the wrong dimension or dtype, a fitness of the
                wrong shape, or genotypes/extras that do not match the stored structure.

        Cost: ``O(B)`` segment reductions and scatters plus ``O(C)`` for the per-cell maxima, on top of
        :meth:`index`.
        """
        descriptors, fitnesses = self._validate(genotypes, descriptors, fitnesses, extras)
        finite_descriptor, valid = self._admissible(descriptors, fitnesses)
        # Rejected descriptors are replaced by the lower corner, so that nothing downstream sees a NaN;
        # they are never stored and report cell -1.
        descriptors = self._clip(jnp.where(finite_descriptor[:, None], descriptors, jnp.asarray(self.lower, jnp.float32)))
        batch, cells = fitnesses.shape[0], self.capacity
        cell = self.index(descriptors)
        fit = jnp.where(valid, fitnesses, -jnp.inf)

        # Best candidate per cell within the batch; among equal fitnesses, the lowest batch index.
        best_fit = jax.ops.segment_max(fit, cell, num_segments=cells)
        is_best = valid & (fit == best_fit[cell])
        order = jnp.arange(batch, dtype=jnp.int32)
        first = jax.ops.segment_min(jnp.where(is_best, order, batch), cell, num_segments=cells)
        winner = is_best & (first[cell] == order)

        incumbent = self.fitnesses[cell]
        was_filled = self.filled[cell]
        stored = winner & (fit > incumbent)
        status = jnp.where(stored, jnp.where(was_filled, IMPROVED, NEW), NOT_ADDED).astype(jnp.int32)
        improvement = jnp.where(was_filled, fit - incumbent, fit - self.qd_offset)
        improvement = jnp.where(valid, improvement, -jnp.inf)

        target = jnp.where(stored, cell, cells)  # out of range -> dropped by the scatter
        archive = self.replace(
            genotypes=scatter(self.genotypes, target, genotypes),
            fitnesses=self.fitnesses.at[target].set(fit, mode="drop"),
            descriptors=self.descriptors.at[target].set(descriptors, mode="drop"),
            extras=None if self.extras is None else scatter(self.extras, target, extras),
            filled=self.filled.at[target].set(True, mode="drop"),
        )
        reported_cell = jnp.where(finite_descriptor, cell, -1).astype(jnp.int32)
        return archive, AddResult(cell=reported_cell, status=status, improvement=improvement.astype(jnp.float32))
