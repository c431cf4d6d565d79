"""Redundant arm (SERENE's ``RedundantArm-v0`` / NDofArm, after Loviken's MCGB): a 20-joint planar arm
among walls, where an illegal move ends the episode.

- 20 links of length 0.05 (total 1), root at ``(0.5, 0.5)`` in the arena ``[0, 1]^2``; the arm starts
  rolled up in a spiral (relative joint angles ``0.2 + 0.03 i``, first link pointing along +x);
- the controller (20 -> 2x5 -> 20, 228 parameters) sees the joint angles normalised to ``[-1, 1]``
  (``q / pi``) and outputs joint velocities ``a * 0.5`` rad/s, integrated in 2 sub-steps of ``dt = 0.01``
  (so a joint turns at most 0.01 rad per step); joint angles are limited to ``[-pi, pi]``;
- an **illegal move ends the episode** (the arm stays in its last legal configuration): the end-effector
  moving more than ``0.05`` in one step (too fast), a link crossing a wall, two non-adjacent links
  crossing (self-collision), or a joint leaving the arena;
- at most 100 steps (the evaluator's cap in the original);
- three goal areas ``(0.25, 0.25)``, ``(0.85, 0.85)``, ``(0.25, 0.90)`` of radius 0.05: the end-effector's
  position when the episode ends earns ``(r - d) / r`` inside an area, 0 elsewhere. Ground truth:
  end-effector ``(x, y)``, grid ``[0, 1]^2``.

Departures from the original (whose exact kinematic limits and wall layout ``wall_setting=8`` we did not
port): the wall layout is our own "cross" of four segments leaving the centre free (``y = 0.5`` for
``x in [0, 0.2]`` and ``[0.8, 1]``; ``x = 0.5`` for ``y in [0, 0.2]`` and ``[0.8, 1]``); the speeds and the
spiral are chosen so that, as in the original, most random genomes end early on an illegal move (with
N(0, 1) genomes: median episode 38 steps, about 7% reach the cap; the original: 52 steps, 4%); the
legality checks run once per step (after both sub-steps). In the original the reward is computed only when
the environment's own ``done`` fires (an illegal move, or its 250-step limit that the 100-step cap never
reaches), so an arm that ends a legal episode inside a goal earns nothing; here it earns its reward, unless
``reward_only_on_termination=True`` (the original behaviour).
"""

from __future__ import annotations

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
    segment_distance,
)

NUM_JOINTS = 20
LINK = 1.0 / NUM_JOINTS
ROOT = (0.5, 0.5)
OMEGA = 0.5
DT = 0.01
SUBSTEPS = 2
MAX_TIP_STEP = 0.05
WALLS = np.array(
    [[[0.0, 0.5], [0.2, 0.5]], [[0.8, 0.5], [1.0, 0.5]], [[0.5, 0.0], [0.5, 0.2]], [[0.5, 0.8], [0.5, 1.0]]],
    np.float32,
)
_GOALS = np.array([[0.25, 0.25], [0.85, 0.85], [0.25, 0.90]], np.float32)
_RADII = np.full((3,), 0.05, np.float32)
INITIAL_ANGLES = np.concatenate([[0.0], 0.2 + 0.03 * np.arange(1, NUM_JOINTS)]).astype(np.float32)


def joint_positions(q: jax.Array) -> jax.Array:
    """``(20,) -> (21, 2)``: the root then the end of every link."""
    a = jnp.cumsum(q)
    steps = LINK * jnp.stack([jnp.cos(a), jnp.sin(a)], axis=-1)
    return jnp.concatenate([jnp.asarray(ROOT, jnp.float32)[None], jnp.asarray(ROOT) + jnp.cumsum(steps, axis=0)])


