"""A regular grid archive (MAP-Elites, Mouret & Clune 2015)."""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.archives.base import check_bounds, check_qd_offset, empty_storage
from qd.archives.cell import CellArchive


def _float32_at_or_above(value: Fraction) -> np.float32:
    """The smallest float32 that is ``>= value`` (exact: compared as rationals)."""
    x = np.float32(float(value))
    while Fraction(float(x)) < value:
        x = np.nextafter(x, np.float32(np.inf))
    while Fraction(float(np.nextafter(x, np.float32(-np.inf)))) >= value:
        x = np.nextafter(x, np.float32(-np.inf))
    return x


@functools.lru_cache(maxsize=64)
def cell_edges(lower: float, upper: float, resolution: int) -> np.ndarray:
    """The interior cell edges of one grid dimension, as float32: ``(resolution - 1,)`` numpy array.

    Edge ``i`` (``1 <= i < resolution``) is the real number ``lower + i (upper - lower) / resolution``
    (computed exactly from the float64 bounds), rounded *up* to float32. A float32 value ``x`` then
    satisfies ``x >= edge_i`` exactly when ``x`` is at or above the real edge, so comparing with these
    edges gives the cell that exact arithmetic gives.
    """
    lo, hi = Fraction(lower), Fraction(upper)
    return np.asarray(
        [_float32_at_or_above(lo + (hi - lo) * i / resolution) for i in range(1, resolution)], np.float32
    ).reshape(-1)


@struct.dataclass
class GridArchive(CellArchive):
    """A regular grid over the box ``[lower, upper]`` with ``resolution[i]`` cells along dimension ``i``.

    Cells are numbered in row-major (C) order over the per-dimension indices; the cell of a descriptor is
    computed arithmetically (no nearest-centroid search). Cell ``i``'s centroid is the centre of its box
    (see :meth:`centroids`).

    Rule at cell edges: along dimension ``j`` a (float32) descriptor value ``x`` is in cell
    ``floor((x - lower_j) / (upper_j - lower_j) * resolution_j)`` computed in *exact* arithmetic on the
    float32 value of ``x`` and the float64 bounds, clamped to ``[0, resolution_j - 1]``: a value exactly on
    an edge belongs to the cell above it, and the upper bound belongs to the last cell. The cell does not
    depend on ``jit``, the device or the batch (see :meth:`index` for how).

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
        *,
        extras_template: Any = None,
        qd_offset: float = 0.0,
    ) -> "GridArchive":
        """An empty grid archive.

        The positional arguments come in the same order for every archive: the genotype template, the
        cells (here ``resolution``; ``num_cells`` for :meth:`qd.CVTArchive.create`, ``capacity`` for
        :meth:`qd.UnstructuredArchive.create`), then the bounds; the rest is keyword-only.

        Args:
            genotype_template: one genotype (unbatched pytree), used only for its structure, shapes and
                dtypes.
            resolution: cells per dimension (an int repeats over all dimensions).
            lower, upper: ``(d,)`` descriptor bounds.
            extras_template: one unbatched pytree of extra per-elite data to store, or None.
            qd_offset: subtracted from fitnesses in the QD-score; a finite number.

        Raises:
            ValueError: bounds of different lengths, non-finite, or not increasing; a resolution that is
                not a positive integer or does not match the number of dimensions; a non-finite
                ``qd_offset``.
        """
        lower, upper = check_bounds(lower, upper, "descriptor bounds")
        d = len(lower)
        res = _check_resolution(resolution, d)
        return cls(
            **empty_storage(genotype_template, int(np.prod(res)), d, extras_template),
            lower=lower,
            upper=upper,
            qd_offset=check_qd_offset(qd_offset),
            resolution=res,
        )

    def index(self, descriptors: jax.Array) -> jax.Array:
        """Cell index of each descriptor: ``(B, d) float32 -> (B,) int32`` (row-major).

        Follows the edge rule of the class docstring exactly: along each dimension the cell is the number
        of interior edges (:func:`cell_edges`) at or below the value, found by binary search. Only
        comparisons are involved, so the cell is the same eagerly, under ``jit``, on any device and in any
        batch (an arithmetic ``floor((x - lower) / width * resolution)`` is not: XLA may reorder it, and
        values within float32 rounding of an edge flip). A NaN gets some valid cell (archives reject it first).

        Cost: ``O(B d r)`` comparisons in one fused kernel for ``r <= 1024`` cells per dimension (at ``r = 100``
        cheaper on CPU than a binary search's loop of ~30 small kernels), ``O(B d log r)`` beyond.
        """
        descriptors = descriptors.astype(jnp.float32)
        per_dim = []
        for j, (lo, hi, res) in enumerate(zip(self.lower, self.upper, self.resolution)):
            edges = jnp.asarray(cell_edges(lo, hi, res))
            # "compare_all": one fused count of the edges at or below each value, the same index as the
            # binary search (same comparator) without its while loop (~30 small kernels per add); the binary
            # search for fine grids, where B x r comparisons would cost more than the loop.
            method = "compare_all" if res <= 1024 else "scan"
            per_dim.append(jnp.searchsorted(edges, descriptors[:, j], side="right", method=method).astype(jnp.int32))
        strides = np.cumprod((self.resolution[1:] + (1,))[::-1])[::-1].astype(np.int32)
        return jnp.sum(jnp.stack(per_dim, axis=1) * jnp.asarray(strides), axis=1, dtype=jnp.int32)

    def centroids(self) -> np.ndarray:
        """``(C, d) float32`` numpy array of cell centres, in cell order."""
        axes = [
            lo + (np.arange(r) + 0.5) * (hi - lo) / r for lo, hi, r in zip(self.lower, self.upper, self.resolution)
        ]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1).astype(np.float32)

    def config(self) -> dict:
        """The static configuration (JSON-serialisable): what :func:`qd.load_archive` rebuilds it from."""
        return {**super().config(), "resolution": list(self.resolution)}


def _check_resolution(resolution, d: int) -> Tuple[int, ...]:
    values = np.atleast_1d(np.asarray(resolution))
    if values.ndim != 1 or not all(
        isinstance(r, (int, np.integer)) and not isinstance(r, bool) for r in values.tolist()
    ):
        raise ValueError(f"resolution must be a positive integer or one per dimension; got {resolution!r}")
    res = tuple(int(r) for r in values) * (d if values.size == 1 and np.ndim(resolution) == 0 else 1)
    if len(res) != d:
        raise ValueError(f"resolution has {len(res)} entries but the bounds have {d} dimensions")
    if any(r < 1 for r in res):
        raise ValueError(f"resolution must be positive integers; got {res}")
    return res
