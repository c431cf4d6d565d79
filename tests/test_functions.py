"""Benchmark functions: known optima, hand-computed values, descriptor ranges."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd import Arm, Rastrigin, Sphere
from qd.tasks import clipped_sum_descriptors


def test_arm_straight_and_folded_configurations():
    arm = Arm(4)
    # g = 0.5 everywhere: every relative angle is 0, the arm points along +x with length 1 -> (1, 0.5).
    # g alternating (1, 0) gives angles (pi, -pi) cumulated: (pi, 0, pi, 0) -> x = (-1 + 1 - 1 + 1) / 8 + 0.5.
    g = jnp.asarray([[0.5] * 4, [1.0, 0.0, 1.0, 0.0], [2.0, -1.0, 0.5, 0.5]])
    ev = arm.evaluate(g)
    np.testing.assert_allclose(ev.descriptors[0], [1.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(ev.descriptors[1], [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(ev.fitnesses[:2], [0.0, -0.5], atol=1e-6)
    # Out-of-range genes are clipped before use: row 2 equals (1, 0, 0.5, 0.5).
    np.testing.assert_allclose(ev.fitnesses[2], -np.std([1.0, 0.0, 0.5, 0.5]), atol=1e-6)


def test_arm_descriptors_in_unit_square():
    g = jax.random.uniform(jax.random.key(0), (500, 30))
    d = np.asarray(Arm(30).evaluate(g).descriptors)
    assert (d >= 0).all() and (d <= 1).all()
    assert (np.linalg.norm(d - 0.5, axis=1) <= 0.5 + 1e-6).all()


@pytest.mark.parametrize("cls", [Sphere, Rastrigin])
def test_shifted_functions_optimum_and_worst(cls):
    task = cls(6)
    x = jnp.stack([jnp.full(6, 0.4 * 5.12), jnp.full(6, -5.12), jnp.zeros(6)])
    fit = np.asarray(task.evaluate(x).fitnesses)
    assert fit[0] == pytest.approx(100.0, abs=1e-3)  # optimum
    assert fit[1] == pytest.approx(0.0, abs=1e-3)  # the documented worst corner
    assert 0.0 < fit[2] < 100.0


def test_clipped_sum_descriptor_hand_computed():
    x = jnp.asarray([[1.0, 2.0, 10.0, -3.0], [-10.0, 0.0, 0.0, 5.0]])
    # 10 -> 5.12 / 10 = 0.512 ; -10 -> 5.12 / -10 = -0.512
    np.testing.assert_allclose(clipped_sum_descriptors(x), [[3.0, 0.512 - 3.0], [-0.512, 5.0]], atol=1e-6)
    lo, hi = Sphere(4).descriptor_bounds
    assert lo == (-10.24, -10.24) and hi == (10.24, 10.24)


def test_wrong_genotype_shape_is_a_value_error():
    with pytest.raises(ValueError, match=r"Arm expects genotypes of shape \(batch, 5\)"):
        Arm(5).evaluate(jnp.zeros((3, 4)))


def test_sincos_matches_float64_numpy_on_every_quadrant():
    from qd.tasks.trig import sincos

    # Every multiple of pi/4 (quadrant boundaries, where the reduction switches polynomials) and random
    # angles up to the 100-joint arm's 100 pi.
    boundaries = np.arange(-400, 401) * (np.pi / 4)
    angles = np.concatenate([boundaries, np.random.default_rng(0).uniform(-100 * np.pi, 100 * np.pi, 20_000)])
    x = angles.astype(np.float32)
    sin, cos = sincos(jnp.asarray(x))
    assert sin.dtype == jnp.float32 and sin.shape == x.shape
    np.testing.assert_allclose(np.asarray(sin), np.sin(x.astype(np.float64)), rtol=0, atol=1.5e-7)
    np.testing.assert_allclose(np.asarray(cos), np.cos(x.astype(np.float64)), rtol=0, atol=1.5e-7)


def test_arm_descriptor_matches_float64_reference():
    g = np.random.default_rng(1).uniform(0, 1, (256, 100))
    angles = np.cumsum(2 * np.pi * g - np.pi, axis=1)
    expected = np.stack([np.cos(angles).sum(1), np.sin(angles).sum(1)], 1) / 200 + 0.5
    got = Arm(100).evaluate(jnp.asarray(g, jnp.float32)).descriptors
    np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=2e-6)
