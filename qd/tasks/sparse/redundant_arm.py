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

Crossings are *proper* crossings: two segments collide when each one's endpoints lie strictly on both sides
of the other's line. A joint exactly on another link or on a wall (touching), colinear overlapping links, and
joints exactly on the arena's edge are legal (a measure-zero set for real motions; the tests pin the choice
against a NumPy brute-force reference). Adjacent links share a joint and are never tested against each other.

Implementation (CPU speed): the rollouts keep the batch on the last axis; cumulative sums are products with a
constant lower-triangular matrix; ``sin``/``cos`` are a polynomial (:func:`qd.tasks.trig.sincos`, within ``1e-7``); the
self-collision test takes every orientation sign from one ``(20, 21)`` table of cross products per
configuration. Random genomes mostly end early (median 38 of 100 steps), so the steps after an illegal move
are mostly skipped: a batch of up to ``CHUNK`` moves its running episodes to the front every ``REFILL_EVERY``
steps and steps only the smallest slice that holds them (:func:`_rollout_compacting`); larger batches run on
``CHUNK`` workers that take the next genome when their episode ends (:func:`_rollout_queue`). Results equal
those of :meth:`RedundantArm.episode` with the common controller (to float32 rounding).
"""

from __future__ import annotations

import functools
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.tasks.sparse.common import (
    GENOME_BOUND,
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
    segment_distance,
)
from qd.tasks.trig import sincos

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

# ``evaluate`` rolls out up to ``CHUNK`` episodes as one batch (batch on the last axis), compacting the running
# ones every ``REFILL_EVERY`` steps; larger batches go through ``CHUNK`` workers that take a new genome every
# ``REFILL_EVERY`` steps when their episode has ended.
CHUNK = 256
REFILL_EVERY = 10
# ``_LOWER[i, j] = 1`` for ``j <= i``: ``_LOWER @ x`` is the cumulative sum over axis 0 of ``x (20, ...)``. A
# (20, 20) x (20, B) matrix product is much faster on CPU than ``jnp.cumsum`` (a reduce-window).
_LOWER = np.tril(np.ones((NUM_JOINTS, NUM_JOINTS), np.float32))
# Link pairs ``(k, m)`` tested for self-collision: ``m >= k + 2`` (adjacent links share a joint).
_NON_ADJACENT = np.triu(np.ones((NUM_JOINTS, NUM_JOINTS), bool), k=2)

def _forward_kinematics(q: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """Joint positions of relative joint angles ``q (20, ...)`` (batch on the trailing axes; rad).

    Returns ``(x, y)``, each ``(21, ...) float32``: the root, then the end of every link. Absolute link angles
    are the cumulative sums of ``q``; positions the root plus cumulative sums of ``LINK * (cos, sin)``.
    """
    q = jnp.asarray(q, jnp.float32)
    flat = q.reshape(NUM_JOINTS, -1)
    sin, cos = sincos(_LOWER @ flat)
    ends = _LOWER @ (LINK * jnp.concatenate([cos, sin], axis=1))  # (20, 2 * batch)
    batch = flat.shape[1]
    root = jnp.broadcast_to(jnp.asarray(ROOT, jnp.float32)[:, None], (2, batch))
    x = jnp.concatenate([root[:1], ROOT[0] + ends[:, :batch]])
    y = jnp.concatenate([root[1:], ROOT[1] + ends[:, batch:]])
    return x.reshape((NUM_JOINTS + 1,) + q.shape[1:]), y.reshape((NUM_JOINTS + 1,) + q.shape[1:])


def joint_positions(q: jax.Array) -> jax.Array:
    """``(20,) -> (21, 2)``: the root then the end of every link (float32, arena units)."""
    x, y = _forward_kinematics(q)
    return jnp.stack([x, y], axis=-1)


def _legal(x: jax.Array, y: jax.Array, tip_x: jax.Array, tip_y: jax.Array) -> jax.Array:
    """Legality of arm configurations given by joint positions ``x, y (21, ...)``, reached from previous tip
    positions ``tip_x, tip_y (...)``; batch on the trailing axes. Returns ``(...) bool``.

    Illegal: a joint outside ``[0, 1]^2``, the tip moving more than ``MAX_TIP_STEP``, a link properly crossing a
    wall, or two non-adjacent links properly crossing. Segments ``[a_k, b_k]`` and ``[a_m, b_m]`` cross properly
    when each one's endpoints lie strictly on both sides of the other's line (the orientation test: strictly
    negative products of 2-D cross products); touching (an endpoint on the other segment) and colinear overlaps
    are not crossings. The side of point ``P`` relative to link ``k`` is ``s_k x (P - a_k) = s_k x P - s_k x a_k``
    with ``s_k = b_k - a_k``: all 20 x 21 of them come from broadcast products (no gathers); every pair is then a
    product of two of them. Only the walls' constant coordinates enter their tests.
    """
    extra = (1,) * (x.ndim - 1)
    ax, ay = x[:-1], y[:-1]
    sx, sy = x[1:] - ax, y[1:] - ay
    own = sx * ay - sy * ax  # (20, ...): s_k x a_k
    side = sx[:, None] * y[None] - sy[:, None] * x[None] - own[:, None]  # (20 links, 21 points, ...)
    straddles = side[:, :-1] * side[:, 1:] < 0  # [k, m]: link m's endpoints on both sides of link k's line
    crossing = straddles & jnp.swapaxes(straddles, 0, 1) & _NON_ADJACENT.reshape((NUM_JOINTS, NUM_JOINTS) + extra)
    bad = crossing[0]
    for k in range(1, NUM_JOINTS - 2):  # rows 18 and 19 of the mask are empty
        bad = bad | crossing[k]
    for (wx0, wy0), (wx1, wy1) in WALLS.tolist():
        # Sign of (wall direction) x (P - wall start) for the joints: the walls are segments of known
        # direction; for an axis-aligned wall it is the sign of one coordinate difference.
        if wy0 == wy1:
            h = (y - wy0) if wx1 > wx0 else (wy0 - y)
        elif wx0 == wx1:
            h = (wx0 - x) if wy1 > wy0 else (x - wx0)
        else:
            h = (wx1 - wx0) * (y - wy0) - (wy1 - wy0) * (x - wx0)
        link_straddles = h[:-1] * h[1:] < 0
        wall_straddles = (sx * (wy0 - ay) - sy * (wx0 - ax)) * (sx * (wy1 - ay) - sy * (wx1 - ax)) < 0
        bad = bad | (link_straddles & wall_straddles)  # (20, ...) per link
    bad = jnp.concatenate([bad, (x < 0.0) | (x > 1.0) | (y < 0.0) | (y > 1.0)])  # (41, ...)
    illegal = bad[0]
    for i in range(1, bad.shape[0]):  # unrolled: reductions over leading axes are slow in XLA:CPU
        illegal = illegal | bad[i]
    fast = (x[-1] - tip_x) ** 2 + (y[-1] - tip_y) ** 2 > MAX_TIP_STEP**2
    return ~(illegal | fast)


def is_legal(points: jax.Array, previous_tip: jax.Array) -> jax.Array:
    """Legality (``() bool``) of a configuration ``points (21, 2)`` reached from a tip at ``previous_tip (2,)``.

    See :func:`_legal` (the batched version that the rollouts use) for the rules and the crossing test.
    """
    return _legal(points[:, 0], points[:, 1], previous_tip[0], previous_tip[1])


def _cross(o, a, b):
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def segments_cross(p1, p2, q1, q2) -> jax.Array:
    """Whether segments ``[p1, p2]`` and ``[q1, q2]`` (broadcast ``(..., 2)``) properly intersect."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    return (d1 * d2 < 0) & (d3 * d4 < 0)


