"""Local emitters (emitters.local: FIT, novelty, CMA-ES from an ancestor) and SERENE's chunk schedulers
(qd.algorithms.phase_schedulers), on hand-made inputs."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emitters.local import CMAESEmitter, FitnessEmitter, NoveltyEmitter
from qd.algorithms.phase_schedulers import PhaseScheduler
from qd.archives.base import AddResult


def _result(novelty):
    novelty = jnp.asarray(novelty, jnp.float32)
    return AddResult(cell=jnp.full(novelty.shape, -1, jnp.int32), status=jnp.zeros(novelty.shape, jnp.int32),
                     improvement=novelty)


def test_fit_emitter_initial_population_then_six_of_eighteen():
    em = FitnessEmitter()
    ancestor = jnp.asarray([1.0, -2.0, 3.0])
    state = em.init_at(jax.random.PRNGKey(0), ancestor, 0.01)
    assert int(em.num_asked(state)) == 6
    first = em.ask(state, None, jax.random.PRNGKey(1))
    assert first.shape == (12, 3)
    np.testing.assert_allclose(first[:6], np.broadcast_to(ancestor, (6, 3)), atol=0.05)
    rewards = jnp.arange(12, dtype=jnp.float32)  # the padding rows 6..11 must be ignored
    state = em.tell(state, None, first, rewards, jnp.zeros((12, 2)), _result(jnp.zeros(12)))
    np.testing.assert_array_equal(state.population, first[:6])
    np.testing.assert_array_equal(state.rewards, np.arange(6))
    assert int(em.num_asked(state)) == 12
    children = em.ask(state, None, jax.random.PRNGKey(2))
    # two children per parent, parent-major, at the fixed step 0.01
    np.testing.assert_allclose(children, np.repeat(np.asarray(first[:6]), 2, axis=0), atol=0.05)
    child_rewards = jnp.asarray([10, -1, 2.5, -1, -1, -1, 7, -1, -1, -1, -1, 4.5], jnp.float32)
    state = em.tell(state, None, children, child_rewards, jnp.zeros((12, 2)), _result(jnp.zeros(12)))
    # parents 0..5 and these children: the 6 best are 10, 7, 5 (parent), 4.5, 4 (parent), 3 (parent)
    np.testing.assert_array_equal(np.sort(np.asarray(state.rewards))[::-1], [10, 7, 5, 4.5, 4, 3])
    rows = {tuple(np.asarray(g)) for g in state.population}
    assert tuple(np.asarray(children[0])) in rows and tuple(np.asarray(children[11])) in rows
    assert not bool(em.should_stop(state))


def test_novelty_emitter_ranks_by_novelty():
    em = NoveltyEmitter()
    state = em.init_at(jax.random.PRNGKey(0), jnp.zeros(2), 0.1)
    first = em.ask(state, None, jax.random.PRNGKey(1))
    state = em.tell(state, None, first, jnp.zeros(12), jnp.zeros((12, 2)), _result(jnp.arange(12.0)))
    children = em.ask(state, None, jax.random.PRNGKey(2))
    novelty = jnp.asarray([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100.0, 50.0])
    rewards = jnp.asarray([9.0] * 10 + [-1.0, -2.0])
    state = em.tell(state, None, children, rewards, jnp.zeros((12, 2)), _result(novelty))
    # the two most novel children and the 4 most novel parents (novelty 5, 4, 3, 2), whatever the rewards
    np.testing.assert_array_equal(np.sort(np.asarray(state.scores))[::-1], [100, 50, 5, 4, 3, 2])
    assert -1.0 in np.asarray(state.rewards) and -2.0 in np.asarray(state.rewards)


def test_cma_es_emitter_climbs_a_reward_from_its_ancestor():
    em = CMAESEmitter(dim=5)
    target = jnp.full((5,), 1.0)
    reward = lambda x: -jnp.sum((x - target) ** 2, axis=-1)

    @jax.jit
    def run(key):
        state = em.init_at(key, jnp.zeros(5), 0.3)

        def step(state, k):
            x = em.ask(state, None, k)
            return em.tell(state, None, x, reward(x), jnp.zeros((6, 2)), _result(jnp.zeros(6))), None

        state, _ = jax.lax.scan(step, state, jax.random.split(key, 150))
        return state

    state = run(jax.random.PRNGKey(0))
    assert float(state.cma.sigma) < 0.3  # it started at the ancestor's sigma0 and converged
    np.testing.assert_allclose(state.cma.mean, target, atol=0.1)
    assert int(em.num_asked(state)) == 6 and em.population_rewards(state).shape == (6,)


def test_local_emitter_configuration_errors():
    with pytest.raises(ValueError, match="multiple of population_size"):
        FitnessEmitter(batch_size=10)
    with pytest.raises(ValueError, match="criterion"):
        FitnessEmitter(criterion="fitness")
    with pytest.raises(ValueError, match="exceeds batch_size"):
        FitnessEmitter(batch_size=6, population_size=12)
    with pytest.raises(ValueError, match="dim"):
        CMAESEmitter(dim=0)
    with pytest.raises(ValueError, match="must equal population_size"):
        CMAESEmitter(dim=3, batch_size=12)


# --------------------------------------------------------------------------------------------- #
# Chunk schedulers
# --------------------------------------------------------------------------------------------- #
def _choose(s, state, key, last, spent=0, budget=1000, before=0, after=0):
    return s.choose(state, key, jnp.int32(last), jnp.int32(spent), budget, jnp.int32(before), jnp.int32(after))


def test_alternating_scheduler():
    s = PhaseScheduler()
    state = s.init()
    assert int(_choose(s, state, None, 0)[0]) == 1 and int(_choose(s, state, None, 1)[0]) == 0


def test_sampling_schedulers_frequencies():
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    fixed = PhaseScheduler("fixed", explore_probability=0.25)
    picks = jax.vmap(lambda k: _choose(fixed, fixed.init(), k, 0)[0])(keys)
    assert abs(float(jnp.mean(picks == 0)) - 0.25) < 0.03
    time = PhaseScheduler("time")
    for spent, p_explore in ((0, 1.0), (750, 0.25), (1000, 0.0)):
        picks = jax.vmap(lambda k: _choose(time, time.init(), k, 1, spent=spent)[0])(keys)
        assert abs(float(jnp.mean(picks == 0)) - p_explore) < 0.03


def test_ucb_scheduler_rewards_emitter_growth():
    s = PhaseScheduler("ucb")
    state = s.init()
    # an exploration chunk that created 2 emitters: explore earns -tanh(2); exploit is unplayed, so next
    phase, state = _choose(s, state, None, 0, before=0, after=2)
    assert int(phase) == 1
    np.testing.assert_allclose(state.values, [-math.tanh(2), 0.0], rtol=1e-6)
    # an exploitation chunk that consumed one: exploit earns tanh(-1) = -0.76 > -0.96 (same bonus): exploit
    phase, state = _choose(s, state, None, 1, before=2, after=1)
    np.testing.assert_allclose(state.values, [-math.tanh(2), -math.tanh(1)], rtol=1e-6)
    np.testing.assert_array_equal(state.counts, [1, 1])
    assert int(phase) == 1
    # exploit again, consuming 3 more: its mean drops to (tanh(-1) + tanh(-3)) / 2 = -0.88 > -0.96, but
    # its bonus shrinks (n = 2): sqrt(2 ln 3 / 2) = 1.05 vs sqrt(2 ln 3) = 1.48 for explore -> explore
    phase, state = _choose(s, state, None, 1, before=4, after=1)
    np.testing.assert_allclose(state.values[1], (-math.tanh(1) - math.tanh(3)) / 2, rtol=1e-6)
    assert int(phase) == 0


def test_scheduler_configuration_errors():
    with pytest.raises(ValueError, match="rule"):
        PhaseScheduler("round_robin")
    with pytest.raises(ValueError, match="explore_probability"):
        PhaseScheduler("fixed", explore_probability=1.0)
    with pytest.raises(ValueError, match="discount"):
        PhaseScheduler("ucb", discount=0.0)
