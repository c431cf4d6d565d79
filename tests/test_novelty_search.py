"""Novelty search and random search on the Point2D toy: the (mu + lambda) loop, the reference set, the
archive policy, the reward archive and the exploration metrics. Small budgets, shared compiled programs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd import GridArchive, UnstructuredArchive
from qd.algorithms import NoveltySearch, RandomSearch
from qd.metrics import exploration_init, exploration_metrics, exploration_update
from qd.novelty import knn_novelty
from qd.tasks.sparse import Point2D

TASK = Point2D()
GENS = 30


def make_ns():
    return NoveltySearch(TASK.evaluate, TASK.descriptor_bounds, TASK.num_reward_areas, num_neighbors=15)


@pytest.fixture(scope="module")
def ns_run():
    ns = make_ns()
    archive = UnstructuredArchive.create(jnp.zeros(TASK.num_params), 5 * GENS, 2, policy="random", num_per_batch=5)
    reward_archive = UnstructuredArchive.create(jnp.zeros(TASK.num_params), 4000, 2, policy="threshold", threshold=0.0)
    k1, k2 = jax.random.split(jax.random.key(0))
    state0, m0 = ns.init(archive, TASK.initial_genotypes(k1, 50), k2, reward_archive=reward_archive)
    state0 = jax.tree_util.tree_map(lambda x: x, state0)
    snapshot = jax.device_get(state0)
    state, metrics = ns.run(state0, GENS, chunk_size=GENS)
    return ns, snapshot, state, metrics, m0


def test_ns_counts_evaluations_and_fills_the_archive_by_policy(ns_run):
    _, _, state, metrics, m0 = ns_run
    assert int(m0["num_evaluations"]) == 50
    np.testing.assert_array_equal(metrics["num_evaluations"], 50 + 100 * np.arange(1, GENS + 1))
    np.testing.assert_array_equal(metrics["novelty_archive_size"], 5 * np.arange(1, GENS + 1))  # 5 random per generation
    np.testing.assert_allclose(metrics["novelty_archive_fill"], np.arange(1, GENS + 1) / GENS, rtol=1e-6)  # capacity 5 * GENS
    assert metrics["novelty_archive_overflow"][-1] == 0
    assert jax.tree_util.tree_leaves(state.population)[0].shape == (50, TASK.num_params)
    assert float(jnp.max(jnp.abs(state.population))) <= 5.0


def test_ns_population_is_the_most_novel_of_parents_and_offspring(ns_run):
    ns, snapshot, _, _, _ = ns_run
    state = jax.tree_util.tree_map(jnp.asarray, snapshot)
    new, _ = jax.jit(ns.step)(state)
    # Recompute the generation by hand with the same keys (R already holds this generation's rewarding agents).
    key, k_mut, k_eval, _ = jax.random.split(state.key, 4)
    parents = jnp.repeat(state.population, 2, axis=0)
    offspring = jnp.clip(parents + 0.05 * jax.random.normal(jax.random.split(k_mut, 1)[0], parents.shape), -5, 5)
    ev = TASK.evaluate(offspring, k_eval)
    desc = jnp.concatenate([state.descriptors, ev.descriptors])
    ref = np.concatenate([np.asarray(desc), np.asarray(state.archive.descriptors), np.asarray(new.reward_archive.descriptors)])
    mask = np.concatenate([np.ones(150, bool), np.asarray(state.archive.filled), np.asarray(new.reward_archive.filled)])
    nov = []
    for i, q in enumerate(np.asarray(desc)):  # brute force, own row excluded
        d = np.linalg.norm(ref - q, axis=1)
        d[~mask] = np.inf
        d[i] = np.inf
        nov.append(np.sort(d)[:15].mean())
    nov = np.asarray(nov)
    # Distances from a float32 matrix product are exact to ~1e-3 for near-duplicates: compare novelty values.
    chosen = [nov[np.argmin(np.linalg.norm(np.asarray(desc) - d, axis=1))] for d in np.asarray(new.descriptors)]
    np.testing.assert_allclose(np.sort(chosen), np.sort(nov)[-50:], atol=1e-3)


def test_reward_archive_holds_exactly_the_rewarding_agents_and_is_in_the_reference_set(ns_run):
    _, _, state, metrics, _ = ns_run
    r = state.reward_archive
    n = int(r.num_elites)
    assert n > 0 and np.all(np.asarray(r.fitnesses)[:n] > 0)
    assert metrics["reward_areas_found"][-1] >= 1
    # Every stored reward is <= the running best of its area.
    assert max(metrics[f"best_reward_area_{i}"][-1] for i in range(4)) >= float(jnp.max(r.fitnesses[:n]))


def test_ns_explores_more_than_random_search_on_point2d(ns_run):
    _, _, _, metrics, _ = ns_run
    budget = int(metrics["num_evaluations"][-1])
    rs = RandomSearch(TASK.evaluate, TASK.initial_genotypes, 100, TASK.descriptor_bounds, TASK.num_reward_areas)
    grid = GridArchive.create(jnp.zeros(TASK.num_params), 50, *TASK.descriptor_bounds)
    state, _ = rs.init(grid, jax.random.key(0))
    state, rm = rs.run(state, GENS, chunk_size=GENS)
    assert int(rm["num_evaluations"][-1]) == budget + 50
    assert metrics["gt_coverage"][-1] > 1.3 * rm["gt_coverage"][-1]
    assert int(state.archive.num_elites) == int(round(rm["gt_coverage"][-1] * 2500))  # same 50x50 grid
    assert np.all(np.diff(metrics["gt_coverage"]) >= 0)


def test_exploration_metrics_on_hand_made_points():
    s = exploration_init((0.0, 0.0), (1.0, 1.0), num_areas=3, resolution=2)
    pts = jnp.array([[0.1, 0.1], [0.2, 0.2], [0.9, 0.1], [2.0, 2.0]])  # the last is clipped into cell (1, 1)
    s = exploration_update(s, pts, jnp.array([0.0, 0.3, 0.7, 0.2]), jnp.array([-1, 2, 2, 0]))
    m = exploration_metrics(s)
    assert float(m["gt_coverage"]) == 0.75
    np.testing.assert_array_equal(np.asarray(s.counts), [2, 0, 1, 1])
    assert int(m["reward_areas_found"]) == 2
    assert float(m["best_reward_area_2"]) == pytest.approx(0.7) and float(m["best_reward_area_1"]) == 0.0
    from scipy.spatial.distance import jensenshannon

    want = 1 - jensenshannon(np.array([2, 0, 1, 1]) / 4, np.full(4, 0.25))
    assert float(m["uniformity"]) == pytest.approx(want, rel=1e-5)
    flat = exploration_update(exploration_init((0, 0), (1, 1), 1, 2), jnp.array([[0.2, 0.2], [0.2, 0.8], [0.8, 0.2], [0.8, 0.8]]),
                              jnp.zeros(4), jnp.full(4, -1))
    assert float(exploration_metrics(flat)["uniformity"]) == pytest.approx(1.0, abs=1e-6)


def test_bad_configuration_raises():
    with pytest.raises(ValueError):
        NoveltySearch(TASK.evaluate, TASK.descriptor_bounds, 4, offspring_per_parent=0)
    with pytest.raises(ValueError):
        NoveltySearch(TASK.evaluate, TASK.descriptor_bounds, 4, sigma=0.0)
    with pytest.raises(ValueError):
        exploration_init((0, 0, 0), (1, 1, 1), 2)


def test_compare_exploration_runs_three_methods_on_one_budget(tmp_path):
    """What notebook 02 and examples/novelty_search.py call, on a tiny budget (2 generations)."""
    import matplotlib

    matplotlib.use("Agg")
    from emitters import GaussianEmitter
    from qd.algorithms import compare_exploration, plot_exploration_comparison

    emitter = GaussianEmitter(batch_size=200, sigma=0.05, clip=(-5.0, 5.0))
    results = compare_exploration(TASK, 500, seed=0, map_elites_emitter=emitter, chunk_size=2)
    assert list(results) == ["novelty search", "MAP-Elites", "random search"]
    np.testing.assert_array_equal(results["novelty search"]["evals"], [100, 300, 500])
    np.testing.assert_array_equal(results["MAP-Elites"]["evals"], [200, 400, 600])
    np.testing.assert_array_equal(results["random search"]["evals"], [200, 400, 600])
    for r in results.values():
        assert r["gt_coverage"].shape == (3,) and np.all(np.diff(r["gt_coverage"]) >= 0)
        assert 0 < r["gt_coverage"][0] <= 1 and r["points"].ndim == 2 and r["points"].shape[1] == 2
    assert len(results["novelty search"]["points"]) == 10  # 5 offspring archived per generation
    assert len(results["novelty search"]["best_reward"]) == TASK.num_reward_areas
    fig = plot_exploration_comparison(TASK, results, str(tmp_path / "cmp.png"))
    assert len(fig.axes) == 4 and (tmp_path / "cmp.png").stat().st_size > 0
    with pytest.raises(ValueError, match="map_elites_emitter.batch_size must be 200"):
        compare_exploration(TASK, 500, map_elites_emitter=GaussianEmitter(batch_size=10))
