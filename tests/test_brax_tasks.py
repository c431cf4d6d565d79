"""Brax tasks: rollout semantics (against step-by-step loops), done masking, descriptor ranges,
determinism and input checks.

Kept fast: a hand-written JAX environment for the exact masking checks (compiles in a second), and one
short hopper_uni task (episode 12, batch 4) whose compiled programs are shared through module fixtures.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from qd.tasks.brax import batched_rollout, make_task, rollout
from qd.tasks.brax.policy import MLPPolicy, init_policies


# --------------------------------------------------------------------------------------------- #
# A tiny environment following the protocol: a point on a line, done once it passes x = 1.
# After done it returns NaN rewards, which must never reach the fitness.
# --------------------------------------------------------------------------------------------- #
@struct.dataclass
class PointState:
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    x: jax.Array


@struct.dataclass
class PointEnv:
    observation_size: int = struct.field(pytree_node=False, default=1)
    action_size: int = struct.field(pytree_node=False, default=1)

    def reset(self, key):
        x = jnp.zeros(())
        return PointState(obs=x[None], reward=jnp.zeros(()), done=jnp.zeros(()), x=x)

    def step(self, state, action):
        x = state.x + 0.25 * (action[0] + 1.0)  # moves right by 0 .. 0.5 per step
        ended = state.done > 0.5
        reward = jnp.where(ended, jnp.nan, action[0] + 2.0)
        done = jnp.where(ended | (x > 1.0), 1.0, 0.0)
        return PointState(obs=x[None], reward=reward, done=done, x=x)


def constant_policy(params, obs):
    return jnp.tanh(params["a"])[None] + 0.0 * obs


def point_loop(action_param, length):
    """Reference: Python loop with an explicit done check."""
    env, state = PointEnv(), PointEnv().reset(None)
    fitness, desc_sum, last, steps = 0.0, 0.0, None, 0
    for _ in range(length):
        desc = float(state.x)
        nxt = env.step(state, constant_policy({"a": jnp.asarray(action_param)}, state.obs))
        fitness += float(nxt.reward)
        desc_sum += desc
        last = desc
        steps += 1
        state = nxt
        if float(nxt.done) > 0.5:
            break
    return fitness, desc_sum / steps, last, steps


@pytest.mark.parametrize("reduction", ["mean", "last"])
def test_rollout_masks_everything_after_done(reduction):
    env = PointEnv()
    params = {"a": jnp.asarray([-3.0, 0.0, 0.3, 3.0])}  # speeds ~0.0012, 0.25, 0.32, 0.5 per step
    stats = jax.jit(
        lambda p: batched_rollout(env, constant_policy, p, env.reset(None), 10, lambda s: s.reward,
                                  lambda s: s.x[None], reduction)
    )(params)
    steps = np.asarray(stats.steps)
    # fastest candidates end early: x passes 1 after 5 steps at 0.25/step, 4 at 0.32, 3 at 0.5
    np.testing.assert_array_equal(steps, [10, 5, 4, 3])
    assert np.all(np.isfinite(stats.fitness))
    for i, a in enumerate(np.asarray(params["a"])):
        fit, mean_desc, last_desc, n = point_loop(a, 10)
        assert n == steps[i]
        np.testing.assert_allclose(stats.fitness[i], fit, rtol=1e-5)
        expected = mean_desc if reduction == "mean" else last_desc
        np.testing.assert_allclose(stats.descriptor[i, 0], expected, rtol=1e-5, atol=1e-6)


def test_rollout_of_one_equals_batched_row():
    env = PointEnv()
    params = {"a": jnp.asarray([0.1, 0.7])}
    one = rollout(env, constant_policy, {"a": params["a"][1]}, env.reset(None), 6, lambda s: s.reward,
                  lambda s: s.x[None])
    many = batched_rollout(env, constant_policy, params, env.reset(None), 6, lambda s: s.reward,
                           lambda s: s.x[None])
    np.testing.assert_allclose(one.fitness, many.fitness[1], rtol=1e-6)
    assert int(one.steps) == int(many.steps[1])


# --------------------------------------------------------------------------------------------- #
# A real Brax task, compiled once per module.
# --------------------------------------------------------------------------------------------- #
EPISODE = 12
BATCH = 4


@pytest.fixture(scope="module")
def hopper():
    task = make_task("hopper_uni", episode_length=EPISODE, hidden_sizes=(8,))
    genotypes = task.initial_genotypes(jax.random.PRNGKey(1), BATCH)
    # scale the weights up so that some policies fall (and terminate) within a few steps
    genotypes = jax.tree_util.tree_map(lambda x: 4.0 * x, genotypes)
    stats_fn = jax.jit(task.rollout_stats)
    stats = stats_fn(genotypes, jax.random.PRNGKey(2))
    return task, genotypes, stats_fn, stats


def python_loop(task, genotype):
    """Step-by-step reference with jitted env.step / policy, an explicit break on done."""
    step = jax.jit(task.env.step)
    act = jax.jit(task.policy.apply)
    contact = jax.jit(task.state_descriptor)
    state = task.init_state()
    fitness, contacts, steps = 0.0, [], 0
    for _ in range(task.episode_length):
        contacts.append(np.asarray(contact(state)))
        state = step(state, act(genotype, state.obs))
        fitness += float(state.reward)
        steps += 1
        if float(state.done) > 0.5:
            break
    return fitness, np.mean(contacts, axis=0), steps


def test_hopper_rollout_equals_python_loop(hopper):
    task, genotypes, _, stats = hopper
    for i in range(BATCH):
        g = jax.tree_util.tree_map(lambda x: x[i], genotypes)
        fitness, descriptor, steps = python_loop(task, g)
        assert int(stats.steps[i]) == steps
        np.testing.assert_allclose(stats.fitness[i], fitness, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(stats.descriptor[i], descriptor, atol=1e-6)


def test_hopper_terminates_early_and_descriptors_in_range(hopper):
    task, _, _, stats = hopper
    steps = np.asarray(stats.steps)
    assert steps.min() < EPISODE, "expected at least one policy to fall (test of the done mask)"
    assert steps.min() >= 1 and steps.max() <= EPISODE
    lo, hi = task.descriptor_bounds
    assert lo == (0.0,) and hi == (1.0,)
    d = np.asarray(stats.descriptor)
    assert d.shape == (BATCH, 1) and np.all(d >= 0.0) and np.all(d <= 1.0)
    # a fraction of the valid steps: a multiple of 1 / steps
    np.testing.assert_allclose(d[:, 0] * steps, np.round(d[:, 0] * steps), atol=1e-4)
    assert np.all(np.isfinite(stats.fitness))
    assert task.qd_offset == pytest.approx(-0.9 * EPISODE)


def test_hopper_deterministic(hopper):
    task, genotypes, stats_fn, stats = hopper
    again = stats_fn(genotypes, jax.random.PRNGKey(2))
    other_key = stats_fn(genotypes, jax.random.PRNGKey(3))  # fixed start: the key does not matter
    for a, b in ((stats, again), (stats, other_key)):
        np.testing.assert_array_equal(a.fitness, b.fitness)
        np.testing.assert_array_equal(a.descriptor, b.descriptor)
        np.testing.assert_array_equal(a.steps, b.steps)


def test_evaluate_matches_stats_and_checks_input(hopper):
    task, genotypes, _, stats = hopper
    evaluation = jax.jit(task.evaluate)(genotypes, jax.random.PRNGKey(2))
    np.testing.assert_array_equal(evaluation.fitnesses, stats.fitness)
    np.testing.assert_array_equal(evaluation.descriptors, stats.descriptor)
    with pytest.raises(ValueError, match="does not match"):
        task.evaluate(jax.tree_util.tree_map(lambda x: x[0], genotypes), jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="MLPPolicy parameter pytrees"):
        task.evaluate(jnp.zeros((BATCH, 10)), jax.random.PRNGKey(0))


def test_initial_genotypes_are_vmapped_policy_inits(hopper):
    task = hopper[0]
    g = task.initial_genotypes(jax.random.PRNGKey(5), 3)
    kernel = g["params"]["Dense_0"]["kernel"]
    assert kernel.shape == (3, task.observation_size, 8)
    assert not np.allclose(kernel[0], kernel[1])  # independent draws
    policy = MLPPolicy(action_size=task.action_size, hidden_sizes=(8,))
    direct = policy.init(jax.random.split(jax.random.PRNGKey(5), 3)[2], jnp.zeros(task.observation_size))
    np.testing.assert_allclose(kernel[2], direct["params"]["Dense_0"]["kernel"])
    out = policy.apply(jax.tree_util.tree_map(lambda x: x[0], g), jnp.full(task.observation_size, 100.0))
    assert out.shape == (task.action_size,) and np.all(np.abs(out) <= 1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="walker3d_uni"), "unknown brax task"),
        (dict(name="hopper_uni", backend="bullet"), "unknown backend"),
        (dict(name="hopper_uni", episode_length=0), "episode_length"),
        (dict(name="hopper_uni", hidden_sizes=(8, -1)), "hidden_sizes"),
        (dict(name="hopper_uni", activation="sigmoidish"), "activation"),
        (dict(name="ant_omni", xy_bounds=(5.0, -5.0)), "xy_bounds"),
    ],
)
def test_make_task_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_task(**kwargs)


def test_task_definitions_and_bounds():
    """Every named task builds (nothing compiles) with the documented descriptor and offset."""
    expected = {
        "hopper_uni": (1, 0.9),
        "walker2d_uni": (2, 1.413),
        "halfcheetah_uni": (2, 9.231),
        "ant_uni": (4, 3.24),
        "ant_omni": (2, 3.0),
        "humanoid_omni": (2, 0.0),
    }
    for name, (d, offset) in expected.items():
        task = make_task(name, episode_length=100)
        lo, hi = task.descriptor_bounds
        assert len(lo) == len(hi) == d == task.descriptor_dim
        if name.endswith("_omni"):
            assert lo == (-30.0, -30.0) and hi == (30.0, 30.0)
        else:
            assert lo == (0.0,) * d and hi == (1.0,) * d
        assert task.qd_offset == pytest.approx(-offset * 100)
