"""Selection operators: uniform selection, truncation, and NSGA-II's non-dominated sort with crowding.

All functions are pure, jittable and shape-static; objectives are **maximised**. Masks mark which rows take
part (padding rows are never selected and never dominate anything).

NSGA-II (Deb et al. 2002):

- :func:`non_dominated_sort`: front index of each point (0 = the Pareto front), by peeling fronts in a
  ``lax.while_loop`` over an ``O(N^2 m)`` domination matrix (``N`` points, ``m`` objectives). Meant for a
  few hundred points (STAX-P's population + offspring, SERENE's emitter selection, NSLC).
- :func:`crowding_distance`: per front, for each objective the points are sorted and every interior point
  gets ``(f[next] - f[prev]) / (f_max - f_min)`` of its front, summed over objectives; the extreme points
  of each objective get ``+inf`` (ties in an objective are broken by index, lowest first). A front whose
  range is 0 in an objective adds 0 for it to its interior points.
- :func:`nsga2_select`: the ``n`` best by (front ascending, crowding descending), ties by index.

Shapes: ``N`` points, ``m`` objectives.
"""

from __future__ import annotations

from typing import Optional, Tuple

import jax
import jax.numpy as jnp


def uniform_selection(key: jax.Array, mask: jax.Array, n: int) -> jax.Array:
    """``n`` indices drawn uniformly with replacement among the ``True`` entries of ``mask`` ``(N,)``.

    With an all-False mask, indices are drawn uniformly among all ``N`` rows. Returns ``(n,) int32``.
    """
    weights = jnp.where(jnp.any(mask), mask, True).astype(jnp.float32)
    cdf = jnp.cumsum(weights)
    u = jax.random.uniform(key, (n,), minval=0.0, maxval=cdf[-1])
    return jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, mask.shape[0] - 1).astype(jnp.int32)


def truncation_selection(scores: jax.Array, n: int, mask: Optional[jax.Array] = None) -> jax.Array:
    """Indices of the ``n`` highest ``scores`` ``(N,)``: ``(n,) int32``.

    NaN scores and masked-out rows count as ``-inf`` (so they are picked last, together with valid rows
    scoring ``-inf``); ties go to the lowest index. One ``lax.top_k``, no full sort.
    """
    s = jnp.where(jnp.isnan(scores), -jnp.inf, scores.astype(jnp.float32))
    if mask is not None:
        s = jnp.where(mask, s, -jnp.inf)
    _, top = jax.lax.top_k(s, n)
    return top.astype(jnp.int32)


def domination_matrix(objectives: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """``(N, m) -> (N, N) bool``: ``D[i, j]`` is True when point ``i`` dominates point ``j`` (maximisation).

    ``i`` dominates ``j`` when it is at least as good in every objective and better in one. Masked-out rows
    neither dominate nor are dominated.
    """
    f = objectives.astype(jnp.float32)
    ge = jnp.all(f[:, None, :] >= f[None, :, :], axis=-1)
    gt = jnp.any(f[:, None, :] > f[None, :, :], axis=-1)
    dom = ge & gt
    if mask is not None:
        dom = dom & mask[:, None] & mask[None, :]
    return dom


def non_dominated_sort(objectives: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """Front index of every point: ``(N, m) -> (N,) int32``, 0 for the Pareto front (maximisation).

    Masked-out rows get front ``N`` (after every real front). Cost: ``O(N^2 m)`` for the domination matrix,
    then one ``O(N^2)`` masked reduction per front.
    """
    n = objectives.shape[0]
    valid = jnp.ones((n,), bool) if mask is None else mask.astype(bool)
    dom = domination_matrix(objectives, valid)
    ranks0 = jnp.full((n,), n, jnp.int32)

    def cond(carry):
        _, remaining, _ = carry
        return jnp.any(remaining)

    def body(carry):
        ranks, remaining, front = carry
        dominated = jnp.any(dom & remaining[:, None], axis=0)  # dominated by some remaining point
        current = remaining & ~dominated
        ranks = jnp.where(current, front, ranks)
        return ranks, remaining & ~current, front + 1

    ranks, _, _ = jax.lax.while_loop(cond, body, (ranks0, valid, jnp.zeros((), jnp.int32)))
    return ranks


def crowding_distance(objectives: jax.Array, ranks: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """Crowding distance of every point within its front: ``(N, m), (N,) -> (N,) float32``.

    See the module docstring for the definition. Masked-out rows get 0.
    """
    n, m = objectives.shape
    f = objectives.astype(jnp.float32)
    valid = jnp.ones((n,), bool) if mask is None else mask.astype(bool)
    rank = jnp.where(valid, ranks, n).astype(jnp.int32)
    idx = jnp.arange(n, dtype=jnp.int32)
    total = jnp.zeros((n,), jnp.float32)
    for j in range(m):  # m is small and static
        col = f[:, j]
        order = jnp.lexsort((idx, col, rank))  # by front, then value, then index
        r_sorted = rank[order]
        v_sorted = col[order]
        same_prev = jnp.concatenate([jnp.array([False]), r_sorted[1:] == r_sorted[:-1]])
        same_next = jnp.concatenate([r_sorted[:-1] == r_sorted[1:], jnp.array([False])])
        prev_v = jnp.concatenate([v_sorted[:1], v_sorted[:-1]])
        next_v = jnp.concatenate([v_sorted[1:], v_sorted[-1:]])
        fmin = jax.ops.segment_min(col, rank, num_segments=n + 1)
        fmax = jax.ops.segment_max(col, rank, num_segments=n + 1)
        span = (fmax - fmin)[r_sorted]
        interior = same_prev & same_next
        contrib = jnp.where(span > 0, (next_v - prev_v) / jnp.where(span > 0, span, 1.0), 0.0)
        contrib = jnp.where(interior, contrib, jnp.inf)
        total = total.at[order].add(contrib)
    return jnp.where(valid, total, 0.0)


def nsga2_rank(objectives: jax.Array, mask: Optional[jax.Array] = None) -> Tuple[jax.Array, jax.Array]:
    """``(fronts (N,) int32, crowding (N,) float32)`` for ``(N, m)`` objectives (maximisation)."""
    fronts = non_dominated_sort(objectives, mask)
    return fronts, crowding_distance(objectives, fronts, mask)


def nsga2_select(objectives: jax.Array, n: int, mask: Optional[jax.Array] = None) -> jax.Array:
    """Indices of the ``n`` survivors of NSGA-II's environmental selection: ``(N, m) -> (n,) int32``.

    Order: front ascending, then crowding distance descending, then index. Masked rows come last.
    """
    fronts, crowd = nsga2_rank(objectives, mask)
    idx = jnp.arange(objectives.shape[0], dtype=jnp.int32)
    order = jnp.lexsort((idx, -crowd, fronts))
    return order[:n].astype(jnp.int32)
