"""qd.signatures (path signatures through signax) and novelty search on trajectory signatures
(``qd run --algorithm ns --descriptor signature``)."""

import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd.signatures import signature_dim, trajectory_signature


def closed_form_depth2(x):
    """Level 1 = X_N - X_0; level 2 = sum_k (X_{k-1} - X_0) (x) D_k + 1/2 D_k (x) D_k, C-ordered."""
    x = np.asarray(x, np.float64)
    d = np.diff(x, axis=1)
    before = x[:, :-1] - x[:, :1]
    level2 = np.einsum("bki,bkj->bij", before, d) + 0.5 * np.einsum("bki,bkj->bij", d, d)
    return np.concatenate([x[:, -1] - x[:, 0], level2.reshape(len(x), -1)], axis=1)


@pytest.mark.parametrize("channels,points", [(2, 2), (2, 7), (3, 11)])
def test_depth2_signature_is_the_closed_form(channels, points):
    x = np.random.default_rng(points).normal(size=(5, points, channels)).astype(np.float32)
    sig = trajectory_signature(x, depth=2)
    assert sig.shape == (5, channels + channels**2) and sig.dtype == jnp.float32
    np.testing.assert_allclose(sig, closed_form_depth2(x), atol=1e-5)


def test_depth3_terms_and_shuffle_identity():
    x = np.random.default_rng(0).normal(size=(4, 6, 2)).astype(np.float32)
    sig = np.asarray(trajectory_signature(x, depth=3), np.float64)
    c = 2
    level1, level2 = sig[:, :c], sig[:, c : c + c * c].reshape(-1, c, c)
    level3 = sig[:, c + c * c :].reshape(-1, c, c, c)
    # Shuffle product: S^i S^j = S^ij + S^ji and S^i S^i S^i = 6 S^iii.
    np.testing.assert_allclose(level1[:, :, None] * level1[:, None, :], level2 + level2.transpose(0, 2, 1), atol=1e-4)
    np.testing.assert_allclose(level1[:, 0] ** 3, 6 * level3[:, 0, 0, 0], atol=1e-4)


def test_translation_and_reparametrisation_invariance():
    x = np.random.default_rng(1).normal(size=(3, 8, 2)).astype(np.float32)
    sig = trajectory_signature(x, depth=3)
    np.testing.assert_allclose(trajectory_signature(x + np.array([3.0, -7.0], np.float32), depth=3), sig, atol=1e-4)
    # A repeated point (a pause) leaves the signature unchanged, but not the time-augmented one.
    paused = np.concatenate([x[:, :4], x[:, 3:4], x[:, 4:]], axis=1)
    np.testing.assert_allclose(trajectory_signature(paused, depth=3), sig, atol=1e-4)
    assert not np.allclose(trajectory_signature(paused, 2, time_channel=True), trajectory_signature(x, 2, time_channel=True), atol=1e-3)
    # A different shape with the same end points: same level 1, other level 2.
    other = x.copy()
    other[:, 3] += 1.0
    a, b = trajectory_signature(x, 2), trajectory_signature(other, 2)
    np.testing.assert_allclose(a[:, :2], b[:, :2], atol=1e-5)
    assert not np.allclose(a[:, 2:], b[:, 2:], atol=1e-3)


def test_time_channel_and_basepoint():
    x = np.random.default_rng(2).normal(size=(4, 5, 2)).astype(np.float32)
    sig = np.asarray(trajectory_signature(x, 2, time_channel=True))
    assert sig.shape == (4, signature_dim(2, 2, time_channel=True)) == (4, 12)
    time = np.broadcast_to(np.linspace(0, 1, 5, dtype=np.float32)[None, :, None], (4, 5, 1))
    np.testing.assert_allclose(sig, closed_form_depth2(np.concatenate([x, time], -1)), atol=1e-5)
    np.testing.assert_allclose(sig[:, 2], 1.0, atol=1e-6)  # level 1 of time: from 0 to 1
    start = np.array([0.5, -0.5], np.float32)
    with_base = trajectory_signature(x, 2, basepoint=start)
    joined = np.concatenate([np.broadcast_to(start, (4, 1, 2)), x], axis=1)
    np.testing.assert_allclose(with_base, closed_form_depth2(joined), atol=1e-5)
    np.testing.assert_allclose(with_base[:, :2], x[:, -1] - start, atol=1e-6)  # level 1: the end from the start
    np.testing.assert_allclose(trajectory_signature(x, 2, basepoint=np.tile(start, (4, 1))), with_base, atol=1e-6)
    # One point and a basepoint: a straight segment.
    np.testing.assert_allclose(trajectory_signature(x[:, -1:], 2, basepoint=start), closed_form_depth2(joined[:, [0, -1]]), atol=1e-5)


def test_log_signature_depth2_is_increment_and_levy_area():
    x = np.random.default_rng(3).normal(size=(3, 9, 3)).astype(np.float32)
    sig = closed_form_depth2(x)
    level2 = sig[:, 3:].reshape(-1, 3, 3)
    area = [0.5 * (level2[:, i, j] - level2[:, j, i]) for i, j in itertools.combinations(range(3), 2)]
    log = trajectory_signature(x, 2, log=True)
    assert log.shape == (3, signature_dim(3, 2, log=True)) == (3, 6)
    np.testing.assert_allclose(log, np.concatenate([sig[:, :3], np.stack(area, 1)], 1), atol=1e-5)


