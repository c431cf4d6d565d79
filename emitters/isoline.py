"""Iso+line variation (Vassiliades & Mouret, GECCO 2018)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from emitters.base import Emitter, check_positive
from emitters.gaussian import _normal_like


@struct.dataclass
class IsoLineEmitter(Emitter):
    """``child = x + iso_sigma * N(0, I) + line_sigma * N(0, 1) * (y - x)``.

    ``x`` and ``y`` are two elites drawn uniformly and independently; the line coefficient is one scalar
    per child, shared by all genes (and all leaves of a pytree genotype), which is what lets the operator
    follow the directions along which elites are correlated.

    Attributes:
        iso_sigma: static isotropic standard deviation (default 0.01, the paper's value).
        line_sigma: static standard deviation along the line between parents (default 0.2).
    """

    iso_sigma: float = struct.field(pytree_node=False, default=0.01)
    line_sigma: float = struct.field(pytree_node=False, default=0.2)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "iso_sigma", check_positive(f"{type(self).__name__}: iso_sigma", self.iso_sigma))
        object.__setattr__(self, "line_sigma", check_positive(f"{type(self).__name__}: line_sigma", self.line_sigma))

    def ask(self, state, archive, key):
        """``B`` children of pairs of uniformly sampled elites (pytree with leading axis ``B``)."""
        k_x, k_y, k_iso, k_line = jax.random.split(key, 4)
        x = archive.sample(k_x, self.batch_size).genotypes
        y = archive.sample(k_y, self.batch_size).genotypes
        iso = _normal_like(k_iso, x)
        line = jax.random.normal(k_line, (self.batch_size,))

        def vary(xl, yl, nl):
            coef = line.reshape((-1,) + (1,) * (xl.ndim - 1)).astype(xl.dtype)
            return xl + self.iso_sigma * nl + self.line_sigma * coef * (yl - xl)

        return self._clip(jax.tree_util.tree_map(vary, x, y, iso))
