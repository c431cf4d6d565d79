"""Checks shared by the driver tests (test_driver.py, test_cma_family_driver.py): leaf-by-leaf equality of
two pytrees and the host ask/tell loop of a user whose evaluation is outside the compiled loop."""

import jax
import jax.numpy as jnp
import numpy as np


def assert_same(a, b):
    """Every leaf bitwise equal (PRNG keys by their data)."""
    a, b = jax.device_get(a), jax.device_get(b)
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def ask_tell(algo, state, iterations, evaluate):
    """The host loop of a user whose evaluation is outside the loop: ``evaluate`` is a separate jitted call
    (the task's, given the same key the loop gives it: the iteration's third split)."""
    for _ in range(iterations):
        genotypes, state = algo.ask(state)
        k_eval = jax.random.split(state.key, 4)[2]
        ev = evaluate(genotypes, k_eval)
        state, metrics = algo.tell(state, genotypes, np.asarray(ev.fitnesses), np.asarray(ev.descriptors), ev.extras)
    return state, metrics
