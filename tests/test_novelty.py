"""kNN novelty against a brute-force NumPy computation; masked and excluded entries are never neighbours."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd.novelty import knn_novelty, novelty_against_sets, squared_distances


def brute_force(queries, reference, mask, k, exclude=None):
    out = []
    for b, q in enumerate(queries):
        d = [np.linalg.norm(q - r) for i, r in enumerate(reference) if mask[i] and (exclude is None or i != exclude[b])]
        d = sorted(d)[:k]
        out.append(np.mean(d) if d else np.inf)
    return np.asarray(out)


@pytest.mark.parametrize("k", [1, 5, 15])
def test_knn_novelty_equals_brute_force(k):
    rng = np.random.default_rng(k)
    queries = rng.normal(size=(9, 4)).astype(np.float32)
    reference = rng.normal(size=(60, 4)).astype(np.float32)
    mask = rng.random(60) > 0.4
    got = knn_novelty(jnp.asarray(queries), jnp.asarray(reference), jnp.asarray(mask), k=k)
    np.testing.assert_allclose(np.asarray(got), brute_force(queries, reference, mask, k), rtol=1e-4, atol=1e-5)


def test_masked_entries_are_never_neighbours():
    # The masked-out points sit exactly on the queries: if they were used, novelty would be ~0.
    queries = np.array([[0.0, 0.0], [5.0, 5.0]], np.float32)
    reference = np.array([[0.0, 0.0], [5.0, 5.0], [1.0, 0.0], [5.0, 7.0], [3.0, 0.0]], np.float32)
    mask = np.array([False, False, True, True, True])
    got = np.asarray(knn_novelty(jnp.asarray(queries), jnp.asarray(reference), jnp.asarray(mask), k=1))
    np.testing.assert_allclose(got, [1.0, 2.0], rtol=1e-6)
    got2 = np.asarray(knn_novelty(jnp.asarray(queries), jnp.asarray(reference), jnp.asarray(mask), k=2))
    np.testing.assert_allclose(got2, [2.0, (2.0 + np.hypot(2.0, 5.0)) / 2], rtol=1e-5)


def test_fewer_valid_neighbours_than_k_and_empty_reference():
    queries = jnp.array([[0.0, 0.0]])
    reference = jnp.array([[3.0, 4.0], [6.0, 8.0], [100.0, 100.0]])
    mask = jnp.array([True, True, False])
    assert float(knn_novelty(queries, reference, mask, k=15)[0]) == pytest.approx(7.5)
    assert np.isinf(float(knn_novelty(queries, reference, jnp.zeros(3, bool), k=15)[0]))
    assert float(knn_novelty(queries, reference, jnp.zeros(3, bool), k=3, empty_value=0.0)[0]) == 0.0


def test_exclude_skips_only_the_own_slot():
    # Query 0 is reference row 0; an exact duplicate lives in row 1 and must still count.
    reference = jnp.array([[0.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    got = knn_novelty(reference[:1], reference, None, k=2, exclude=jnp.array([0]))
    assert float(got[0]) == pytest.approx(1.0)  # (0 + 2) / 2
    got = knn_novelty(reference[:1], reference, None, k=2, exclude=jnp.array([-1]))
    assert float(got[0]) == pytest.approx(0.0)


def test_against_sets_is_the_union_and_jits():
    rng = np.random.default_rng(3)
    q = rng.normal(size=(5, 2)).astype(np.float32)
    a, b = rng.normal(size=(8, 2)).astype(np.float32), rng.normal(size=(6, 2)).astype(np.float32)
    mb = np.array([True, False, True, True, False, True])
    fn = jax.jit(lambda q, a, b, mb: novelty_against_sets(q, [(a, None), (b, mb)], k=4))
    want = brute_force(q, np.concatenate([a, b]), np.concatenate([np.ones(8, bool), mb]), 4)
    np.testing.assert_allclose(np.asarray(fn(q, a, b, mb)), want, rtol=1e-4, atol=1e-5)


def test_squared_distances_nonnegative_and_exact_on_duplicates():
    x = jnp.array([[1e3, -1e3], [1e3, -1e3]])
    d = squared_distances(x, x)
    assert float(jnp.min(d)) >= 0.0
    assert float(d[0, 1]) == pytest.approx(0.0, abs=1e-1)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        knn_novelty(jnp.zeros((3, 2)), jnp.zeros((4, 3)))
    with pytest.raises(ValueError):
        knn_novelty(jnp.zeros((3, 2)), jnp.zeros((4, 2)), k=0)
