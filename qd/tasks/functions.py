"""Benchmark functions: the planar arm, sphere and Rastrigin. Pure, jittable and batched.

Shapes: ``B`` genotypes of ``D`` parameters, ``(B, D) float32``.
"""

from __future__ import annotations

import math
from typing import Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.tasks.base import Evaluation
from qd.tasks.trig import MAX_ABS_ANGLE, sincos

# Domain bound of the CMA-ME benchmark functions (Fontaine et al. 2020).
_BOUND = 5.12
# Their optimum is shifted away from the origin by 40 % of the bound.
_SHIFT = 0.4 * _BOUND


def _check_genotypes(genotypes, num_params: int, name: str) -> None:
    if not hasattr(genotypes, "ndim") or genotypes.ndim != 2 or genotypes.shape[1] != num_params:
        got = getattr(genotypes, "shape", type(genotypes).__name__)
        raise ValueError(f"{name} expects genotypes of shape (batch, {num_params}); got {got}")


@struct.dataclass
class Arm:
    """The planar arm with ``num_joints`` joints of equal length and total length 1.

    As defined by QDax's ``qdax.tasks.arm`` (after ``fast_map-elites``), used identically for all three
    libraries in ``benchmarks/arm_throughput.py``:

    - genotype: ``(D,)`` in ``[0, 1]`` (clipped), joint angle ``a_i = 2 pi g_i - pi`` relative to the
      previous link;
    - fitness: ``-std(g)`` over the (clipped) genotype, in ``[-0.5, 0]`` (0 = all joints equal);
    - descriptor: end-effector position ``(sum cos(cumsum a), sum sin(cumsum a)) / (2 D) + 0.5``, in
      ``[0, 1]^2``.
    """

    num_joints: int = struct.field(pytree_node=False, default=100)

    @property
    def descriptor_bounds(self) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        return (0.0, 0.0), (1.0, 1.0)

    @property
    def qd_offset(self) -> float:
        return -0.5  # the lowest fitness

    @property
    def descriptor_names(self) -> Tuple[str, ...]:
        """Axis labels: the end-effector position, scaled to ``[0, 1]`` (0.5 = the arm's base)."""
        return ("end-effector x", "end-effector y")

    @property
    def genotype_bounds(self) -> Tuple[float, float]:
        return 0.0, 1.0

    def initial_genotypes(self, key: jax.Array, n: int) -> jax.Array:
        """``(n, D)`` uniform in ``[0, 1]``."""
        return jax.random.uniform(key, (n, self.num_joints))

    def evaluate(self, genotypes: jax.Array, key: jax.Array = None) -> Evaluation:
        """Score ``(B, D)`` genotypes; deterministic (``key`` is unused)."""
        _check_genotypes(genotypes, self.num_joints, "Arm")
        g = jnp.clip(genotypes, 0.0, 1.0)
        angles = jnp.cumsum(2.0 * jnp.pi * g - jnp.pi, axis=1)
        scale = 1.0 / (2.0 * self.num_joints)
        if math.pi * self.num_joints < MAX_ABS_ANGLE:  # |angles| <= pi D; qd.tasks.trig says why
            sin, cos = sincos(angles)
        else:
            sin, cos = jnp.sin(angles), jnp.cos(angles)
        x = jnp.sum(cos, axis=1) * scale + 0.5
        y = jnp.sum(sin, axis=1) * scale + 0.5
        return Evaluation(fitnesses=-jnp.std(g, axis=1), descriptors=jnp.stack([x, y], axis=1))


def clipped_sum_descriptors(genotypes: jax.Array) -> jax.Array:
    """The CMA-ME descriptor (Fontaine et al., GECCO 2020): ``(B, D) -> (B, 2)``.

    Each coordinate outside ``[-5.12, 5.12]`` is replaced by ``5.12 / x`` (so it stays in the bound); the
    two descriptors are the sums over the first and the second half of the coordinates. Bounds:
    ``+-5.12 * ceil(D / 2)``.
    """
    inside = jnp.abs(genotypes) <= _BOUND
    clipped = jnp.where(inside, genotypes, _BOUND / jnp.where(inside, 1.0, genotypes))
    half = genotypes.shape[1] // 2
    return jnp.stack([clipped[:, :half].sum(1), clipped[:, half:].sum(1)], axis=1)


@struct.dataclass
class _ShiftedFunction:
    """A minimisation benchmark turned into a fitness in ``[0, 100]`` for ``x`` in ``[-5.12, 5.12]^D``.

    ``fitness = 100 * (raw - worst) / (best - worst)`` where ``best = 0`` (at ``x = 0.4 * 5.12`` on every
    coordinate) and ``worst`` is ``raw`` at ``x = -5.12`` everywhere, as in the CMA-ME paper's
    experiments (and pyribs' tutorials that reproduce them). Values outside the box can go below 0.
    """

    num_params: int = struct.field(pytree_node=False, default=100)

    def raw(self, x: jax.Array) -> jax.Array:
        raise NotImplementedError

    @property
    def descriptor_bounds(self) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        lo = -_BOUND * math.ceil(self.num_params / 2)
        return (lo, lo), (-lo, -lo)

    @property
    def qd_offset(self) -> float:
        return 0.0

    @property
    def descriptor_names(self) -> Tuple[str, ...]:
        """Axis labels of :func:`clipped_sum_descriptors`: sums of the clipped first and second halves of ``x``."""
        return ("clipped sum of x, first half", "clipped sum of x, second half")

    def initial_genotypes(self, key: jax.Array, n: int) -> jax.Array:
        """``(n, D)`` zeros, the CMA-ME papers' starting point."""
        return jnp.zeros((n, self.num_params))

    def evaluate(self, genotypes: jax.Array, key: jax.Array = None) -> Evaluation:
        """Score ``(B, D)`` genotypes; deterministic (``key`` is unused)."""
        _check_genotypes(genotypes, self.num_params, type(self).__name__)
        worst = self.raw(jnp.full((1, self.num_params), -_BOUND))[0]
        fitness = 100.0 * (self.raw(genotypes) - worst) / (0.0 - worst)
        return Evaluation(fitnesses=fitness, descriptors=clipped_sum_descriptors(genotypes))


@struct.dataclass
class Sphere(_ShiftedFunction):
    """Sphere ``sum (x - 2.048)^2`` on ``D`` parameters, fitness normalised to ``[0, 100]``."""

    def raw(self, x):
        return jnp.sum((x - _SHIFT) ** 2, axis=1)


@struct.dataclass
class Rastrigin(_ShiftedFunction):
    """Rastrigin ``10 D + sum (z^2 - 10 cos(2 pi z))``, ``z = x - 2.048``, fitness normalised to ``[0, 100]``."""

    def raw(self, x):
        z = x - _SHIFT
        return 10.0 * x.shape[1] + jnp.sum(z**2 - 10.0 * jnp.cos(2.0 * jnp.pi * z), axis=1)
