"""The unstructured archive: interface parity with the grid archive, each insertion policy on hand-made
inputs, the full-archive policies and their counter, rejection of non-finite candidates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd import NEW, NOT_ADDED, UnstructuredArchive
from qd.archives import Archive


def make(policy="threshold", capacity=6, **kw):
    return UnstructuredArchive.create(jnp.zeros(3), capacity, 2, policy=policy, **kw)


def batch(desc, fit=None):
    desc = jnp.asarray(desc, jnp.float32)
    n = desc.shape[0]
    fit = jnp.zeros(n) if fit is None else jnp.asarray(fit, jnp.float32)
    return jnp.arange(n * 3, dtype=jnp.float32).reshape(n, 3), desc, fit


def test_is_an_archive_and_starts_empty():
    a = make()
    assert isinstance(a, Archive)
    assert int(a.num_elites) == 0 and float(a.coverage) == 0.0 and a.capacity == 6
    lo, hi = a.bounds
    assert np.all(np.isinf(lo)) and np.all(np.isinf(hi))


def test_threshold_policy_on_hand_made_points():
    a = make("threshold", threshold=1.0, num_neighbors=1)
    # Empty archive: novelty of each point = distance to the nearest *other* batch point.
    g, d, f = batch([[0.0, 0.0], [0.5, 0.0], [5.0, 5.0]])
    a, r = a.add(g, d, f)
    np.testing.assert_allclose(np.asarray(r.improvement), [0.5, 0.5, np.hypot(4.5, 5.0)], rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(r.status), [NOT_ADDED, NOT_ADDED, NEW])
    np.testing.assert_array_equal(np.asarray(r.cell), [-1, -1, 0])
    np.testing.assert_array_equal(np.asarray(a.genotypes[0]), [6.0, 7.0, 8.0])
    # Against the stored (5, 5): a point at distance 0.8 is rejected, one at 2.0 is stored in slot 1.
    g, d, f = batch([[5.8, 5.0], [-20.0, 5.0]])
    a, r = a.add(g, d, f)
    np.testing.assert_array_equal(np.asarray(r.cell), [-1, 1])
    assert int(a.num_elites) == 2 and int(a.num_inserted) == 2
    # The threshold is a dynamic field: raising it rejects what passed before.
    a2, r2 = a.replace(threshold=jnp.float32(100.0)).add(*batch([[50.0, 50.0]]))
    assert int(r2.cell[0]) == -1 and int(a2.num_elites) == 2


def test_most_novel_policy_keeps_the_k_most_novel():
    a = make("most_novel", num_per_batch=2, num_neighbors=1)
    a, _ = a.add(*batch([[0.0, 0.0]]))  # slot 0
    g, d, f = batch([[0.1, 0.0], [3.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    nov = a.batch_novelty(d)
    np.testing.assert_allclose(np.asarray(nov), [0.1, 2.0, 0.9, 7.0], rtol=1e-5)
    a, r = a.add(g, d, f)
    np.testing.assert_array_equal(np.asarray(r.cell), [-1, 1, -1, 2])  # batch order gives slot order
    # Caller-given novelty overrides the archive's own.
    a, r = a.add(g[:3], d[:3], f[:3], novelty=jnp.array([9.0, 0.0, 5.0]))
    np.testing.assert_array_equal(np.asarray(r.cell), [3, -1, 4])


def test_random_policy_stores_k_distinct_candidates_uniformly():
    a = make("random", capacity=4000, num_per_batch=3, seed=1)
    g, d, f = batch(np.stack([np.arange(10.0), np.zeros(10)], 1))
    add = jax.jit(lambda a: a.add(g, d, f))
    counts = np.zeros(10)
    for _ in range(300):
        a, r = add(a)
        chosen = np.nonzero(np.asarray(r.cell) >= 0)[0]
        assert len(chosen) == 3
        counts[chosen] += 1
    assert int(a.num_elites) == 900
    assert counts.min() > 50 and counts.max() < 130  # 90 expected each
    # An explicit key makes the draw reproducible.
    _, r1 = make("random").add(g, d, f, key=jax.random.key(7))
    _, r2 = make("random", seed=99).add(g, d, f, key=jax.random.key(7))
    np.testing.assert_array_equal(np.asarray(r1.cell), np.asarray(r2.cell))


def test_non_finite_candidates_never_enter():
    a = make("random", num_per_batch=5)
    g, d, f = batch([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [np.nan, 0.0]], [np.nan, -np.inf, 1.0, 0.0])
    a, r = a.add(g, d, f)
    np.testing.assert_array_equal(np.asarray(r.status), [NOT_ADDED, NOT_ADDED, NEW, NOT_ADDED])
    assert np.isneginf(np.asarray(r.improvement)[[0, 1, 3]]).all()
    assert int(a.num_elites) == 1
    # Any finite fitness is fine, including very negative ones.
    a, r = make("threshold", threshold=0.0).add(*batch([[0.0, 0.0]], [-1e30]))
    assert int(r.cell[0]) == 0


def test_full_archive_drop_policy_counts_overflow():
    a = make("threshold", capacity=3, threshold=0.0)
    a, r = a.add(*batch([[0.0, 0], [1.0, 0]]))
    a, r = a.add(*batch([[2.0, 0], [3.0, 0], [4.0, 0]]))
    np.testing.assert_array_equal(np.asarray(r.cell), [2, -1, -1])
    assert int(a.num_elites) == 3 and int(a.num_overflow) == 2 and float(a.coverage) == 1.0
    before = np.asarray(a.descriptors).copy()
    a, _ = a.add(*batch([[9.0, 0]]))
    np.testing.assert_array_equal(np.asarray(a.descriptors), before)  # nothing stored ever changes
    assert int(a.num_overflow) == 3


def test_full_archive_fifo_policy_overwrites_oldest():
    a = make("threshold", capacity=3, threshold=0.0, full_policy="fifo")
    a, _ = a.add(*batch([[0.0, 0], [1.0, 0]]))
    a, r = a.add(*batch([[2.0, 0], [3.0, 0], [4.0, 0]]))
    np.testing.assert_array_equal(np.asarray(r.cell), [2, 0, 1])
    np.testing.assert_array_equal(np.asarray(a.descriptors[:, 0]), [3.0, 4.0, 2.0])
    assert int(a.num_overflow) == 2 and int(a.num_inserted) == 5
    # More selected candidates than slots in one batch: the last C survive.
    a, r = make("threshold", capacity=2, threshold=0.0, full_policy="fifo").add(*batch([[0.0, 0], [5, 0], [10, 0]]))
    np.testing.assert_array_equal(np.asarray(r.cell), [-1, 1, 0])


def test_queries_sample_best_bounds_and_roundtrip():
    a = UnstructuredArchive.create(jnp.zeros(3), 8, 2, lower=(0, 0), upper=(1, 1), threshold=0.0)
    a, _ = a.add(*batch([[0.2, 0.2], [2.0, 0.5], [0.9, 0.1]], [1.0, 3.0, 2.0]))
    np.testing.assert_allclose(np.asarray(a.descriptors[1]), [1.0, 0.5])  # clipped to the bounds
    assert float(a.best().fitnesses[0]) == 3.0
    s = a.sample(jax.random.key(0), 64)
    assert set(np.asarray(s.cells).tolist()) <= {0, 1, 2}
    e = a.elites()
    np.testing.assert_array_equal(e["cells"], [0, 1, 2])
    data = a.to_dict()
    assert int(data["num_inserted"]) == 3
    b = UnstructuredArchive.create(jnp.zeros(3), 8, 2, lower=(0, 0), upper=(1, 1)).replace_storage_from_dict(data)
    np.testing.assert_array_equal(np.asarray(b.descriptors), np.asarray(a.descriptors))
    assert int(b.num_inserted) == 3 and float(b.threshold) == 0.0


def test_validation_errors_before_tracing():
    a = make()
    g, d, f = batch([[0.0, 0.0]])
    with pytest.raises(ValueError):
        a.add(g, jnp.zeros((1, 3)), f)
    with pytest.raises(ValueError):
        a.add(g, d, jnp.zeros(2))
    with pytest.raises(ValueError):
        a.add(jnp.zeros((1, 4)), d, f)
    with pytest.raises(ValueError):
        a.add(g, d, f, novelty=jnp.zeros(3))
    for kw in (dict(policy="best"), dict(full_policy="grow"), dict(threshold=-1.0), dict(num_per_batch=0)):
        with pytest.raises(ValueError):
            UnstructuredArchive.create(jnp.zeros(3), 4, 2, **kw)
    with pytest.raises(ValueError):
        UnstructuredArchive.create(jnp.zeros(3), 0, 2)
