"""Curling (SERENE's ``Curling-v0`` from GPaolo/Billiard): a 2-link arm pushes a ball on a table.

Geometry and control as in the original (table frame, metres, centred on the table):

- table ``[-1.5, 1.5]^2`` bounded by walls 0.1 thick centred on its edges, so the ball centre stays in
  ``[-1.3, 1.3]^2`` (ball radius 0.15);
- arm base at the middle of the bottom edge ``(0, -1.5)``; two links of 1 m (half-thickness 0.05); joint 0
  measured from the +y axis (counter-clockwise), limited to ``[-0.4 pi, 0.4 pi]``; joint 1 relative, limited
  to ``[-0.9 pi, 0.9 pi]``;
- joint **velocity** control: each joint turns at ``clip(a_i, -1, 1)`` rad/s (Box2D ``motorSpeed``);
  ``dt = 1/60``; 500 steps;
- ball (linear damping 1/s, Box2D's ``v /= 1 + dt * damping`` per step) starts at ``(-0.5, 0.2)`` at rest; observation ``[ball x, ball y, q0, q1, dq0, dq1]`` (6 -> 3x5 -> 2,
  94 parameters);
- reward at the **last step only**: goals ``(0.8, 0.8)`` radius 0.4 and ``(0.8, -0.8)`` radius 0.2,
  ``(r - d) / r`` inside, 0 elsewhere. Ground truth: final ball position, grid ``[-1.35, 1.35]^2``.

Where this simplified 2-D model departs from Box2D (a fidelity change, to run as a pure JAX ``scan``):

- the arm is **kinematic** (infinite mass): its joints follow the commanded speeds exactly and the ball
  never slows or blocks it (Box2D's motors have finite torque, and the ball pushes back);
- contacts are resolved once per step by projection: the ball is pushed out of the link capsules and the
  walls, and its normal relative velocity is reflected with restitution (0.7 against links, the Box2D
  ``max`` mixing; 0.95 against walls); **no contact friction** and no ball spin;
- one contact pass per step (Box2D iterates 100 velocity/position iterations with continuous collision);
  at the arm's top speeds (3 m/s, 5 cm per step) the ball (15 cm) cannot tunnel through a link.
"""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.tasks.sparse.common import (
    BLUE,
    GREY,
    RED,
    WHITE,
    SparseTask,
    area_reward,
    disc_mask,
    paint,
    pixel_centres,
    record_sample,
    sample_buffer,
    segment_distance,
)

HALF_TABLE = 1.5
WALL_HALF = 0.05
BALL_RADIUS = 0.15
LINK_LENGTHS = (1.0, 1.0)
LINK_HALF_THICKNESS = 0.05
BASE = (0.0, -1.5)
BALL_START = (-0.5, 0.2)
BALL_RESTITUTION = 0.7
WALL_RESTITUTION = 0.95
DT = 1.0 / 60.0
BALL_DAMPING = 1.0
_GOALS = np.array([[0.8, 0.8], [0.8, -0.8]], np.float32)
_RADII = np.array([0.4, 0.2], np.float32)


def arm_points(q: jax.Array) -> Tuple[jax.Array, jax.Array, jax.Array]:
    """Base, elbow and tip positions ``(2,)`` for joint angles ``q (2,)``."""
    base = jnp.asarray(BASE, jnp.float32)
    a0, a1 = q[0], q[0] + q[1]
    elbow = base + LINK_LENGTHS[0] * jnp.stack([-jnp.sin(a0), jnp.cos(a0)])
    tip = elbow + LINK_LENGTHS[1] * jnp.stack([-jnp.sin(a1), jnp.cos(a1)])
    return base, elbow, tip


def _perp(v):
    return jnp.stack([-v[1], v[0]])


def _link_contact(p, v, a, b, pivot_vel, omega, pivot):
    """Resolve ball (p, v) against the capsule [a, b]; the link moves rigidly about ``pivot``."""
    ab = b - a
    t = jnp.clip(jnp.dot(p - a, ab) / jnp.dot(ab, ab), 0.0, 1.0)
    c = a + t * ab
    diff = p - c
    dist = jnp.sqrt(jnp.sum(diff * diff) + 1e-12)
    n = diff / dist
    pen = BALL_RADIUS + LINK_HALF_THICKNESS - dist
    hit = pen > 0
    vc = pivot_vel + omega * _perp(c - pivot)
    vn = jnp.dot(v - vc, n)
    v = jnp.where(hit & (vn < 0), v - (1.0 + BALL_RESTITUTION) * vn * n, v)
    p = jnp.where(hit, p + pen * n, p)
    return p, v


