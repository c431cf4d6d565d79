"""Novelty: mean Euclidean distance to the ``k`` nearest neighbours in a masked reference set.

Novelty search (Lehman & Stanley 2011) scores a behaviour by how far it lies from what was already seen:
the mean distance from its descriptor to its ``k`` nearest neighbours (``k = 15`` by default, as in the
TAXONS / SERENE / STAX code) in a *reference set* (population, offspring, archive(s)).

Everything here is one batched computation, jittable and shape-static:

- squared distances ``(B, R)`` from a matrix product, ``|q|^2 + |r|^2 - 2 q.r`` (clamped at 0);
- entries outside the reference mask (empty archive slots) and excluded pairs (a query's own slot) are set
  to ``+inf``, so they are never neighbours;
- one ``jax.lax.top_k`` of the negated squared distances, ``k`` per query: no sort of the reference set;
- ``sqrt`` on the ``k`` selected values only, mean over those that are finite.

A query with fewer than ``k`` valid reference points gets the mean over the valid ones; with none at all
it gets ``empty_value`` (``+inf`` by default: nothing seen yet is maximally novel).

Self-exclusion. The original code drops the first neighbour (``argsort(d)[1:k+1]``), assuming the query is
inside the reference set; that silently discards a true neighbour when it is not. Here the caller says
which reference slot (if any) *is* the query, with ``exclude``: only that slot is skipped. A duplicate of
the query stored elsewhere still counts as a neighbour at distance 0.

Shapes: ``B`` queries, ``R`` reference points, ``d`` descriptor dimensions.
Cost: ``O(B R d)`` for the product plus ``O(B R)`` for the masked top-k.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

DEFAULT_K = 15


# Up to this many descriptor dimensions distances are summed coordinate by coordinate (exact: no cancellation
# far from the origin, and under ``vmap`` over seeds an elementwise fusion, where XLA:CPU ran the batched
# matrix product of 8 seeds' 300 x 16,384 distances about 70x slower than one seed's); above it, by matrix
# product (TAXONS' latents, IBD's raw images).
DIRECT_MAX_DIM = 8


def squared_distances(queries: jax.Array, reference: jax.Array) -> jax.Array:
    """``(B, d), (R, d) -> (B, R)`` float32 squared Euclidean distances: summed coordinate by coordinate for
    ``d <= DIRECT_MAX_DIM``, else ``|q|^2 + |r|^2 - 2 q.r`` by matrix product (clamped at 0)."""
    q = queries.astype(jnp.float32)
    r = reference.astype(jnp.float32)
    if q.shape[-1] <= DIRECT_MAX_DIM:
        total = jnp.zeros((q.shape[0], r.shape[0]), jnp.float32)
        for i in range(q.shape[-1]):
            total = total + jnp.square(q[:, i, None] - r[None, :, i])
        return total
    qq = jnp.sum(q * q, axis=1, keepdims=True)
    rr = jnp.sum(r * r, axis=1)[None, :]
    cross = jnp.matmul(q, r.T, precision=jax.lax.Precision.HIGHEST)
    return jnp.maximum(qq + rr - 2.0 * cross, 0.0)


def knn_novelty(
    queries: jax.Array,
    reference: jax.Array,
    mask: Optional[jax.Array] = None,
    k: int = DEFAULT_K,
    exclude: Optional[jax.Array] = None,
    empty_value: float = float("inf"),
) -> jax.Array:
    """Novelty of each query: mean distance to its ``k`` nearest valid reference points.

    Args:
        queries: ``(B, d)`` descriptors to score.
        reference: ``(R, d)`` reference descriptors.
        mask: ``(R,) bool``, which reference rows are valid (None: all).
        k: static number of neighbours (clamped to ``R``).
        exclude: ``(B,) int32``, for each query a reference row that must not count as its neighbour (its
            own slot), or ``-1`` for none. None: no exclusion.
        empty_value: novelty of a query that has no valid neighbour at all.

    Returns:
        ``(B,) float32`` novelty scores.

    Raises:
        ValueError: (at trace time) mismatched descriptor dimensions or ``k < 1``.
    """
    dist2, valid = _masked_distances(queries, reference, mask, exclude)
    return _mean_of_k_smallest(dist2, k, empty_value)


def _masked_distances(queries, reference, mask, exclude):
    if queries.ndim != 2 or reference.ndim != 2 or queries.shape[1] != reference.shape[1]:
        raise ValueError(
            f"queries (B, d) and reference (R, d) must share d; got {tuple(queries.shape)} and {tuple(reference.shape)}"
        )
    dist2 = squared_distances(queries, reference)
    num_ref = reference.shape[0]
    valid = jnp.ones(dist2.shape, bool)
    if mask is not None:
        valid = valid & mask.astype(bool)[None, :]
    if exclude is not None:
        valid = valid & (jnp.arange(num_ref, dtype=jnp.int32)[None, :] != exclude.astype(jnp.int32)[:, None])
    return jnp.where(valid, dist2, jnp.inf), valid


def _mean_of_k_smallest(dist2: jax.Array, k: int, empty_value: float) -> jax.Array:
    if int(k) < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    kk = min(int(k), dist2.shape[1])
    if kk == 0:
        return jnp.full((dist2.shape[0],), empty_value, jnp.float32)
    neg, _ = jax.lax.top_k(-dist2, kk)  # the kk smallest squared distances, as negatives
    nearest = -neg
    finite = jnp.isfinite(nearest)
    dist = jnp.sqrt(jnp.where(finite, nearest, 0.0))
    count = jnp.sum(finite, axis=1)
    total = jnp.sum(jnp.where(finite, dist, 0.0), axis=1)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), empty_value).astype(jnp.float32)


def novelty_against_sets(
    queries: jax.Array,
    sets,
    k: int = DEFAULT_K,
    exclude: Optional[jax.Array] = None,
    empty_value: float = float("inf"),
) -> jax.Array:
    """Novelty against the union of several masked reference sets (concatenated in the given order).

    Args:
        queries: ``(B, d)``.
        sets: sequence of ``(reference (R_i, d), mask (R_i,) bool or None)`` pairs; the union is indexed by
            concatenation order (``exclude`` indexes into that concatenation).
        k, exclude, empty_value: as in :func:`knn_novelty`.

    Returns:
        ``(B,) float32``.
    """
    refs = [r for r, _ in sets]
    masks = [jnp.ones((r.shape[0],), bool) if m is None else m.astype(bool) for r, m in sets]
    return knn_novelty(queries, jnp.concatenate(refs, axis=0), jnp.concatenate(masks), k, exclude, empty_value)
