"""NSGA-II fronts and crowding distances equal a plain NumPy reference implementation (Deb et al. 2002)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd.selection import (
    crowding_distance,
    non_dominated_sort,
    nsga2_select,
    truncation_selection,
    uniform_selection,
)


def reference_fronts(f):
    """Deb's fast non-dominated sort (maximisation), written with Python loops."""
    n = len(f)
    dominates = lambda a, b: np.all(f[a] >= f[b]) and np.any(f[a] > f[b])
    S = [[j for j in range(n) if dominates(i, j)] for i in range(n)]
    count = [sum(dominates(j, i) for j in range(n)) for i in range(n)]
    rank = np.full(n, -1)
    front = [i for i in range(n) if count[i] == 0]
    r = 0
    while front:
        nxt = []
        for i in front:
            rank[i] = r
            for j in S[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        front, r = nxt, r + 1
    return rank


def reference_crowding(f, rank):
    n, m = f.shape
    dist = np.zeros(n)
    for r in np.unique(rank):
        members = np.nonzero(rank == r)[0]
        for j in range(m):
            order = members[np.argsort(f[members, j], kind="stable")]
            dist[order[0]] = dist[order[-1]] = np.inf
            span = f[order[-1], j] - f[order[0], j]
            for a in range(1, len(order) - 1):
                if span > 0:
                    dist[order[a]] += (f[order[a + 1], j] - f[order[a - 1], j]) / span
    return dist


@pytest.mark.parametrize("seed,n,m", [(0, 60, 2), (1, 200, 2), (2, 80, 3)])
def test_fronts_and_crowding_match_reference(seed, n, m):
    f = np.random.default_rng(seed).random((n, m)).astype(np.float32)
    ranks = non_dominated_sort(jnp.asarray(f))
    np.testing.assert_array_equal(np.asarray(ranks), reference_fronts(f))
    assert int(jnp.max(ranks)) > 2  # several fronts were peeled
    crowd = np.asarray(crowding_distance(jnp.asarray(f), ranks))
    want = reference_crowding(f, reference_fronts(f))
    np.testing.assert_array_equal(np.isinf(crowd), np.isinf(want))
    np.testing.assert_allclose(crowd[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-5)


def test_fronts_on_a_hand_made_example_and_masking():
    f = jnp.array([[1.0, 1.0], [2.0, 0.0], [0.0, 2.0], [0.5, 0.5], [0.0, 0.0], [3.0, 3.0]])
    np.testing.assert_array_equal(np.asarray(non_dominated_sort(f)), [1, 1, 1, 2, 3, 0])
    mask = jnp.array([True, True, True, True, True, False])  # drop the dominating point
    np.testing.assert_array_equal(np.asarray(non_dominated_sort(f, mask)), [0, 0, 0, 1, 2, 6])


def test_nsga2_select_prefers_fronts_then_crowding_and_jits():
    f = np.random.default_rng(5).random((300, 2)).astype(np.float32)
    sel = np.asarray(jax.jit(nsga2_select, static_argnums=1)(jnp.asarray(f), 100))
    ranks = reference_fronts(f)
    crowd = reference_crowding(f, ranks)
    assert len(set(sel.tolist())) == 100
    # Every front below the last selected one is fully included.
    last = ranks[sel].max()
    assert set(np.nonzero(ranks < last)[0]) <= set(sel.tolist())
    # In the last front, the chosen points are the most crowded-apart ones.
    chosen = crowd[sel[ranks[sel] == last]]
    rest = crowd[[i for i in np.nonzero(ranks == last)[0] if i not in set(sel.tolist())]]
    if len(rest):
        assert chosen.min() >= rest.max()


def test_truncation_and_uniform_selection():
    scores = jnp.array([0.1, jnp.nan, 5.0, 3.0, 4.0])
    np.testing.assert_array_equal(np.asarray(truncation_selection(scores, 3)), [2, 4, 3])
    mask = jnp.array([True, True, False, True, True])
    np.testing.assert_array_equal(np.asarray(truncation_selection(scores, 2, mask)), [4, 3])
    idx = np.asarray(uniform_selection(jax.random.key(0), jnp.array([False, True, False, True]), 1000))
    assert set(idx.tolist()) == {1, 3}
    assert 400 < np.sum(idx == 1) < 600