def is_legal_reference(points: jax.Array, previous_tip: jax.Array) -> jax.Array:
    """Pair-by-pair version of :func:`is_legal` (slower; used by the tests to check the fast one)."""
    a, b = points[:-1], points[1:]
    inside = jnp.all((points >= 0.0) & (points <= 1.0))
    walls = jnp.asarray(WALLS)
    hit_wall = jnp.any(segments_cross(a[:, None], b[:, None], walls[None, :, 0], walls[None, :, 1]))
    i, j = np.nonzero(_NON_ADJACENT)
    self_hit = jnp.any(segments_cross(a[i], b[i], a[j], b[j]))
    slow = jnp.sum((points[-1] - previous_tip) ** 2) <= MAX_TIP_STEP**2
    return inside & ~hit_wall & ~self_hit & slow


def _step(q: jax.Array, action: jax.Array) -> jax.Array:
    """Joint angles ``q (20, ...)`` after one step at velocity ``clip(action, -1, 1) * OMEGA`` rad/s
    (``SUBSTEPS`` sub-steps of ``DT`` s), limited to ``[-pi, pi]``."""
    dq = jnp.clip(action, -1.0, 1.0) * OMEGA
    for _ in range(SUBSTEPS):
        q = jnp.clip(q + dq * DT, -jnp.pi, jnp.pi)
    return q


