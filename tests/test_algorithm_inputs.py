"""Bad input to the algorithms and emitters, and what users see: each error names the problem and comes
before anything compiles; consumed (donated) states; honest metric names. Tiny archives and few iterations."""

import contextlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emitters import CompositeEmitter, GaussianEmitter, IsoLineEmitter
from qd import Evaluation, GridArchive, MAPElites, Sphere, UnstructuredArchive
from qd.algorithms import NoveltySearch, RandomSearch
from qd.tasks.sparse import Point2D

SPHERE = Sphere(4)
POINT = Point2D()


def sphere_archive():
    return GridArchive.create(jnp.zeros(4), 4, *SPHERE.descriptor_bounds)


def sphere_me(evaluate=SPHERE.evaluate, batch=8):
    return MAPElites(GaussianEmitter(batch_size=batch, sigma=0.1), evaluate)


def make_ns(evaluate=POINT.evaluate):
    return NoveltySearch(evaluate, POINT.descriptor_bounds, POINT.num_reward_areas, num_neighbors=3)


def ns_archive(capacity=20):
    return UnstructuredArchive.create(jnp.zeros(POINT.num_params), capacity, 2, policy="random", num_per_batch=2)


def make_rs(evaluate=POINT.evaluate, sample=POINT.initial_genotypes, batch=8):
    return RandomSearch(evaluate, sample, batch, POINT.descriptor_bounds, POINT.num_reward_areas)


def point_grid():
    return GridArchive.create(jnp.zeros(POINT.num_params), 5, *POINT.descriptor_bounds)


@contextlib.contextmanager
def raises_before_compiling(exception, match):
    """``pytest.raises(exception, match=match)``, and no XLA program may be compiled inside the block."""
    from jax._src import compiler

    original = compiler.compile_or_get_cached

    def refuse(*args, **kwargs):
        raise AssertionError("a program was compiled before the error")

    compiler.compile_or_get_cached = refuse
    try:
        with pytest.raises(exception, match=match):
            yield
    finally:
        compiler.compile_or_get_cached = original


KEY = jax.random.key(0)


# --------------------------------------------------------------------------------------------- #
# 1. empty initial batches, mismatched leading axes
# --------------------------------------------------------------------------------------------- #
EMPTY = "is an empty batch \\(leading axis 0\\); it needs at least one genotype"


def test_map_elites_init_rejects_an_empty_batch():
    algo, archive, empty = sphere_me(), sphere_archive(), jnp.zeros((0, 4))
    for lazy in (None, True, False):
        with raises_before_compiling(ValueError, "MAPElites.init: initial_genotypes " + EMPTY):
            algo.init(archive, empty, KEY, lazy=lazy)
    scores = Evaluation(jnp.zeros((0,)), jnp.zeros((0, 2)))
    with raises_before_compiling(ValueError, "MAPElites.init_with_evaluation: genotypes " + EMPTY):
        algo.init_with_evaluation(archive, empty, scores, KEY)
    with raises_before_compiling(ValueError, "MAPElites.init: initial_genotypes holds no arrays"):
        algo.init(archive, {}, KEY)


def test_init_rejects_leaves_with_different_leading_axes():
    archive = GridArchive.create({"a": jnp.zeros(2), "b": jnp.zeros(3)}, 4, *SPHERE.descriptor_bounds)
    genotypes = {"a": jnp.zeros((8, 2)), "b": jnp.zeros((7, 3))}
    algo = sphere_me()
    with raises_before_compiling(ValueError, r"MAPElites.init: the leaves of initial_genotypes have different leading axes \[7, 8\]"):
        algo.init(archive, genotypes, KEY)
    ns, archive, population = make_ns(), ns_archive(), (jnp.zeros((5, 2)), jnp.zeros((3, 2)))
    with raises_before_compiling(ValueError, r"NoveltySearch.init: the leaves of initial_genotypes have different leading axes \[3, 5\]"):
        ns.init(archive, population, KEY)


def test_novelty_search_init_rejects_an_empty_population():
    ns, archive, empty = make_ns(), ns_archive(), jnp.zeros((0, POINT.num_params))
    with raises_before_compiling(ValueError, "NoveltySearch.init: initial_genotypes " + EMPTY):
        ns.init(archive, empty, KEY)


def test_random_search_batch_size_and_sample_output():
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="RandomSearch: batch_size must be a positive integer; got"):
            make_rs(batch=bad)
    # A sample function that ignores n, or returns nothing: caught at trace time, before compiling.
    grid = point_grid()
    rs = make_rs(sample=lambda key, n: jnp.zeros((3, POINT.num_params)))
    with raises_before_compiling(ValueError, r"RandomSearch: the output of sample <lambda>\(key, 8\) has batch size 3; expected batch_size=8"):
        rs.init(grid, KEY)
    rs = make_rs(sample=lambda key, n: jnp.zeros((0, POINT.num_params)))
    with raises_before_compiling(ValueError, r"RandomSearch: the output of sample <lambda>\(key, 8\): it " + EMPTY):
        rs.init(grid, KEY)


