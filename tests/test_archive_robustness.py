"""Archives against float32 edge cases, non-finite input, and saved files that describe themselves."""

import json
import os
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd import NEW, NOT_ADDED, CVTArchive, GridArchive, UnstructuredArchive, load_archive, save_archive
from qd.archives import cell_edges, elite_table, read_archive_metadata

NAN, INF = float("nan"), float("inf")


def grid(d=2):
    return GridArchive.create(jnp.zeros(4), 10, (0.0,) * d, (1.0,) * d)


def cvt():
    centroids = np.asarray([[0.2, 0.2], [0.8, 0.8], [0.2, 0.8]], np.float32)
    return CVTArchive.create(jnp.zeros(4), None, (0, 0), (1, 1), centroids=centroids)


def unstructured(bounded=True):
    bounds = dict(lower=(0, 0), upper=(1, 1)) if bounded else {}
    return UnstructuredArchive.create(jnp.zeros(4), 8, 2, policy="threshold", threshold=0.0, **bounds)


ARCHIVES = {"grid": grid, "cvt": cvt, "unstructured": unstructured, "unbounded": lambda: unstructured(False)}


# --------------------------------------------------------------------------------------------- #
# Non-finite descriptors: one rule for every archive
# --------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("make", ARCHIVES.values(), ids=ARCHIVES.keys())
@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_non_finite_descriptor_is_never_stored(make, bad):
    archive = make()
    descriptors = jnp.asarray([[bad, 0.5], [0.5, bad], [0.3, 0.6]], jnp.float32)
    genotypes = jnp.arange(12.0).reshape(3, 4)
    new, result = archive.add(genotypes, descriptors, jnp.ones(3))
    np.testing.assert_array_equal(np.asarray(result.status)[:2], [NOT_ADDED, NOT_ADDED])
    assert int(result.status[2]) == NEW
    assert np.isneginf(np.asarray(result.improvement)[:2]).all()
    assert int(new.num_elites) == 1
    assert np.isfinite(np.asarray(new.descriptors)).all()
    if not isinstance(archive, UnstructuredArchive):
        np.testing.assert_array_equal(np.asarray(result.cell)[:2], [-1, -1])
        # The same under jit.
        _, jitted = jax.jit(lambda a: a.add(genotypes, descriptors, jnp.ones(3)))(archive)
        np.testing.assert_array_equal(np.asarray(jitted.status), np.asarray(result.status))


def test_issue_reproduction_nan_descriptor_grid():
    archive = GridArchive.create(jnp.zeros(4), 10, (0, 0), (1, 1))
    _, result = archive.add(jnp.ones((1, 4)), jnp.array([[jnp.nan, 0.5]]), jnp.ones(1))
    assert int(result.status[0]) == NOT_ADDED


def test_nan_descriptor_does_not_take_cvt_cell_zero():
    archive, result = cvt().add(jnp.ones((1, 4)), jnp.array([[jnp.nan, 0.2]]), jnp.ones(1))
    assert not bool(archive.filled[0]) and int(result.status[0]) == NOT_ADDED


def test_rejected_candidate_is_not_a_novelty_neighbour():
    # The +inf candidate (clipped to a corner if it were accepted) must not make the others less novel.
    archive = unstructured()
    d = jnp.asarray([[0.5, 0.5], [INF, INF]], jnp.float32)
    _, with_bad = archive.add(jnp.zeros((2, 4)), d, jnp.ones(2))
    _, alone = archive.add(jnp.zeros((1, 4)), d[:1], jnp.ones(1))
    assert float(with_bad.improvement[0]) == float(alone.improvement[0])


# --------------------------------------------------------------------------------------------- #
# Grid cells at edges: exact, and the same eagerly and under jit
# --------------------------------------------------------------------------------------------- #
def exact_cell(x: np.float32, lo: float, hi: float, res: int) -> int:
    """floor((x - lo) / (hi - lo) * res) in exact rational arithmetic, clamped."""
    q = (Fraction(float(x)) - Fraction(lo)) / (Fraction(hi) - Fraction(lo)) * res
    return min(max(int(np.floor(float(q))) if q.denominator != 1 else int(q), 0), res - 1)


