"""MLP policies whose parameter pytrees are the genotypes.

A genotype is one flax parameter pytree (``{"params": {"Dense_0": {"kernel", "bias"}, ...}}``); a batch of
``B`` genotypes is the same pytree with a leading axis ``B`` on every leaf. Emitters that need flat vectors
use ``jax.flatten_util.ravel_pytree`` on one genotype (or ``jax.vmap`` of it).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "elu": nn.elu, "swish": nn.swish}


class MLPPolicy(nn.Module):
    """``obs (..., O) -> action (..., A)`` in ``[-1, 1]``.

    Dense layers of ``hidden_sizes`` units with ``activation`` between them, a last Dense layer of
    ``action_size`` units and ``tanh`` on the output. Kernels are LeCun-uniform and biases zero, as in
    QDax's ``MLP`` used for its Brax tasks (``activation="relu"``, output ``tanh``), so results compare.

    Attributes:
        action_size: ``A``.
        hidden_sizes: widths of the hidden layers (may be empty: a linear policy with ``tanh``).
        activation: name in :data:`ACTIVATIONS`.
    """

    action_size: int
    hidden_sizes: Tuple[int, ...] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        x = obs
        init = nn.initializers.lecun_uniform()
        for width in self.hidden_sizes:
            x = act(nn.Dense(width, kernel_init=init)(x))
        return jnp.tanh(nn.Dense(self.action_size, kernel_init=init)(x))


def check_policy_config(hidden_sizes: Sequence[int], activation: str) -> Tuple[int, ...]:
    """Validate policy options on the host; returns ``hidden_sizes`` as a tuple of ints.

    Raises:
        ValueError: a non-positive width or an unknown activation.
    """
    try:
        sizes = tuple(int(h) for h in hidden_sizes)
    except TypeError:
        raise ValueError(f"hidden_sizes must be a sequence of positive integers; got {hidden_sizes!r}") from None
    if any(h < 1 for h in sizes) or any(isinstance(h, bool) for h in hidden_sizes):
        raise ValueError(f"hidden_sizes must be positive integers; got {hidden_sizes!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; accepted: {', '.join(ACTIVATIONS)}")
    return sizes


@functools.partial(jax.jit, static_argnums=(0, 2, 3))
def init_policies(policy: nn.Module, key: jax.Array, n: int, observation_size: int) -> Any:
    """``n`` independent parameter pytrees (leading axis ``n`` on every leaf), initialised with ``vmap``.

    Jitted (``policy``, ``n`` and ``observation_size`` static): run eagerly, the vmapped initialisers would
    dispatch (and compile) one small program per operation.
    """
    keys = jax.random.split(key, n)
    dummy = jnp.zeros((observation_size,), jnp.float32)
    return jax.vmap(lambda k: policy.init(k, dummy))(keys)


def num_parameters(genotype: Any) -> int:
    """``D``: the number of scalars in one genotype (no leading batch axis)."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(genotype)))
