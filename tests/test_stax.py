"""STAX (qd.algorithms.stax): the training schedule (after exploration chunks 1, 3, 6), the refresh of every
store (reward archive, candidates, emitters' ancestors and novelty candidates included), STAX-P's NSGA-II
selection on (novelty, surprise).

A 4-gene toy (tests/_learned_toys.py: the source is the first 3 genes, reward g0 beyond 1) and a tiny MLP
autoencoder keep it to one small compiled program."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emitters.local import FitnessEmitter
from qd.algorithms.serene import EMPTY
from qd.algorithms.stax import Stax, StaxAlgorithm
from qd.archives import UnstructuredArchive
from qd.learned.training import Autoencoder

from _learned_toys import D, TinyAE, _copy, _template, evaluate
from _pareto import assert_best_fronts_chosen

BOUNDS = ((-1.0, -1.0), (1.0, 1.0))


def _archives():
    a = UnstructuredArchive.create(jnp.zeros(D), 400, 2, policy="random", num_per_batch=5, extras_template=_template())
    r = UnstructuredArchive.create(jnp.zeros(D), 400, 2, threshold=0.0, extras_template=_template())
    return a, r


@pytest.fixture(scope="module")
def run():
    """A STAX-P run of 8 scans of 20 iterations (10 parents, chunks of 100): ``(algorithm, initial encoder,
    state, metrics)``."""
    ae = Autoencoder(TinyAE(), batch_size=16)
    stax = Stax(evaluate, BOUNDS, 1, FitnessEmitter(), 100_000, ae, selection="nsga2", chunk_evaluations=100, emitter_slots=4,
                candidate_capacity=8, max_epochs=3, patience=0)
    a, r = _archives()
    key = jax.random.PRNGKey(0)
    state, _ = stax.init(a, 1.5 * jax.random.normal(key, (10, D)), r, key)
    before = _copy(state.algo.ae)
    out = []
    for _ in range(8):
        state, m = stax.scan(state, 20)
        out.append(m)
    metrics = {k: np.concatenate([np.asarray(m[k]) for m in out]) for k in out[0]}
    return stax.algorithm, before, state.algo, metrics


def test_trainings_follow_exploration_chunks_1_3_6(run):
    _, _, _, m = run
    trainings, explored = m["ae_trainings"], m["explore_evaluations"]
    assert trainings[-1] >= 3
    for t in range(1, int(trainings[-1]) + 1):
        at = int(np.argmax(trainings >= t))
        # the training comes right after the iteration that completes exploration chunk 1, 3, 6
        assert explored[at] == 100 * (t * (t + 1) // 2), (t, explored[at])
    assert m["exploit_evaluations"][-1] > 0 and m["emitters_promoted"][-1] > 0


def test_refresh_reaches_every_store(run):
    algo, before, s, _ = run
    ae = algo.autoencoder
    fresh = lambda sources: np.asarray(ae.encode(s.ae, sources)[0])
    stale = lambda sources: np.asarray(ae.encode(before, sources)[0])
    close = lambda a, b: np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5)
    # each store named one by one (not through algo.stores, which is what is being checked)
    src = "final_state"
    close(s.ns.descriptors, fresh(s.population_extras[src]))
    close(s.surprise, np.asarray(ae.encode(s.ae, s.population_extras[src])[1]))
    close(s.offspring.descriptors, fresh(s.offspring.extras[src]))
    for archive in (s.ns.archive, s.ns.reward_archive):
        filled = np.asarray(archive.filled)
        assert filled.sum() >= 5
        close(np.asarray(archive.descriptors)[filled], fresh(archive.extras[src])[filled])
        assert not np.allclose(fresh(archive.extras[src])[filled], stale(archive.extras[src])[filled], atol=1e-4)
    valid = np.asarray(s.candidates.valid)
    assert valid.any()
    close(np.asarray(s.candidates.agents.descriptors)[valid], fresh(s.candidates.agents.extras[src])[valid])
    live = np.asarray(s.slots.status) != EMPTY
    assert live.any()
    close(np.asarray(s.slots.ancestor.descriptors)[live], fresh(s.slots.ancestor.extras[src])[live])
    seen = np.minimum(np.asarray(s.slots.seen), 5)
    checked = 0
    for slot in np.flatnonzero(live):
        rows = slice(0, seen[slot])
        close(np.asarray(s.slots.reservoir.descriptors[slot])[rows], fresh(s.slots.reservoir.extras[src][slot])[rows])
        checked += seen[slot]
    assert checked > 0
    assert sorted(algo.stores(s)) == sorted(["population", "offspring", "archive", "reward_archive", "candidates",
                                             "ancestors", "novelty_candidates"])


def test_stax_p_keeps_the_first_fronts_of_novelty_and_surprise(run):
    algo = run[0]
    rng = np.random.default_rng(0)
    p, n = 10, 30
    state = run[2].replace(surprise=jnp.asarray(rng.uniform(size=p), jnp.float32))
    surprise_o = rng.uniform(size=n - p).astype(np.float32)
    novelty = rng.uniform(size=n).astype(np.float32)
    evaluation = evaluate(jnp.zeros((n - p, D)))
    evaluation = evaluation.replace(extras={**evaluation.extras, "surprise": jnp.asarray(surprise_o)})
    select = algo._selector(state, evaluation, jax.random.PRNGKey(0))
    chosen = np.asarray(select(jnp.asarray(novelty), jnp.zeros(n))).tolist()
    points = np.stack([novelty, np.concatenate([np.asarray(state.surprise), surprise_o])], axis=1)
    assert_best_fronts_chosen(chosen, points, p)


def test_stax_configuration_errors():
    ae = Autoencoder(TinyAE())
    with pytest.raises(ValueError, match="selection"):
        StaxAlgorithm(FitnessEmitter(), 1000, ae, selection="surprise_only")
    with pytest.raises(TypeError, match="Autoencoder"):
        StaxAlgorithm(FitnessEmitter(), 1000, TinyAE())
    algo = StaxAlgorithm(FitnessEmitter(), 1000, ae)
    plain = UnstructuredArchive.create(jnp.zeros(D), 10, 2)
    with pytest.raises(ValueError, match="must store extras"):
        algo.init(jax.random.PRNGKey(0), plain, jnp.zeros((4, D)), _archives()[1])