def _wall_contact(p, v):
    lim = HALF_TABLE - WALL_HALF - BALL_RADIUS
    over = jnp.abs(p) > lim
    v = jnp.where(over & (p * v > 0), -WALL_RESTITUTION * v, v)
    return jnp.clip(p, -lim, lim), v


@struct.dataclass
class Curling(SparseTask):
    """The Curling task (see the module docstring). ``num_steps`` (static) defaults to 500."""

    layer_sizes: Tuple[int, ...] = struct.field(pytree_node=False, default=(6, 5, 5, 5, 2))
    num_steps: int = struct.field(pytree_node=False, default=500)
    render_arm: bool = struct.field(pytree_node=False, default=True)

    @property
    def descriptor_bounds(self):
        return (-1.35, -1.35), (1.35, 1.35)

    @property
    def descriptor_names(self) -> Tuple[str, ...]:
        """Axis labels: the ball's final position on the table (metres, origin at the table's centre)."""
        return ("final ball x (m)", "final ball y (m)")

    @property
    def trajectory_start(self) -> np.ndarray:
        """``(2,) float32`` ground truth at the start (the ball's start), the same for every genome."""
        return np.asarray(BALL_START, np.float32)

    @property
    def goal_centres(self):
        return _GOALS

    @property
    def goal_radii(self):
        return _RADII

    def step(self, state, action):
        """One physics step: ``state = (ball_pos, ball_vel, q, dq)``, ``action (2,)``."""
        p, v, q, _ = state
        dq = jnp.clip(action, -1.0, 1.0)
        q_new = q + dq * DT
        lo = jnp.array([-0.4 * jnp.pi, -0.9 * jnp.pi])
        hi = jnp.array([0.4 * jnp.pi, 0.9 * jnp.pi])
        q_new = jnp.clip(q_new, lo, hi)
        dq = (q_new - q) / DT  # a joint at its limit stops
        v = v / (1.0 + DT * BALL_DAMPING)
        p = p + v * DT
        base, elbow, tip = arm_points(q_new)
        w0, w1 = dq[0], dq[0] + dq[1]
        elbow_vel = w0 * _perp(elbow - base)
        p, v = _link_contact(p, v, base, elbow, jnp.zeros(2), w0, base)
        p, v = _link_contact(p, v, elbow, tip, elbow_vel, w1, elbow)
        p, v = _wall_contact(p, v)
        return p, v, q_new, dq

    def episode(self, policy):
        times = self.trajectory_times

        def body(carry, t):
            state, samples = carry
            p, v, q, dq = state
            obs = jnp.concatenate([p, q, dq])
            state = self.step(state, policy(obs, t))
            return (state, record_sample(samples, {"ball": state[0], "joints": state[2]}, t, times)), None

        init = (jnp.asarray(BALL_START, jnp.float32), jnp.zeros(2), jnp.zeros(2), jnp.zeros(2))
        samples = sample_buffer(self.trajectory_samples, {"ball": jnp.zeros(2), "joints": jnp.zeros(2)})
        ((p, v, q, dq), samples), _ = jax.lax.scan(body, (init, samples), jnp.arange(self.num_steps))
        reward, area = area_reward(p, jnp.asarray(_GOALS), jnp.asarray(_RADII))
        return self._sampled((p, reward, area, {"ball": p, "joints": q}), samples, lambda s: s["ball"])

    def render_one(self, final_state):
        """Top view of the table: goals red, arm grey (if ``render_arm``), ball blue; row 0 is ``y = +1.5``."""
        pixels = pixel_centres((-HALF_TABLE, -HALF_TABLE), (HALF_TABLE, HALF_TABLE))
        image = jnp.ones(pixels.shape[:2] + (3,), jnp.float32) * jnp.asarray(WHITE)
        for c, r in zip(_GOALS, _RADII):
            image = paint(image, disc_mask(pixels, jnp.asarray(c), r), RED)
        if self.render_arm:
            base, elbow, tip = arm_points(final_state["joints"])
            arm = (segment_distance(pixels, base, elbow) <= 0.06) | (segment_distance(pixels, elbow, tip) <= 0.06)
            image = paint(image, arm, GREY)
        return paint(image, disc_mask(pixels, final_state["ball"], BALL_RADIUS), BLUE)
