"""The driver's two promises (qd.algorithms.driver) for the CMA family and the DNS archive: host ask/tell make
exactly the run ``scan`` makes, and several seeds vmapped in one program (``init_seeds`` / ``scan_seeds``)
make exactly the separate runs. CMA-MAE (``CMAMAEEmitter`` on a threshold grid + a plain result archive),
CMA-ME (MAP-Elites + ``ImprovementEmitter``), MAP-Elites + a ``BanditScheduler`` over two random-direction
emitters and a Gaussian one, and MAP-Elites (Gaussian) on a ``DominatedNoveltyArchive``. 6-D sphere, 25
cells, batches of 12, 4 iterations, 4 seeds; one driver per algorithm, so its programs are compiled once."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emitters import BanditScheduler, CMAMAEEmitter, GaussianEmitter, ImprovementEmitter, RandomDirectionEmitter
from qd import DominatedNoveltyArchive, GridArchive, MAPElites, Sphere
from qd.algorithms import CMAMAE
from qd.archives import ThresholdGridArchive

from _driver_checks import ask_tell, assert_same

TASK = Sphere(6)
D, (LO, HI) = 6, TASK.descriptor_bounds
ITERATIONS = 4  # iteration 0 (the lazy initial batch), then 3 emitter iterations
KEYS = jax.random.split(jax.random.key(11), 4)
NAMES = ["cma_mae", "cma_me", "bandit", "dns"]


def cma(kind, instances=2, population=6):
    return kind(genotype_dim=D, num_instances=instances, population=population, sigma0=0.5)


@functools.lru_cache(maxsize=None)
def setup(name):
    """``(driver, setup archives)``, one driver per algorithm (its compiled programs are shared by the tests
    of one process). Every batch is 12 candidates, so the initial batch (12) starts lazily."""
    grid = GridArchive.create(jnp.zeros(D), 5, LO, HI)
    if name == "cma_mae":
        opt = ThresholdGridArchive.create(jnp.zeros(D), 5, LO, HI, learning_rate=0.01, threshold_min=0.0)
        return CMAMAE(cma(CMAMAEEmitter), TASK.evaluate), (opt, grid)
    if name == "cma_me":
        return MAPElites(cma(ImprovementEmitter), TASK.evaluate), (grid,)
    if name == "bandit":
        # One member of three runs each iteration; reselect="all": it changes every iteration. Two equal
        # random-direction members (one branch, their states stacked and picked by a dynamic index) and a
        # Gaussian one: two branches to compile, where three configurations cost half as much again.
        rd = cma(RandomDirectionEmitter, 2, 6)
        pool = (rd, rd, GaussianEmitter(batch_size=12, sigma=0.3))
        return MAPElites(BanditScheduler.create(*pool, num_active=1, reselect="all"), TASK.evaluate), (grid,)
    dns = DominatedNoveltyArchive.create(jnp.zeros(D), 20, 2, LO, HI, k=3)
    return MAPElites(GaussianEmitter(batch_size=12, sigma=0.3), TASK.evaluate), (dns,)


def initial_batch(key):
    return TASK.initial_genotypes(jax.random.fold_in(key, 1), 12)


def start(name, key):
    algo, archives = setup(name)
    state, metrics = algo.init(*archives, initial_batch(key), key)
    assert int(metrics["iteration"]) == -1  # lazy: iteration 0 of the loop evaluates the initial batch
    return state


@pytest.mark.parametrize("name", NAMES)
def test_ask_tell_is_the_loop_and_four_vmapped_seeds_are_four_separate_runs(name):
    """(b) Host ask/tell: the same genotypes asked, the same key schedule, so every state leaf and the last
    metrics are the compiled loop's, bit for bit (the sphere jitted alone gives the bits it gives inside
    the loop program, as the tasks of test_driver.py). (a) ``init_seeds`` / ``scan_seeds`` vmap the run over
    its key: every state leaf (CMA-ES means, step sizes, covariance factors, bandit statistics, both CMA-MAE
    archives) and every metric of every iteration bit for bit the separate runs'. Exact, not to rounding:
    the vmapped program runs the same kernels on each seed's slice. (With one CMA-ES instance per emitter,
    ``num_instances=1``, XLA:CPU compiles the size-1 instance axis to other kernels in the two programs and
    a few float leaves, e.g. the covariance and the random directions, differ by a few ulp; every discrete
    leaf stays equal. The emitters here have two instances.) One test for both checks, so that each
    algorithm's loop program is compiled once."""
    algo, archives = setup(name)
    separate = [algo.scan(start(name, k), ITERATIONS) for k in KEYS]

    scanned, m_scan = separate[0]
    told, m_told = ask_tell(algo, start(name, KEYS[0]), ITERATIONS, jax.jit(TASK.evaluate))
    assert_same(told, scanned)
    assert set(m_told) == set(m_scan)
    for k, v in m_told.items():
        np.testing.assert_array_equal(v, m_scan[k][-1], err_msg=f"{name} ask/tell: {k}")

    axes = (None,) * len(archives) + (0,)
    states, m0 = algo.init_seeds(*archives, jax.vmap(initial_batch)(KEYS), KEYS, seed_axes=axes)
    assert np.all(np.asarray(m0["iteration"]) == -1)
    states, metrics = algo.scan_seeds(states, ITERATIONS)
    assert metrics["iteration"].shape == (4, ITERATIONS)
    for s, (state, m) in enumerate(separate):
        assert_same(jax.tree_util.tree_map(lambda x: x[s], states), state)
        assert set(metrics) == set(m)
        for k, v in m.items():
            np.testing.assert_array_equal(metrics[k][s], v, err_msg=f"{name} seed {s}: {k}")
    assert len({float(m["max_fitness"][-1]) for _, m in separate}) > 1  # the seeds differ

    if name == "bandit":  # the scheduler did switch: every member of the pool ran during the run
        assert np.all(np.asarray(scanned.emitter_state.candidates).sum(axis=0) > 0)
