"""Toy pieces shared by the tests of learned behaviour spaces: a 4-gene "task" whose source is the first
3 genes, and small flax autoencoders that compile and train in seconds."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from qd.tasks.base import Evaluation

D = 4  # genotype size; an agent's source is its first 3 genes


class TinyAE(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        z = nn.Dense(2)(nn.selu(nn.Dense(8)(x)))
        return nn.Dense(x.shape[-1])(nn.selu(nn.Dense(8)(z))), z


class Probe(nn.Module):
    """latent = the first two entries of the source; reconstruction = 0, so surprise = mean(source^2)."""

    @nn.compact
    def __call__(self, x, train=False):
        s = self.param("s", nn.initializers.zeros, ())
        return jnp.zeros_like(x) + s, x[:, :2]


def evaluate(genotypes, key=None):
    g = genotypes
    extras = {"final_state": g[:, :3], "gt_descriptor": jnp.clip(g[:, :2], -1, 1),
              "reward_area": jnp.where(g[:, 0] > 1.0, 0, -1).astype(jnp.int32)}
    return Evaluation(fitnesses=jnp.where(g[:, 0] > 1.0, g[:, 0], 0.0), descriptors=g[:, :2], extras=extras)


def _template():
    shapes = jax.eval_shape(lambda: evaluate(jnp.zeros((1, D))).extras)
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape[1:], s.dtype), shapes)



def _copy(tree):
    return jax.tree_util.tree_map(jnp.copy, tree)
