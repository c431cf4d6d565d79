"""Novelty search with NSGA-II survival on (novelty, reward): the NSGA-II baseline of SERENE / STAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd.algorithms.novelty_search import NoveltySearchAlgorithm
from qd.archives import UnstructuredArchive
from qd.tasks.base import Evaluation

from _pareto import assert_best_fronts_chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nsga2_survivors_are_the_best_fronts(seed):
    p, c = 6, 2
    rng = np.random.default_rng(seed)
    desc = rng.uniform(-1, 1, (p + p * c, 2)).astype(np.float32)
    fit = rng.uniform(0, 1, (p + p * c,)).astype(np.float32)
    algo = NoveltySearchAlgorithm(offspring_per_parent=c, survival="nsga2", num_neighbors=3)
    archive = UnstructuredArchive.create(jnp.zeros(2), 64, 2, policy="random", num_per_batch=2)
    state, _ = algo.init(jax.random.PRNGKey(0), archive, jnp.asarray(desc[:p]))
    state = algo.tell_initial(state, jnp.asarray(desc[:p]), Evaluation(jnp.asarray(fit[:p]), jnp.asarray(desc[:p])), jax.random.PRNGKey(1))
    offspring = jnp.asarray(desc[p:])
    _, survivors = algo.generation(state, offspring, Evaluation(jnp.asarray(fit[p:]), offspring), jax.random.PRNGKey(2))
    # novelty by brute force: mean distance to the 3 nearest others of P u O (the archive is empty)
    d = np.linalg.norm(desc[:, None] - desc[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    novelty = np.sort(d, axis=1)[:, :3].mean(axis=1)
    assert_best_fronts_chosen(np.asarray(survivors).tolist(), np.stack([novelty, fit], axis=1), p)


def test_unknown_survival_is_refused():
    with pytest.raises(ValueError, match="survival"):
        NoveltySearchAlgorithm(survival="pareto")
