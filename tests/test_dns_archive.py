"""The Dominated Novelty Search archive: survivors and slots on hand-made points, exact agreement with a
brute-force NumPy reference (random pools with duplicates and ties, several k and capacities, several
adds in a row), rejection of non-finite candidates, jit / scan, save and load, and a short MAP-Elites run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emitters import GaussianEmitter
from qd import NEW, NOT_ADDED, DominatedNoveltyArchive, GridArchive, MAPElites, Sphere, load_archive, save_archive
from qd.archives import Archive
from qd.archives.dns import dominated_novelty


# --------------------------------------------------------------------------------------------- #
# Brute-force reference (float64, loops)
# --------------------------------------------------------------------------------------------- #
def reference_scores(desc, fit, k):
    """Score of every row of a pool of valid individuals: mean distance to the min(k, |D|) nearest
    strictly fitter ones, +inf when none is fitter."""
    desc = np.asarray(desc, np.float64)
    fit = np.asarray(fit, np.float64)
    out = np.empty(len(fit))
    for i in range(len(fit)):
        dists = sorted(np.sqrt(np.sum((desc[i] - desc[j]) ** 2)) for j in range(len(fit)) if fit[j] > fit[i])
        out[i] = np.mean(dists[:k]) if dists else np.inf
    return out


def reference_add(slots, batch, capacity, k, lower=None, upper=None):
    """One add, as the docstring states it. ``slots``: list of C entries, None or (id, desc, fit);
    ``batch``: list of (id, desc, fit). Returns (new slots, per-candidate (slot or -1, score or -inf))."""
    pool = []  # (pool index, id, desc, fit)
    for s, entry in enumerate(slots):
        if entry is not None:
            pool.append((s, *entry))
    results = [(-1, -np.inf)] * len(batch)
    for b, (ident, desc, fit) in enumerate(batch):
        desc = np.asarray(desc, np.float32)
        if np.isfinite(fit) and np.all(np.isfinite(desc)):
            if lower is not None:
                desc = np.clip(desc, np.float32(lower), np.float32(upper))
            pool.append((capacity + b, ident, desc, np.float32(fit)))
    scores = reference_scores([p[2] for p in pool], [p[3] for p in pool], k) if pool else []
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], pool[i][0]))
    survivors = set(order[:capacity])
    new_slots = [None] * capacity
    for i in survivors:
        if pool[i][0] < capacity:
            new_slots[pool[i][0]] = pool[i][1:]
    free = [s for s in range(capacity) if new_slots[s] is None]
    placed = 0
    for i in range(len(pool)):
        index = pool[i][0]
        if index >= capacity:
            b = index - capacity
            if i in survivors:
                new_slots[free[placed]] = pool[i][1:]
                results[b] = (free[placed], scores[i])
                placed += 1
            else:
                results[b] = (-1, scores[i])
    return new_slots, results


# One compiled program per shape: eager op-by-op adds compile every primitive, about 4x the cost; the eager
# path is checked against a jitted lax.scan of adds in test_scan_carry_equals_eager_adds.
jitted_add = jax.jit(lambda archive, genotypes, descriptors, fitnesses: archive.add(genotypes, descriptors, fitnesses))


def check_against_reference(archive, slots, ids, desc, fit, **bounds):
    """Add a batch to both; compare the whole population slot by slot and the AddResult exactly."""
    capacity = archive.capacity
    batch = list(zip(ids, np.asarray(desc), np.asarray(fit)))
    slots, expected = reference_add(slots, batch, capacity, archive.k, **bounds)
    archive, r = jitted_add(archive, jnp.asarray(ids, jnp.float32), jnp.asarray(desc), jnp.asarray(fit))
    filled = np.asarray(archive.filled)
    np.testing.assert_array_equal(filled, [s is not None for s in slots])
    got_ids = np.asarray(archive.genotypes)
    for s, entry in enumerate(slots):
        if entry is not None:
            assert got_ids[s] == entry[0], f"slot {s}: id {got_ids[s]}, reference {entry[0]}"
            np.testing.assert_array_equal(np.asarray(archive.descriptors[s]), entry[1])
            assert np.float32(archive.fitnesses[s]) == np.float32(entry[2])
        else:
            assert np.float32(archive.fitnesses[s]) == -np.inf
    np.testing.assert_array_equal(np.asarray(r.cell), [c for c, _ in expected])
    np.testing.assert_array_equal(np.asarray(r.status), [NEW if c >= 0 else NOT_ADDED for c, _ in expected])
    np.testing.assert_allclose(np.asarray(r.improvement), [s for _, s in expected], rtol=2e-6)
    return archive, slots


# --------------------------------------------------------------------------------------------- #
# Hand-made points
# --------------------------------------------------------------------------------------------- #
def make(capacity=3, k=1, dim=1, **kw):
    return DominatedNoveltyArchive.create(jnp.zeros(()), capacity, dim, k=k, **kw)


def test_is_an_archive_and_starts_empty():
    a = make()
    assert isinstance(a, Archive)
    assert int(a.num_elites) == 0 and float(a.coverage) == 0.0 and a.capacity == 3 and a.k == 1
    lo, hi = a.bounds
    assert np.all(np.isinf(lo)) and np.all(np.isinf(hi))
    assert float(a.qd_score()) == 0.0


def test_survivors_and_slots_on_hand_made_points():
    a = make(capacity=3, k=1)
    # Scores with k = 1: fitter-neighbour distances 1, 1, +inf (the best), 8, 0.1.
    ids = jnp.arange(5.0)
    d = jnp.array([[0.0], [1.0], [2.0], [10.0], [0.1]])
    f = jnp.array([1.0, 2.0, 3.0, 0.0, 0.5])
    a, r = a.add(ids, d, f)
    np.testing.assert_allclose(np.asarray(r.improvement), [1.0, 1.0, np.inf, 8.0, 0.1], rtol=1e-6)
    # inf, 8, then the tie at 1 goes to the lower index (0, not 1). New survivors take slots in batch order.
    np.testing.assert_array_equal(np.asarray(r.status), [NEW, NOT_ADDED, NEW, NEW, NOT_ADDED])
    np.testing.assert_array_equal(np.asarray(r.cell), [0, -1, 1, 2, -1])
    np.testing.assert_array_equal(np.asarray(a.genotypes), [0.0, 2.0, 3.0])
    assert float(a.coverage) == 1.0 and float(a.qd_score()) == 4.0
    np.testing.assert_allclose(np.asarray(a.scores()), [2.0, np.inf, 8.0], rtol=1e-6)


def test_full_population_replacement_order():
    # k = 1, capacity 3: stored (slots 0..2) x = 0, 2, 10 with f = 1, 3, 0.
    a = make(capacity=3, k=1)
    a, _ = a.add(jnp.array([0.0, 1.0, 2.0]), jnp.array([[0.0], [2.0], [10.0]]), jnp.array([1.0, 3.0, 0.0]))
    np.testing.assert_allclose(np.asarray(a.scores()), [2.0, np.inf, 8.0], rtol=1e-6)
    # Candidates: x=20 f 0.5 (fitter: 0, 2 -> 18), x=2 f 4 (the best -> inf).
    # Pool scores: [slot0 2, slot1 0 (the new best sits on it), slot2 8, cand 18, cand inf].
    # Survivors: cand x=2 (inf), cand x=20 (18), slot 2 (8). Slots 0 and 1 are freed and refilled in batch order.
    a, r = a.add(jnp.array([5.0, 6.0]), jnp.array([[20.0], [2.0]]), jnp.array([0.5, 4.0]))
    np.testing.assert_allclose(np.asarray(r.improvement), [18.0, np.inf], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(r.cell), [0, 1])
    np.testing.assert_array_equal(np.asarray(a.genotypes), [5.0, 6.0, 2.0])
    np.testing.assert_array_equal(np.asarray(a.fitnesses), [0.5, 4.0, 0.0])
    np.testing.assert_array_equal(np.asarray(a.descriptors).ravel(), [20.0, 2.0, 10.0])


def test_ties_go_to_stored_individuals_then_lowest_index():
    # Equal fitnesses never compete (strictly fitter only): every score is +inf and the order decides.
    a = make(capacity=2, k=2)
    a, r = a.add(jnp.array([0.0, 1.0, 2.0]), jnp.zeros((3, 1)), jnp.ones(3))
    np.testing.assert_array_equal(np.asarray(r.cell), [0, 1, -1])  # lowest batch indices
    a, r = a.add(jnp.array([3.0, 4.0]), jnp.zeros((2, 1)), jnp.ones(2))  # exact duplicates of the stored
    np.testing.assert_array_equal(np.asarray(r.cell), [-1, -1])  # the stored ones win the tie
    np.testing.assert_array_equal(np.asarray(a.genotypes), [0.0, 1.0])
    np.testing.assert_array_equal(np.asarray(r.improvement), [np.inf, np.inf])
    # A 3-4-5 triangle: two candidates at exactly distance 5 from the one fitter point score the same.
    b = make(capacity=2, k=1, dim=2)
    b, r = b.add(jnp.arange(3.0), jnp.array([[0.0, 0.0], [3.0, 4.0], [-4.0, 3.0]]), jnp.array([2.0, 1.0, 1.0]))
    np.testing.assert_array_equal(np.asarray(r.improvement), [np.inf, 5.0, 5.0])
    np.testing.assert_array_equal(np.asarray(r.cell), [0, 1, -1])


def test_fewer_than_k_fitter_neighbours_use_the_mean_of_those_present():
    a = make(capacity=4, k=3)
    # The last point has two fitter ones (distances 1 and 3): mean 2, not (1 + 3 + 0) / 3 or +inf.
    a, r = a.add(jnp.arange(3.0), jnp.array([[1.0], [3.0], [0.0]]), jnp.array([2.0, 1.0, 0.0]))
    np.testing.assert_allclose(np.asarray(r.improvement), [np.inf, 2.0, 2.0], rtol=1e-6)


def test_best_always_survives_and_population_size_is_fixed():
    key = jax.random.key(3)
    a = make(capacity=8, k=3, dim=2)
    for i in range(6):
        k1, k2, key = jax.random.split(key, 3)
        d = jax.random.normal(k1, (16, 2))
        f = jax.random.normal(k2, (16,))
        best_before = float(jnp.max(jnp.where(a.filled, a.fitnesses, -jnp.inf)))
        a, _ = a.add(jnp.full(16, float(i)), d, f)
        assert int(a.num_elites) == 8
        assert float(a.best().fitnesses[0]) == max(best_before, float(jnp.max(f)))


# --------------------------------------------------------------------------------------------- #
# Against the brute-force reference
# --------------------------------------------------------------------------------------------- #
def random_batch(rng, n, dim, grid, stored=None):
    """Continuous descriptors (or integer points in 1-D when ``grid``), fitnesses from few values (ties),
    exact duplicates inside the batch and copies of stored individuals."""
    if grid:
        desc = rng.integers(0, 6, (n, 1)).astype(np.float32)
    else:
        desc = rng.normal(size=(n, dim)).astype(np.float32)
    fit = rng.integers(0, 4, n).astype(np.float32)
    for _ in range(n // 4):  # duplicates of other batch members
        i, j = rng.integers(0, n, 2)
        desc[i], fit[i] = desc[j], fit[j]
    if stored is not None:
        entries = [e for e in stored if e is not None]
        for _ in range(min(len(entries), n // 4)):  # copies of stored individuals
            e = entries[rng.integers(0, len(entries))]
            i = rng.integers(0, n)
            desc[i], fit[i] = e[1], e[2]
    return desc, fit


# Every (k, capacity) pair once, grid and continuous descriptors alternating (a covering set of the
# 3 x 3 x 2 grid: each case compiles its own program).
@pytest.mark.parametrize(
    "k, capacity, grid",
    [(1, 1, False), (1, 7, True), (1, 20, False), (3, 1, True), (3, 7, False), (3, 20, True), (5, 1, False),
     (5, 7, True), (5, 20, False)],
)
def test_matches_reference_over_several_adds(k, capacity, grid):
    dim = 1 if grid else 3
    rng = np.random.default_rng(100 * k + capacity + int(grid))
    archive = DominatedNoveltyArchive.create(jnp.zeros(()), capacity, dim, k=k)
    slots = [None] * capacity
    next_id = 0
    for step, n in enumerate([5, 12, 12, 3, 12]):
        desc, fit = random_batch(rng, n, dim, grid, slots)
        ids = np.arange(next_id, next_id + n, dtype=np.float32)
        next_id += n
        # checked slot by slot (check_against_reference) for two batch sizes, by ids only for the third
        if n == 12:
            batch = list(zip(ids, desc, fit))
            slots_ref, expected = reference_add(slots, batch, capacity, k)
            archive, r = jitted_add(archive, jnp.asarray(ids), jnp.asarray(desc), jnp.asarray(fit))
            np.testing.assert_array_equal(np.asarray(r.cell), [c for c, _ in expected])
            got = np.asarray(archive.genotypes)
            np.testing.assert_array_equal(np.asarray(archive.filled), [s is not None for s in slots_ref])
            assert all(got[s] == e[0] for s, e in enumerate(slots_ref) if e is not None)
            slots = slots_ref
        else:
            archive, slots = check_against_reference(archive, slots, ids, desc, fit)


def test_matches_reference_with_bounds_and_clipping():
    rng = np.random.default_rng(7)
    archive = DominatedNoveltyArchive.create(jnp.zeros(()), 10, 2, [-1.0, -0.5], [1.0, 0.5], k=2)
    slots = [None] * 10
    for step in range(4):
        desc = (2.0 * rng.normal(size=(9, 2))).astype(np.float32)  # many outside the bounds
        fit = rng.normal(size=9).astype(np.float32)
        ids = np.arange(9 * step, 9 * step + 9, dtype=np.float32)
        archive, slots = check_against_reference(archive, slots, ids, desc, fit, lower=[-1.0, -0.5], upper=[1.0, 0.5])
    assert np.all(np.abs(np.asarray(archive.descriptors)) <= [1.0, 0.5])


def test_scores_do_not_depend_on_the_block_size():
    rng = np.random.default_rng(0)
    desc = jnp.asarray(rng.normal(size=(37, 4)), jnp.float32)
    fit = jnp.asarray(rng.integers(0, 5, 37), jnp.float32).at[3].set(-jnp.inf)  # one excluded individual
    full = dominated_novelty(desc, fit, 4)
    for rows in (1, 5, 36, 37, 100):
        np.testing.assert_array_equal(np.asarray(dominated_novelty(desc, fit, 4, block_rows=rows)), np.asarray(full))
    keep = np.arange(37) != 3
    ref = reference_scores(np.asarray(desc)[keep], np.asarray(fit)[keep], 4)
    np.testing.assert_allclose(np.asarray(full)[keep], ref, rtol=2e-6)
    # One compiled function: the same bits when the caller is itself jitted.
    inner = jax.jit(lambda d, f: dominated_novelty(d * 1.0, f, 4, block_rows=5))(desc, fit)
    np.testing.assert_array_equal(np.asarray(inner), np.asarray(full))
    with pytest.raises(ValueError, match="k must be"):
        dominated_novelty(desc, fit, 0)
    with pytest.raises(ValueError, match="must match"):
        dominated_novelty(desc, fit[:5], 3)


def test_many_descriptor_dimensions_and_copies_across_blocks():
    # d > 16 takes the rolled loop over dimensions; copies of one individual land in different blocks.
    rng = np.random.default_rng(5)
    desc = rng.normal(size=(50, 20)).astype(np.float32)
    fit = rng.integers(0, 3, 50).astype(np.float32)
    desc[[7, 31, 49]] = desc[2]
    fit[[7, 31, 49]] = fit[2]
    got = np.asarray(dominated_novelty(jnp.asarray(desc), jnp.asarray(fit), 3, block_rows=8))
    np.testing.assert_allclose(got, reference_scores(desc, fit, 3), rtol=2e-6)
    assert got[2] == got[7] == got[31] == got[49]


def test_vmap_over_archives():
    # Several runs in one program (the driver vmaps a run over its key): same as one at a time.
    a = DominatedNoveltyArchive.create(jnp.zeros(()), 6, 2, k=2)
    d = jax.random.normal(jax.random.key(8), (3, 10, 2))
    f = jax.random.normal(jax.random.key(9), (3, 10))
    g = jnp.arange(30.0).reshape(3, 10)
    stacked = jax.tree_util.tree_map(lambda x: jnp.stack([x] * 3), a)
    many, r = jax.jit(jax.vmap(jitted_add))(stacked, g, d, f)
    for i in range(3):
        one, r1 = jitted_add(a, g[i], d[i], f[i])
        np.testing.assert_array_equal(np.asarray(r.cell[i]), np.asarray(r1.cell))
        np.testing.assert_array_equal(np.asarray(many.genotypes[i]), np.asarray(one.genotypes))


# --------------------------------------------------------------------------------------------- #
# Non-finite candidates, validation
# --------------------------------------------------------------------------------------------- #
def test_non_finite_candidates_are_never_stored_and_never_neighbours():
    a = make(capacity=10, k=2, dim=2)
    d = jnp.array([[0.0, 0.0], [1.0, 0.0], [jnp.nan, 0.0], [0.0, jnp.inf], [0.5, 0.5], [2.0, 2.0], [3.0, 0.0]])
    f = jnp.array([1.0, 2.0, 9.0, 9.0, jnp.nan, jnp.inf, -jnp.inf])
    a, r = a.add(jnp.arange(7.0), d, f)
    np.testing.assert_array_equal(np.asarray(r.cell), [0, 1, -1, -1, -1, -1, -1])
    np.testing.assert_array_equal(np.asarray(r.status), [NEW, NEW] + [NOT_ADDED] * 5)
    # The fit ones are scored as if the rejected ones were not there (their fitness 9 / +inf counts for nothing).
    np.testing.assert_allclose(np.asarray(r.improvement), [1.0, np.inf] + [-np.inf] * 5)
    assert int(a.num_elites) == 2 and np.all(np.isfinite(np.asarray(a.descriptors)))
    assert np.all(np.isfinite(np.asarray(a.fitnesses)[:2])) and np.all(np.asarray(a.fitnesses)[2:] == -np.inf)


def test_create_and_add_validation():
    with pytest.raises(ValueError, match="capacity"):
        DominatedNoveltyArchive.create(jnp.zeros(2), 0, 2)
    with pytest.raises(ValueError, match="k must"):
        DominatedNoveltyArchive.create(jnp.zeros(2), 4, 2, k=0)
    with pytest.raises(ValueError, match="both"):
        DominatedNoveltyArchive.create(jnp.zeros(2), 4, 2, lower=[0.0, 0.0])
    with pytest.raises(ValueError, match="dimensions"):
        DominatedNoveltyArchive.create(jnp.zeros(2), 4, 2, [0.0], [1.0])
    with pytest.raises(ValueError, match="qd_offset"):
        DominatedNoveltyArchive.create(jnp.zeros(2), 4, 2, qd_offset=float("nan"))
    a = DominatedNoveltyArchive.create(jnp.zeros(2), 4, 2)
    with pytest.raises(ValueError, match="descriptors must have shape"):
        a.add(jnp.zeros((3, 2)), jnp.zeros((3, 3)), jnp.zeros(3))
    with pytest.raises(ValueError, match="genotype leaf"):
        a.add(jnp.zeros((3, 5)), jnp.zeros((3, 2)), jnp.zeros(3))


# --------------------------------------------------------------------------------------------- #
# jit / scan, save / load
# --------------------------------------------------------------------------------------------- #
def test_scan_carry_equals_eager_adds():
    key = jax.random.key(1)
    d = jax.random.normal(key, (5, 16, 2))
    f = jax.random.normal(jax.random.key(2), (5, 16))
    g = jnp.arange(80.0).reshape(5, 16)
    a0 = DominatedNoveltyArchive.create(jnp.zeros(()), 24, 2, k=3)

    def body(a, xs):
        a, r = a.add(*xs)
        return a, r.cell

    scanned, cells = jax.jit(lambda a: jax.lax.scan(body, a, (g, d, f)))(a0)
    eager = a0
    for i in range(5):
        eager, r = eager.add(g[i], d[i], f[i])
        np.testing.assert_array_equal(np.asarray(cells[i]), np.asarray(r.cell))
    for x, y in zip(jax.tree_util.tree_leaves(scanned), jax.tree_util.tree_leaves(eager)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("bounded", [False, True])
def test_save_and_load_round_trip(tmp_path, bounded):
    bounds = ([-1.0, -1.0], [1.0, 1.0]) if bounded else (None, None)
    a = DominatedNoveltyArchive.create(
        {"w": jnp.zeros((2, 3)), "b": jnp.zeros(())}, 12, 2, *bounds, k=4,
        extras_template={"steps": jnp.zeros((), jnp.int32)}, qd_offset=-5.0,
    )
    key = jax.random.key(4)
    g = {"w": jax.random.normal(key, (20, 2, 3)), "b": jnp.arange(20.0)}
    a, _ = a.add(g, jax.random.normal(key, (20, 2)), jnp.arange(20.0) % 3, {"steps": jnp.arange(20, dtype=jnp.int32)})
    path = str(tmp_path / "dns.npz")
    save_archive(path, a)
    b = load_archive(path)
    assert type(b) is DominatedNoveltyArchive and b.config() == a.config() and b.k == 4
    assert b.lower == a.lower and b.upper == a.upper and b.qd_offset == -5.0
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # The loaded archive behaves the same on the next batch.
    g2 = {"w": jnp.ones((5, 2, 3)), "b": jnp.ones(5)}
    d2, f2, e2 = jnp.full((5, 2), 0.3), jnp.arange(5.0), {"steps": jnp.zeros(5, jnp.int32)}
    (a2, ra), (b2, rb) = a.add(g2, d2, f2, e2), b.add(g2, d2, f2, e2)
    np.testing.assert_array_equal(np.asarray(ra.cell), np.asarray(rb.cell))
    np.testing.assert_array_equal(np.asarray(a2.fitnesses), np.asarray(b2.fitnesses))


# --------------------------------------------------------------------------------------------- #
# MAP-Elites with this archive
# --------------------------------------------------------------------------------------------- #
def test_map_elites_with_dns_improves_the_qd_score():
    """DNS keeps a fixed-size population, so its own QD-score stops growing once it is full (mean fitness
    is traded for spread). As in the paper, quality-diversity is measured by passing the population
    through a grid (here 20x20 over the task's descriptor bounds): that QD-score must grow."""
    task = Sphere(10)
    archive = DominatedNoveltyArchive.create(jnp.zeros(10), 256, 2, k=3)
    algo = MAPElites(GaussianEmitter(batch_size=64, sigma=0.5), task.evaluate)
    key = jax.random.key(0)

    def grid_qd(population):
        grid = GridArchive.create(jnp.zeros(10), 20, *task.descriptor_bounds)
        fit = jnp.where(population.filled, population.fitnesses, jnp.nan)  # empty slots are rejected
        grid, _ = grid.add(population.genotypes, population.descriptors, fit)
        return float(grid.qd_score())

    state, _ = algo.init(archive, task.initial_genotypes(key, 64), key)
    state, early = algo.scan(state, 5)
    assert float(early["coverage"][-1]) == 1.0  # 64 per iteration: full after 4 iterations
    qd_early = grid_qd(state.archive)
    state, late = algo.scan(state, 55)
    # Over seeds 0-2: grid QD-score 1180-1280 after 5 iterations, 10900-11500 after 60; best fitness
    # 91.8 at the start, 98.8-99.1 at the end.
    assert grid_qd(state.archive) > 5.0 * qd_early
    assert float(late["max_fitness"][-1]) > 98.0 > float(early["max_fitness"][0])
    assert float(late["qd_score"][-1]) > float(early["qd_score"][0])  # the population's own, full vs 1/4 full
