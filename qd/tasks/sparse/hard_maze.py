"""HardMaze (SERENE's ``FastsimSimpleNavigation-v0``): a differential-drive robot in the classic hard maze
of Lehman & Stanley (2011), written in JAX after libfastsim.

The map is the original ``maze_hard.pbm`` (200x200 bitmap, a set bit is a wall) on a 600x600 world, in
image coordinates (``x`` right, ``y`` down, as fastsim); settings from ``LS_maze_hard.xml``: robot radius
10, start ``(60, 450)`` heading 45 degrees, three lasers of range 100 at -45, 0, +45 degrees, two bumpers,
goals ``(60, 60)`` and ``(100, 200)`` of radius 50. Both files ship in ``qd/tasks/sparse/data/`` (MIT
License, Copyright (c) 2020 Giuseppe Paolo, from github.com/GPaolo/SERENE; see ``data/README.md``).

- controller 5 -> 2x5 -> 2 (63 parameters); inputs: the 3 laser distances divided by the range (1 = nothing
  within range) and the 2 bumpers (1 when touching a wall on that side, else 0); outputs: the left and right
  wheel speeds in ``[-1, 1]`` px/step, passed unscaled as in SERENE (below fastsim's ``maxVel = 4``);
- kinematics: ``theta += (v_r - v_l) / (2 r)``, then a move of ``(v_l + v_r) / 2`` along ``theta``; a move
  that would overlap a wall (or leave the map) is cancelled (the robot keeps its position, as fastsim);
- 2000 steps; reward at the **last step** only: ``(r - d) / r`` inside a goal, 0 elsewhere. Ground truth:
  final ``(x, y) / 600``, grid ``[0, 1]^2``.

Departures from fastsim: lasers are marched in 3-px steps over the 200x200 bitmap (fastsim casts exact
Bresenham rays on the same bitmap), collisions use the Euclidean distance from the robot centre to the
nearest wall pixel, bumpers are two probes at +-45 degrees just outside the body, and the observation is
normalised as above (fastsim reports raw laser distances).
"""

from __future__ import annotations

import functools
import os
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.tasks.sparse.common import (
    BLACK,
    BLUE,
    RED,
    WHITE,
    SparseTask,
    area_reward,
    disc_mask,
    paint,
    pixel_centres,
    record_sample,
    sample_buffer,
)

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
WORLD = 600.0
CELL = 3.0  # world pixels per bitmap cell
RADIUS = 10.0
START = (60.0, 450.0, np.pi / 4)
LASER_RANGE = 100.0
LASER_ANGLES = np.array([-np.pi / 4, 0.0, np.pi / 4], np.float32)
LASER_STEP = 3.0
_GOALS = np.array([[60.0, 60.0], [100.0, 200.0]], np.float32)
_RADII = np.array([50.0, 50.0], np.float32)


def read_pbm(path: str) -> np.ndarray:
    """A binary (P4) PBM file as an ``(H, W) bool`` array (True = set bit = wall)."""
    with open(path, "rb") as f:
        data = f.read()
    tokens, pos = [], 0
    while len(tokens) < 3:
        end = data.index(b"\n", pos)
        line = data[pos:end]
        pos = end + 1
        if not line.startswith(b"#"):
            tokens += line.split()
    if tokens[0] != b"P4":
        raise ValueError(f"{path}: not a binary PBM (P4) file")
    width, height = int(tokens[1]), int(tokens[2])
    bits = np.unpackbits(np.frombuffer(data[pos:], np.uint8)).reshape(height, -1)[:, :width]
    return bits.astype(bool)


@functools.lru_cache(maxsize=1)
def maze_arrays() -> Tuple[np.ndarray, np.ndarray]:
    """``(walls (200, 200) bool, clearance (600, 600) float32)``; clearance is the distance (world px) from
    each world pixel centre to the nearest wall pixel (the map border counts as wall)."""
    from scipy.ndimage import distance_transform_edt

    walls = read_pbm(os.path.join(DATA_DIR, "maze_hard.pbm"))
    fine = np.kron(walls, np.ones((int(CELL), int(CELL)), bool))
    fine = np.pad(fine, 1, constant_values=True)  # the world's edge is a wall
    clearance = distance_transform_edt(~fine)[1:-1, 1:-1] - 0.5
    return walls, clearance.astype(np.float32)


def _occupied(walls: jax.Array, p: jax.Array) -> jax.Array:
    """Whether world points ``(..., 2)`` fall on a wall cell or outside the map."""
    n = int(round(WORLD / CELL))
    ij = jnp.floor(p / CELL).astype(jnp.int32)
    outside = jnp.any((ij < 0) | (ij >= n), axis=-1)
    ij = jnp.clip(ij, 0, n - 1)
    return outside | walls.reshape(-1)[ij[..., 1] * n + ij[..., 0]]


