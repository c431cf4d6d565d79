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

With ``trajectory_samples = S > 0`` (a static option of every task, ``--task-option trajectory_samples=S``,
or :meth:`SparseTask.with_trajectory_samples`) the episode also records ``S`` samples of its state at the
step indices :func:`sample_times` (STAX's "multi" views: ``ceil(linspace(0, T - 1, S + 1)[1:])``; sample
``s`` is the state after step ``times[s]`` (0-based), so the last sample is the final state), into a small ``(S, ...)`` buffer carried by the episode's scan (no
``(T, ...)`` array), and ``extras`` gets:

- ``"trajectory"``: ``(B, S, 2) float32``, the ground truth (same quantity as ``gt_descriptor``) at those steps;
- ``"trajectory_states"``: the ``final_state`` pytree with an axis ``S`` after ``B``; sample ``s`` renders
  with ``task.render(jax.tree_util.tree_map(lambda x: x[:, s], extras["trajectory_states"]))`` and sample
  ``S - 1`` is ``final_state``. An episode that ends before a sample's step (the redundant arm's illegal
  moves) repeats its last state there.

With ``S = 0`` (the default) nothing is recorded and the compiled program is the one without the option.

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
from qd.tasks.brax.rollout import sample_times  # noqa: F401  (re-exported: the time points of the samples)

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
# Trajectory samples
# ------------------------------------------------------------------------------------------------- #
def sample_buffer(samples: int, state: Any) -> Any:
    """Zeros of ``state``'s pytree with a leading axis ``(S,)`` (None when ``samples == 0``: nothing recorded)."""
    if not samples:
        return None
    return jax.tree_util.tree_map(lambda x: jnp.zeros((samples,) + jnp.shape(x), jnp.result_type(x)), state)


def record_sample(buffer: Any, state: Any, t: jax.Array, times: np.ndarray) -> Any:
    """``buffer`` (the pytree of ``state`` with a leading axis ``S``) with ``state`` written to every slot ``s``
    with ``times[s] == t`` (``t`` a scalar step index; the steps of :func:`sample_times` may repeat). A None
    buffer (no samples) stays None and adds nothing to the program. Costs ``S`` selects of ``state`` per step."""
    if buffer is None:
        return None
    hit = jnp.asarray(times) == t  # (S,)
    return jax.tree_util.tree_map(lambda b, x: jnp.where(hit.reshape((-1,) + (1,) * jnp.ndim(x)), x[None], b), buffer, state)


# ------------------------------------------------------------------------------------------------- #
# Task base
# ------------------------------------------------------------------------------------------------- #
@struct.dataclass
class SparseTask:
    """Base of the sparse-reward tasks (see the module docstring for the ``extras`` they return).

    Subclasses define ``layer_sizes``, ``goal_centres``, ``goal_radii``, ``descriptor_bounds``, and
    implement ``episode(policy) -> (gt_descriptor (2,), reward (), reward_area (), final_state)`` for one
    policy ``policy(observation, step) -> action`` (``evaluate`` passes the SERENE controller of each genome;
    tests and users may pass hand-written policies), plus ``render_one(final_state) -> (64, 64, 3)``. With
    ``trajectory_samples = S > 0``, ``episode`` (and ``rollouts``) return a fifth item, ``(trajectory (S, 2),
    trajectory_states)`` (batched: ``(B, S, 2)`` and ``(B, S, ...)``), recorded with :func:`sample_buffer` /
    :func:`record_sample` at the steps :attr:`trajectory_times`. ``trajectory_start`` (``(2,)``, the ground
    truth before the first step, the same for every genome) is the basepoint of trajectory signatures.

    Attributes (static):
        layer_sizes: the controller's layer widths (input, hidden..., output).
        trajectory_samples: ``S``, the trajectory samples recorded per episode (0: none, the default; see the
            module docstring).
    """

    layer_sizes: Tuple[int, ...] = struct.field(pytree_node=False, default=())
    trajectory_samples: int = struct.field(pytree_node=False, default=0)

    def __post_init__(self):
        s = self.trajectory_samples
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"trajectory_samples must be a non-negative integer; got {s!r}")

    def with_trajectory_samples(self, samples: int) -> "SparseTask":
        """A copy of this task that records ``samples`` (``S``) trajectory samples per episode (0: none).

        Raises:
            ValueError: ``samples`` is not a non-negative integer.
        """
        return self.replace(trajectory_samples=samples)

    @property
    def trajectory_times(self) -> np.ndarray:
        """``(S,) int32`` step indices of the trajectory samples (:func:`sample_times`); empty when ``S = 0``."""
        if not self.trajectory_samples:
            return np.zeros((0,), np.int32)
        return sample_times(self.num_steps, self.trajectory_samples)

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
            ``(B, 2)``, and extras ``gt_descriptor``, ``reward_area``, ``final_state``; with
            ``trajectory_samples = S > 0`` also ``trajectory (B, S, 2) float32`` and ``trajectory_states``
            (module docstring).

        Raises:
            ValueError: genotypes that are not ``(B, D)``.
        """
        if not hasattr(genotypes, "ndim") or genotypes.ndim != 2 or genotypes.shape[1] != self.num_params:
            got = getattr(genotypes, "shape", type(genotypes).__name__)
            raise ValueError(f"{type(self).__name__} expects genotypes of shape (batch, {self.num_params}); got {got}")

        out = self.rollouts(genotypes.astype(jnp.float32))
        gt, reward, area, final_state = out[:4]
        extras = {"gt_descriptor": gt, "reward_area": area, "final_state": final_state}
        if self.trajectory_samples:
            trajectory, states = out[4]
            extras["trajectory"] = trajectory.astype(jnp.float32)
            extras["trajectory_states"] = states
        return Evaluation(fitnesses=reward, descriptors=gt, extras=extras)

    def rollouts(self, genotypes: jax.Array):
        """Episodes of the SERENE controllers of ``genotypes (B, D) float32``: batched ``(gt_descriptor (B, 2),
        reward (B,), reward_area (B,) int32, final_state)``, and with ``trajectory_samples = S > 0`` a fifth item
        ``(trajectory (B, S, 2), trajectory_states (B, S, ...))``. By default :meth:`episode` vmapped, ``CHUNK``
        genomes at a time; a task may override it with a faster batched rollout computing the same episodes."""

        def one(genome):
            layers = unflatten_controller(genome, self.layer_sizes)
            return self.episode(lambda obs, t: apply_controller(layers, obs))

        return vmap_in_chunks(one, genotypes, CHUNK)

    def _sampled(self, out: Tuple, buffer: Any, ground_truth) -> Tuple:
        """An episode's ``out = (gt, reward, area, final_state)``, with ``(trajectory (S, 2),
        trajectory_states)`` appended when samples were recorded (``buffer`` not None); ``ground_truth`` maps
        one recorded state to its ``(2,)`` ground truth."""
        if buffer is None:
            return out
        return out + ((jax.vmap(ground_truth)(buffer), buffer),)

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