def around_edges(lo, hi, res):
    """Float32 values at and within a few ulps of every edge, plus the bounds."""
    values = []
    for i in range(res + 1):
        e = np.float32(lo + (hi - lo) * i / res)
        for k in range(-3, 4):
            v = e
            for _ in range(abs(k)):
                v = np.nextafter(v, np.float32(np.inf if k > 0 else -np.inf))
            values.append(v)
    return np.asarray(values, np.float32)


@pytest.mark.parametrize("lo,hi,res", [(0.0, 0.1, 10), (0.0, 1.0, 7), (-3.7, 12.9, 33), (100.0, 101.0, 50), (-1e-3, 2e-3, 9),
                                       (-5.0, 7.0, 1500)])  # > 1024 cells: the binary search, not compare_all
def test_grid_cell_matches_exact_reference_eager_and_jit(lo, hi, res):
    archive = GridArchive.create(jnp.zeros(1), [res], [lo], [hi])
    x = around_edges(lo, hi, res)
    x = x[(x >= np.float32(lo)) & (x <= np.float32(hi))]
    want = np.asarray([exact_cell(v, lo, hi, res) for v in x])
    eager = np.asarray(archive.index(jnp.asarray(x)[:, None]))
    jitted = np.asarray(jax.jit(archive.index)(jnp.asarray(x)[:, None]))
    np.testing.assert_array_equal(eager, want)
    np.testing.assert_array_equal(jitted, want)
    # Batch-invariant: each value alone gets the same cell.
    single = np.asarray([int(jax.jit(archive.index)(jnp.asarray([[v]]))[0]) for v in x[:: max(1, len(x) // 20)]])
    np.testing.assert_array_equal(single, want[:: max(1, len(x) // 20)])


def test_issue_reproduction_grid_jit():
    archive = GridArchive.create(jnp.zeros(1), [10], [0.0], [0.1])
    x = jnp.asarray([[0.03]], jnp.float32)
    assert int(archive.index(x)[0]) == int(jax.jit(archive.index)(x)[0]) == 2


def test_cell_edges_are_the_smallest_float32_at_or_above_the_real_edge():
    edges = cell_edges(0.0, 0.1, 10)
    for i, e in enumerate(edges, start=1):
        real = Fraction(0.1) * i / 10
        assert Fraction(float(e)) >= real
        assert Fraction(float(np.nextafter(e, np.float32(-1)))) < real


def test_grid_multi_dim_index_row_major_with_edges():
    archive = GridArchive.create(jnp.zeros(1), (3, 4), (0.0, 0.0), (0.3, 0.4))
    x = jnp.asarray([[0.1, 0.1], [0.2, 0.3], [0.3, 0.4], [0.0999, 0.0]], jnp.float32)
    np.testing.assert_array_equal(np.asarray(jax.jit(archive.index)(x)), [1 * 4 + 1, 2 * 4 + 3, 11, 0])


# --------------------------------------------------------------------------------------------- #
# CVT nearest centroid far from the origin
# --------------------------------------------------------------------------------------------- #
def test_issue_reproduction_cvt_far_from_origin():
    centroids = np.asarray([[100.31, 100.83], [100.30, 100.80]], np.float32)
    archive = CVTArchive.create(jnp.zeros(1), None, (100, 100), (101, 101), centroids=centroids)
    assert int(archive.index(jnp.asarray([[100.31, 100.80]], jnp.float32))[0]) == 1


@pytest.mark.parametrize("centre,half", [(0.0, 1.0), (100.5, 0.5), (1e4, 3.0), (-5e3, 0.01), (1e6, 1e3), (0.0, 1e-3)])
@pytest.mark.parametrize("d", [2, 5])
def test_cvt_matches_float64_brute_force_in_boxes_of_any_position_and_scale(centre, half, d):
    rng = np.random.default_rng(d)
    lower, upper = np.full(d, centre - half), np.full(d, centre + half)
    centroids = rng.uniform(lower, upper, size=(400, d)).astype(np.float32)
    archive = CVTArchive.create(jnp.zeros(1), None, lower, upper, centroids=centroids)
    points = rng.uniform(lower, upper, size=(2000, d)).astype(np.float32)
    got = np.asarray(jax.jit(archive.index)(jnp.asarray(points)))
    dist = ((points[:, None, :].astype(np.float64) - centroids[None].astype(np.float64)) ** 2).sum(-1)
    best = dist.min(1)
    # Exact except between centroids equally near within float32 rounding of the box's size.
    chosen = dist[np.arange(len(points)), got]
    np.testing.assert_array_less(chosen - best, 1e-6 * half**2 + 1e-300)
    np.testing.assert_array_equal(got, dist.argmin(1))


def test_cvt_exact_on_many_near_ties():
    # 10^4 centroids, 4096 points: the plain float32 expansion misses a few nearest centroids here.
    rng = np.random.default_rng(0)
    centroids = rng.uniform(-1, 1, (10_000, 2)).astype(np.float32)
    archive = CVTArchive.create(jnp.zeros(1), None, (-1, -1), (1, 1), centroids=centroids)
    points = rng.uniform(-1, 1, (4096, 2)).astype(np.float32)
    got = np.asarray(jax.jit(archive.index)(jnp.asarray(points)))
    dist = ((points[:, None, :].astype(np.float64) - centroids[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_array_equal(got, dist.argmin(1))


def test_cvt_create_signature_matches_grid_and_rejects_the_old_order():
    a = CVTArchive.create(jnp.zeros(1), 8, (0, 0), (1, 1), num_samples=2000)
    assert a.capacity == 8
    with pytest.raises(ValueError, match="num_cells must be a positive integer"):
        CVTArchive.create(jnp.zeros(1), (0, 0), (1, 1), centroids=[[0.5, 0.5]])  # the order of old versions
    with pytest.raises(TypeError):
        CVTArchive.create(jnp.zeros(1), 8, (0, 0), (1, 1), 0)  # the rest is keyword-only
    with pytest.raises(TypeError):
        GridArchive.create(jnp.zeros(1), 8, (0, 0), (1, 1), None)
    with pytest.raises(ValueError, match="inside the bounds"):
        CVTArchive.create(jnp.zeros(1), None, (0, 0), (1, 1), centroids=[[0.5, 1.5]])
    with pytest.raises(ValueError, match="qd_offset"):
        GridArchive.create(jnp.zeros(1), 8, (0,), (1,), qd_offset=float("nan"))
    with pytest.raises(ValueError, match="resolution"):
        GridArchive.create(jnp.zeros(1), 2.5, (0,), (1,))
    with pytest.raises(ValueError, match="non-empty"):
        GridArchive.create(jnp.zeros(1), 2, (), ())


# --------------------------------------------------------------------------------------------- #
# Saved archives
# --------------------------------------------------------------------------------------------- #
def filled(archive, n=6, seed=0):
    rng = np.random.default_rng(seed)
    lo = np.where(np.isfinite(archive.lower), archive.lower, -3.0)
    hi = np.where(np.isfinite(archive.upper), archive.upper, 3.0)
    d = rng.uniform(lo, hi, size=(n, archive.descriptor_dim)).astype(np.float32)
    g = jax.tree_util.tree_map(
        lambda x: jnp.asarray(rng.normal(size=(n,) + x.shape[1:]).astype(x.dtype)), archive.genotypes
    )
    return archive.add(g, jnp.asarray(d), jnp.asarray(rng.normal(size=n), jnp.float32))[0]


def assert_same(a, b):
    assert type(a) is type(b)
    assert a.config() == b.config()
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


SAVED = {
    "grid": lambda: GridArchive.create({"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}, (4, 5), (0, -1), (1, 1), qd_offset=-2.0),
    "cvt": lambda: CVTArchive.create(jnp.zeros(3), 16, (100, 100), (101, 102), seed=4, num_samples=2000),
    "unstructured": lambda: UnstructuredArchive.create(
        [jnp.zeros(2), jnp.zeros((), jnp.int32)], 10, 2, lower=(0, 0), upper=(1, 1), policy="random", seed=3
    ),
    "unbounded": lambda: UnstructuredArchive.create(jnp.zeros(2), 10, 3, policy="most_novel", num_per_batch=2),
}


@pytest.mark.parametrize("make", SAVED.values(), ids=SAVED.keys())
def test_load_archive_needs_only_the_file(tmp_path, make):
    archive = filled(make())
    path = str(tmp_path / "archive.npz")
    save_archive(path, archive, metadata={"task": "x", "descriptor_names": ["a", "b"]})
    loaded = load_archive(path)
    assert_same(archive, loaded)
    assert read_archive_metadata(path) == {"task": "x", "descriptor_names": ["a", "b"]}
    # The description is strict JSON (an unbounded archive's -inf bounds as "-inf", not -Infinity).
    def no_constant(name):
        raise AssertionError(f"non-standard JSON constant {name} in the archive description")

    json.loads(str(np.load(path)["__archive__"]), parse_constant=no_constant)
    # The loaded archive keeps working, with the same results as the original.
    key = jax.random.key(1)
    x = jnp.full((2, archive.descriptor_dim), 0.5, jnp.float32) + (archive.lower[0] if np.isfinite(archive.lower[0]) else 0.0)
    g = jax.tree_util.tree_map(lambda t: t[:2], archive.genotypes)
    _, r1 = archive.add(g, x, jnp.asarray([9.0, 8.0]))
    _, r2 = loaded.add(g, x, jnp.asarray([9.0, 8.0]))
    np.testing.assert_array_equal(np.asarray(r1.status), np.asarray(r2.status))
    np.testing.assert_array_equal(np.asarray(archive.sample(key, 5).cells), np.asarray(loaded.sample(key, 5).cells))


def test_load_archive_with_template_restores_pytree_types(tmp_path):
    archive = filled(SAVED["unstructured"]())
    save_archive(str(tmp_path / "a.npz"), archive)
    loaded = load_archive(str(tmp_path / "a.npz"), genotype_template=(jnp.zeros(2), jnp.zeros((), jnp.int32)))
    assert isinstance(loaded.genotypes, tuple)
    np.testing.assert_array_equal(np.asarray(loaded.genotypes[1]), np.asarray(archive.genotypes[1]))


def test_cvt_archive_file_carries_centroids(tmp_path):
    archive = SAVED["cvt"]()
    np.savez(tmp_path / "a.npz", **archive.to_dict())
    loaded = load_archive(str(tmp_path / "a.npz"))
    np.testing.assert_array_equal(np.asarray(loaded.centroids), np.asarray(archive.centroids))


@pytest.mark.parametrize("content", ["empty", "truncated", "png", "no_description", "directory", "array"])
def test_load_archive_errors_name_the_file(tmp_path, content):
    good = tmp_path / "good.npz"
    save_archive(str(good), filled(SAVED["grid"]()))
    path = tmp_path / "bad.npz"
    if content == "empty":
        path.write_bytes(b"")
    elif content == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif content == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    elif content == "no_description":
        np.savez(path, fitnesses=np.zeros(3))
    elif content == "directory":
        os.mkdir(path)
    else:
        np.save(path, np.zeros(3))
        os.replace(str(path) + ".npy" if not path.exists() else path, path)
    with pytest.raises(ValueError, match="bad.npz"):
        load_archive(str(path))


def test_load_archive_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_archive(str(tmp_path / "nope.npz"))


def test_csv_export_one_row_per_elite(tmp_path):
    archive = GridArchive.create(jnp.zeros(2), 4, (0, 0), (1, 1))
    archive, _ = archive.add(
        jnp.asarray([[1.0, 2.0], [3.0, 4.0]]), jnp.asarray([[0.1, 0.1], [0.9, 0.6]]), jnp.asarray([0.5, 1.5])
    )
    path = tmp_path / "elites.csv"
    archive.to_csv(str(path), include_genotypes=True)
    lines = path.read_text().strip().splitlines()
    assert lines[0] == "cell,fitness,descriptor_0,descriptor_1,genotype_0,genotype_1"
    rows = [line.split(",") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == [0, 14]
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in rows], [[0.5, 0.1, 0.1, 1, 2], [1.5, 0.9, 0.6, 3, 4]], rtol=1e-6)
    table = elite_table(archive)
    assert set(table) == {"cell", "fitness", "descriptor_0", "descriptor_1"}