@struct.dataclass
class HardMaze(SparseTask):
    """The hard maze (see the module docstring). ``num_steps`` (static) defaults to 2000."""

    layer_sizes: Tuple[int, ...] = struct.field(pytree_node=False, default=(5, 5, 5, 2))
    num_steps: int = struct.field(pytree_node=False, default=2000)

    @property
    def descriptor_bounds(self):
        return (0.0, 0.0), (1.0, 1.0)

    @property
    def descriptor_names(self) -> Tuple[str, ...]:
        """Axis labels: the robot's final position over the 600 px world, image coordinates (``y`` down)."""
        return ("final robot x / 600 px", "final robot y / 600 px (down)")

    @property
    def trajectory_start(self) -> np.ndarray:
        """``(2,) float32`` ground truth at the start (the robot's start / 600), the same for every genome."""
        return np.asarray(START[:2], np.float32) / WORLD

    @property
    def goal_centres(self):
        return _GOALS / WORLD

    @property
    def goal_radii(self):
        return _RADII / WORLD

    def sensors(self, walls, pose):
        """``(5,)`` observation at ``pose = (x, y, theta)``: 3 normalised lasers, 2 bumpers."""
        xy, theta = pose[:2], pose[2]
        dists = jnp.arange(1, int(LASER_RANGE / LASER_STEP) + 1, dtype=jnp.float32) * LASER_STEP  # (S,)
        angles = theta + jnp.asarray(LASER_ANGLES)  # (3,)
        dirs = jnp.stack([jnp.cos(angles), jnp.sin(angles)], -1)  # (3, 2)
        samples = xy + dists[None, :, None] * dirs[:, None, :]  # (3, S, 2)
        hit = _occupied(walls, samples)
        first = jnp.where(jnp.any(hit, axis=1), dists[jnp.argmax(hit, axis=1)], LASER_RANGE)
        lasers = jnp.minimum(first, LASER_RANGE) / LASER_RANGE
        probe_angles = theta + jnp.array([-np.pi / 4, np.pi / 4])
        probes = xy + (RADIUS + 2.0) * jnp.stack([jnp.cos(probe_angles), jnp.sin(probe_angles)], -1)
        bumpers = _occupied(walls, probes).astype(jnp.float32)
        return jnp.concatenate([lasers, bumpers])

    def move(self, clearance, pose, action):
        """Pose after one step of wheel speeds ``action = (v_left, v_right)`` (cancelled on collision)."""
        vl, vr = jnp.clip(action[0], -1.0, 1.0), jnp.clip(action[1], -1.0, 1.0)
        theta = pose[2] + (vr - vl) / (2.0 * RADIUS)
        speed = 0.5 * (vl + vr)
        xy = pose[:2] + speed * jnp.stack([jnp.cos(theta), jnp.sin(theta)])
        n = int(WORLD)
        ij = jnp.clip(jnp.floor(xy).astype(jnp.int32), 0, n - 1)
        inside = jnp.all((xy >= 0.0) & (xy < WORLD))
        free = inside & (clearance.reshape(-1)[ij[1] * n + ij[0]] >= RADIUS)
        xy = jnp.where(free, xy, pose[:2])
        return jnp.concatenate([xy, theta[None]])

    def episode(self, policy):
        walls_np, clearance_np = maze_arrays()
        walls, clearance = jnp.asarray(walls_np), jnp.asarray(clearance_np)

        times = self.trajectory_times

        def body(carry, t):
            pose, samples = carry
            action = policy(self.sensors(walls, pose), t)
            pose = self.move(clearance, pose, action)
            return (pose, record_sample(samples, {"pose": pose}, t, times)), None

        samples = sample_buffer(self.trajectory_samples, {"pose": jnp.zeros(3)})
        (pose, samples), _ = jax.lax.scan(body, (jnp.asarray(START, jnp.float32), samples), jnp.arange(self.num_steps))
        reward, area = area_reward(pose[:2], jnp.asarray(_GOALS), jnp.asarray(_RADII))
        return self._sampled((pose[:2] / WORLD, reward, area, {"pose": pose}), samples, lambda s: s["pose"][:2] / WORLD)

    def render_one(self, final_state):
        """The maze seen from above (row 0 is ``y = 0``, as the bitmap): walls black, goals red, robot blue."""
        walls = jnp.asarray(maze_arrays()[0])
        pixels = pixel_centres((0.0, 0.0), (WORLD, WORLD), y_down=True)
        image = jnp.ones(pixels.shape[:2] + (3,), jnp.float32) * jnp.asarray(WHITE)
        for c, r in zip(_GOALS, _RADII):
            image = paint(image, disc_mask(pixels, jnp.asarray(c), r), RED)
        image = paint(image, _occupied(walls, pixels), BLACK)
        return paint(image, disc_mask(pixels, final_state["pose"][:2], 1.5 * RADIUS), BLUE)