def _sample_buffer(times: np.ndarray, batch: int):
    """Trajectory-sample buffers, batch last: ``(joints (S, 20, batch), tip x (S, batch), tip y (S, batch))``,
    or None without samples."""
    if not len(times):
        return None
    return (
        jnp.zeros((len(times), NUM_JOINTS, batch), jnp.float32),
        jnp.zeros((len(times), batch), jnp.float32),
        jnp.zeros((len(times), batch), jnp.float32),
    )


def _rollout(policy, batch: int, num_steps: int, times: np.ndarray = np.zeros((0,), np.int32)):
    """Episodes of ``batch`` arms, batch on the last axis: ``policy(obs (20, batch), t) -> (20, batch)``.

    Returns ``(q (20, batch), tip (2, batch), alive (batch,) bool, steps (batch,) int32)``: the last legal
    configuration, its tip, whether no illegal move happened, and the number of legal steps; with sample
    ``times (S,)`` (step indices, :func:`qd.tasks.sparse.common.sample_times`) also the buffers of
    :func:`_sample_buffer`, the configuration and tip after each of those steps (the last legal ones after an
    illegal move).
    """
    q0 = jnp.broadcast_to(jnp.asarray(INITIAL_ANGLES)[:, None], (NUM_JOINTS, batch))
    x0, y0 = _forward_kinematics(q0)

    def body(carry, t):
        q, tip_x, tip_y, alive, steps, samples = carry
        q_new = _step(q, policy(q / jnp.pi, t))
        x, y = _forward_kinematics(q_new)  # once per step; the tip of a legal move is carried over
        ok = alive & _legal(x, y, tip_x, tip_y)
        q = jnp.where(ok, q_new, q)
        tip_x, tip_y = jnp.where(ok, x[-1], tip_x), jnp.where(ok, y[-1], tip_y)
        samples = record_sample(samples, (q, tip_x, tip_y), t, times)
        return (q, tip_x, tip_y, ok, steps + ok.astype(jnp.int32), samples), None

    init = (q0, x0[-1], y0[-1], jnp.ones((batch,), bool), jnp.zeros((batch,), jnp.int32), _sample_buffer(times, batch))
    (q, tip_x, tip_y, alive, steps, samples), _ = jax.lax.scan(body, init, jnp.arange(num_steps))
    out = q, jnp.stack([tip_x, tip_y]), alive, steps
    return out if samples is None else out + (samples,)


def _controller_params(genomes: jax.Array, layer_sizes):
    """SERENE controller weights of ``genomes (B, D)`` (clipped to ``[-5, 5]``), batch last: a list of
    ``(W (in, out, B), bias (B,))``, the same network as :func:`qd.tasks.sparse.common.unflatten_controller`."""
    g = jnp.clip(genomes, -GENOME_BOUND, GENOME_BOUND)
    layers, start = [], 0
    for a, b in zip(layer_sizes[:-1], layer_sizes[1:]):
        w = jnp.transpose(g[:, start : start + a * b].reshape(-1, a, b), (1, 2, 0))
        layers.append((w, g[:, start + a * b]))
        start += a * b + 1
    return layers


def _apply_controller_batch(layers, obs: jax.Array) -> jax.Array:
    """``obs (in, B) -> (out, B)`` in ``[-1, 1]``, as :func:`qd.tasks.sparse.common.apply_controller` per column;
    each layer is an unrolled sum over its inputs (faster on CPU than a batched matrix-vector product)."""
    x = obs
    for w, bias in layers:
        z = x[0] * w[0]
        for i in range(1, w.shape[0]):
            z = z + x[i] * w[i]
        x = 2.0 * jax.nn.sigmoid(z + bias) - 1.0
    return x