def test_signature_dim_counts_the_terms():
    assert signature_dim(2, 1) == 2 and signature_dim(2, 2) == 6 and signature_dim(2, 3) == 14
    assert signature_dim(3, 2) == 12 and signature_dim(3, 2, time_channel=True) == 20
    # Lyndon words (Witt's formula): 2 letters, depth 4: 2 + 1 + 2 + 3.
    assert signature_dim(2, 4, log=True) == 8 and signature_dim(3, 3, log=True) == 3 + 3 + 8
    x = np.random.default_rng(4).normal(size=(2, 4, 3)).astype(np.float32)
    for depth, log, tc in itertools.product((1, 2, 3), (False, True), (False, True)):
        out = trajectory_signature(x, depth, log, tc)
        assert out.shape == (2, signature_dim(3, depth, log, tc)), (depth, log, tc)
        assert out.dtype == jnp.float32


def test_errors_are_clear():
    x = np.zeros((2, 5, 2), np.float32)
    with pytest.raises(ValueError, match=r"\(batch, points, channels\)"):
        trajectory_signature(x[0])
    for depth in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="depth"):
            trajectory_signature(x, depth)
        with pytest.raises(ValueError, match="depth"):
            signature_dim(2, depth)
    with pytest.raises(ValueError, match="at least 2 points"):
        trajectory_signature(x[:, :1])
    with pytest.raises(ValueError, match="basepoint"):
        trajectory_signature(x, basepoint=np.zeros(3))
    with pytest.raises(ValueError, match="channels"):
        signature_dim(0, 2)


# --------------------------------------------------------------------------------------------- #
# Novelty search on signatures
# --------------------------------------------------------------------------------------------- #
def test_signature_task_evaluates_signatures_and_keeps_the_ground_truth():
    from qd.exploration_jobs import NoveltySearchConfig, _signature_task
    from qd.tasks.sparse import Point2D

    task = Point2D(num_steps=20)
    wrapped = _signature_task(NoveltySearchConfig(descriptor="signature", trajectory_samples=4, signature_depth=2), task, "point2d")
    assert wrapped.dim == 6 and wrapped.task.trajectory_samples == 4 and len(wrapped.descriptor_names) == 6
    assert wrapped.descriptor_names[:3] == ("signature S(1)", "signature S(2)", "signature S(1,1)")
    assert wrapped.num_params == task.num_params and wrapped.descriptor_bounds[0] == (-np.inf,) * 6
    genomes = task.initial_genotypes(jax.random.PRNGKey(0), 5)
    ev = jax.jit(wrapped.evaluate)(genomes, jax.random.PRNGKey(1))
    sampled = task.with_trajectory_samples(4).evaluate(genomes)
    assert set(ev.extras) == {"gt_descriptor", "reward_area", "final_state"}
    np.testing.assert_array_equal(ev.extras["gt_descriptor"], sampled.descriptors)
    np.testing.assert_array_equal(ev.fitnesses, sampled.fitnesses)
    expected = closed_form_depth2(np.concatenate([np.zeros((5, 1, 2)), np.asarray(sampled.extras["trajectory"])], 1))
    np.testing.assert_allclose(ev.descriptors, expected, atol=1e-5)  # from the start (the origin)


def test_qd_run_novelty_search_on_signatures(tmp_path, capsys):
    from qd import runner
    from qd.cli import main
    from qd.runner import read_metrics

    common = ["--iterations", "3", "--chunk-size", "3", "--batch-size", "20", "--output-dir", str(tmp_path), "--no-progress"]
    args = ["run", "--algorithm", "ns", "--descriptor", "signature", "--signature-depth", "3", "--trajectory-samples",
            "5", "--task", "point2d", "--task-option", "num_steps=20", "--run-name", "sig"] + common
    assert main(args) == 0
    run_dir = os.path.join(tmp_path, "sig")
    metrics = read_metrics(run_dir)
    np.testing.assert_array_equal(metrics["iteration"], [0, 1, 2, 3])
    assert metrics["gt_coverage"][-1] > 0 and np.all(np.diff(metrics["gt_coverage"]) >= 0)
    np.testing.assert_array_equal(metrics["novelty_archive_size"], [0, 5, 10, 15])
    archive, metadata = runner.load_run_archive(run_dir)
    assert archive.descriptor_dim == signature_dim(2, 3) == 14
    assert np.all(np.isinf(np.asarray(archive.bounds)))  # unbounded
    assert len(metadata["descriptor_names"]) == 14
    stored = np.asarray(archive.descriptors)[np.asarray(archive.filled)]
    assert stored.shape == (15, 14) and np.all(np.isfinite(stored)) and np.ptp(stored[:, 0]) > 0
    assert os.path.exists(os.path.join(run_dir, "archive.png"))
    # A task that records no trajectory: a one-line error naming the option.
    capsys.readouterr()
    assert main(["run", "--algorithm", "ns", "--descriptor", "signature", "--task", "arm", "--run-name", "arm"] + common) == 2
    err = capsys.readouterr().err.strip()
    assert "--descriptor signature" in err and "arm" in err and len(err.splitlines()) == 1
    assert main(["run", "--algorithm", "ns", "--descriptor", "sig", "--task", "point2d", "--run-name", "bad"] + common) == 2
    assert "--descriptor" in capsys.readouterr().err
