"""Archive behaviour on hand-made inputs and against brute-force references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd import IMPROVED, NEW, NOT_ADDED, CVTArchive, GridArchive, cvt_centroids
from qd.archives import cvt as cvt_module

NAN = float("nan")


def small_grid(**kw):
    # 2 x 3 grid over [0, 2] x [0, 3]: cell (i, j) is index 3 i + j; genotypes are 1-D vectors of size 2.
    return GridArchive.create(jnp.zeros(2), (2, 3), (0.0, 0.0), (2.0, 3.0), **kw)


def add(archive, descriptors, fitnesses, genotypes=None):
    descriptors = jnp.asarray(descriptors, jnp.float32)
    fitnesses = jnp.asarray(fitnesses, jnp.float32)
    if genotypes is None:  # genotype i = (i, i) so we can tell which candidate was stored
        genotypes = jnp.stack([jnp.arange(len(fitnesses))] * 2, axis=1).astype(jnp.float32)
    return archive.add(genotypes, descriptors, fitnesses)


def test_grid_add_exact_contents_ties_nan_and_clipping():
    archive = small_grid()
    descriptors = [
        [0.5, 0.5],  # 0: cell 0
        [0.6, 0.4],  # 1: cell 0, better -> wins
        [0.7, 0.3],  # 2: cell 0, ties with 1 -> loses (higher index)
        [1.5, 2.5],  # 3: cell 5
        [1.2, 1.2],  # 4: cell 4, NaN -> rejected
        [-7.0, 9.0],  # 5: clipped to (0, 3) -> cell 2
        [2.0, 3.0],  # 6: upper corner -> last cell 5, worse than 3
    ]
    fitnesses = [1.0, 2.0, 2.0, 0.5, NAN, -1.0, 0.1]
    archive, result = add(archive, descriptors, fitnesses)

    np.testing.assert_array_equal(result.cell, [0, 0, 0, 5, 4, 2, 5])
    np.testing.assert_array_equal(result.status, [NOT_ADDED, NEW, NOT_ADDED, NEW, NOT_ADDED, NEW, NOT_ADDED])
    np.testing.assert_array_equal(np.asarray(archive.filled), [1, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(np.asarray(archive.fitnesses)[[0, 2, 5]], [2.0, -1.0, 0.5])
    np.testing.assert_array_equal(np.asarray(archive.genotypes)[[0, 2, 5], 0], [1, 5, 3])
    np.testing.assert_allclose(np.asarray(archive.descriptors)[2], [0.0, 3.0])  # stored clipped
    assert np.isneginf(np.asarray(archive.fitnesses)[[1, 3, 4]]).all()
    # Improvement: fitness - qd_offset (0) on empty cells, -inf for NaN.
    improvement = np.asarray(result.improvement)
    assert np.isneginf(improvement[4])
    np.testing.assert_allclose(improvement[[0, 1, 3, 5]], [1.0, 2.0, 0.5, -1.0])
    assert int(archive.num_elites) == 3
    assert float(archive.coverage) == pytest.approx(0.5)
    assert float(archive.qd_score()) == pytest.approx(2.0 - 1.0 + 0.5)


def test_grid_improvement_and_rejection_of_worse_and_infinite():
    archive, _ = add(small_grid(qd_offset=-10.0), [[0.5, 0.5], [1.5, 0.5]], [1.0, 3.0])
    archive, result = add(archive, [[0.4, 0.4], [1.4, 0.4], [0.5, 2.5], [0.5, 2.5]], [4.0, 2.0, -np.inf, np.inf])
    np.testing.assert_array_equal(result.status, [IMPROVED, NOT_ADDED, NOT_ADDED, NOT_ADDED])
    np.testing.assert_allclose(np.asarray(result.improvement)[:2], [3.0, -1.0])
    np.testing.assert_array_equal(np.asarray(archive.fitnesses)[[0, 3]], [4.0, 3.0])
    assert not bool(archive.filled[2])
    assert float(archive.qd_score()) == pytest.approx((4.0 + 10.0) + (3.0 + 10.0))


def test_equal_fitness_does_not_replace_incumbent():
    archive, _ = add(small_grid(), [[0.5, 0.5]], [1.0], genotypes=jnp.ones((1, 2)))
    archive, result = add(archive, [[0.5, 0.5]], [1.0], genotypes=jnp.full((1, 2), 7.0))
    assert int(result.status[0]) == NOT_ADDED
    assert float(archive.genotypes[0, 0]) == 1.0


def test_in_batch_ties_are_deterministic_under_jit():
    archive = small_grid()
    descriptors = jnp.full((64, 2), 0.5)
    fitnesses = jnp.ones(64)
    genotypes = jnp.stack([jnp.arange(64.0)] * 2, axis=1)
    new, result = jax.jit(lambda a: a.add(genotypes, descriptors, fitnesses))(archive)
    assert float(new.genotypes[0, 0]) == 0.0
    assert int(jnp.sum(result.status == NEW)) == 1 and int(result.status[0]) == NEW


def test_grid_index_equals_brute_force_nearest_centroid():
    archive = GridArchive.create(jnp.zeros(1), (7, 5, 3), (-1.0, 0.0, 2.0), (1.0, 10.0, 3.0))
    points = np.random.default_rng(0).uniform(archive.lower, archive.upper, size=(5000, 3)).astype(np.float32)
    centroids = archive.centroids()
    # Scale each axis by its cell width so that "nearest" is unambiguous per axis.
    width = (np.asarray(archive.upper) - np.asarray(archive.lower)) / np.asarray(archive.resolution)
    brute = np.argmin((((points[:, None, :] - centroids[None]) / width) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(np.asarray(archive.index(jnp.asarray(points))), brute)


@pytest.mark.parametrize("block_elements", [None, 1000])
def test_cvt_nearest_equals_brute_force(monkeypatch, block_elements):
    if block_elements is not None:  # exercise the blocked lax.map path
        monkeypatch.setattr(cvt_module, "_DISTANCE_BLOCK_ELEMENTS", block_elements)
    rng = np.random.default_rng(1)
    centroids = rng.uniform(-2, 2, size=(300, 3)).astype(np.float32)
    archive = CVTArchive.create(jnp.zeros(4), None, (-2, -2, -2), (2, 2, 2), centroids=centroids)
    points = rng.uniform(-2, 2, size=(777, 3)).astype(np.float32)
    got = np.asarray(archive.index(jnp.asarray(points)))
    dist = ((points[:, None, :] - centroids[None]) ** 2).sum(-1)
    # Float32 matrix-product distances may pick a centroid that is equally near up to rounding.
    np.testing.assert_allclose(dist[np.arange(len(points)), got], dist.min(1), rtol=1e-5, atol=1e-6)
    assert (got == dist.argmin(1)).mean() > 0.995


def test_cvt_centroids_reproducible_and_cover_the_box():
    a = cvt_centroids(64, (0, 0), (1, 1), seed=3, num_samples=5000)
    b = cvt_centroids(64, (0, 0), (1, 1), seed=3, num_samples=5000)
    c = cvt_centroids(64, (0, 0), (1, 1), seed=4, num_samples=5000)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.shape == (64, 2) and (a >= 0).all() and (a <= 1).all()
    # A CVT of a square is close to a regular lattice: no centroid far from its nearest neighbour.
    d = np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1)) + np.eye(64) * 9
    assert d.min(1).max() < 2.0 / np.sqrt(64)


def test_bad_inputs_raise_value_errors_before_compiling():
    archive = small_grid()
    g = jnp.zeros((3, 2))
    with pytest.raises(ValueError, match=r"descriptors must have shape \(batch, 2\)"):
        archive.add(g, jnp.zeros((3, 3)), jnp.zeros(3))
    with pytest.raises(ValueError, match="floating"):
        archive.add(g, jnp.zeros((3, 2), jnp.int32), jnp.zeros(3))
    with pytest.raises(ValueError, match="fitnesses must have shape"):
        archive.add(g, jnp.zeros((3, 2)), jnp.zeros(4))
    with pytest.raises(ValueError, match="genotype leaf"):
        archive.add(jnp.zeros((3, 5)), jnp.zeros((3, 2)), jnp.zeros(3))
    with pytest.raises(ValueError, match="tree structure"):
        archive.add({"w": g}, jnp.zeros((3, 2)), jnp.zeros(3))
    with pytest.raises(ValueError, match="lower bound must be below"):
        GridArchive.create(jnp.zeros(2), 4, (0, 1), (1, 1))
    with pytest.raises(ValueError, match="resolution has 3 entries"):
        GridArchive.create(jnp.zeros(2), (2, 2, 2), (0, 0), (1, 1))
    with pytest.raises(ValueError, match="exactly one of"):
        CVTArchive.create(jnp.zeros(2), None, (0, 0), (1, 1))


def test_pytree_genotypes_and_extras_are_stored():
    template = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3, jnp.int32)}
    archive = GridArchive.create(template, 4, (0.0,), (1.0,), extras_template={"gt": jnp.zeros(2)})
    genotypes = {"w": jnp.arange(12.0).reshape(2, 2, 3), "b": jnp.asarray([[1, 2, 3], [4, 5, 6]], jnp.int32)}
    extras = {"gt": jnp.asarray([[9.0, 8.0], [7.0, 6.0]])}
    archive, result = archive.add(genotypes, jnp.asarray([[0.1], [0.9]]), jnp.asarray([1.0, 2.0]), extras)
    np.testing.assert_array_equal(result.cell, [0, 3])
    np.testing.assert_array_equal(archive.genotypes["b"][3], [4, 5, 6])
    np.testing.assert_array_equal(archive.extras["gt"][0], [9.0, 8.0])
    elites = archive.elites()
    np.testing.assert_array_equal(elites["cells"], [0, 3])
    np.testing.assert_array_equal(elites["genotypes"]["w"][1], np.arange(6.0, 12.0).reshape(2, 3))
    with pytest.raises(ValueError, match="stores extras"):
        archive.add(genotypes, jnp.asarray([[0.1], [0.9]]), jnp.asarray([1.0, 2.0]))


def test_sample_is_uniform_over_filled_cells_and_best():
    archive = GridArchive.create(jnp.zeros(1), 10, (0.0,), (1.0,))
    archive, _ = archive.add(jnp.asarray([[1.0], [3.0], [7.0]]), jnp.asarray([[0.15], [0.35], [0.75]]), jnp.asarray([1.0, 5.0, 2.0]))
    elites = archive.sample(jax.random.key(0), 30_000)
    cells, counts = np.unique(np.asarray(elites.cells), return_counts=True)
    np.testing.assert_array_equal(cells, [1, 3, 7])
    np.testing.assert_allclose(counts / 30_000, 1 / 3, atol=0.015)
    np.testing.assert_array_equal(np.asarray(elites.genotypes)[:, 0], np.asarray(elites.cells, np.float32))
    best = archive.best()
    assert int(best.cells[0]) == 3 and float(best.fitnesses[0]) == 5.0


def test_to_dict_roundtrip():
    archive, _ = add(small_grid(), [[0.5, 0.5], [1.5, 2.5]], [1.0, 2.0])
    data = archive.to_dict()
    restored = small_grid().replace_storage_from_dict(data)
    for a, b in zip(jax.tree_util.tree_leaves(archive), jax.tree_util.tree_leaves(restored)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(data["lower"], [0, 0])
    with pytest.raises(ValueError, match="fitnesses"):
        GridArchive.create(jnp.zeros(2), 4, (0, 0), (1, 1)).replace_storage_from_dict(data)


def test_abstract_genotype_template_allocates_storage():
    template = {"w": jax.ShapeDtypeStruct((3, 2), jnp.float32), "n": jax.ShapeDtypeStruct((), jnp.int32)}
    archive = GridArchive.create(template, 4, (0.0,), (1.0,))
    assert archive.genotypes["w"].shape == (4, 3, 2) and archive.genotypes["n"].dtype == jnp.int32