# --------------------------------------------------------------------------------------------- #
# 2. what evaluate returns
# --------------------------------------------------------------------------------------------- #
def tuple_evaluate(genotypes, key):
    ev = SPHERE.evaluate(genotypes, key)
    return ev.fitnesses, ev.descriptors


def three_descriptors(genotypes, key):
    ev = SPHERE.evaluate(genotypes, key)
    return Evaluation(ev.fitnesses, jnp.concatenate([ev.descriptors, ev.descriptors[:, :1]], axis=1))


def column_fitnesses(genotypes, key):
    ev = SPHERE.evaluate(genotypes, key)
    return Evaluation(ev.fitnesses[:, None], ev.descriptors)


NOT_EVALUATION = (
    r"the evaluate function tuple_evaluate returned a tuple, not a qd.Evaluation; it must return "
    r"qd.Evaluation\(fitnesses=<\(B,\) float>, descriptors=<\(B, d\) float>"
)
GENOTYPES = SPHERE.initial_genotypes(jax.random.key(1), 8)


def test_map_elites_names_an_evaluate_that_returns_a_tuple():
    algo, archive = sphere_me(tuple_evaluate), sphere_archive()
    with raises_before_compiling(TypeError, NOT_EVALUATION):  # eager init
        algo.init(archive, GENOTYPES, KEY, lazy=False)
    state, _ = algo.init(archive, GENOTYPES, KEY)  # lazy: the batch waits for the first scan
    with raises_before_compiling(TypeError, NOT_EVALUATION):
        algo.scan(state, 2)


def test_map_elites_checks_the_evaluation_shapes_against_batch_and_archive():
    archive = sphere_archive()
    algo = sphere_me(three_descriptors)
    with raises_before_compiling(
        ValueError,
        r"the evaluate function three_descriptors: Evaluation.descriptors must have shape \(B, d\) = \(8, 2\) "
        r"\(the archive has 2 descriptor dimensions\); got \(8, 3\)",
    ):
        algo.init(archive, GENOTYPES, KEY, lazy=False)
    algo = sphere_me(column_fitnesses)
    with raises_before_compiling(
        ValueError,
        r"the evaluate function column_fitnesses: Evaluation.fitnesses must have shape \(B,\) = \(8,\) "
        r"for a batch of 8 genotypes; got \(8, 1\)",
    ):
        algo.init(archive, GENOTYPES, KEY, lazy=False)


def test_map_elites_host_scores_are_checked():
    algo, archive = MAPElites(GaussianEmitter(batch_size=8, sigma=0.1), None), sphere_archive()
    pair, short = (jnp.zeros(8), jnp.zeros((8, 2))), Evaluation(jnp.zeros(7), jnp.zeros((8, 2)))
    with raises_before_compiling(TypeError, "MAPElites.init_with_evaluation: the evaluation given returned a tuple"):
        algo.init_with_evaluation(archive, GENOTYPES, pair, KEY)
    with raises_before_compiling(ValueError, r"the evaluation given: Evaluation.fitnesses must have shape \(B,\) = \(8,\)"):
        algo.init_with_evaluation(archive, GENOTYPES, short, KEY)
    state, _ = algo.init_with_evaluation(archive, GENOTYPES, SPHERE.evaluate(GENOTYPES), KEY)
    genotypes, state = algo.ask(state)
    wrong = np.zeros((8, 3), np.float32)
    with raises_before_compiling(ValueError, r"MAPElites.tell: the scores given: Evaluation.descriptors must have shape \(B, d\) = \(8, 2\)"):
        algo.tell(state, genotypes, np.zeros(8), wrong)


def ns_tuple(genotypes, key):
    ev = POINT.evaluate(genotypes, key)
    return ev.fitnesses, ev.descriptors


def one_descriptor(genotypes, key):
    ev = POINT.evaluate(genotypes, key)
    return Evaluation(ev.fitnesses, ev.descriptors[:, :1], ev.extras)


