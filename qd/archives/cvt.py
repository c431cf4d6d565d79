"""A centroidal Voronoi tessellation archive (CVT-MAP-Elites, Vassiliades, Chatzilygeroudis & Mouret 2018)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.archives.base import check_bounds, empty_storage
from qd.archives.cell import CellArchive

# Rows of the (rows, C) distance block computed at once by ``index``: bounds the temporary to ~64 MB
# even at batch 4096 and 10^5 cells.
_DISTANCE_BLOCK_ELEMENTS = 1 << 24


def cvt_centroids(
    num_cells: int,
    lower: Sequence[float],
    upper: Sequence[float],
    seed: int = 0,
    num_samples: Optional[int] = None,
) -> np.ndarray:
    """Centroids of a CVT of the box ``[lower, upper]``: k-means on uniform samples.

    Args:
        num_cells: ``C``, the number of centroids.
        lower, upper: ``(d,)`` bounds.
        seed: seeds both the uniform samples and k-means, so the same seed gives the same centroids.
        num_samples: number of uniform samples (default ``max(25_000, 5 * C)``); must be ``>= C``.

    Returns:
        ``(C, d) float32`` numpy array.

    Raises:
        ValueError: bad bounds, ``num_cells < 1`` or ``num_samples < num_cells``.

    Uses scikit-learn's k-means (one initialisation), as in the paper's reference implementation.
    """
    from sklearn.cluster import KMeans

    lower, upper = check_bounds(lower, upper, "descriptor bounds")
    if num_cells < 1:
        raise ValueError(f"num_cells must be positive; got {num_cells}")
    num_samples = max(25_000, 5 * num_cells) if num_samples is None else int(num_samples)
    if num_samples < num_cells:
        raise ValueError(f"num_samples ({num_samples}) must be at least num_cells ({num_cells})")
    rng = np.random.default_rng(seed)
    samples = rng.uniform(lower, upper, size=(num_samples, len(lower)))
    kmeans = KMeans(n_clusters=num_cells, n_init=1, max_iter=300, random_state=seed).fit(samples)
    return kmeans.cluster_centers_.astype(np.float32)


@struct.dataclass
class CVTArchive(CellArchive):
    """An archive whose cells are the Voronoi cells of ``C`` centroids in descriptor space.

    The cell of a descriptor is its nearest centroid (Euclidean), computed as
    ``argmin_c(|c|^2 - 2 x.c)`` with one matrix product per block of rows, never a ``(B, C, d)`` tensor.

    Create it with :meth:`create`. See :class:`qd.archives.base.Archive` for the stored fields.

    Attributes:
        centroids: ``(C, d) float32``.
        centroid_sq_norms: ``(C,) float32``, cached ``|c|^2``.
    """

    centroids: jax.Array = None
    centroid_sq_norms: jax.Array = None

    @classmethod
    def create(
        cls,
        genotype_template: Any,
        lower: Sequence[float],
        upper: Sequence[float],
        num_cells: Optional[int] = None,
        centroids: Optional[np.ndarray] = None,
        seed: int = 0,
        extras_template: Any = None,
        qd_offset: float = 0.0,
        num_samples: Optional[int] = None,
    ) -> "CVTArchive":
        """An empty CVT archive, from ``num_cells`` (seeded k-means) or user-given ``centroids``.

        Args:
            genotype_template: one unbatched genotype pytree (structure, shapes, dtypes).
            lower, upper: ``(d,)`` descriptor bounds.
            num_cells: number of cells when the centroids are computed (see :func:`cvt_centroids`).
            centroids: ``(C, d)`` array to use instead.
            seed: seed of the centroid computation.
            extras_template: one unbatched pytree of extra per-elite data, or None.
            qd_offset: subtracted from fitnesses in the QD-score.
            num_samples: uniform samples for k-means.

        Raises:
            ValueError: neither or both of ``num_cells``/``centroids``; centroids not ``(C, d)`` with the
                bounds' ``d``; bad bounds.
        """
        lower, upper = check_bounds(lower, upper, "descriptor bounds")
        if (num_cells is None) == (centroids is None):
            raise ValueError("give exactly one of num_cells and centroids")
        if centroids is None:
            centroids = cvt_centroids(num_cells, lower, upper, seed=seed, num_samples=num_samples)
        centroids = np.asarray(centroids, np.float32)
        if centroids.ndim != 2 or centroids.shape[1] != len(lower) or centroids.shape[0] < 1:
            raise ValueError(f"centroids must have shape (C, {len(lower)}); got {centroids.shape}")
        capacity, d = centroids.shape
        return cls(
            **empty_storage(genotype_template, capacity, d, extras_template),
            lower=lower,
            upper=upper,
            qd_offset=float(qd_offset),
            centroids=jnp.asarray(centroids),
            centroid_sq_norms=jnp.sum(jnp.asarray(centroids) ** 2, axis=1),
        )

    def index(self, descriptors: jax.Array) -> jax.Array:
        """Nearest centroid of each descriptor: ``(B, d) float32 -> (B,) int32``.

        Cost: ``O(B C d)`` flops in a matrix product; memory ``O(block C)`` with the block chosen so that
        the temporary stays under ~64 MB.
        """

        def nearest(x):
            scores = self.centroid_sq_norms[None, :] - 2.0 * (x @ self.centroids.T)
            return jnp.argmin(scores, axis=1).astype(jnp.int32)

        batch = descriptors.shape[0]
        rows = max(1, _DISTANCE_BLOCK_ELEMENTS // self.capacity)
        if batch <= rows:
            return nearest(descriptors)
        blocks = -(-batch // rows)
        padded = jnp.pad(descriptors, ((0, blocks * rows - batch), (0, 0)))
        cells = jax.lax.map(nearest, padded.reshape(blocks, rows, -1))
        return cells.reshape(-1)[:batch]
