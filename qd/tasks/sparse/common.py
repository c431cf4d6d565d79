"""Shared pieces of the sparse-reward tasks: the SERENE controller, goal areas, 64x64 rendering, the task
base class.

The controller is the one of the SERENE / STAX code (``FFNeuralController``): a fully connected network
whose every layer (the output included) applies ``2 * sigmoid(x) - 1``, with **one scalar bias per layer**
(not one per neuron). The genome is the flat concatenation ``[W1, b1, W2, b2, ...]`` with ``W`` of shape
``(in, out)`` in row-major order, clipped to ``[-5, 5]``; initial genomes are ``N(0, 1)`` clipped.

Rewards are sparse and given per *area*: a disc ``(centre, radius)``; a final position inside area ``i``
(the first one, in order, when discs overlap) earns ``(r - d) / r`` (1 at the centre, 0 on the rim), and
nothing anywhere else. :class:`SparseTask` puts into ``Evaluation.extras``:

- ``"gt_descriptor"``: ``(B, 2)`` the ground-truth descriptor (final position used for coverage);
- ``"reward_area"``: ``(B,) int32``, the area that paid, ``-1`` for none;
- ``"final_state"``: a small task-specific pytree, enough to :meth:`SparseTask.render` a 64x64 image.

The fitness is the reward; the descriptor is the ground-truth one (replace it by a learned one in
TAXONS-style algorithms; ``gt_descriptor`` stays for metrics).
"""

from __future__ import annotations

from typing import Any, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.tasks.base import Evaluation

GENOME_BOUND = 5.0
IMAGE_SIZE = 64


# ------------------------------------------------------------------------------------------------- #
# Controller
# ------------------------------------------------------------------------------------------------- #
def controller_num_params(layer_sizes: Sequence[int]) -> int:
    """Genome size of the SERENE MLP with these layer sizes (input, hidden..., output)."""
    return int(sum(a * b + 1 for a, b in zip(layer_sizes[:-1], layer_sizes[1:])))


def unflatten_controller(genome: jax.Array, layer_sizes: Sequence[int]):
    """``(D,) -> [(W (in, out), b scalar), ...]`` for one genome (clipped to ``[-5, 5]``)."""
    genome = jnp.clip(genome, -GENOME_BOUND, GENOME_BOUND)
    layers, start = [], 0
    for a, b in zip(layer_sizes[:-1], layer_sizes[1:]):
        w = genome[start : start + a * b].reshape(a, b)
        start += a * b
        layers.append((w, genome[start]))
        start += 1
    return layers


def apply_controller(layers, obs: jax.Array) -> jax.Array:
    """One forward pass: ``(in,) -> (out,)`` in ``[-1, 1]``."""
    x = obs
    for w, b in layers:
        x = 2.0 * jax.nn.sigmoid(x @ w + b) - 1.0
    return x