def test_novelty_and_random_search_check_evaluate_output():
    population, archive, grid = POINT.initial_genotypes(jax.random.key(1), 5), ns_archive(), point_grid()
    with raises_before_compiling(TypeError, "the evaluate function ns_tuple returned a tuple, not a qd.Evaluation"):
        make_ns(ns_tuple).init(archive, population, KEY)
    with raises_before_compiling(ValueError, r"one_descriptor: Evaluation.descriptors must have shape \(B, d\) = \(5, 2\)"):
        make_ns(one_descriptor).init(archive, population, KEY)
    with raises_before_compiling(TypeError, "the evaluate function ns_tuple returned a tuple, not a qd.Evaluation"):
        make_rs(ns_tuple).init(grid, KEY, lazy=False)
    with raises_before_compiling(ValueError, r"one_descriptor: Evaluation.descriptors must have shape \(B, d\) = \(8, 2\)"):
        make_rs(one_descriptor).init(grid, KEY, lazy=False)
    rs = make_rs(ns_tuple)
    state, _ = rs.init(grid, KEY)  # lazy (the default): generation 0 waits for the first scan, which checks it
    with raises_before_compiling(TypeError, "the evaluate function ns_tuple returned a tuple, not a qd.Evaluation"):
        rs.scan(state, 1)


# --------------------------------------------------------------------------------------------- #
# 3. emitter configuration, at construction
# --------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("cls", [GaussianEmitter, IsoLineEmitter])
def test_emitters_check_clip_batch_size_and_sigmas_at_construction(cls):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: clip must be None or a pair \(low, high\) of numbers, e.g. \(-1.0, 1.0\); got 1.0"):
        cls(clip=1.0)
    with pytest.raises(ValueError, match=rf"{name}: clip: low must be below high; got \(1.0, 0.0\)"):
        cls(clip=(1.0, 0.0))
    with pytest.raises(ValueError, match=rf"{name}: clip must be None or a pair .*NaN not"):
        cls(clip=(0.0, math.nan))
    with pytest.raises(ValueError, match=f"{name}: batch_size must be a positive integer; got 0"):
        cls(batch_size=0)
    with pytest.raises(ValueError, match=f"{name}: batch_size must be a positive integer; got 2.5"):
        cls(batch_size=2.5)
    sigma = "sigma" if cls is GaussianEmitter else "line_sigma"
    with pytest.raises(ValueError, match=f"{name}: {sigma} must be positive and finite; got inf"):
        cls(**{sigma: math.inf})
    # Infinite bounds are fine; a list becomes a hashable tuple of floats.
    assert cls(clip=[0, math.inf]).clip == (0.0, math.inf)


def test_composite_emitter_checks_its_members():
    with pytest.raises(ValueError, match=r"CompositeEmitter: member 1 \(3\) is not an emitter"):
        CompositeEmitter.create(GaussianEmitter(batch_size=2), 3)
    with pytest.raises(ValueError, match="CompositeEmitter: member 0 .* is not an emitter"):
        CompositeEmitter.create(GaussianEmitter)  # the class, not an instance
    with pytest.raises(ValueError, match="batch_size=64 but the members' batch sizes sum to 2"):
        CompositeEmitter(emitters=(GaussianEmitter(batch_size=2),))
    with pytest.raises(ValueError, match="CompositeEmitter: clip is not applied"):
        CompositeEmitter(batch_size=2, emitters=(GaussianEmitter(batch_size=2),), clip=(0.0, 1.0))
    assert CompositeEmitter.create(GaussianEmitter(batch_size=2), IsoLineEmitter(batch_size=3)).batch_size == 5


def test_novelty_search_configuration_errors():
    with pytest.raises(ValueError, match=r"NoveltySearch: genotype_bounds: low must be below high; got \(5, -5\)"):
        NoveltySearch(POINT.evaluate, POINT.descriptor_bounds, 4, genotype_bounds=(5, -5))
    with pytest.raises(ValueError, match="NoveltySearch: num_neighbors must be a positive integer; got 0"):
        NoveltySearch(POINT.evaluate, POINT.descriptor_bounds, 4, num_neighbors=0)
    with pytest.raises(ValueError, match="NoveltySearch: sigma must be positive and finite; got nan"):
        NoveltySearch(POINT.evaluate, POINT.descriptor_bounds, 4, sigma=math.nan)
    with pytest.raises(TypeError, match="NoveltySearch: evaluate must be a function"):
        NoveltySearch(POINT, POINT.descriptor_bounds, 4)


# --------------------------------------------------------------------------------------------- #
# 4. consumed (donated) states
# --------------------------------------------------------------------------------------------- #
CONSUMED = r"this state was consumed by a previous {} \(its buffers are donated\); pass the state it returned"


