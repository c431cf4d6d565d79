"""SERENE (qd.algorithms.serene): the budget as documented, bootstrap verdicts, Pareto choice, stagnation,
parallel == faithful with one slot, exact resume in the middle of an exploitation chunk.

The runs use a 2-gene toy (descriptor = genome / 5, reward chosen per test) so that compiling and running
stay cheap; the numbers asserted are SERENE's documented budget arithmetic (chunks of 1000, 5 novelty
generations of 200, bootstraps of 6 + 5 x 12 while more than a third of the chunk is left).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emitters.local import FitnessEmitter
from qd.algorithms.serene import ACTIVE, EMPTY, Serene, SereneAlgorithm, _stagnated, stagnation_window
from qd.archives import UnstructuredArchive
from qd.checkpoint import load_checkpoint, save_checkpoint
from qd.tasks.base import Evaluation

BOUNDS = ((-1.0, -1.0), (1.0, 1.0))


def _evaluate(reward):
    def evaluate(genotypes, key=None):
        desc = jnp.clip(genotypes[:, :2] / 5.0, -1.0, 1.0)
        fit = reward(genotypes)
        extras = {"gt_descriptor": desc, "reward_area": jnp.where(fit > 0, 0, -1).astype(jnp.int32)}
        return Evaluation(fit.astype(jnp.float32), desc, extras)
    return evaluate


smooth = _evaluate(lambda g: jnp.exp(g[:, 0] / 5.0))  # rewarding everywhere, improvable


def _stores(dim=2):
    t = jnp.zeros((dim,))
    a = UnstructuredArchive.create(t, 2048, 2, *BOUNDS, policy="random", num_per_batch=5)
    r = UnstructuredArchive.create(t, 2048, 2, *BOUNDS, threshold=0.0)
    return a, r


def _start(serene, population=100, seed=0):
    a, r = _stores()
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    genotypes = jnp.clip(jax.random.normal(k1, (population, 2)), -5, 5)
    return serene.init(a, genotypes, r, k2)


def _phase_runs(metrics):
    """``[(phase, evaluations spent in that run of iterations)]`` from per-iteration metrics."""
    explore = np.asarray(metrics["explore_evaluations"])
    exploit = np.asarray(metrics["exploit_evaluations"])
    spent_explore = np.diff(np.concatenate([[0], explore]))
    spent_exploit = np.diff(np.concatenate([[0], exploit]))
    runs = []
    for e, x in zip(spent_explore, spent_exploit):
        phase, n = ("explore", e) if e else ("exploit", x)
        if runs and runs[-1][0] == phase:
            runs[-1][1] += int(n)
        else:
            runs.append([phase, int(n)])
    return runs


def test_budget_is_spent_in_documented_chunks():
    serene = Serene(smooth, BOUNDS, 1, FitnessEmitter(), budget=100_000)
    state, m0 = _start(serene)
    assert int(m0["num_evaluations"]) == 100  # the initial population comes before the first chunk
    # explore 5 x 200, exploit 11 bootstraps x 66 + 23 steps x 12, twice: 5 + 89 + 5 + 89 iterations
    state, m = serene.scan(state, 188)
    runs = _phase_runs(m)
    assert runs == [["explore", 1000], ["exploit", 1002], ["explore", 1000], ["exploit", 1002]]
    boot = np.asarray(m["bootstrap_evaluations"])
    assert boot[5 + 88] == 11 * 66 and boot[-1] == 22 * 66
    assert int(m["emitters_promoted"][-1]) == 22 and int(m["candidates_dropped"][-1]) == 0
    assert int(m["active_emitters"][-1]) == 22
    evals = np.asarray(m["num_evaluations"])
    assert np.array_equal(evals, 100 + np.asarray(m["explore_evaluations"]) + np.asarray(m["exploit_evaluations"]))
    assert int(m["phase"][-1]) == 0  # the next chunk explores again (alternating)
    # every emitter evaluation is booked to the ancestor's area (area 0 here)
    assert int(m["area_evaluations_0"][-1]) == 2004


def _small(mode, slots=1):
    return Serene(smooth, BOUNDS, 1, FitnessEmitter(), budget=2500, mode=mode, emitter_slots=slots,
                  chunk_evaluations=200, candidate_capacity=16)


@pytest.fixture(scope="module")
def faithful_one_slot():
    return _small("faithful")


def _scan(serene, state, chunks):
    """``chunks`` scans of 20 iterations (one compiled program), metrics concatenated."""
    out = []
    for _ in range(chunks):
        state, m = serene.scan(state, 20)
        out.append(m)
    return state, {k: np.concatenate([np.asarray(m[k]) for m in out]) for k in out[0]}


def _same_states(a, b):
    # ``chosen`` is the faithful mode's bookkeeping (the parallel mode steps every active slot)
    a, b = a.replace(algo=a.algo.replace(chosen=0)), b.replace(algo=b.algo.replace(chosen=0))
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_parallel_with_one_slot_equals_faithful(faithful_one_slot):
    parallel = _small("parallel")
    a, _ = _start(faithful_one_slot, population=10)
    b, _ = _start(parallel, population=10)
    a, ma = _scan(faithful_one_slot, a, 6)
    b, mb = _scan(parallel, b, 6)
    assert int(ma["exploit_evaluations"][-1]) > 300 and int(ma["emitters_promoted"][-1]) > 0  # exploitation did happen
    for k in ma:
        np.testing.assert_array_equal(ma[k], mb[k], err_msg=k)
    _same_states(a, b)


def test_resume_in_an_exploitation_chunk_is_exact(faithful_one_slot, tmp_path):
    serene = faithful_one_slot
    straight, _ = _start(serene, population=10, seed=3)
    resumed, _ = _start(serene, population=10, seed=3)
    straight, m_straight = _scan(serene, straight, 4)
    resumed, m = _scan(serene, resumed, 2)
    assert int(m["phase"][-1]) == 1 and int(resumed.slots.steps.max()) > 0  # stopped inside an exploit chunk
    path = str(tmp_path / "checkpoint.npz")
    save_checkpoint(path, resumed)
    template = _start(serene, population=10, seed=99)[0]
    resumed, _ = load_checkpoint(path, template)
    resumed, m_resumed = _scan(serene, resumed, 2)
    for k in m_straight:
        np.testing.assert_array_equal(m_straight[k][40:], m_resumed[k], err_msg=k)
    _same_states(straight, resumed)


def test_budget_ends_the_run_within_one_iteration(faithful_one_slot):
    state, _ = _start(faithful_one_slot, population=10, seed=5)
    state, m = _scan(faithful_one_slot, state, 9)
    evals, phase = m["num_evaluations"], m["phase"]
    done = int(np.argmax(phase == 2))
    assert phase[done] == 2 and 2500 <= evals[done] < 2500 + 12
    assert np.all(evals[done:] == evals[done])  # nothing is evaluated once the budget is spent


# --------------------------------------------------------------------------------------------- #
# Pieces on hand-made inputs
# --------------------------------------------------------------------------------------------- #
def _hand_made_state(algo, improvements, status):
    a, r = _stores()
    state, _ = algo.init(jax.random.PRNGKey(0), a, jnp.zeros((4, 2)), r)
    slots = state.slots.replace(improvement=jnp.asarray(improvements, jnp.float32), status=jnp.asarray(status, jnp.int32))
    return state.replace(slots=slots)


def test_pareto_choice_is_uniform_on_the_first_front():
    algo = SereneAlgorithm(FitnessEmitter(), budget=10_000, emitter_slots=5)
    # (novelty of the ancestor against R, improvement): (3, 1), (1, 3), (2, 2) are the front; (1, 1) and
    # (0.5, 0.5) are dominated; slot 4 is not active.
    state = _hand_made_state(algo, [1.0, 3.0, 2.0, 1.0, 9.0], [ACTIVE, ACTIVE, ACTIVE, ACTIVE, EMPTY])
    novelty = jnp.asarray([3.0, 1.0, 2.0, 1.0, 9.0])
    algo._novelty_against_rewards = lambda s, d: novelty
    # R must not be empty for the Pareto rule
    r = state.ns.reward_archive
    r, _ = r.add(jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.ones((1,)), novelty=jnp.full((1,), jnp.inf))
    state = state.replace(ns=state.ns.replace(reward_archive=r))
    choose = jax.jit(jax.vmap(lambda k: algo._choose_emitter(state, k)))
    picks = np.asarray(choose(jax.random.split(jax.random.PRNGKey(1), 600)))
    counts = np.bincount(picks, minlength=5)
    assert counts[3] == 0 and counts[4] == 0
    assert np.all(counts[:3] > 150)  # uniform over the three: 200 expected each
    # without a reward archive: the best improvement among the active slots
    empty = state.replace(ns=state.ns.replace(reward_archive=_stores()[1]))
    assert int(algo._choose_emitter(empty, jax.random.PRNGKey(0))) == 1


def test_stagnation_window_and_rule():
    assert [stagnation_window(n) for n in (94, 63, 228, 574)] == [433, 330, 880, 2033]
    h, n = 126, 6
    steps = jnp.asarray(h + 7)

    def ring(values):  # values[t] for t < steps, written at t % h
        hist = np.zeros((h, n), np.float32)
        for t in range(int(steps)):
            hist[t % h] = values(t)
        return jnp.asarray(hist)

    rising = ring(lambda t: np.full(n, t, np.float32))
    assert not bool(_stagnated(rising, steps))
    flat = ring(lambda t: np.ones(n, np.float32))
    assert bool(_stagnated(flat, steps))
    assert not bool(_stagnated(flat, jnp.asarray(h)))  # needs more than H steps
    # medians rise, but the best of the oldest 20 steps is never beaten: the max clause stops it
    spike = ring(lambda t: np.array([t, t, t, t, t, 10_000.0 if t == int(steps) - h else 0.0], np.float32))
    assert bool(_stagnated(spike, steps))
    # one new best in the last 20 steps and rising medians: keeps going
    assert not bool(_stagnated(ring(lambda t: np.array([t] * 5 + [t * 2.0], np.float32)), steps))


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="mode"):
        SereneAlgorithm(FitnessEmitter(), budget=1000, mode="fast")
    with pytest.raises(TypeError, match="local emitter"):
        SereneAlgorithm(object(), budget=1000)
    with pytest.raises(ValueError, match="bootstrap_fraction"):
        SereneAlgorithm(FitnessEmitter(), budget=1000, bootstrap_fraction=1.0)
    algo = SereneAlgorithm(FitnessEmitter(), budget=1000)
    a, r = _stores()
    with pytest.raises(ValueError, match="reward archive"):
        algo.init(jax.random.PRNGKey(0), a, jnp.zeros((4, 2)), None)
    with pytest.raises(ValueError, match="flat genomes"):
        algo.init(jax.random.PRNGKey(0), a, jnp.zeros((4, 2, 1)), r)


def _one_emitter(algo):
    """A state whose slot 0 holds a freshly loaded emitter (ancestor at the origin), in an exploit chunk."""
    from qd.algorithms.serene import EXPLOIT

    a, r = _stores()
    state, _ = algo.init(jax.random.PRNGKey(0), a, jnp.zeros((4, 2)), r)
    cand = state.candidates
    cand = cand.replace(valid=cand.valid.at[0].set(True), sigma=cand.sigma.at[0].set(0.1),
                        agents=cand.agents.replace(fitnesses=cand.agents.fitnesses.at[0].set(0.05)))
    state = state.replace(candidates=cand, phase=jnp.int32(EXPLOIT), chunk_left=jnp.int32(1000))
    return algo._load_candidates(state, jax.random.PRNGKey(1))


def _told(algo, state, fitnesses, descriptors):
    genotypes, state, counted = algo._ask_exploit(state, jax.random.PRNGKey(2))
    b = genotypes.shape[0]
    extras = {"gt_descriptor": descriptors, "reward_area": jnp.zeros((b,), jnp.int32)}
    state = algo._tell_exploit(state, genotypes, Evaluation(fitnesses, descriptors, extras), counted, jax.random.PRNGKey(3))
    return algo.plan(state, jax.random.PRNGKey(4))


@pytest.fixture(scope="module")
def one_emitter():
    """``(fresh state, tell(state, fitnesses (12,), descriptors (12, 2)))``: one exploitation iteration of a
    single FIT emitter on hand-made scores, compiled once for the tests below."""
    algo = SereneAlgorithm(FitnessEmitter(), budget=100_000, emitter_slots=1)
    start = jax.jit(lambda: _one_emitter(algo))()
    tell = jax.jit(lambda s, f, d: _told(algo, s, f, d))
    return start, lambda s, f, d=None: tell(s, jnp.asarray(f, jnp.float32),
                                            jnp.zeros((12, 2), jnp.float32) if d is None else jnp.asarray(d, jnp.float32))


def test_reward_archive_gets_the_first_best_then_each_new_best(one_emitter):
    state, tell = one_emitter
    r0 = int(state.ns.reward_archive.num_elites)
    # the initial population (6 counted rows; rows 6..11 are padding, whatever they score)
    state = tell(state, [0.0, 0.5, 0.2, -1.0, 0.3, 0.1] + [99.0] * 6)
    r = state.ns.reward_archive
    assert int(r.num_elites) == r0 + 1 and float(jnp.max(jnp.where(r.filled, r.fitnesses, -jnp.inf))) == 0.5
    assert float(state.slots.archived_max[0]) == 0.5
    # then every proposal that beats the best archived so far (0.5): 0.6 and 0.7, not 0.5 nor 0.4
    state = tell(state, [0.4, 0.6, 0.5, 0.7] + [0.0] * 8)
    r = state.ns.reward_archive
    stored = np.sort(np.asarray(r.fitnesses)[np.asarray(r.filled)])
    np.testing.assert_array_equal(stored, np.float32([0.5, 0.6, 0.7]))
    assert float(state.slots.archived_max[0]) == np.float32(0.7)
    assert int(state.spent) == 6 + 12 and int(state.bootstrap_evaluations) == 18


def test_first_archival_waits_for_a_reward(one_emitter):
    state, tell = one_emitter
    state = tell(state, [0.0, -0.5] + [-1.0] * 10)
    assert int(state.ns.reward_archive.num_elites) == 0 and not np.isfinite(float(state.slots.archived_max[0]))


def test_novelty_candidates_are_the_record_breakers(one_emitter):
    state, tell = one_emitter
    far = np.zeros((12, 2), np.float32)
    far[:6, 0] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    state = tell(state, np.zeros(12), far)  # first step: every counted proposal beats "none yet"
    assert int(state.slots.seen[0]) == 6
    best = float(state.slots.most_novel[0])
    state = tell(state, np.zeros(12), np.zeros((12, 2)))  # nothing more novel than the best so far
    assert int(state.slots.seen[0]) == 6 and float(state.slots.most_novel[0]) == best
    # the reservoir holds 5 of the 6 offered (uniformly), each one of them
    kept = np.asarray(state.slots.reservoir.descriptors[0])[:, 0]
    assert len(set(kept.tolist())) == 5 and set(kept.tolist()) <= set(far[:6, 0].tolist())


def test_a_candidate_that_does_not_improve_is_dropped_and_the_chunk_ends(one_emitter):
    from qd.algorithms.serene import BOOTSTRAPPING, EXPLORE

    state, tell = one_emitter
    assert int(state.slots.status[0]) == BOOTSTRAPPING and int(state.candidates.valid.sum()) == 0
    for step in range(6):  # the initial population and 5 steps, every proposal rewarded 1: no improvement
        assert int(state.slots.status[0]) == BOOTSTRAPPING
        state = tell(state, np.ones(12))
    assert int(state.slots.status[0]) == EMPTY
    assert int(state.candidates_dropped) == 1 and int(state.emitters_promoted) == 0
    assert int(state.bootstrap_evaluations) == 66
    # nothing left to bootstrap or run: the exploitation chunk ends early and the next one explores
    assert int(state.phase) == EXPLORE and int(state.chunk_left) == 1000


def test_a_candidate_that_improves_becomes_active(one_emitter):
    from qd.algorithms.serene import EXPLOIT

    state, tell = one_emitter
    for step in range(6):  # rewards rise step after step
        state = tell(state, np.full(12, 1.0 + step))
    assert int(state.slots.status[0]) == ACTIVE and int(state.emitters_promoted) == 1
    # improvement = mean of the last 3 steps' population rewards - mean of the first 3 ones
    assert float(state.slots.improvement[0]) > 0
    assert int(state.phase) == EXPLOIT and bool(state.running[0])  # it runs on in the same chunk
