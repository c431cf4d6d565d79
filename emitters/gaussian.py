"""Gaussian mutation of uniformly selected elites (MAP-Elites, Mouret & Clune 2015)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from emitters.base import Emitter, check_positive


def _normal_like(key, tree):
    """Standard normal noise shaped like ``tree`` (every leaf), drawn as one flat vector and cut into leaves.

    One draw, not one per leaf: each ``jax.random.normal`` call is its own threefry kernel, and for a
    policy's six leaves (batch 128) those took 3.6 s to compile on a 2-core CPU against 0.2 s for one.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    dtype = jnp.result_type(*leaves)
    flat = jax.random.normal(key, (sum(x.size for x in leaves),), dtype)
    offsets = np.cumsum([0] + [x.size for x in leaves])
    noise = [flat[lo:hi].reshape(x.shape).astype(x.dtype) for lo, hi, x in zip(offsets[:-1], offsets[1:], leaves)]
    return jax.tree_util.tree_unflatten(treedef, noise)


@struct.dataclass
class GaussianEmitter(Emitter):
    """``child = parent + sigma * N(0, I)``, parents drawn uniformly among the archive's elites.

    Works on any genotype pytree (every leaf is perturbed). ``clip`` bounds the result.

    Attributes:
        sigma: static standard deviation of the mutation (genotype units).
    """

    sigma: float = struct.field(pytree_node=False, default=0.1)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "sigma", check_positive(f"{type(self).__name__}: sigma", self.sigma))

    def ask(self, state, archive, key):
        """``B`` mutated copies of uniformly sampled elites (pytree with leading axis ``B``)."""
        k_select, k_noise = jax.random.split(key)
        parents = archive.sample(k_select, self.batch_size).genotypes
        noise = _normal_like(k_noise, parents)
        children = jax.tree_util.tree_map(lambda p, n: p + self.sigma * n, parents, noise)
        return self._clip(children)