def test_map_elites_state_reused_after_run_raises_a_clear_error():
    algo = sphere_me()
    state0, _ = algo.init(sphere_archive(), SPHERE.initial_genotypes(jax.random.key(1), 8), KEY)
    state1, m = algo.run(state0, 2, chunk_size=2)
    assert m["iteration"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="MAPElites.run: " + CONSUMED.format("run/scan/tell")):
        algo.run(state0, 2, chunk_size=2)
    with pytest.raises(ValueError, match="MAPElites.scan: " + CONSUMED.format("run/scan/tell")):
        algo.scan(state0, 2)
    # The returned state goes on, in the program already compiled.
    state2, m = algo.run(state1, 2, chunk_size=2)
    assert m["iteration"].tolist() == [3, 4]
    genotypes, state2 = algo.ask(state2)
    ev = SPHERE.evaluate(genotypes)
    state3, _ = algo.tell(state2, genotypes, ev.fitnesses, ev.descriptors)
    with pytest.raises(ValueError, match="MAPElites.tell: " + CONSUMED.format("run/scan/tell")):
        algo.tell(state2, genotypes, ev.fitnesses, ev.descriptors)


def test_novelty_and_random_search_state_reuse_raises_a_clear_error():
    ns = make_ns()
    state0, _ = ns.init(ns_archive(), POINT.initial_genotypes(jax.random.key(1), 5), KEY)
    state1, _ = ns.run(state0, 2, chunk_size=2)
    with pytest.raises(ValueError, match="NoveltySearch.run: " + CONSUMED.format("run/scan/tell")):
        ns.run(state0, 2, chunk_size=2)
    _, m = ns.run(state1, 2, chunk_size=2)
    assert m["iteration"].tolist() == [3, 4]
    rs = make_rs()
    state0, _ = rs.init(point_grid(), KEY)
    state1, _ = rs.run(state0, 2, chunk_size=2)
    with pytest.raises(ValueError, match="RandomSearch.scan: " + CONSUMED.format("run/scan/tell")):
        rs.scan(state0, 2)
    _, m = rs.run(state1, 2, chunk_size=2)
    assert m["iteration"].tolist() == [3, 4]


# --------------------------------------------------------------------------------------------- #
# 5. metric names
# --------------------------------------------------------------------------------------------- #
EXPLORATION = {"gt_coverage", "uniformity", "reward_areas_found"} | {f"best_reward_area_{i}" for i in range(4)}
QD = {"qd_score", "max_fitness", "mean_fitness", "num_elites"}  # of every algorithm's archive of record
COUNTS = {"num_evaluations", "iteration"}


def test_metric_keys_of_each_algorithm():
    """One set for all: the archive of record's QD metrics, the exploration metrics on a task with a ground
    truth, the algorithm's own, the counts. A novelty archive's fill is never called a coverage."""
    me = sphere_me()
    _, m = me.init(sphere_archive(), SPHERE.initial_genotypes(jax.random.key(1), 8), KEY)
    assert set(m) == QD | {"coverage"} | COUNTS  # no ground truth on the sphere

    from emitters import GaussianEmitter
    from qd.metrics import GroundTruth

    me = MAPElites(GaussianEmitter(batch_size=8, sigma=0.1), POINT.evaluate, ground_truth=GroundTruth.of_task(POINT))
    state, _ = me.init(point_grid(), POINT.initial_genotypes(jax.random.key(1), 8), KEY)
    state, m = me.run(state, 2, chunk_size=3)
    assert set(m) == QD | {"coverage"} | EXPLORATION | COUNTS
    assert m["gt_coverage"][-1] == pytest.approx(np.mean(np.asarray(state.exploration.counts) > 0))

    ns = make_ns()
    reward = UnstructuredArchive.create(jnp.zeros(POINT.num_params), 50, 2, policy="threshold", threshold=0.0)
    state, m = ns.init(ns_archive(), POINT.initial_genotypes(jax.random.key(1), 5), KEY, reward_archive=reward)
    state, m = ns.run(state, 3, chunk_size=3)
    assert set(m) == QD | EXPLORATION | COUNTS | {
        "novelty_archive_size", "novelty_archive_fill", "novelty_archive_overflow", "reward_archive_size",
        "mean_population_fitness",
    }
    # The fill fraction is the archive's, 2 per generation out of 20 slots; the ground truth is elsewhere.
    np.testing.assert_allclose(m["novelty_archive_fill"], [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(m["novelty_archive_size"], [2, 4, 6])
    np.testing.assert_array_equal(m["num_elites"], [2, 4, 6])
    counts = np.asarray(state.exploration.counts)
    assert m["gt_coverage"][-1] == pytest.approx(np.mean(counts > 0))

    rs = make_rs()
    state, m = rs.init(point_grid(), KEY, lazy=False)
    assert set(m) == QD | {"coverage"} | EXPLORATION | COUNTS
    assert float(m["coverage"]) == pytest.approx(int(state.archive.num_elites) / 25)  # its own 5x5 grid