def _rollout_compacting(genotypes: jax.Array, layer_sizes, num_steps: int, phase: int,
                        times: np.ndarray = np.zeros((0,), np.int32)):
    """The episodes of :func:`_rollout` for the controllers of ``genotypes (B, D)`` (all in step), skipping
    most of the work of ended episodes: every ``phase`` steps the running episodes are moved to the front of
    the batch and the next ``phase`` steps are computed on the smallest of ``B, B/2, B/4`` slots (rounded up)
    that holds them (a ``lax.switch``); ended episodes never change. (More sizes save little and compile
    longer.) Returns ``(q (B, 20), tip (B, 2), alive (B,),
    steps (B,))``; with sample ``times (S,)`` also the buffers of :func:`_sample_buffer` (batch last), written
    while an episode is in the computed slice: a slot whose step comes after the episode ended may be unwritten
    (:func:`_trajectory` fills it with the last state).
    """
    batch = genotypes.shape[0]
    sizes = sorted({batch, -(-batch // 2), -(-batch // 4)}, reverse=True)  # one compiled branch each
    q0 = jnp.broadcast_to(jnp.asarray(INITIAL_ANGLES)[:, None], (NUM_JOINTS, batch))
    x0, y0 = _forward_kinematics(q0)
    layers = _controller_params(genotypes, layer_sizes)
    state = (layers, q0, x0[-1], y0[-1], jnp.ones((batch,), bool), jnp.zeros((batch,), jnp.int32))
    sampled = len(times) > 0
    if sampled:
        state = state + (_sample_buffer(times, batch),)

    def steps_on(size, state, t0):
        head = jax.tree_util.tree_map(lambda a: a[..., :size], state)

        def one_step(carry, t):
            layers, q, tip_x, tip_y, alive, steps = carry[:6]
            q_new = _step(q, _apply_controller_batch(layers, q / jnp.pi))
            x, y = _forward_kinematics(q_new)
            ok = alive & (t < num_steps) & _legal(x, y, tip_x, tip_y)
            q = jnp.where(ok, q_new, q)
            tip_x, tip_y = jnp.where(ok, x[-1], tip_x), jnp.where(ok, y[-1], tip_y)
            out = (layers, q, tip_x, tip_y, ok | (alive & (t >= num_steps)), steps + ok.astype(jnp.int32))
            if sampled:  # steps t >= num_steps (the last phase's padding) match no sample time
                out = out + (record_sample(carry[6], (q, tip_x, tip_y), t, times),)
            return out, None

        head, _ = jax.lax.scan(one_step, head, t0 + jnp.arange(phase))
        return jax.tree_util.tree_map(lambda a, h: a.at[..., :size].set(h), state, head)

    def one_phase(carry, t0):
        state, index = carry
        order = jnp.argsort(~state[4], stable=True)  # running episodes first
        state = jax.tree_util.tree_map(lambda a: a[..., order], state)
        running = jnp.sum(state[4], dtype=jnp.int32)
        branch = jnp.sum(jnp.asarray(sizes[1:], jnp.int32) >= running, dtype=jnp.int32)  # smallest size that fits
        branches = [functools.partial(steps_on, size) for size in sizes]
        return (jax.lax.switch(branch, branches, state, t0), index[order]), None

    phases = -(-num_steps // phase)
    (state, index), _ = jax.lax.scan(one_phase, (state, jnp.arange(batch)), phase * jnp.arange(phases))
    _, q, tip_x, tip_y, alive, steps = state[:6]
    unsort = jnp.zeros((batch,), jnp.int32).at[index].set(jnp.arange(batch, dtype=jnp.int32))
    out = q.T[unsort], jnp.stack([tip_x, tip_y], axis=-1)[unsort], alive[unsort], steps[unsort]
    if sampled:
        joints, sx, sy = state[6]
        out = out + ((jnp.transpose(joints, (2, 0, 1))[unsort], jnp.stack([sx, sy], axis=-1).transpose(1, 0, 2)[unsort]),)
    return out


def _policy_of(layers, obs, t):
    return _apply_controller_batch(layers, obs)


def _rollout_queue(genotypes: jax.Array, layer_sizes, num_steps: int, slots: int, refill_every: int,
                   times: np.ndarray = np.zeros((0,), np.int32)):
    """The episodes of :func:`_rollout` for the controllers of ``genotypes (B, D)``, computed by ``slots``
    workers (batch on the last axis): every ``refill_every`` steps, a worker whose episode has ended (illegal
    move or ``num_steps`` steps) writes its result and takes the next genome. Random genomes end early (median
    38 of 100 steps), so this computes about half the steps of running every episode to ``num_steps``; each
    episode is computed exactly as in :func:`_rollout`. Returns ``(q (B, 20), tip (B, 2), alive (B,),
    steps (B,))``; with sample ``times (S,)`` also ``(joints (B, S, 20), tips (B, S, 2))`` recorded while the
    episode runs (slots after its end unwritten or stale: :func:`_trajectory` fills them).
    """
    batch = genotypes.shape[0]
    q0 = jnp.broadcast_to(jnp.asarray(INITIAL_ANGLES)[:, None], (NUM_JOINTS, slots))
    x0, y0 = _forward_kinematics(q0)
    tip0 = (x0[-1], y0[-1])
    sampled = len(times) > 0
    times_col = jnp.asarray(times)[:, None]  # (S, 1)

    def one_step(carry, _):
        layers, q, tip_x, tip_y, alive, t, steps, slot = carry[:8]
        running = (slot < batch) & alive & (t < num_steps)
        q_new = _step(q, _apply_controller_batch(layers, q / jnp.pi))
        x, y = _forward_kinematics(q_new)
        ok = running & _legal(x, y, tip_x, tip_y)
        q = jnp.where(ok, q_new, q)
        tip_x, tip_y = jnp.where(ok, x[-1], tip_x), jnp.where(ok, y[-1], tip_y)
        alive = alive & (ok | ~running)
        new = (layers, q, tip_x, tip_y, alive, t + running.astype(jnp.int32), steps + ok.astype(jnp.int32), slot)
        if sampled:  # each worker at its own step t: a per-lane mask (S, slots)
            joints, sx, sy = carry[8]
            hit = (times_col == t[None]) & running[None]
            new = new + ((jnp.where(hit[:, None], q[None], joints), jnp.where(hit, tip_x, sx), jnp.where(hit, tip_y, sy)),)
        return new, None

    def body(state):
        carry, next_genome, out = state
        carry, _ = jax.lax.scan(one_step, carry, None, length=refill_every)
        layers, q, tip_x, tip_y, alive, t, steps, slot = carry[:8]
        done = (slot < batch) & (~alive | (t >= num_steps))
        target = jnp.where(done, slot, batch)  # out of range: dropped
        written = (
            out[0].at[target].set(q.T, mode="drop"),
            out[1].at[target].set(jnp.stack([tip_x, tip_y], axis=-1), mode="drop"),
            out[2].at[target].set(alive, mode="drop"),
            out[3].at[target].set(steps, mode="drop"),
        )
        if sampled:
            joints, sx, sy = carry[8]
            written = written + (
                out[4].at[target].set(jnp.transpose(joints, (2, 0, 1)), mode="drop"),
                out[5].at[target].set(jnp.stack([sx, sy], axis=-1).transpose(1, 0, 2), mode="drop"),
            )
        out = written
        new_slot = jnp.minimum(next_genome + jnp.cumsum(done.astype(jnp.int32)) - 1, batch)
        slot = jnp.where(done, new_slot, slot)
        fresh = _controller_params(genotypes[jnp.minimum(slot, batch - 1)], layer_sizes)
        layers = [(jnp.where(done, fw, w), jnp.where(done, fb, b)) for (w, b), (fw, fb) in zip(layers, fresh)]
        carry = (
            layers,
            jnp.where(done, q0, q),
            jnp.where(done, tip0[0], tip_x),
            jnp.where(done, tip0[1], tip_y),
            alive | done,
            jnp.where(done, 0, t),
            jnp.where(done, 0, steps),
            slot,
        ) + carry[8:]
        return carry, next_genome + jnp.sum(done, dtype=jnp.int32), out

    slot = jnp.arange(slots, dtype=jnp.int32)
    init_carry = (
        _controller_params(genotypes[jnp.minimum(slot, batch - 1)], layer_sizes),
        q0,
        tip0[0],
        tip0[1],
        jnp.ones((slots,), bool),
        jnp.zeros((slots,), jnp.int32),
        jnp.zeros((slots,), jnp.int32),
        jnp.where(slot < batch, slot, batch),
    )
    out = (
        jnp.zeros((batch, NUM_JOINTS), jnp.float32),
        jnp.zeros((batch, 2), jnp.float32),
        jnp.zeros((batch,), bool),
        jnp.zeros((batch,), jnp.int32),
    )
    if sampled:
        init_carry = init_carry + (_sample_buffer(times, slots),)
        out = out + (jnp.zeros((batch, len(times), NUM_JOINTS), jnp.float32), jnp.zeros((batch, len(times), 2), jnp.float32))
    state = (init_carry, jnp.asarray(min(slots, batch), jnp.int32), out)
    _, _, out = jax.lax.while_loop(lambda st: jnp.any(st[0][7] < batch), body, state)
    return out if not sampled else out[:4] + (out[4:],)


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
    def descriptor_names(self) -> Tuple[str, ...]:
        """Axis labels: the end-effector's final position in the arena ``[0, 1]^2`` (unit = the arm's length)."""
        return ("final end-effector x", "final end-effector y")

    @property
    def trajectory_start(self) -> np.ndarray:
        """``(2,) float32`` ground truth at the start (the rolled-up arm's tip), the same for every genome."""
        angles = np.cumsum(INITIAL_ANGLES.astype(np.float64))
        tip = np.asarray(ROOT) + LINK * np.stack([np.cos(angles).sum(), np.sin(angles).sum()])
        return tip.astype(np.float32)

    @property
    def goal_centres(self):
        return _GOALS

    @property
    def goal_radii(self):
        return _RADII

    def step(self, q, action):
        """Joint angles ``q (20,) rad`` after one step at velocity ``action * OMEGA`` rad/s (2 sub-steps),
        limited to ``+-pi``."""
        return _step(q, action)

    def _finish(self, q, tip, alive, steps, samples=None):
        """Episode results (batched or not) from the last legal configuration ``q (..., 20)``, its ``tip
        (..., 2)``, ``alive (...)`` and legal ``steps (...)``; ``samples = (joints (..., S, 20), tips (..., S,
        2))`` when trajectory samples were recorded."""
        reward, area = area_reward(tip, jnp.asarray(_GOALS), jnp.asarray(_RADII))
        if self.reward_only_on_termination:
            reward = jnp.where(alive, 0.0, reward)
            area = jnp.where(alive, -1, area)
        out = tip, reward, area, {"joints": q, "steps": steps, "terminated": ~alive}
        if samples is None:
            return out
        return out + (self._trajectory(q, tip, alive, steps, *samples),)

    def _trajectory(self, q, tip, alive, steps, joints, tips):
        """``(trajectory (..., S, 2), trajectory_states)`` from the recorded samples: a sample whose step
        ``times[s] >= steps`` comes at or after the illegal move that ended the episode, so it is the last legal
        state (the batched rollouts may not have recorded it); ``steps`` and ``terminated`` of a sample are
        the legal steps done and whether the episode had ended by then."""
        times = jnp.asarray(self.trajectory_times)
        before = times < steps[..., None]  # (..., S): recorded while the episode ran
        joints = jnp.where(before[..., None], joints, q[..., None, :])
        tips = jnp.where(before[..., None], tips, tip[..., None, :])
        states = {
            "joints": joints,
            "steps": jnp.minimum(times + 1, steps[..., None]).astype(steps.dtype),
            "terminated": ~alive[..., None] & ~before,
        }
        return tips, states

    def episode(self, policy):
        """One episode of ``policy(obs (20,), t) -> action (20,)`` (the same batched rollout as
        :meth:`rollouts`, with a batch of 1). Returns ``(tip (2,), reward (), area () int32, final_state)``
        (and the trajectory samples with ``trajectory_samples > 0``)."""
        out = _rollout(lambda obs, t: policy(obs[:, 0], t)[:, None], 1, self.num_steps, self.trajectory_times)
        q, tip, alive, steps = out[:4]
        samples = None
        if len(out) > 4:
            joints, sx, sy = out[4]
            samples = (joints[..., 0], jnp.stack([sx[:, 0], sy[:, 0]], axis=-1))
        return self._finish(q[:, 0], tip[:, 0], alive[0], steps[0], samples)

    def rollouts(self, genotypes):
        """Episodes of the SERENE controllers of ``genotypes (B, 228) float32``, batch on the last axis (the
        layout XLA:CPU vectorises best): up to ``CHUNK`` genomes in one batch that drops ended episodes as it
        goes (:func:`_rollout_compacting`), more through ``CHUNK`` workers that take the next genome when
        their episode ends (:func:`_rollout_queue`). Same episodes as :meth:`episode`; returns batched
        ``(gt (B, 2), reward (B,), area (B,) int32, final_state)`` (and the trajectory samples with
        ``trajectory_samples > 0``)."""
        batch = genotypes.shape[0]
        times = self.trajectory_times
        if batch <= CHUNK:
            out = _rollout_compacting(genotypes, self.layer_sizes, self.num_steps, REFILL_EVERY, times)
        else:
            out = _rollout_queue(genotypes, self.layer_sizes, self.num_steps, CHUNK, REFILL_EVERY, times)
        return self._finish(*out[:4], out[4] if len(out) > 4 else None)

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
