"""``batch_invariant`` Brax evaluation: a candidate's score does not depend on its batch (issue #9).

Small on purpose (Brax compiles take 15-30 s each): hopper_uni, 40-step episodes, an MLP (8,), batch 8.
"""

import jax
import numpy as np
import pytest

from qd.parallel import shard_evaluation
from qd.tasks.base import Evaluation
from qd.tasks.brax import make_task
from qd.tasks.brax.replay import replay_episode
from qd.tasks.brax.rollout import batched_rollout
from qd.tasks.registry import get_task_spec

OPTIONS = dict(episode_length=40, hidden_sizes=(8,))
BATCH = 8


def _genotypes(task):
    return task.initial_genotypes(jax.random.PRNGKey(3), BATCH)


def test_batch_invariant_scores_do_not_depend_on_the_batch():
    task = get_task_spec("hopper_uni").make(batch_invariant=True, **OPTIONS)  # as --task-option does
    assert task.batch_invariant
    genotypes, key = _genotypes(task), jax.random.PRNGKey(0)
    evaluate = jax.jit(task.evaluate, compiler_options=task.compiler_options)
    batch = jax.device_get(evaluate(genotypes, key))
    assert np.all(np.isfinite(batch.fitnesses))

    # Split over the 2 test devices (4 per shard), inside one jitted program as the runner does.
    assert len(jax.devices()) >= 2
    sharded = jax.jit(shard_evaluation(task.evaluate, 2), compiler_options=task.compiler_options)
    split = jax.device_get(sharded(genotypes, key))
    np.testing.assert_array_equal(split.fitnesses, batch.fitnesses)
    np.testing.assert_array_equal(split.descriptors, batch.descriptors)

    # Alone (the batch-1 program) and replayed (qd replay's single-episode program).
    for i in (0, BATCH - 1):
        one = jax.tree_util.tree_map(lambda x: x[i], genotypes)
        alone = jax.device_get(evaluate(jax.tree_util.tree_map(lambda x: x[None], one), key))
        assert alone.fitnesses[0] == batch.fitnesses[i]
        np.testing.assert_array_equal(alone.descriptors[0], batch.descriptors[i])
        replayed = replay_episode(task, one)
        assert np.float32(replayed.fitness) == batch.fitnesses[i]


def test_default_is_the_vmapped_rollout():
    """Without the option nothing changes: ``evaluate`` is the lock-step ``batched_rollout`` program (compared
    as traced programs, so nothing compiles)."""
    task = make_task("hopper_uni", **OPTIONS)
    assert task.batch_invariant is False
    genotypes, key = _genotypes(task), jax.random.PRNGKey(0)

    def reference(g, k):
        task._check(g)  # evaluate's shape check (it traces a PRNGKey of its own)
        stats = batched_rollout(task.env, task.policy.apply, g, task.init_state(), task.episode_length,
                                task.step_reward, task.state_descriptor, reduction="mean")
        return Evaluation(fitnesses=stats.fitness, descriptors=stats.descriptor)

    assert str(jax.make_jaxpr(task.evaluate)(genotypes, key)) == str(jax.make_jaxpr(reference)(genotypes, key))


def test_batch_invariant_must_be_a_bool():
    with pytest.raises(ValueError, match="batch_invariant"):
        make_task("hopper_uni", batch_invariant="yes", **OPTIONS)
    with pytest.raises(ValueError, match="batch_invariant"):
        get_task_spec("ant_maze").make(num_steps=10, batch_invariant="yes")  # checked before the system loads
