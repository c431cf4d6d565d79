"""A regular grid archive (MAP-Elites, Mouret & Clune 2015)."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.archives.base import check_bounds, empty_storage
from qd.archives.cell import CellArchive


@struct.dataclass
class GridArchive(CellArchive):
    """A regular grid over the box ``[lower, upper]`` with ``resolution[i]`` cells along dimension ``i``.

    Cells are numbered in row-major (C) order over the per-dimension indices; the cell of a descriptor is
    computed arithmetically, ``floor((x - lower) / (upper - lower) * resolution)``, clamped to the last
    cell on the upper bound: no nearest-centroid search. Cell ``i``'s centroid is the centre of its box
    (see :meth:`centroids`).

    Create it with :meth:`create`. See :class:`qd.archives.base.Archive` for the stored fields.
    """

    resolution: Tuple[int, ...] = struct.field(pytree_node=False, default=())

    @classmethod
    def create(
        cls,
        genotype_template: Any,
        resolution: Union[int, Sequence[int]],
        lower: Sequence[float],
        upper: Sequence[float],
        extras_template: Any = None,
        qd_offset: float = 0.0,
    ) -> "GridArchive":
        """An empty grid archive.

        Args:
            genotype_template: one genotype (unbatched pytree), used only for its structure, shapes and
                dtypes.
            resolution: cells per dimension (an int repeats over all dimensions).
            lower, upper: ``(d,)`` descriptor bounds.
            extras_template: one unbatched pytree of extra per-elite data to store, or None.
            qd_offset: subtracted from fitnesses in the QD-score.

        Raises:
            ValueError: bounds of different lengths, non-finite, or not increasing; a resolution that is
                not a positive integer or does not match the number of dimensions.
        """
        lower, upper = check_bounds(lower, upper, "descriptor bounds")
        d = len(lower)
        res = (int(resolution),) * d if np.ndim(resolution) == 0 else tuple(int(r) for r in resolution)
        if len(res) != d:
            raise ValueError(f"resolution has {len(res)} entries but the bounds have {d} dimensions")
        if any(r < 1 for r in res):
            raise ValueError(f"resolution must be positive integers; got {res}")
        capacity = int(np.prod(res))
        return cls(
            **empty_storage(genotype_template, capacity, d, extras_template),
            lower=lower,
            upper=upper,
            qd_offset=float(qd_offset),
            resolution=res,
        )

    def index(self, descriptors: jax.Array) -> jax.Array:
        """Cell index of each descriptor: ``(B, d) float32 -> (B,) int32`` (row-major)."""
        lower = jnp.asarray(self.lower, jnp.float32)
        upper = jnp.asarray(self.upper, jnp.float32)
        res = jnp.asarray(self.resolution, jnp.int32)
        scaled = (descriptors - lower) / (upper - lower) * res
        per_dim = jnp.clip(jnp.floor(scaled).astype(jnp.int32), 0, res - 1)
        strides = np.cumprod((self.resolution[1:] + (1,))[::-1])[::-1].astype(np.int32)
        return jnp.sum(per_dim * jnp.asarray(strides), axis=1, dtype=jnp.int32)

    def centroids(self) -> np.ndarray:
        """``(C, d) float32`` numpy array of cell centres, in cell order."""
        axes = [
            lo + (np.arange(r) + 0.5) * (hi - lo) / r for lo, hi, r in zip(self.lower, self.upper, self.resolution)
        ]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1).astype(np.float32)
