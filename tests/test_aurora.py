"""AURORA (qd.algorithms.aurora): the container's refresh after a training, its size held near the target
by container-size control, the training schedule, and a split scan equal to an unsplit one."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from emitters import GaussianEmitter
from qd import runner
from qd.algorithms.aurora import Aurora, threshold_for_size
from qd.archives import UnstructuredContainer
from qd.cli import main
from qd.learned.training import Autoencoder
from qd.metrics import GroundTruth

from _learned_toys import D, TinyAE, _copy, _template, evaluate


def _aurora(target=40, **options):
    ae = Autoencoder(TinyAE(), batch_size=32)
    truth = GroundTruth.create(([-1, -1], [1, 1]), 1, 10)
    return Aurora(GaussianEmitter(batch_size=32, sigma=0.3), ae, evaluate, ground_truth=truth, target_size=target,
                  max_epochs=2, **options)


def _start(driver, capacity=80):
    key = jax.random.PRNGKey(0)
    container = UnstructuredContainer.create(jnp.zeros(D), capacity, 2, extras_template=_template())
    return driver.init(container, jax.random.normal(key, (32, D)), key)


def test_threshold_for_size_is_a_nearest_neighbour_quantile():
    x = jnp.arange(10.0)[:, None] ** 2  # neighbour distances 1, 1, 3, 5, 7, ..., 17
    mask = jnp.ones((10,), bool)
    nearest = np.sort([1, 1, 3, 5, 7, 9, 11, 13, 15, 17])
    assert float(threshold_for_size(x, mask, 5)) == nearest[int(np.floor(0.5 * 9))]
    assert float(threshold_for_size(x, mask, 20)) == 1.0  # more room than points: the smallest distance
    assert float(threshold_for_size(x, mask.at[5:].set(False), 1)) == 5.0  # 0, 1, 4, 9, 16 only: 1, 1, 3, 5, 7


def test_training_refreshes_and_rebuilds_the_container():
    driver = _aurora(train_every=3, csc_every=1000)
    state, _ = _start(driver)
    state, metrics = driver.scan(state, 3)  # the initial batch (iteration 0), generations 1 and 2
    before = _copy(state.algo.ae)
    state, metrics = driver.scan(state, 1)  # generation 3: a training
    assert int(metrics["ae_trainings"][-1]) == 2  # the first batch's training, then this one
    c = state.algo.container
    filled = np.asarray(c.filled)
    fresh = np.asarray(driver.algorithm.autoencoder.encode(state.algo.ae, c.extras["final_state"])[0])[filled]
    np.testing.assert_allclose(np.asarray(c.descriptors)[filled], fresh, rtol=1e-5, atol=1e-6)
    stale = np.asarray(driver.algorithm.autoencoder.encode(before, c.extras["final_state"])[0])[filled]
    assert not np.allclose(fresh, stale, atol=1e-4)
    # Rebuilt under its new threshold: the elites are pairwise farther apart than l.
    d = np.linalg.norm(fresh[:, None] - fresh[None], axis=-1) + np.diag(np.full(len(fresh), np.inf))
    assert d.min() > float(c.l) > 0
    assert list(driver.algorithm.stores(state.algo)) == ["container"]


def test_size_control_holds_the_container_near_its_target():
    driver = _aurora(target=40, train_every=4, csc_every=2)
    state, _ = _start(driver, capacity=120)
    state, metrics = driver.scan(state, 60)
    sizes = np.asarray(metrics["num_elites"])
    assert np.all(np.abs(sizes[-10:] - 40) <= 12), sizes[-10:]
    assert np.asarray(metrics["container_l"])[-1] > 0
    np.testing.assert_array_equal(np.flatnonzero(np.diff(np.asarray(metrics["ae_trainings"]))) + 1, [4, 12, 28])


def test_a_split_scan_equals_one_scan():
    driver = _aurora(train_every=2, csc_every=3)
    state, _ = _start(driver)
    whole, _ = driver.scan(_copy(state), 8)
    half, _ = driver.scan(state, 4)
    half, _ = driver.scan(half, 4)
    for a, b in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(half)):
        np.testing.assert_array_equal(a, b)


def test_aurora_from_the_command_line(tmp_path):
    args = ["run", "--algorithm", "aurora", "--task", "point2d", "--batch-size", "16", "--iterations", "4",
            "--target-size", "16", "--train-every", "2", "--ae-max-epochs", "1", "--chunk-size", "2", "--no-progress",
            "--output-dir", str(tmp_path), "--run-name", "a"]
    assert main(args) == 0
    metrics = runner.read_metrics(str(tmp_path / "a"))
    np.testing.assert_array_equal(metrics["ae_trainings"], [1, 1, 2, 2, 2])
    assert "gt_coverage" in metrics and "container_l" in metrics and "coverage" not in metrics
    archive, metadata = runner.load_run_archive(str(tmp_path / "a"))
    assert type(archive).__name__ == "UnstructuredContainer" and archive.descriptor_dim == 10
    assert os.path.exists(tmp_path / "a" / "latent_space.png") and os.path.exists(tmp_path / "a" / "reconstructions.png")
