"""TAXONS and its variants (qd.algorithms.taxons): selection rules on hand-made inputs, the training
schedules, and the refresh of every stored descriptor after a training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd.algorithms.driver import Driver
from qd.algorithms.taxons import TaxonsAlgorithm
from qd.archives import UnstructuredArchive
from qd.learned.training import Autoencoder
from qd.metrics import GroundTruth

from _learned_toys import D, Probe, TinyAE, _copy, _template, evaluate


def _archive(dim, policy="random", capacity=200):
    return UnstructuredArchive.create(jnp.zeros(D), capacity, dim, policy=policy, num_per_batch=5,
                                      extras_template=_template())


def _driver(algorithm):
    truth = GroundTruth.create(([-1, -1], [1, 1]), 1, 10)
    from qd.algorithms.novelty_search import novelty_archive_metrics

    return Driver(algorithm, evaluate, metrics_fn=novelty_archive_metrics, ground_truth=truth)


def test_a_training_refreshes_every_stored_descriptor():
    ae = Autoencoder(TinyAE(), batch_size=16)
    algo = TaxonsAlgorithm(ae, chunk_generations=2, max_epochs=3, validation_fraction=0.2, patience=0)
    driver = _driver(algo)
    reward_archive = _archive(2, capacity=300)
    key = jax.random.PRNGKey(0)
    initial = 1.5 * jax.random.normal(key, (20, D))
    state, _ = driver.init(_archive(2), initial, reward_archive, key)
    before = _copy(state.algo.ae)
    state, metrics = driver.scan(state, 2)  # the training comes after generation 2
    np.testing.assert_array_equal(metrics["ae_trainings"], [0, 1])
    s = state.algo
    encode = lambda sources: ae.encode(s.ae, sources)
    stale = lambda sources: ae.encode(before, sources)[0]
    # Each store, named one by one (not through algo.stores, which is what is being checked):
    pop_desc, pop_surprise = encode(s.sources)
    np.testing.assert_allclose(s.descriptors, pop_desc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.surprise, pop_surprise, rtol=1e-5, atol=1e-6)
    for archive in (s.archive, s.reward_archive):
        filled = np.asarray(archive.filled)
        assert filled.sum() >= 5
        fresh = np.asarray(encode(archive.extras["final_state"])[0])[filled]
        np.testing.assert_allclose(np.asarray(archive.descriptors)[filled], fresh, rtol=1e-5, atol=1e-6)
        assert not np.allclose(fresh, np.asarray(stale(archive.extras["final_state"]))[filled], atol=1e-4)
    assert not np.allclose(pop_desc, stale(s.sources), atol=1e-4)
    assert sorted(algo.stores(s)) == ["archive", "population", "reward_archive"]


def _hand_made(criterion, insertion="random", warmup=0):
    """A state after 4 hand-made parents, and 8 hand-made offspring (sources chosen so that novelty and
    surprise disagree)."""
    algo = TaxonsAlgorithm(Autoencoder(Probe()), criterion=criterion, num_neighbors=3, warmup_generations=warmup)
    archive = _archive(2, policy="random" if insertion == "random" else "most_novel")
    parents = jnp.array([[0.0, 0.0, 0.0, 0], [0.1, 0.0, 0.0, 1], [0.0, 0.1, 0.0, 2], [0.1, 0.1, 0.0, 3]])
    key = jax.random.PRNGKey(1)
    state, _ = algo.init(key, archive, parents)
    state = algo.tell_initial(state, parents, evaluate(parents), key)
    # Offspring: far in latent space (novel) but quiet (small 3rd entry), or close and loud (surprising).
    offspring = jnp.array([
        [2.0, 2.0, 0.0, 10], [-2.0, 2.1, 0.0, 11], [2.0, -2.0, 0.0, 12], [0.05, 0.05, 3.0, 13],
        [0.05, 0.0, 4.0, 14], [0.0, 0.05, 5.0, 15], [0.05, 0.1, 6.0, 16], [0.5, 0.5, 0.0, 17],
    ])
    return algo, state, offspring


def _brute_novelty(points, k):
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, :k].mean(axis=1)


@pytest.mark.parametrize("criterion", ["novelty", "surprise"])
def test_survivors_are_the_best_by_the_criterion(criterion):
    algo, state, offspring = _hand_made(criterion)
    state = algo.tell(state, offspring, evaluate(offspring), jax.random.PRNGKey(2))
    everyone = np.concatenate([np.array(_hand_made(criterion)[1].population), np.asarray(offspring)])
    sources = everyone[:, :3]
    score = _brute_novelty(sources[:, :2], 3) if criterion == "novelty" else np.mean(sources**2, axis=1)
    expected = set(everyone[np.argsort(-score)[:4], 3].astype(int))
    assert set(np.asarray(state.population)[:, 3].astype(int)) == expected
    assert bool(state.used_surprise) == (criterion == "surprise")
    want = {10, 11, 12, 17} if criterion == "novelty" else {13, 14, 15, 16}
    assert expected == want  # the hand-made case separates the two criteria


def test_top_insertion_archives_the_best_offspring_by_the_criterion():
    algo, state, offspring = _hand_made("surprise", insertion="top")
    state = algo.tell(state, offspring, evaluate(offspring), jax.random.PRNGKey(2))
    stored = np.asarray(state.archive.genotypes)[np.asarray(state.archive.filled)][:, 3].astype(int)
    loud = np.mean(np.asarray(offspring)[:, :3] ** 2, axis=1)
    assert set(stored) == set(np.asarray(offspring)[np.argsort(-loud)[:5], 3].astype(int)) == {11, 13, 14, 15, 16}


def test_mixed_criterion_flips_a_coin_per_generation_after_the_warmup():
    for warmup, low, high in ((0, 5, 19), (5, 0, 0)):
        algo, state, offspring = _hand_made("mixed", warmup=warmup)
        keys = jax.random.split(jax.random.PRNGKey(0), 24)
        picks = jax.jit(jax.vmap(lambda k: algo.tell(state, offspring, evaluate(offspring), k).used_surprise))(keys)
        assert low <= int(np.sum(picks)) <= high  # both criteria after the warm-up, novelty only during it


def test_stax_schedule_trains_after_chunks_1_3_6_and_icra_every_k_generations():
    ae = Autoencoder(TinyAE(), batch_size=64)
    key = jax.random.PRNGKey(0)
    stax = _driver(TaxonsAlgorithm(ae, chunk_generations=2, max_epochs=1, validation_fraction=0.0, patience=0))
    state, _ = stax.init(_archive(2), jax.random.normal(key, (10, D)), key)
    _, metrics = stax.scan(state, 13)
    trainings = np.asarray(metrics["ae_trainings"])
    # generations 1..13: trained after generations 2, 6 (2 + 2*2) and 12 (6 + 3*2)
    assert list(np.flatnonzero(np.diff(np.concatenate([[0], trainings]))) + 1) == [2, 6, 12]
    icra = _driver(TaxonsAlgorithm(ae, schedule="icra", train_every=3, epochs=1))
    state, _ = icra.init(_archive(2), jax.random.normal(key, (10, D)), key)
    state, metrics = icra.scan(state, 7)
    np.testing.assert_array_equal(metrics["ae_trainings"], [0, 0, 1, 1, 1, 2, 2])
    assert int(state.algo.recent.mask.sum()) == 20  # the ring of recent offspring: refilled after the training


def test_nt_and_the_baselines_describe_without_training():
    key = jax.random.PRNGKey(0)
    ae = Autoencoder(TinyAE())
    nt = TaxonsAlgorithm(ae, criterion="novelty", train=False, chunk_generations=1)
    state, _ = _driver(nt).init(_archive(2), jax.random.normal(key, (10, D)), key)
    params = _copy(state.algo.ae.params)
    state, metrics = _driver(nt).scan(state, 3)
    assert int(metrics["ae_trainings"][-1]) == 0
    jax.tree_util.tree_map(np.testing.assert_array_equal, state.algo.ae.params, params)
    ps = TaxonsAlgorithm(None, descriptor="genotype", criterion="novelty")
    assert ps.descriptor_dim(jnp.zeros(D), jnp.zeros(3)) == D
    state, _ = _driver(ps).init(_archive(D), jax.random.normal(key, (10, D)), key)
    state, _ = _driver(ps).scan(state, 2)
    np.testing.assert_array_equal(state.algo.descriptors, state.algo.population)
    rbd = TaxonsAlgorithm(None, descriptor="random", criterion="novelty", random_dim=6)
    state, _ = _driver(rbd).init(_archive(6), jax.random.normal(key, (10, D)), key)
    first = np.asarray(state.algo.descriptors)
    state, _ = _driver(rbd).scan(state, 1)
    # a parent that survives keeps the random descriptor it was born with
    kept = [i for i, row in enumerate(first) if any(np.array_equal(row, r) for r in np.asarray(state.algo.descriptors))]
    assert kept
    with pytest.raises(ValueError, match="surprise"):
        TaxonsAlgorithm(None, descriptor="genotype", criterion="surprise")
    with pytest.raises(ValueError, match="needs an autoencoder"):
        TaxonsAlgorithm(None, descriptor="latent")
