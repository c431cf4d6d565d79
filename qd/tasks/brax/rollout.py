"""Rollouts that stream fitness and descriptors: ``lax.scan`` over time, ``vmap`` over the population.

Nothing per step is stored: the scan carries the environment state and running sums, so memory does not
grow with the episode length (QDax returns whole trajectories, which is where much of its memory goes).

Done masking: a step counts only if the episode had not ended before it. The step on which ``done``
becomes 1 counts (its reward is the last one); every later step is computed (vmapped lanes run in lock
step) but contributes nothing to the fitness, the descriptor or the step count, through ``jnp.where`` (so a
diverged simulation after termination cannot leak NaNs either).

Batch invariance: :func:`batched_rollout`'s vectorised kernels round differently for each batch size, and
float32 locomotion is chaotic, so one policy's result depends on the batch it ran in. ``lax.map`` of
:func:`rollout` over the population (what :class:`~qd.tasks.brax.tasks.BraxTask` does with
``batch_invariant=True``, via ``BraxTask.episode_stats``) runs the same single-episode program for every
candidate, so the result is bitwise the same in any batch and alone; it costs the vectorisation (measured in
:mod:`qd.tasks.brax.tasks`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.tasks.brax.env import Environment, StateFn

# How per-state descriptor signals are reduced over the valid steps of an episode.
REDUCTIONS = ("mean", "last")


@struct.dataclass
class RolloutStats:
    """What one rollout (or a batch: add a leading ``B`` axis) returns.

    Attributes:
        fitness: ``() float32``, sum of the per-step fitness terms over valid steps.
        descriptor: ``(d,) float32``, the descriptor signal reduced over valid steps (see :func:`rollout`).
        steps: ``() int32``, number of valid steps (``episode_length`` unless the episode ended early).
        samples: ``(S, k) float32`` samples of ``sample_fn`` at the ``sample_times`` of :func:`rollout`, or
            None when none were asked for.
    """

    fitness: jax.Array
    descriptor: jax.Array
    steps: jax.Array
    samples: Any = None


def sample_times(num_steps: int, samples: int) -> np.ndarray:
    """``(S,) int32`` step indices in ``[0, T - 1]`` of ``S`` trajectory samples of a ``T``-step episode:
    ``ceil(linspace(0, T - 1, S + 1)[1:])``, the time points of STAX's multi-frame views (Paolo et al. 2021;
    with ``S = 1`` the last step). Non-decreasing; steps repeat when ``S >= T``. (A value that is an integer up
    to float rounding is not rounded up.)

    Raises:
        ValueError: ``num_steps < 1`` or ``samples < 1``.
    """
    if int(num_steps) < 1 or int(samples) < 1:
        raise ValueError(f"sample_times needs num_steps >= 1 and samples >= 1; got {num_steps}, {samples}")
    return np.ceil(np.linspace(0.0, num_steps - 1, int(samples) + 1)[1:] - 1e-9).astype(np.int32)


# Trajectory samples in a rollout's carry: ``(buffer (..., S, k), last (..., k))``, batch axes first. A sample
# is written at its step while the episode is valid; after the last valid step every later sample is the last
# valid state's (filled at the end, from the valid step count).
def _samples_init(sample_fn: StateFn, state: Any, times: np.ndarray, batch: Optional[int] = None):
    fn = sample_fn if batch is None else jax.vmap(sample_fn)
    shape = jax.eval_shape(fn, state).shape  # (..., k)
    return jnp.zeros(shape[:-1] + (len(times),) + shape[-1:], jnp.float32), jnp.zeros(shape, jnp.float32)


def _samples_step(samples, value, alive, t, times: np.ndarray):
    buffer, last = samples
    value = value.astype(jnp.float32)
    hit = (jnp.asarray(times) == t) & alive[..., None]  # (..., S)
    return jnp.where(hit[..., None], value[..., None, :], buffer), jnp.where(alive[..., None], value, last)


def _samples_finish(samples, steps, times: np.ndarray):
    buffer, last = samples
    valid = jnp.asarray(times) < steps[..., None]  # (..., S)
    return jnp.where(valid[..., None], buffer, last[..., None, :])


def _advance(carry, signal, reward, done, reduction):
    """One step of the running statistics; every array has the same leading axes (none, or ``(B,)``)."""
    alive, fitness, desc, steps = carry
    fitness = fitness + jnp.where(alive, reward, 0.0)
    keep = alive[..., None]
    desc = desc + jnp.where(keep, signal, 0.0) if reduction == "mean" else jnp.where(keep, signal, desc)
    steps = steps + alive.astype(jnp.int32)
    return alive & (done < 0.5), fitness, desc, steps


def _finish(fitness, desc, steps, reduction, samples=None, times=None) -> RolloutStats:
    if reduction == "mean":
        desc = desc / jnp.maximum(steps, 1).astype(jnp.float32)[..., None]
    if samples is None:
        return RolloutStats(fitness=fitness, descriptor=desc, steps=steps)
    return RolloutStats(fitness=fitness, descriptor=desc, steps=steps, samples=_samples_finish(samples, steps, times))


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; accepted: {', '.join(REDUCTIONS)}")


def _check_samples(sample_fn, sample_times_: Sequence[int], episode_length: int) -> Optional[np.ndarray]:
    times = np.asarray(sample_times_ if sample_times_ is not None else (), np.int32).reshape(-1)
    if sample_fn is None or not len(times):
        if len(times) or sample_fn is not None:
            raise ValueError("sample_fn and sample_times go together: give both or neither")
        return None
    if np.any(times < 0) or np.any(times >= episode_length):
        raise ValueError(f"sample_times must be step indices in [0, {episode_length - 1}]; got {times.tolist()}")
    return times


def rollout(
    env: Environment,
    policy_apply: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    init_state: Any,
    episode_length: int,
    step_reward: StateFn,
    state_descriptor: StateFn,
    reduction: str = "mean",
    sample_fn: Optional[StateFn] = None,
    sample_times: Optional[Sequence[int]] = None,
) -> RolloutStats:
    """One episode of ``episode_length`` steps of ``policy_apply(params, obs)`` from ``init_state``.

    At step ``t`` (``0 <= t < T``) with state ``s_t``: the descriptor signal is read from ``s_t`` (the
    state the action is taken in), the action is ``a_t = policy_apply(params, s_t.obs)``, and the fitness
    term is ``step_reward(s_{t+1})``. Step ``t`` is valid if no ``s_u.done`` with ``u <= t`` was 1.

    - fitness: sum of ``step_reward(s_{t+1})`` over valid ``t``;
    - descriptor, ``reduction="mean"``: mean of ``state_descriptor(s_t)`` over valid ``t``;
      ``reduction="last"``: ``state_descriptor(s_t)`` at the last valid ``t``.

    These are QDax 0.5's conventions (``scoring_function_brax_envs`` with its ``get_feet_contact_proportion``
    and ``get_final_xy_position``), so results compare.

    Trajectory samples (``sample_fn: state -> (k,)`` and ``sample_times``, ``S`` step indices in
    ``[0, T - 1]``, e.g. :func:`sample_times`): ``samples[s] = sample_fn(s_t)`` at ``t = sample_times[s]``
    (read from ``s_t`` as the descriptor signal), or at the last valid ``t`` when the episode ended before.
    Only an ``(S, k)`` buffer is carried; without them (the default) the program is the one without samples.

    Deterministic: no randomness is drawn (stochastic starts come from ``init_state``). To roll out a
    population fast, use :func:`batched_rollout` rather than ``vmap`` of this function: it traces the
    environment's step once (see there); to roll it out batch-invariantly, ``jax.lax.map`` this function
    over the candidates (module docstring).

    Raises:
        ValueError: unknown ``reduction``; ``sample_fn`` without ``sample_times`` (or the reverse), or sample
            times outside the episode.
    """
    _check_reduction(reduction)
    times = _check_samples(sample_fn, sample_times, episode_length)
    zero_desc = jnp.zeros_like(state_descriptor(init_state), dtype=jnp.float32)

    if times is not None:

        def body(carry, t):
            state, stats, samples = carry
            signal = state_descriptor(state).astype(jnp.float32)
            samples = _samples_step(samples, sample_fn(state), stats[0], t, times)
            nxt = env.step(state, policy_apply(params, state.obs))
            return (nxt, _advance(stats, signal, step_reward(nxt), nxt.done, reduction), samples), None

        stats0 = (jnp.asarray(True), jnp.zeros((), jnp.float32), zero_desc, jnp.zeros((), jnp.int32))
        init = (init_state, stats0, _samples_init(sample_fn, init_state, times))
        (_, (_, fitness, desc, steps), samples), _ = jax.lax.scan(body, init, jnp.arange(episode_length))
        return _finish(fitness, desc, steps, reduction, samples, times)

    def body(carry, _):
        state, stats = carry
        signal = state_descriptor(state).astype(jnp.float32)
        nxt = env.step(state, policy_apply(params, state.obs))
        return (nxt, _advance(stats, signal, step_reward(nxt), nxt.done, reduction)), None

    stats0 = (jnp.asarray(True), jnp.zeros((), jnp.float32), zero_desc, jnp.zeros((), jnp.int32))
    (_, (_, fitness, desc, steps)), _ = jax.lax.scan(body, (init_state, stats0), None, length=episode_length)
    return _finish(fitness, desc, steps, reduction)


def batched_rollout(
    env: Environment,
    policy_apply: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    init_state: Any,
    episode_length: int,
    step_reward: StateFn,
    state_descriptor: StateFn,
    reduction: str = "mean",
    batched_init: bool = False,
    sample_fn: Optional[StateFn] = None,
    sample_times: Optional[Sequence[int]] = None,
) -> RolloutStats:
    """:func:`rollout` of ``B`` parameter pytrees (leading axis ``B`` on every leaf), all in lock step.

    ``init_state`` is shared by all (``batched_init=False``) or has a leading axis ``B``.
    Returns a :class:`RolloutStats` with fields of shapes ``(B,)``, ``(B, d)``, ``(B,)`` (and ``samples
    (B, S, k)`` with ``sample_fn`` / ``sample_times``, as in :func:`rollout`).

    The time loop is outside and the population axis inside (``scan`` of a ``vmap``-ed step), with every
    loop carry batched from the start: ``vmap`` of a ``scan`` whose carries start shared traces the body
    again until the carries' batching settles, and tracing a Brax step is seconds of a run's start-up.

    Raises:
        ValueError: as :func:`rollout`.
    """
    _check_reduction(reduction)
    times = _check_samples(sample_fn, sample_times, episode_length)
    batch = jax.tree_util.tree_leaves(params)[0].shape[0]
    if not batched_init:
        init_state = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (batch,) + jnp.shape(x)), init_state)

    def transition(p, state):
        signal = state_descriptor(state).astype(jnp.float32)
        nxt = env.step(state, policy_apply(p, state.obs))
        return nxt, signal, step_reward(nxt)

    transitions = jax.vmap(transition)

    def body(carry, _):
        state, stats = carry
        nxt, signal, reward = transitions(params, state)
        return (nxt, _advance(stats, signal, reward, nxt.done, reduction)), None

    signal_shape = jax.eval_shape(jax.vmap(state_descriptor), init_state).shape
    stats0 = (
        jnp.ones((batch,), bool),
        jnp.zeros((batch,), jnp.float32),
        jnp.zeros(signal_shape, jnp.float32),
        jnp.zeros((batch,), jnp.int32),
    )
    if times is not None:
        sample_all = jax.vmap(sample_fn)

        def sampled_body(carry, t):
            state, stats, samples = carry
            samples = _samples_step(samples, sample_all(state), stats[0], t, times)
            nxt, signal, reward = transitions(params, state)
            return (nxt, _advance(stats, signal, reward, nxt.done, reduction), samples), None

        init = (init_state, stats0, _samples_init(sample_fn, init_state, times, batch))
        (_, (_, fitness, desc, steps), samples), _ = jax.lax.scan(sampled_body, init, jnp.arange(episode_length))
        return _finish(fitness, desc, steps, reduction, samples, times)
    (_, (_, fitness, desc, steps)), _ = jax.lax.scan(body, (init_state, stats0), None, length=episode_length)
    return _finish(fitness, desc, steps, reduction)


def trajectory(env: Environment, policy_apply, params: Any, init_state: Any, episode_length: int):
    """The states ``s_0 .. s_T`` of one episode (stacked pytree, leading axis ``T + 1``) and the number of
    valid steps: for replay and tests only (stores everything)."""

    def body(carry, _):
        state, alive, steps = carry
        nxt = env.step(state, policy_apply(params, state.obs))
        steps = steps + alive.astype(jnp.int32)
        return (nxt, alive & (nxt.done < 0.5), steps), nxt

    (_, _, steps), states = jax.lax.scan(
        body, (init_state, jnp.asarray(True), jnp.zeros((), jnp.int32)), None, length=episode_length
    )
    states = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), init_state, states)
    return states, steps