# ------------------------------------------------------------------------------------------------- #
# Goal areas
# ------------------------------------------------------------------------------------------------- #
def area_reward(position: jax.Array, centres: jax.Array, radii: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Reward of a final position ``(..., 2)`` over disc areas ``(A, 2)``, ``(A,)``.

    Returns ``(reward (...,) float32, area (...,) int32)``: ``(r - d) / r`` of the first area containing the
    point (``d <= r``), and its index; ``0`` and ``-1`` outside every area.
    """
    d = jnp.linalg.norm(position[..., None, :] - centres, axis=-1)
    inside = d <= radii
    area = jnp.where(jnp.any(inside, axis=-1), jnp.argmax(inside, axis=-1), -1).astype(jnp.int32)
    safe = jnp.maximum(area, 0)
    r = radii[safe]
    dist = jnp.take_along_axis(d, safe[..., None], axis=-1)[..., 0]
    reward = jnp.where(area >= 0, (r - dist) / r, 0.0)
    return reward.astype(jnp.float32), area


# ------------------------------------------------------------------------------------------------- #
# Rendering: signed coverage masks on a 64x64 pixel grid
# ------------------------------------------------------------------------------------------------- #
def pixel_centres(lower: Sequence[float], upper: Sequence[float], size: int = IMAGE_SIZE, y_down: bool = False):
    """``(size, size, 2)`` world coordinates of pixel centres; row 0 is the top of the image.

    With ``y_down`` (image-like worlds, e.g. the maze) row 0 is ``y = lower``; otherwise ``y = upper``.
    """
    xs = lower[0] + (np.arange(size) + 0.5) * (upper[0] - lower[0]) / size
    ys = lower[1] + (np.arange(size) + 0.5) * (upper[1] - lower[1]) / size
    if not y_down:
        ys = ys[::-1]
    gx, gy = np.meshgrid(xs, ys)
    return jnp.asarray(np.stack([gx, gy], -1), jnp.float32)


def disc_mask(pixels: jax.Array, centre: jax.Array, radius) -> jax.Array:
    """``(H, W) bool``: pixels within ``radius`` of ``centre``."""
    return jnp.sum((pixels - centre) ** 2, axis=-1) <= radius**2


def segment_distance(points: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """Distance from points ``(..., 2)`` to the segment ``[a, b]`` (``(2,)`` each)."""
    ab = b - a
    t = jnp.clip(jnp.sum((points - a) * ab, axis=-1) / jnp.maximum(jnp.sum(ab * ab), 1e-12), 0.0, 1.0)
    closest = a + t[..., None] * ab
    return jnp.linalg.norm(points - closest, axis=-1)


def paint(image: jax.Array, mask: jax.Array, colour: Sequence[float]) -> jax.Array:
    """``image (H, W, 3)`` with ``mask`` pixels set to ``colour`` (RGB in ``[0, 1]``)."""
    return jnp.where(mask[..., None], jnp.asarray(colour, jnp.float32), image)


WHITE = (1.0, 1.0, 1.0)
RED = (1.0, 0.2, 0.2)
BLUE = (0.2, 0.2, 1.0)
GREY = (0.4, 0.4, 0.4)
BLACK = (0.0, 0.0, 0.0)


# Rollouts of large batches run as a sequential ``lax.map`` over chunks of this many episodes, each chunk
# vmapped: on CPU this keeps the per-step state in cache (curling at B = 4096: 7.8k -> 18.7k evals/s).
CHUNK = 256


def vmap_in_chunks(fn, xs: jax.Array, chunk: int = CHUNK):
    """``jax.vmap(fn)(xs)`` computed ``chunk`` rows at a time (padding the last chunk); same result."""
    batch = xs.shape[0]
    if batch <= chunk:
        return jax.vmap(fn)(xs)
    num = -(-batch // chunk)
    pad = num * chunk - batch
    padded = jnp.concatenate([xs, jnp.repeat(xs[:1], pad, axis=0)]) if pad else xs
    out = jax.lax.map(jax.vmap(fn), padded.reshape((num, chunk) + xs.shape[1:]))
    return jax.tree_util.tree_map(lambda y: y.reshape((num * chunk,) + y.shape[2:])[:batch], out)


# ------------------------------------------------------------------------------------------------- #
# Task base
# ------------------------------------------------------------------------------------------------- #
@struct.dataclass
class SparseTask:
    """Base of the sparse-reward tasks (see the module docstring for the ``extras`` they return).

    Subclasses define ``layer_sizes``, ``goal_centres``, ``goal_radii``, ``descriptor_bounds``, and
    implement ``episode(policy) -> (gt_descriptor (2,), reward (), reward_area (), final_state)`` for one
    policy ``policy(observation, step) -> action`` (``evaluate`` passes the SERENE controller of each genome;
    tests and users may pass hand-written policies), plus ``render_one(final_state) -> (64, 64, 3)``.
    """

    layer_sizes: Tuple[int, ...] = struct.field(pytree_node=False, default=())

    # -- contract -------------------------------------------------------------------------------- #
    @property
    def num_params(self) -> int:
        """Genome size ``D``."""
        return controller_num_params(self.layer_sizes)

    @property
    def genotype_bounds(self) -> Tuple[float, float]:
        return -GENOME_BOUND, GENOME_BOUND

    @property
    def qd_offset(self) -> float:
        return 0.0  # rewards are >= 0

    @property
    def num_reward_areas(self) -> int:
        return int(np.asarray(self.goal_centres).shape[0])

    def initial_genotypes(self, key: jax.Array, n: int) -> jax.Array:
        """``(n, D)`` genomes ``N(0, 1)`` clipped to ``[-5, 5]`` (SERENE's initialisation)."""
        return jnp.clip(jax.random.normal(key, (n, self.num_params)), -GENOME_BOUND, GENOME_BOUND)

    def evaluate(self, genotypes: jax.Array, key: jax.Array = None) -> Evaluation:
        """Roll out ``(B, D)`` genomes (vmapped; deterministic, ``key`` is unused unless documented).

        Returns:
            :class:`qd.Evaluation` with fitness = sparse reward ``(B,)``, descriptor = ground truth
            ``(B, 2)``, and extras ``gt_descriptor``, ``reward_area``, ``final_state``.

        Raises:
            ValueError: genotypes that are not ``(B, D)``.
        """
        if not hasattr(genotypes, "ndim") or genotypes.ndim != 2 or genotypes.shape[1] != self.num_params:
            got = getattr(genotypes, "shape", type(genotypes).__name__)
            raise ValueError(f"{type(self).__name__} expects genotypes of shape (batch, {self.num_params}); got {got}")

        gt, reward, area, final_state = self.rollouts(genotypes.astype(jnp.float32))
        extras = {"gt_descriptor": gt, "reward_area": area, "final_state": final_state}
        return Evaluation(fitnesses=reward, descriptors=gt, extras=extras)

    def rollouts(self, genotypes: jax.Array):
        """Episodes of the SERENE controllers of ``genotypes (B, D) float32``: batched ``(gt_descriptor (B, 2),
        reward (B,), reward_area (B,) int32, final_state)``. By default :meth:`episode` vmapped, ``CHUNK``
        genomes at a time; a task may override it with a faster batched rollout computing the same episodes."""

        def one(genome):
            layers = unflatten_controller(genome, self.layer_sizes)
            return self.episode(lambda obs, t: apply_controller(layers, obs))

        return vmap_in_chunks(one, genotypes, CHUNK)

    def render(self, final_state: Any) -> jax.Array:
        """64x64 RGB top-down images of final states: ``final_state`` (batched, from ``extras``) ->
        ``(B, 64, 64, 3) float32`` in ``[0, 1]``. Computed only when called (jit it for large batches)."""
        return jax.vmap(self.render_one)(final_state)

    def area_metrics_args(self):
        """``(centres (A, 2), radii (A,))`` as numpy arrays (plots, metrics)."""
        return np.asarray(self.goal_centres, np.float32), np.asarray(self.goal_radii, np.float32)

    # -- to implement ------------------------------------------------------------------------------ #
    def episode(self, policy):  # pragma: no cover - abstract
        raise NotImplementedError

    def render_one(self, final_state):  # pragma: no cover - abstract
        raise NotImplementedError
