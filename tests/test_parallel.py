"""Evaluations split over devices (qd.parallel): same scores, same runs, one compiled program.

The test process has two CPU devices (tests/conftest.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emitters import IsoLineEmitter
from qd import Arm, Evaluation, GridArchive, MAPElites
from qd.parallel import PopulationSharding, resolve_devices, shard_evaluation, use_cpu_cores

ARM = Arm(12)


def test_the_test_process_has_two_cpu_devices():
    assert len(jax.devices("cpu")) == 2
    with pytest.warns(UserWarning, match="came after JAX started computing"):
        assert use_cpu_cores(3) == 2  # too late to change: JAX has computed already, the count stays


@pytest.mark.parametrize("batch", [8, 7, 1])  # even, odd (one padded candidate), fewer than the devices
def test_sharded_evaluation_equals_the_plain_one(batch):
    genotypes = jax.random.uniform(jax.random.key(0), (batch, 12))
    plain = ARM.evaluate(genotypes)
    sharded = jax.jit(shard_evaluation(ARM.evaluate, 2))(genotypes, jax.random.key(1))
    assert sharded.fitnesses.shape == (batch,) and sharded.descriptors.shape == (batch, 2)
    np.testing.assert_allclose(sharded.fitnesses, plain.fitnesses, rtol=1e-6)
    np.testing.assert_allclose(sharded.descriptors, plain.descriptors, rtol=1e-6, atol=1e-7)


def test_extras_come_back_in_order_and_shards_get_different_keys():
    def evaluate(genotypes, key):
        noise = jax.random.uniform(key, (genotypes.shape[0],))
        return Evaluation(genotypes[:, 0], jnp.stack([noise, noise], 1), extras={"row": genotypes[:, 1]})

    genotypes = jnp.stack([jnp.arange(6.0), 10 * jnp.arange(6.0)], 1)
    out = shard_evaluation(evaluate, 2)(genotypes, jax.random.key(3))
    np.testing.assert_array_equal(out.fitnesses, np.arange(6.0))
    np.testing.assert_array_equal(out.extras["row"], 10 * np.arange(6.0))
    first, second = np.asarray(out.descriptors[:3, 0]), np.asarray(out.descriptors[3:, 0])
    assert not np.allclose(first, second)  # shard i draws with fold_in(key, i)


def test_device_options_are_checked():
    assert len(resolve_devices("all")) == 2 and len(resolve_devices(1)) == 1
    assert PopulationSharding(None).num_devices == 1 and PopulationSharding(1).num_devices == 1
    with pytest.raises(ValueError, match="asked for 3 devices; this machine has 2"):
        resolve_devices(3)
    with pytest.raises(ValueError, match="devices must be 'all'"):
        resolve_devices("gpu")
    with pytest.raises(ValueError, match="batch size"):
        shard_evaluation(lambda g, k: None, 2)({"a": jnp.zeros((4, 1)), "b": jnp.zeros((5, 1))}, jax.random.key(0))


def _run(devices, chunks):
    archive = GridArchive.create(jnp.zeros(12), 16, *ARM.descriptor_bounds, qd_offset=ARM.qd_offset)
    emitter = IsoLineEmitter(batch_size=64, iso_sigma=0.005, line_sigma=0.05, clip=(0.0, 1.0))
    algo = MAPElites(emitter, ARM.evaluate, devices=devices)
    key = jax.random.key(0)
    state, _ = algo.init(archive, ARM.initial_genotypes(jax.random.fold_in(key, 1), 64), key)
    for n in chunks:
        state, metrics = algo.run(state, n, chunk_size=1)
    return algo, state, metrics


def test_map_elites_on_two_devices_is_the_same_run_and_compiles_once():
    _, one, _ = _run(None, [4, 3])
    loop_compilations = []  # JAX reports the duration of every XLA compilation, with the program's name
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, fun_name="", **kw: loop_compilations.append(fun_name)
        if event.endswith("backend_compile_duration") and fun_name == "jit(_scan_impl)" else None
    )
    two_algo, two, metrics = _run("all", [4, 3])
    assert two_algo.population.num_devices == 2
    # The state lives on both devices, and every call (the initial batch, then 3 + 3 iterations) ran the
    # same compiled program: a state left on one device would have compiled it twice.
    assert len(two.archive.fitnesses.sharding.device_set) == 2
    assert len(loop_compilations) == 1
    np.testing.assert_array_equal(one.archive.filled, two.archive.filled)
    np.testing.assert_allclose(one.archive.fitnesses, two.archive.fitnesses, rtol=1e-6)
    assert list(metrics["iteration"]) == [5, 6, 7]


def test_novelty_and_random_search_on_two_devices_are_the_same_runs():
    from qd import UnstructuredArchive
    from qd.algorithms import NoveltySearch, RandomSearch
    from qd.tasks.sparse import Point2D

    task = Point2D()
    bounds, areas = task.descriptor_bounds, task.num_reward_areas
    runs = {}
    for devices in (None, 2):
        archive = UnstructuredArchive.create(jnp.zeros(task.num_params), 500, 2, policy="random")
        ns = NoveltySearch(task.evaluate, bounds, areas, genotype_bounds=(-5, 5), devices=devices)
        state, _ = ns.init(archive, task.initial_genotypes(jax.random.key(1), 20), jax.random.key(2))
        ns_state, _ = ns.run(state, 4, chunk_size=2)
        grid = GridArchive.create(jnp.zeros(task.num_params), 10, *bounds)
        rs = RandomSearch(task.evaluate, task.initial_genotypes, 30, bounds, areas, devices=devices)
        rs_state, _ = rs.run(rs.init(grid, jax.random.key(3))[0], 3, chunk_size=3)
        runs[devices] = (ns_state, rs_state)
    for one, two in zip(runs[None], runs[2]):
        assert len(two.archive.fitnesses.sharding.device_set) == 2
        np.testing.assert_array_equal(one.archive.filled, two.archive.filled)
        np.testing.assert_allclose(one.archive.descriptors, two.archive.descriptors, rtol=1e-6, atol=1e-7)
