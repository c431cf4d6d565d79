"""A centroidal Voronoi tessellation archive (CVT-MAP-Elites, Vassiliades, Chatzilygeroudis & Mouret 2018)."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.archives.base import check_bounds, check_qd_offset, empty_storage
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

    The cell of a descriptor is its nearest centroid (Euclidean), found with one matrix product per block
    of rows, never a ``(B, C, d)`` tensor. The problem is centred and scaled first: descriptors and
    centroids are taken relative to the box's centre and divided by a power of two near the box's
    half-width (exact in float32), and the matrix product runs at full float32 precision
    (``Precision.HIGHEST``: on GPUs the default TF32 / bf16 passes would lose the nearest centroid). The
    expansion ``|c|^2 - 2 x.c`` then loses nothing to a large offset from the origin, and its two best
    centroids are compared again on their direct squared distances ``|x - c|^2`` (the expansion rounds at
    the scale of the box, the direct distances at their own scale). In a box such as ``[100, 101]^2`` the
    result matches a float64 brute-force search except between centroids equally near within float32
    rounding of the distances themselves.

    Create it with :meth:`create`. See :class:`qd.archives.base.Archive` for the stored fields.

    Attributes:
        centroids: ``(C, d) float32``, in descriptor units.
        scaled_centroids: ``(C, d) float32``, ``(centroids - centre) / scale`` (computed in float64).
        scaled_sq_norms: ``(C,) float32``, cached ``|scaled_centroids|^2``.
        centre: static tuple of length ``d``, the box's centre.
        scale: static float, a power of two near the box's largest half-width.
    """

    centroids: jax.Array = None
    scaled_centroids: jax.Array = None
    scaled_sq_norms: jax.Array = None
    centre: Tuple[float, ...] = struct.field(pytree_node=False, default=())
    scale: float = struct.field(pytree_node=False, default=1.0)

    @classmethod
    def create(
        cls,
        genotype_template: Any,
        num_cells: Optional[int] = None,
        lower: Optional[Sequence[float]] = None,
        upper: Optional[Sequence[float]] = None,
        *,
        centroids: Optional[np.ndarray] = None,
        seed: int = 0,
        extras_template: Any = None,
        qd_offset: float = 0.0,
        num_samples: Optional[int] = None,
    ) -> "CVTArchive":
        """An empty CVT archive, from ``num_cells`` (seeded k-means) or user-given ``centroids``.

        The positional arguments come in the same order for every archive: the genotype template, the
        cells (``resolution`` for :meth:`qd.GridArchive.create`), then the bounds; the rest is keyword-only.

        Args:
            genotype_template: one unbatched genotype pytree (structure, shapes, dtypes).
            num_cells: number of cells when the centroids are computed (see :func:`cvt_centroids`); None
                when ``centroids`` are given.
            lower, upper: ``(d,)`` descriptor bounds (required).
            centroids: ``(C, d)`` array to use instead of k-means; finite, inside the bounds.
            seed: seed of the centroid computation.
            extras_template: one unbatched pytree of extra per-elite data, or None.
            qd_offset: subtracted from fitnesses in the QD-score; a finite number.
            num_samples: uniform samples for k-means.

        Raises:
            ValueError: neither or both of ``num_cells``/``centroids``; ``num_cells`` not a positive integer
                (e.g. bounds passed in its place, the order of an older version); centroids not ``(C, d)``
                with the bounds' ``d``, not finite, or outside the bounds; bad bounds; a non-finite
                ``qd_offset``.
        """
        order = "(the arguments are create(genotype_template, num_cells, lower, upper, *, centroids=...))"
        if num_cells is not None and (
            isinstance(num_cells, bool) or not isinstance(num_cells, (int, np.integer)) or num_cells < 1
        ):
            raise ValueError(f"num_cells must be a positive integer or None; got {num_cells!r} {order}")
        if lower is None or upper is None:
            raise ValueError(f"CVTArchive.create needs lower and upper bounds {order}")
        lower, upper = check_bounds(lower, upper, "descriptor bounds")
        if (num_cells is None) == (centroids is None):
            raise ValueError("give exactly one of num_cells and centroids")
        if num_cells is not None:
            centroids = cvt_centroids(int(num_cells), lower, upper, seed=seed, num_samples=num_samples)
        centroids = _check_centroids(centroids, lower, upper)
        capacity, d = centroids.shape
        centre, scale = _centring(lower, upper)
        scaled = (centroids.astype(np.float64) - np.asarray(centre)) / scale
        return cls(
            **empty_storage(genotype_template, capacity, d, extras_template),
            lower=lower,
            upper=upper,
            qd_offset=check_qd_offset(qd_offset),
            centroids=jnp.asarray(centroids),
            scaled_centroids=jnp.asarray(scaled, jnp.float32),
            scaled_sq_norms=jnp.asarray(np.sum(scaled.astype(np.float32).astype(np.float64) ** 2, axis=1), jnp.float32),
            centre=centre,
            scale=scale,
        )

    def index(self, descriptors: jax.Array) -> jax.Array:
        """Nearest centroid of each descriptor: ``(B, d) float32 -> (B,) int32``.

        Ties (equal float32 distances) go to the lowest centroid index.

        Cost: ``O(B C d)`` flops in a matrix product and one pass over its ``(block, C)`` result (a top-2
        reduction), then ``O(B d)``; memory ``O(block C)`` with the block chosen so that the temporary stays
        under ~64 MB.
        """
        # x - centre is exact in float32 for x near the box (Sterbenz), and dividing by a power of two
        # is exact: the centred problem is the same problem, without the large offset.
        scaled = (descriptors.astype(jnp.float32) - jnp.asarray(self.centre, jnp.float32)) * np.float32(1.0 / self.scale)

        def nearest(x):
            dots = jnp.matmul(x, self.scaled_centroids.T, precision=jax.lax.Precision.HIGHEST)
            first, second = _two_smallest(self.scaled_sq_norms[None, :] - 2.0 * dots)
            # The expanded scores round at the scale of the box; the two best candidates are compared again
            # on their direct squared distances, which round at the scale of the distances themselves.
            d1 = jnp.sum((x - self.scaled_centroids[first]) ** 2, axis=1)
            d2 = jnp.sum((x - self.scaled_centroids[second]) ** 2, axis=1)
            take_second = (d2 < d1) | ((d2 == d1) & (second < first))
            return jnp.where(take_second, second, first).astype(jnp.int32)

        batch = scaled.shape[0]
        rows = max(1, _DISTANCE_BLOCK_ELEMENTS // self.capacity)
        if batch <= rows:
            return nearest(scaled)
        blocks = -(-batch // rows)
        padded = jnp.pad(scaled, ((0, blocks * rows - batch), (0, 0)))
        cells = jax.lax.map(nearest, padded.reshape(blocks, rows, -1))
        return cells.reshape(-1)[:batch]

    def config(self) -> dict:
        """The static configuration (JSON-serialisable); the centroids are saved as an array."""
        return super().config()

    def _config_arrays(self):
        return {"centroids": np.asarray(self.centroids)}


def _two_smallest(scores: jax.Array):
    """Column indices of the smallest and second smallest score of each row: ``(n, C) -> 2 x (n,) int32``.

    One variadic reduction (no sort, no second pass over ``scores``); ties go to the lowest index.
    """
    n, c = scores.shape
    index = jax.lax.broadcasted_iota(jnp.int32, (n, c), 1)
    inf = jnp.float32(jnp.inf)

    def before(va, ia, vb, ib):
        return (va < vb) | ((va == vb) & (ia <= ib))

    def combine(a, b):
        (va1, ia1, va2, ia2), (vb1, ib1, vb2, ib2) = a, b
        a_wins = before(va1, ia1, vb1, ib1)
        v1, i1 = jnp.where(a_wins, va1, vb1), jnp.where(a_wins, ia1, ib1)
        # The runner-up is the loser's best or the winner's runner-up.
        lv, li = jnp.where(a_wins, vb1, va1), jnp.where(a_wins, ib1, ia1)
        wv, wi = jnp.where(a_wins, va2, vb2), jnp.where(a_wins, ia2, ib2)
        loser = before(lv, li, wv, wi)
        return v1, i1, jnp.where(loser, lv, wv), jnp.where(loser, li, wi)

    operands = (scores, index, jnp.full_like(scores, inf), jnp.full_like(index, c))
    _, first, _, second = jax.lax.reduce(operands, (inf, jnp.int32(c), inf, jnp.int32(c)), combine, (1,))
    return first, jnp.where(second >= c, first, second)  # one centroid: the runner-up is the winner


def _centring(lower, upper) -> Tuple[Tuple[float, ...], float]:
    """The box's centre (float32-representable) and a power-of-two scale near its largest half-width."""
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    centre = tuple(float(c) for c in ((lo + hi) / 2).astype(np.float32))
    half = float(np.max(hi - lo)) / 2
    scale = float(2.0 ** np.round(np.log2(half)))
    return centre, scale


def _check_centroids(centroids, lower, upper) -> np.ndarray:
    try:
        centroids = np.asarray(centroids, np.float32)
    except (TypeError, ValueError):
        raise ValueError("centroids must be a (C, d) array of numbers") from None
    if centroids.ndim != 2 or centroids.shape[1] != len(lower) or centroids.shape[0] < 1:
        raise ValueError(f"centroids must have shape (C, {len(lower)}); got {centroids.shape}")
    if not np.isfinite(centroids).all():
        raise ValueError("centroids must be finite")
    lo, hi = np.asarray(lower, np.float32), np.asarray(upper, np.float32)
    if ((centroids < lo) | (centroids > hi)).any():
        raise ValueError(f"centroids must lie inside the bounds [{lower}, {upper}]")
    return centroids
