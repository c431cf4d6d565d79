"""The driver (qd.algorithms.driver) for every algorithm: host-side ask/tell make exactly the run the compiled
loop makes; several seeds vmapped in one program make exactly the separate runs; a new algorithm is its
init/ask/tell/archive and nothing else. Tiny archives, few iterations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from emitters import IsoLineEmitter
from qd import Arm, GridArchive, MAPElites, UnstructuredArchive
from qd.algorithms import Driver, NoveltySearch, RandomSearch
from qd.algorithms.driver import Phase
from qd.archives.base import Archive
from qd.metrics import GroundTruth
from qd.tasks.sparse import Point2D

from _driver_checks import ask_tell, assert_same

ARM = Arm(8)
POINT = Point2D()


def map_elites(batch=16):
    archive = GridArchive.create(jnp.zeros(8), 8, *ARM.descriptor_bounds, qd_offset=ARM.qd_offset)
    emitter = IsoLineEmitter(batch_size=batch, iso_sigma=0.01, line_sigma=0.1, clip=(0.0, 1.0))
    return MAPElites(emitter, ARM.evaluate), archive


def novelty_search():
    archive = UnstructuredArchive.create(jnp.zeros(POINT.num_params), 40, 2, policy="random", num_per_batch=4)
    return NoveltySearch(POINT.evaluate, POINT.descriptor_bounds, POINT.num_reward_areas, num_neighbors=4), archive


def random_search():
    grid = GridArchive.create(jnp.zeros(POINT.num_params), 6, *POINT.descriptor_bounds)
    rs = RandomSearch(POINT.evaluate, POINT.initial_genotypes, 12, POINT.descriptor_bounds, POINT.num_reward_areas)
    return rs, grid


def starts():
    """(name, driver, key -> (state, metrics) starting a run, keys (S,) -> the S runs in one program,
    the task's evaluate)."""
    me, grid = map_elites()
    ns, novelty_archive = novelty_search()
    rs, rs_grid = random_search()
    me_batch = lambda key: ARM.initial_genotypes(jax.random.fold_in(key, 1), 16)
    ns_batch = lambda key: POINT.initial_genotypes(jax.random.fold_in(key, 1), 6)
    return [
        ("map_elites", me, lambda key: me.init(grid, me_batch(key), key),
         lambda keys: me.init_seeds(grid, jax.vmap(me_batch)(keys), keys, seed_axes=(None, 0)), ARM.evaluate),
        ("novelty_search", ns, lambda key: ns.init(novelty_archive, ns_batch(key), key),
         lambda keys: ns.init_seeds(novelty_archive, jax.vmap(ns_batch)(keys), keys, seed_axes=(None, 0)),
         POINT.evaluate),
        ("random_search", rs, lambda key: rs.init(rs_grid, key), lambda keys: rs.init_seeds(rs_grid, keys),
         POINT.evaluate),
    ]


@pytest.mark.parametrize("index", range(3), ids=["map_elites", "novelty_search", "random_search"])
def test_ask_tell_is_exactly_the_compiled_loop(index):
    """Same genotypes asked, same key schedule, same state and metrics, bit for bit. The evaluation is the
    task's own, jitted alone: on these tasks XLA gives it the same bits as inside the loop program."""
    name, algo, init, _, evaluate = starts()[index]
    key = jax.random.key(7)
    scanned, m_scan = algo.scan(init(key)[0], 4)
    state, m0 = init(key)
    told, m_told = ask_tell(algo, state, 4, jax.jit(evaluate))
    assert_same(told, scanned)
    for k, v in m_told.items():
        np.testing.assert_array_equal(v, m_scan[k][-1], err_msg=f"{name}: {k}")
    lazy = int(m0["iteration"]) < 0
    assert lazy == (name != "novelty_search")  # its P parents are not shaped like its 2P offspring


def test_ask_tell_after_an_eager_start_given_the_scores_is_the_eager_run():
    algo, grid = map_elites()
    key = jax.random.key(3)
    init = ARM.initial_genotypes(key, 10)  # not the emitter's batch: an eager start
    scanned, _ = algo.scan(algo.init(grid, init, key)[0], 3)
    state, m = algo.init_with_evaluation(grid, init, jax.jit(ARM.evaluate)(init), key)
    assert int(m["iteration"]) == 0 and int(m["num_evaluations"]) == 10
    state, _ = ask_tell(algo, state, 3, jax.jit(ARM.evaluate))
    # The same genotypes, cells and keys; the initial scores come from the eager start's own program, where
    # XLA fuses the arm's evaluation with the insertion and rounds a few fitnesses 1 ulp differently.
    np.testing.assert_array_equal(state.archive.filled, scanned.archive.filled)
    np.testing.assert_array_equal(jax.random.key_data(state.key), jax.random.key_data(scanned.key))
    np.testing.assert_allclose(state.archive.fitnesses, scanned.archive.fitnesses, rtol=1e-6)
    np.testing.assert_allclose(state.archive.genotypes, scanned.archive.genotypes, atol=1e-7)


@pytest.mark.parametrize("index", range(3), ids=["map_elites", "novelty_search", "random_search"])
def test_four_seeds_in_one_program_are_the_four_separate_runs(index):
    """``init_seeds`` / ``run_seeds`` vmap the run over its key: every state leaf and metric bitwise the
    separate runs', except ``uniformity``, to float32 rounding: its sum over the 2500 ground-truth cells
    becomes a batched reduction, which XLA:CPU vectorises in another order (the counts it is computed from
    are equal)."""
    name, algo, init, init_seeds, _ = starts()[index]
    keys = jax.random.split(jax.random.key(11), 4)
    separate = [algo.run(init(k)[0], 5, chunk_size=2) for k in keys]
    states, _ = init_seeds(keys)
    states, metrics = algo.run_seeds(states, 5, chunk_size=2)
    for s, (state, m) in enumerate(separate):
        assert_same(jax.tree_util.tree_map(lambda x: x[s], states), state)
        for k, v in m.items():
            if k == "uniformity":
                np.testing.assert_allclose(metrics[k][s], v, rtol=1e-6, err_msg=f"{name} seed {s}: {k}")
            else:
                np.testing.assert_array_equal(metrics[k][s], v, err_msg=f"{name} seed {s}: {k}")
    assert metrics["iteration"].shape == (4, len(separate[0][1]["iteration"]))


def test_seed_axes_must_match_the_setup():
    algo, grid = map_elites()
    keys = jax.random.split(jax.random.key(0), 2)
    with pytest.raises(ValueError, match="seed_axes has 1 entries for 2 setup arguments"):
        algo.init_seeds(grid, jnp.zeros((2, 16, 8)), keys, seed_axes=(0,))


def test_random_search_starts_lazily_and_compiles_one_loop_program():
    rs, grid = random_search()
    state, m = rs.init(grid, jax.random.key(0))
    assert int(m["iteration"]) == -1 and state.pending
    state, m = rs.run(state, 3, chunk_size=1)
    assert list(m["iteration"]) == [0, 1, 2, 3] and list(m["num_evaluations"]) == [12, 24, 36, 48]
    assert rs._scan._cache_size() == 1 and rs._init_and_evaluate._cache_size() == 0


def test_map_elites_on_a_sparse_task_reports_the_reward_areas_it_found():
    from emitters import GaussianEmitter

    grid = GridArchive.create(jnp.zeros(POINT.num_params), 10, *POINT.descriptor_bounds)
    me = MAPElites(GaussianEmitter(batch_size=50, sigma=0.3, clip=(-5.0, 5.0)), POINT.evaluate,
                   ground_truth=GroundTruth.of_task(POINT))
    state, _ = me.init(grid, POINT.initial_genotypes(jax.random.key(0), 50), jax.random.key(1))
    state, m = me.run(state, 20, chunk_size=10)
    assert m["reward_areas_found"][-1] >= 1 and np.all(np.diff(m["reward_areas_found"]) >= 0)
    found = [i for i in range(POINT.num_reward_areas) if m[f"best_reward_area_{i}"][-1] > 0]
    assert len(found) == m["reward_areas_found"][-1]
    assert m["gt_coverage"][-1] >= m["coverage"][-1] * (100 / 2500)  # the 50x50 truth vs its 10x10 grid
    assert GroundTruth.of_task(ARM) is None  # no ground truth on the arm: no exploration metrics


# --------------------------------------------------------------------------------------------- #
# A new algorithm: its state, init / ask / tell / archive, nothing else (the driver's docstring example)
# --------------------------------------------------------------------------------------------- #
@struct.dataclass
class HillState:
    archive: Archive


class GaussianHillClimbing:
    """Mutate uniformly drawn elites (Gaussian, ``sigma``); ``B = batch_size``."""

    def __init__(self, batch_size, sigma=0.1):
        self.batch_size, self.sigma = batch_size, sigma

    def init(self, key, archive, initial_genotypes):
        return HillState(archive), initial_genotypes

    def ask(self, state, key):
        k_pick, k_noise = jax.random.split(key)
        parents = state.archive.sample(k_pick, self.batch_size).genotypes
        return parents + self.sigma * jax.random.normal(k_noise, parents.shape), state

    def tell(self, state, genotypes, evaluation, key):
        archive, _ = state.archive.add(genotypes, evaluation.descriptors, evaluation.fitnesses)
        return state.replace(archive=archive)

    def archive(self, state):
        return state.archive


def test_a_new_algorithm_is_its_init_ask_tell_and_gets_the_whole_driver():
    _, grid = map_elites()
    driver = Driver(GaussianHillClimbing(16), ARM.evaluate)
    key = jax.random.key(0)
    state, m = driver.init(grid, ARM.initial_genotypes(key, 16), key)
    assert int(m["iteration"]) == -1  # lazy: its initial batch is shaped like its proposals
    state, m = driver.run(state, 6, chunk_size=3)
    assert set(m) == {"qd_score", "coverage", "max_fitness", "mean_fitness", "num_elites", "num_evaluations", "iteration"}
    assert list(m["iteration"]) == list(range(7)) and np.all(np.diff(m["qd_score"]) >= 0)
    again, _ = driver.init(grid, ARM.initial_genotypes(key, 16), key)
    told, _ = ask_tell(driver, again, 7, jax.jit(ARM.evaluate))
    assert_same(told, state)
    with pytest.raises(TypeError, match="has no 'init' method"):
        Driver(object(), ARM.evaluate)


@struct.dataclass
class _CoinState:
    archive: Archive
    phase: jax.Array  # () int32: the next iteration's phase
    told: jax.Array  # (2,) int32: iterations told per phase


class _CoinPhases:
    """A phased toy: a wide phase (8 candidates) or a narrow one (3, one of them padding), the next one drawn
    by a coin per seed, so vmapped seeds sit in different phases."""

    def __init__(self):
        self.phases = (Phase("wide", self._ask(8), self._tell(0)), Phase("narrow", self._ask(3), self._tell(1), False))

    def _ask(self, batch):
        def ask(state, key):
            parents = state.archive.sample(key, batch).genotypes
            noise = 0.05 * jax.random.normal(jax.random.fold_in(key, 1), parents.shape)
            padding = 1 if batch == 3 else 0  # the narrow phase's last row is padding
            return jnp.clip(parents + noise, 0.0, 1.0), state, jnp.arange(batch) < batch - padding
        return ask

    def _tell(self, index):
        def tell(state, genotypes, evaluation, counted, key):
            fit = jnp.where(counted, evaluation.fitnesses, -jnp.inf)
            archive, _ = state.archive.add(genotypes, evaluation.descriptors, fit)
            return state.replace(archive=archive, told=state.told.at[index].add(1))
        return tell

    def phase(self, state):
        return state.phase

    def plan(self, state, key):
        return state.replace(phase=jax.random.bernoulli(key, 0.4).astype(jnp.int32))

    def init(self, key, archive, genotypes):
        return _CoinState(archive, jnp.int32(0), jnp.zeros(2, jnp.int32)), genotypes

    def ask(self, state, key):  # the plain ask/tell serve init's shape checks and the eager start
        genotypes, state, _ = self._ask(8)(state, key)
        return genotypes, state

    def tell(self, state, genotypes, evaluation, key):
        return self._tell(0)(state, genotypes, evaluation, jnp.ones(genotypes.shape[0], bool), key)

    def archive(self, state):
        return state.archive


def test_vmapped_seeds_of_a_phased_algorithm_are_the_separate_runs():
    """``scan_seeds`` runs each phase only where some seed is in it; every seed equals its separate run, and the
    seeds really were in different phases."""
    archive = GridArchive.create(jnp.zeros(8), 8, *ARM.descriptor_bounds, qd_offset=ARM.qd_offset)
    driver = Driver(_CoinPhases(), ARM.evaluate)
    keys = jax.random.split(jax.random.key(3), 4)
    keys = jax.vmap(jax.random.key_data)(keys)
    batches = jax.vmap(lambda k: ARM.initial_genotypes(k, 8))(keys)
    states, _ = driver.init_seeds(archive, batches, keys, seed_axes=(None, 0))
    states, metrics = driver.scan_seeds(states, 12)
    told = np.asarray(states.algo.told)
    assert len({tuple(t) for t in told}) > 1 and (told[:, 1] > 0).any()
    for s in range(4):
        state, _ = driver.init(archive, batches[s], keys[s])
        state, alone = driver.scan(state, 12)
        np.testing.assert_array_equal(np.asarray(state.algo.told), told[s])
        for name, values in alone.items():
            np.testing.assert_array_equal(np.asarray(values), np.asarray(metrics[name][s]), err_msg=name)
        np.testing.assert_array_equal(np.asarray(state.archive.fitnesses), np.asarray(states.archive.fitnesses[s]))
