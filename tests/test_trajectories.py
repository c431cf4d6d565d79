"""Trajectory samples (``trajectory_samples``) of the sparse and Brax tasks.

- the time points are STAX's ``ceil(linspace(0, T - 1, S + 1)[1:])``, the last sample is the final state;
- a sample equals the final state of the same genome's episode cut after that step (a shorter ``num_steps``);
- an episode that ends early (the redundant arm's illegal moves, a Brax ``done``) repeats its last state;
- the batched rollouts (redundant arm's compacting batch and worker queue) agree with the per-episode one;
- without samples the extras are the old ones.

Kept cheap: short episodes, small batches; the Brax checks use a hand-written environment, plus one short
ant_omni and ant_maze evaluation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from qd.tasks.brax import batched_rollout, make_task, rollout
from qd.tasks.brax.rollout import sample_times
from qd.tasks.sparse import AntMaze, Curling, HardMaze, Point2D, RedundantArm
from qd.tasks.sparse import redundant_arm as arm_module
from qd.tasks.sparse.common import apply_controller, unflatten_controller

SAMPLES = 2
SPARSE = {
    "point2d": Point2D(num_steps=20),
    "curling": Curling(num_steps=30),
    "hard_maze": HardMaze(num_steps=24),
    "redundant_arm": RedundantArm(num_steps=40),  # evaluated at batch 40: the compacting batch
}


def leaves_equal(a, b, atol=0.0):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), atol=atol, rtol=0)


def test_sample_times_follow_stax():
    np.testing.assert_array_equal(sample_times(100, 1), [99])  # S = 1: the last step
    np.testing.assert_array_equal(sample_times(50, 5), [10, 20, 30, 40, 49])
    np.testing.assert_array_equal(sample_times(11, 10), np.arange(1, 11))  # integer points are not rounded up
    np.testing.assert_array_equal(sample_times(5, 10), [1, 1, 2, 2, 2, 3, 3, 4, 4, 4])  # S >= T: repeats
    for t, s in [(7, 3), (500, 7), (2000, 10), (3, 1)]:
        np.testing.assert_array_equal(sample_times(t, s), np.ceil(np.linspace(0, t - 1, s + 1)[1:]).astype(int))
    with pytest.raises(ValueError):
        sample_times(0, 3)


def test_option_is_static_checked_and_copied():
    task = Point2D()
    assert task.trajectory_samples == 0
    sampled = task.with_trajectory_samples(4)
    assert sampled.trajectory_samples == 4 and sampled.num_steps == task.num_steps and task.trajectory_samples == 0
    np.testing.assert_array_equal(sampled.trajectory_times, sample_times(50, 4))
    assert not jax.tree_util.tree_leaves(sampled)  # static: not a pytree leaf
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="trajectory_samples"):
            Point2D(trajectory_samples=bad)
        with pytest.raises(ValueError, match="trajectory_samples"):
            task.with_trajectory_samples(bad)
    from qd.tasks.registry import get_task_spec

    assert get_task_spec("curling").make(trajectory_samples=5).trajectory_samples == 5  # --task-option


def _episodes(task, genomes):
    """The per-episode rollout (:meth:`SparseTask.episode` of each genome's controller, vmapped)."""

    def one(genome):
        layers = unflatten_controller(genome, task.layer_sizes)
        return task.episode(lambda obs, t: apply_controller(layers, obs))

    return jax.vmap(one)(genomes)


@pytest.mark.parametrize("name", sorted(SPARSE))
def test_sparse_samples_are_the_states_after_their_steps(name):
    task = SPARSE[name]
    genomes = task.initial_genotypes(jax.random.PRNGKey(0), 40 if name == "redundant_arm" else 6)
    sampled = task.with_trajectory_samples(SAMPLES)
    times = sampled.trajectory_times
    # Reference: the final state of the episode cut after step times[s] (the policy does not see T), from the
    # per-episode rollout (for the redundant arm, not the compacting batch that evaluate uses).
    cuts = [task.replace(num_steps=int(t) + 1) for t in times]
    assert times[-1] == task.num_steps - 1  # the last cut is the whole episode
    ev, cut_outs = jax.jit(lambda g: (sampled.evaluate(g), [_episodes(c, g) for c in cuts]))(genomes)
    ex = ev.extras
    base = jax.eval_shape(task.evaluate, genomes)  # S = 0: the old extras, no trajectory
    assert set(base.extras) == {"gt_descriptor", "reward_area", "final_state"}
    assert jax.tree_util.tree_structure(ex["final_state"]) == jax.tree_util.tree_structure(base.extras["final_state"])
    assert set(ex) == {"gt_descriptor", "reward_area", "final_state", "trajectory", "trajectory_states"}
    assert ex["trajectory"].shape == (len(genomes), SAMPLES, 2) and ex["trajectory"].dtype == jnp.float32
    # Recording changes nothing else: the outcome is the whole episode's.
    gt, reward, area, final = cut_outs[-1]
    np.testing.assert_allclose(ev.fitnesses, reward, atol=1e-5)
    np.testing.assert_array_equal(ex["reward_area"], area)
    np.testing.assert_allclose(ev.descriptors, gt, atol=1e-5)
    # The last sample is the final state, and renders as the final frame.
    np.testing.assert_array_equal(ex["trajectory"][:, -1], ex["gt_descriptor"])
    last = jax.tree_util.tree_map(lambda x: x[:, -1], ex["trajectory_states"])
    assert jax.tree_util.tree_structure(last) == jax.tree_util.tree_structure(ex["final_state"])
    leaves_equal(last, ex["final_state"])
    render = jax.jit(task.render)
    np.testing.assert_array_equal(render(last), render(ex["final_state"]))
    for s, (gt, _, _, final) in enumerate(cut_outs):
        np.testing.assert_allclose(ex["trajectory"][:, s], gt, atol=1e-5, rtol=0)
        leaves_equal(jax.tree_util.tree_map(lambda x: x[:, s], ex["trajectory_states"]), final, atol=1e-5)
    assert not np.allclose(ex["trajectory"][:, 0], ex["trajectory"][:, -1])  # the samples are not all the same
    if name == "redundant_arm":  # some episodes end before a sample: those repeat the last legal state
        early = np.asarray(ex["final_state"]["steps"]) <= times[-1]
        assert 0 < early.sum() < len(genomes) and np.any(ex["trajectory_states"]["terminated"][:, 0] != ex["final_state"]["terminated"])


def test_redundant_arm_early_end_repeats_the_last_legal_state():
    task = RedundantArm(num_steps=60).with_trajectory_samples(6)  # samples after steps 10, 20, ..., 59
    # Curling the arm up makes it collide with itself before the end.
    tip, _, _, final, (trajectory, states) = jax.jit(lambda: task.episode(lambda obs, t: jnp.ones(20)))()
    steps = int(final["steps"])
    times = task.trajectory_times
    assert bool(final["terminated"]) and times[0] < steps < times[-1]
    after = times >= steps
    np.testing.assert_array_equal(trajectory[after], np.broadcast_to(tip, (after.sum(), 2)))
    np.testing.assert_array_equal(states["joints"][after], np.broadcast_to(final["joints"], (after.sum(), 20)))
    np.testing.assert_array_equal(states["terminated"], after)
    np.testing.assert_array_equal(states["steps"], np.minimum(times + 1, steps))
    assert not np.allclose(states["joints"][0], final["joints"])  # before the end: the arm was elsewhere
    # Brute force: step by step on the host, the pair-by-pair legality rule, stop at the first illegal move.
    step, points_of = jax.jit(arm_module._step), jax.jit(arm_module.joint_positions)
    legal = jax.jit(arm_module.is_legal_reference)
    q = jnp.asarray(arm_module.INITIAL_ANGLES)
    tip_ref, alive, reference = points_of(q)[-1], True, []
    for t in range(task.num_steps):
        if alive:
            q_new = step(q, jnp.ones(20))
            points = points_of(q_new)
            alive = bool(legal(points, tip_ref))
            if alive:
                q, tip_ref = q_new, points[-1]
        reference.append((q, tip_ref))
    for s, t in enumerate(times):
        np.testing.assert_allclose(states["joints"][s], reference[t][0], atol=1e-5)
        np.testing.assert_allclose(trajectory[s], reference[t][1], atol=1e-5)


def test_redundant_arm_worker_queue_agrees_with_the_episode():
    task = RedundantArm(num_steps=40).with_trajectory_samples(4)
    genomes = task.initial_genotypes(jax.random.PRNGKey(1), 300)  # > CHUNK: the worker queue
    ex = jax.jit(task.evaluate)(genomes).extras
    _, _, _, final, (trajectory, states) = jax.jit(lambda g: _episodes(task, g))(genomes[-40:])
    assert 0 < int(np.sum(final["terminated"])) < 40  # some end early, some do not
    np.testing.assert_allclose(ex["trajectory"][-40:], trajectory, atol=1e-5)
    np.testing.assert_allclose(ex["trajectory_states"]["joints"][-40:], states["joints"], atol=1e-5)
    np.testing.assert_array_equal(ex["trajectory_states"]["steps"][-40:], states["steps"])
    np.testing.assert_array_equal(ex["trajectory_states"]["terminated"][-40:], states["terminated"])
    np.testing.assert_array_equal(ex["trajectory"][:, -1], ex["gt_descriptor"])
    leaves_equal(jax.tree_util.tree_map(lambda x: x[:, -1], ex["trajectory_states"]), ex["final_state"])


# --------------------------------------------------------------------------------------------- #
# Brax rollouts: a point on a line, done once it passes x = 1 (NaN after that, which must not leak)
# --------------------------------------------------------------------------------------------- #
@struct.dataclass
class LineState:
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    x: jax.Array


@struct.dataclass
class LineEnv:
    observation_size: int = struct.field(pytree_node=False, default=1)
    action_size: int = struct.field(pytree_node=False, default=1)

    def reset(self, key):
        x = jnp.zeros(())
        return LineState(obs=x[None], reward=jnp.zeros(()), done=jnp.zeros(()), x=x)

    def step(self, state, action):
        ended = state.done > 0.5
        x = jnp.where(ended, jnp.nan, state.x + 0.25 * (action[0] + 1.0))
        return LineState(obs=x[None], reward=jnp.ones(()), done=jnp.where(ended | (x > 1.0), 1.0, 0.0), x=x)


def _policy(params, obs):
    return jnp.tanh(params["a"])[None] + 0.0 * obs


def _line_reference(a, length, times):
    """Python loop: x of s_t at each sample time, or of the last valid step after done."""
    env, state, xs = LineEnv(), LineEnv().reset(None), []
    for _ in range(length):
        xs.append(float(state.x))
        state = env.step(state, _policy({"a": jnp.asarray(a)}, state.obs))
        if float(state.done) > 0.5:
            break
    return [xs[min(t, len(xs) - 1)] for t in times]


def test_brax_rollout_samples_and_repeats_after_done():
    env, length = LineEnv(), 10
    times = sample_times(length, 4)  # [3, 5, 8, 9]
    params = {"a": jnp.asarray([-3.0, 0.0, 0.3, 3.0])}  # episodes of 10, 5, 4, 3 steps
    args = (env, _policy, params, env.reset(None), length, lambda s: s.reward, lambda s: s.x[None], "last")
    stats = jax.jit(lambda p: batched_rollout(*args[:2], p, *args[3:], sample_fn=lambda s: s.x[None], sample_times=times))(params)
    plain = batched_rollout(*args)
    assert plain.samples is None and stats.samples.shape == (4, 4, 1)
    np.testing.assert_array_equal(stats.steps, [10, 5, 4, 3])
    np.testing.assert_array_equal(stats.descriptor, plain.descriptor)
    assert np.all(np.isfinite(stats.samples))
    for i, a in enumerate(np.asarray(params["a"])):
        np.testing.assert_allclose(stats.samples[i, :, 0], _line_reference(a, length, times), rtol=1e-6)
        one = rollout(env, _policy, {"a": params["a"][i]}, env.reset(None), length, lambda s: s.reward,
                      lambda s: s.x[None], "last", sample_fn=lambda s: s.x[None], sample_times=times)
        np.testing.assert_allclose(one.samples, stats.samples[i], rtol=1e-6)
        np.testing.assert_allclose(one.samples[-1], one.descriptor, rtol=1e-6)  # last sample: the final state
    with pytest.raises(ValueError, match="sample_times"):
        rollout(*args, sample_fn=lambda s: s.x[None])
    with pytest.raises(ValueError, match="sample_times"):
        rollout(*args, sample_fn=lambda s: s.x[None], sample_times=[10])


def test_brax_task_trajectory_is_the_torso_at_the_sample_steps():
    task = make_task("ant_omni", episode_length=20, hidden_sizes=(4,), trajectory_samples=4)
    assert make_task("ant_omni", episode_length=20, hidden_sizes=(4,)).with_trajectory_samples(3).trajectory_samples == 3
    with pytest.raises(ValueError, match="trajectory_samples"):
        make_task("ant_omni", trajectory_samples=-2)
    genotypes = task.initial_genotypes(jax.random.PRNGKey(0), 2)
    ev = jax.jit(task.evaluate)(genotypes, jax.random.PRNGKey(1))
    trajectory = ev.extras["trajectory"]
    assert set(ev.extras) == {"trajectory"} and trajectory.shape == (2, 4, 3) and trajectory.dtype == jnp.float32
    # The last sample is the state the final_xy descriptor reads (the last valid step's), z is the torso height.
    np.testing.assert_array_equal(trajectory[:, -1, :2], ev.descriptors)
    assert np.all((trajectory[..., 2] > 0.1) & (trajectory[..., 2] < 1.5))
    assert not np.allclose(trajectory[:, 0], trajectory[:, -1])


def test_ant_maze_samples_end_at_the_final_state():
    task = AntMaze(num_steps=6).with_trajectory_samples(3)
    genomes = task.initial_genotypes(jax.random.PRNGKey(0), 2)
    ex = jax.jit(task.evaluate)(genomes).extras
    assert ex["trajectory"].shape == (2, 3, 2) and ex["trajectory_states"]["xy"].shape == (2, 3, 2)
    np.testing.assert_array_equal(ex["trajectory"][:, -1], ex["gt_descriptor"])
    np.testing.assert_array_equal(ex["trajectory_states"]["xy"][:, -1], ex["final_state"]["xy"])
    np.testing.assert_array_equal(ex["trajectory"], task.descriptor(ex["trajectory_states"]["xy"]))
    assert not np.allclose(ex["trajectory_states"]["xy"][:, 0], ex["trajectory_states"]["xy"][:, -1])