def _cross(o, a, b):
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def segments_cross(p1, p2, q1, q2) -> jax.Array:
    """Whether segments ``[p1, p2]`` and ``[q1, q2]`` (broadcast ``(..., 2)``) properly intersect."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    return (d1 * d2 < 0) & (d3 * d4 < 0)


_NON_ADJACENT = np.triu(np.ones((NUM_JOINTS, NUM_JOINTS), bool), k=2)


def _crosses_all(starts, dirs, points):
    """``C[k, i] = dirs[k] x points[i]`` for all pairs: ``(K, 2), (N, 2) -> (K, N)`` (two outer products)."""
    return jnp.outer(dirs[:, 0], points[:, 1]) - jnp.outer(dirs[:, 1], points[:, 0])


def is_legal(points: jax.Array, previous_tip: jax.Array) -> jax.Array:
    """Legality of a configuration ``(21, 2)`` reached from a tip at ``previous_tip``.

    The segment-crossing tests of every link pair and every link-wall pair are computed from a few outer
    products of 2-D cross products (no gathers): ``[a_i, b_i]`` and ``[a_j, b_j]`` cross properly when
    ``a_i`` and ``b_i`` lie strictly on both sides of link ``j``'s line and vice versa.
    """
    a, b = points[:-1], points[1:]
    s = b - a
    inside = jnp.all((points >= 0.0) & (points <= 1.0))
    # Self-collision: side of point P[m] relative to link k is s_k x (P[m] - a_k) = C[k, m] - C[k, k].
    c = _crosses_all(a, s, points)  # (20, 21)
    own = jnp.diagonal(c[:, :-1])[:, None]  # s_k x a_k
    side = c - own  # side[k, m]
    s_start, s_end = side[:, :-1], side[:, 1:]  # sides of a_m and b_m relative to link k
    opposite = s_start * s_end < 0  # link m straddles link k's line: (k, m)
    self_hit = jnp.any(opposite & opposite.T & jnp.asarray(_NON_ADJACENT))
    # Walls.
    walls = jnp.asarray(WALLS)
    wa, ws = walls[:, 0], walls[:, 1] - walls[:, 0]
    cw = _crosses_all(wa, ws, points) - jnp.sum(ws * wa[:, ::-1] * jnp.array([1.0, -1.0]), axis=1)[:, None]
    link_straddles_wall = cw[:, :-1] * cw[:, 1:] < 0  # (4, 20)
    cl_start = _cross(a[:, None], b[:, None], wa[None])  # (20, 4): side of wall start vs link
    cl_end = _cross(a[:, None], b[:, None], walls[None, :, 1])
    wall_straddles_link = (cl_start * cl_end < 0).T
    hit_wall = jnp.any(link_straddles_wall & wall_straddles_link)
    slow = jnp.sum((points[-1] - previous_tip) ** 2) <= MAX_TIP_STEP**2
    return inside & ~hit_wall & ~self_hit & slow


def is_legal_reference(points: jax.Array, previous_tip: jax.Array) -> jax.Array:
    """Pair-by-pair version of :func:`is_legal` (slower; used by the tests to check the fast one)."""
    a, b = points[:-1], points[1:]
    inside = jnp.all((points >= 0.0) & (points <= 1.0))
    walls = jnp.asarray(WALLS)
    hit_wall = jnp.any(segments_cross(a[:, None], b[:, None], walls[None, :, 0], walls[None, :, 1]))
    i, j = np.nonzero(_NON_ADJACENT)
    self_hit = jnp.any(segments_cross(a[i], b[i], a[j], b[j]))
    slow = jnp.linalg.norm(points[-1] - previous_tip) <= MAX_TIP_STEP
    return inside & ~hit_wall & ~self_hit & slow


@struct.dataclass
class RedundantArm(SparseTask):
    """The redundant arm (see the module docstring). ``num_steps`` (static) defaults to 100."""

    layer_sizes: Tuple[int, ...] = struct.field(pytree_node=False, default=(20, 5, 5, 20))
    num_steps: int = struct.field(pytree_node=False, default=100)
    reward_only_on_termination: bool = struct.field(pytree_node=False, default=False)

    @property
    def descriptor_bounds(self):
        return (0.0, 0.0), (1.0, 1.0)

    @property
    def goal_centres(self):
        return _GOALS

    @property
    def goal_radii(self):
        return _RADII

    def step(self, q, action):
        """Joint angles after one step at velocity ``action * OMEGA`` (2 sub-steps), limited to ``+-pi``."""
        dq = jnp.clip(action, -1.0, 1.0) * OMEGA
        for _ in range(SUBSTEPS):
            q = jnp.clip(q + dq * DT, -jnp.pi, jnp.pi)
        return q

    def episode(self, policy):
        def body(carry, t):
            q, tip, alive, steps = carry
            q_new = self.step(q, policy(q / jnp.pi, t))
            points = joint_positions(q_new)
            ok = alive & is_legal(points, tip)
            q = jnp.where(ok, q_new, q)
            tip = jnp.where(ok, points[-1], tip)
            return (q, tip, ok, steps + ok.astype(jnp.int32)), None

        q0 = jnp.asarray(INITIAL_ANGLES)
        init = (q0, joint_positions(q0)[-1], jnp.asarray(True), jnp.zeros((), jnp.int32))
        (q, tip, alive, steps), _ = jax.lax.scan(body, init, jnp.arange(self.num_steps))
        reward, area = area_reward(tip, jnp.asarray(_GOALS), jnp.asarray(_RADII))
        if self.reward_only_on_termination:
            reward = jnp.where(alive, 0.0, reward)
            area = jnp.where(alive, -1, area)
        return tip, reward, area, {"joints": q, "steps": steps, "terminated": ~alive}

    def render_one(self, final_state):
        """Arena ``[0, 1]^2``: walls black, goals red, arm blue; row 0 is ``y = 1``."""
        pixels = pixel_centres((0.0, 0.0), (1.0, 1.0))
        image = jnp.ones(pixels.shape[:2] + (3,), jnp.float32) * jnp.asarray(WHITE)
        for c, r in zip(_GOALS, _RADII):
            image = paint(image, disc_mask(pixels, jnp.asarray(c), r), RED)
        for a, b in WALLS:
            image = paint(image, segment_distance(pixels, jnp.asarray(a), jnp.asarray(b)) <= 0.012, BLACK)
        points = joint_positions(final_state["joints"])
        dist = jax.vmap(lambda a, b: segment_distance(pixels, a, b))(points[:-1], points[1:])
        image = paint(image, jnp.min(dist, axis=0) <= 0.01, BLUE)
        return paint(image, disc_mask(pixels, points[-1], 0.025), BLUE)
