"""Point2D: the small toy of the SERENE / STAX code (``Walker2D-v0`` of gym_dummy), for fast tests.

A point starts at the origin and moves by ``0.05 * a`` per step (``a`` in ``[-1, 1]^2`` from the
controller), clipped to ``[-1, 1]^2``, for 50 steps. The controller sees the pose (2 -> 2x5 -> 2, 48
parameters). Four square reward boxes; the first box the point *enters* is its reward area, and the reward
is the number of steps spent inside that box (later visits to other boxes earn nothing).

Departures (documented choices where the original is not specified here): the boxes are the squares of side
0.3 centred on ``(+-0.75, +-0.75)``; area ``i`` is in the order (+,+), (-,+), (-,-), (+,-). Ground-truth
descriptor: final pose, grid ``[-1, 1]^2``.
"""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.tasks.sparse.common import (
    BLUE,
    RED,
    WHITE,
    SparseTask,
    paint,
    pixel_centres,
    record_sample,
    sample_buffer,
)

_BOX_CENTRES = np.array([[0.75, 0.75], [-0.75, 0.75], [-0.75, -0.75], [0.75, -0.75]], np.float32)
_BOX_HALF = 0.15


@struct.dataclass
class Point2D(SparseTask):
    """The Point2D toy. ``num_steps`` (static) defaults to 50."""

    layer_sizes: Tuple[int, ...] = struct.field(pytree_node=False, default=(2, 5, 5, 2))
    num_steps: int = struct.field(pytree_node=False, default=50)

    @property
    def descriptor_bounds(self):
        return (-1.0, -1.0), (1.0, 1.0)

    @property
    def descriptor_names(self) -> Tuple[str, ...]:
        """Axis labels: the point's final position (unitless, in ``[-1, 1]``)."""
        return ("final x", "final y")

    @property
    def trajectory_start(self) -> np.ndarray:
        """``(2,) float32`` ground truth at the start (the origin), the same for every genome."""
        return np.zeros((2,), np.float32)

    @property
    def goal_centres(self):
        return _BOX_CENTRES

    @property
    def goal_radii(self):
        return np.full((4,), _BOX_HALF, np.float32)  # half side of the square boxes

    @staticmethod
    def box_of(pose: jax.Array) -> jax.Array:
        """Index of the box containing ``pose (2,)``, or ``-1``."""
        inside = jnp.all(jnp.abs(pose - jnp.asarray(_BOX_CENTRES)) <= _BOX_HALF, axis=-1)
        return jnp.where(jnp.any(inside), jnp.argmax(inside), -1).astype(jnp.int32)

    def step(self, pose, action):
        return jnp.clip(pose + 0.05 * action, -1.0, 1.0)

    def episode(self, policy):
        times = self.trajectory_times

        def body(carry, t):
            pose, first, steps_in, samples = carry
            pose = self.step(pose, policy(pose, t))
            box = self.box_of(pose)
            first = jnp.where((first < 0) & (box >= 0), box, first)
            steps_in = steps_in + ((box == first) & (first >= 0)).astype(jnp.float32)
            return (pose, first, steps_in, record_sample(samples, {"pose": pose}, t, times)), None

        samples = sample_buffer(self.trajectory_samples, {"pose": jnp.zeros(2)})
        init = (jnp.zeros(2), jnp.asarray(-1, jnp.int32), jnp.zeros(()), samples)
        (pose, first, steps_in, samples), _ = jax.lax.scan(body, init, jnp.arange(self.num_steps))
        return self._sampled((pose, steps_in, first, {"pose": pose}), samples, lambda s: s["pose"])

    def render_one(self, final_state):
        pixels = pixel_centres((-1.0, -1.0), (1.0, 1.0))
        image = jnp.ones(pixels.shape[:2] + (3,), jnp.float32) * jnp.asarray(WHITE)
        for c in _BOX_CENTRES:
            image = paint(image, jnp.all(jnp.abs(pixels - c) <= _BOX_HALF, axis=-1), RED)
        dot = jnp.sum((pixels - final_state["pose"]) ** 2, axis=-1) <= 0.05**2
        return paint(image, dot, BLUE)
