"""Local emitters: small searches started from one ancestor genome (SERENE / STAX's exploitation).

SERENE (Paolo et al., GECCO 2021) exploits each reward area it discovers with an *emitter*: a small
population started around a rewarding agent (the ancestor), with an initial step size ``sigma0`` given by
the algorithm (a genotype-space nearest-neighbour distance). These are the emitters of the SERENE and STAX
code (GPaolo/SERENE, GPaolo/STAX), through the :class:`~emitters.base.Emitter` interface (``ask`` /
``tell``, frozen static configuration, pure functions of an immutable state) plus what a local emitter adds:

- ``init_at(key, ancestor (D,), sigma0 ()) -> state``: a fresh emitter at its ancestor; its first ``ask``
  proposes the initial population;
- ``num_asked(state) -> () int32``: how many of the next ``ask``'s ``batch_size`` rows are real proposals
  (the first ones; the rest are padding, evaluated but not counted, e.g. the initial population of 6 in a
  batch of 12);
- ``population_rewards(state) -> (population_size,)``: the rewards of the current population (SERENE's
  ``values[t]``, for its improvement and stagnation rules);
- ``should_stop(state) -> () bool``: the emitter's own stop criterion.

``tell(state, archive, genotypes, fitnesses, descriptors, add_result)`` gets the rewards as fitnesses and,
in ``add_result.improvement``, each proposal's novelty against the novelty-search reference set (the
algorithm computes it; ``archive`` is unused and may be None). Genotypes are flat ``(D,)`` vectors.

Emitters (population 6, clipped to ``clip``, SERENE's ``[-5, 5]``):

- :class:`FitnessEmitter` (FIT, SERENE's elitist emitter): each of the 6 parents makes 2 children with the
  fixed isotropic ``N(0, sigma0^2)`` (12 evaluations a step), then (6 + 12) truncation by reward;
- :class:`NoveltyEmitter` (the STAX code's novelty emitter): the same, truncation by novelty;
- :class:`CMAESEmitter` (CMA-NS): the project's CMA-ES core (:class:`emitters.cmaes.CMAES`) with mean the
  ancestor, step size ``sigma0``, population 6 (6 evaluations a step), told the negated rewards, stopped by
  CMA-ES's own criteria (:meth:`~emitters.cmaes.CMAES.should_stop`; ``cmaes.CMA.should_stop`` in the
  original). Its initial population is its first generation of samples.

Shapes: ``D`` genes, ``n = population_size``, ``B = batch_size``.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from flax import struct

from emitters.base import Emitter
from emitters.cmaes import CMAES, CMAESState
from qd import AddResult, Archive
from qd import options as checks


@struct.dataclass
class ElitistState:
    """State of an elitist local emitter (FIT, novelty).

    Attributes:
        population: ``(n, D)`` the current parents.
        rewards: ``(n,)`` their rewards.
        scores: ``(n,)`` what truncation ranks them by (reward, or novelty when they were evaluated).
        ancestor: ``(D,)`` the genome the emitter started from.
        sigma: ``()`` the fixed mutation step.
        fresh: ``()`` bool, True until the initial population is told.
    """

    population: jax.Array
    rewards: jax.Array
    scores: jax.Array
    ancestor: jax.Array
    sigma: jax.Array
    fresh: jax.Array


@struct.dataclass
class LocalEmitter(Emitter):
    """Base of the local emitters (module docstring).

    Attributes:
        population_size: ``n``, the emitter population (6 in SERENE).
        batch_size: ``B``, the rows of each ``ask``.

    Raises:
        ValueError: ``population_size`` is not a positive integer or exceeds ``batch_size``.
    """

    population_size: int = struct.field(pytree_node=False, default=6)

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        object.__setattr__(self, "population_size", checks.check_positive_int(f"{name}: population_size", self.population_size))
        if self.population_size > self.batch_size:
            raise ValueError(f"{name}: population_size ({self.population_size}) exceeds batch_size ({self.batch_size})")

    def init_at(self, key: jax.Array, ancestor: jax.Array, sigma0: jax.Array) -> Any:
        """A fresh emitter at ``ancestor (D,)`` with step size ``sigma0 ()``."""
        raise NotImplementedError

    def num_asked(self, state: Any) -> jax.Array:
        """``() int32``: the real proposals among the next ``ask``'s ``batch_size`` rows (the first ones)."""
        raise NotImplementedError

    def population_rewards(self, state: Any) -> jax.Array:
        """``(population_size,) float32``: the rewards of the current population."""
        raise NotImplementedError

    def should_stop(self, state: Any) -> jax.Array:
        """``() bool``: the emitter's own stop criterion (False for elitist emitters)."""
        return jnp.zeros((), bool)


@struct.dataclass
class FitnessEmitter(LocalEmitter):
    """SERENE's elitist emitter (FIT): ``n`` parents, ``B / n`` Gaussian children each, ``(n + B)`` truncation.

    Attributes:
        batch_size: ``B`` (12: 2 children per parent); a multiple of ``population_size``.
        population_size: ``n`` (6).
        clip: gene bounds (SERENE ``(-5, 5)``).
        criterion: ``"reward"`` (FIT) or ``"novelty"`` (the STAX code's novelty emitter).

    Raises:
        ValueError: ``batch_size`` is not a multiple of ``population_size``; an unknown ``criterion``.
    """

    batch_size: int = struct.field(pytree_node=False, default=12)
    clip: Optional[tuple] = struct.field(pytree_node=False, default=(-5.0, 5.0))
    criterion: str = struct.field(pytree_node=False, default="reward")

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        if self.batch_size % self.population_size:
            raise ValueError(f"{name}: batch_size ({self.batch_size}) must be a multiple of population_size ({self.population_size})")
        if self.criterion not in ("reward", "novelty"):
            raise ValueError(f"{name}: criterion must be 'reward' or 'novelty'; got {self.criterion!r}")

    def init_at(self, key: jax.Array, ancestor: jax.Array, sigma0: jax.Array) -> ElitistState:
        del key
        n = self.population_size
        ancestor = jnp.asarray(ancestor, jnp.float32)
        return ElitistState(
            population=jnp.broadcast_to(ancestor, (n,) + ancestor.shape),
            rewards=jnp.zeros((n,), jnp.float32),
            scores=jnp.zeros((n,), jnp.float32),
            ancestor=ancestor,
            sigma=jnp.asarray(sigma0, jnp.float32),
            fresh=jnp.ones((), bool),
        )

    def ask(self, state: ElitistState, archive: Optional[Archive], key: jax.Array) -> jax.Array:
        """``(B, D)``: fresh, the initial population ``ancestor + N(0, sigma0^2)`` in the first ``n`` rows
        (the others are padding); then ``B / n`` children per parent (parent-major), clipped."""
        parents = jnp.repeat(state.population, self.batch_size // self.population_size, axis=0)
        parents = jnp.where(state.fresh, state.ancestor, parents)
        noise = jax.random.normal(key, parents.shape, parents.dtype)
        return self._clip(parents + state.sigma * noise)

    def tell(self, state: ElitistState, archive: Optional[Archive], genotypes: jax.Array, fitnesses: jax.Array,
             descriptors: jax.Array, add_result: AddResult) -> ElitistState:
        """Fresh: the first ``n`` rows become the population. Then the ``n`` best of parents + children by
        ``criterion`` (ties: parents first, then by row)."""
        n = self.population_size
        fit = fitnesses.astype(jnp.float32)
        score = fit if self.criterion == "reward" else add_result.improvement.astype(jnp.float32)
        pool_g = jnp.concatenate([state.population, genotypes])
        pool_f = jnp.concatenate([state.rewards, fit])
        pool_s = jnp.concatenate([state.scores, score])
        pool_s = jnp.where(jnp.isnan(pool_s), -jnp.inf, pool_s)
        _, best = jax.lax.top_k(pool_s, n)
        first = jnp.arange(n) + n  # the initial population: rows 0..n-1 of the batch
        pick = jnp.where(state.fresh, first, best)
        return state.replace(population=pool_g[pick], rewards=pool_f[pick], scores=pool_s[pick], fresh=jnp.zeros((), bool))

    def num_asked(self, state: ElitistState) -> jax.Array:
        return jnp.where(state.fresh, self.population_size, self.batch_size).astype(jnp.int32)

    def population_rewards(self, state: ElitistState) -> jax.Array:
        return state.rewards


@struct.dataclass
class NoveltyEmitter(FitnessEmitter):
    """The STAX code's novelty emitter: :class:`FitnessEmitter` whose truncation ranks by novelty (against the
    novelty-search reference set, as computed when each agent was evaluated)."""

    criterion: str = struct.field(pytree_node=False, default="novelty")


@struct.dataclass
class CMAESLocalState:
    """State of a :class:`CMAESEmitter`: the CMA-ES instance and its last population's rewards ``(n,)``."""

    cma: CMAESState
    rewards: jax.Array


@struct.dataclass
class CMAESEmitter(LocalEmitter):
    """CMA-ES from the ancestor (SERENE's CMA-NS emitter), on :class:`emitters.cmaes.CMAES`.

    Attributes:
        dim: ``D``, the genotype size.
        population_size: CMA-ES's ``lambda`` (6 in SERENE); ``batch_size`` equals it.
        clip: bounds of the samples (SERENE ``(-5, 5)``; CMA-ES clips, see :class:`emitters.cmaes.CMAES`).
        active: CMA-ES's negative weights ([T]'s default).

    Raises:
        ValueError: ``dim`` is not a positive integer; ``batch_size`` differs from ``population_size``.
    """

    dim: int = struct.field(pytree_node=False, default=1)
    batch_size: int = struct.field(pytree_node=False, default=6)
    clip: Optional[tuple] = struct.field(pytree_node=False, default=(-5.0, 5.0))
    active: bool = struct.field(pytree_node=False, default=True)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "dim", checks.check_positive_int("CMAESEmitter: dim", self.dim))
        if self.batch_size != self.population_size:
            raise ValueError(f"CMAESEmitter: batch_size ({self.batch_size}) must equal population_size ({self.population_size})")
        self._cma()  # checks the CMA-ES configuration now

    def _cma(self) -> CMAES:
        low, high = (None, None) if self.clip is None else self.clip
        return CMAES(self.dim, self.population_size, 1.0, lower=low, upper=high, active=self.active)

    def init_at(self, key: jax.Array, ancestor: jax.Array, sigma0: jax.Array) -> CMAESLocalState:
        cma = self._cma().init(key, jnp.asarray(ancestor, jnp.float32).reshape(self.dim))
        sigma0 = jnp.asarray(sigma0, cma.sigma.dtype)
        return CMAESLocalState(cma=cma.replace(sigma=sigma0, sigma0=sigma0),
                               rewards=jnp.zeros((self.population_size,), jnp.float32))

    def ask(self, state: CMAESLocalState, archive: Optional[Archive], key: jax.Array) -> jax.Array:
        samples, _ = self._cma().ask(state.cma, key)
        return samples

    def tell(self, state: CMAESLocalState, archive: Optional[Archive], genotypes: jax.Array, fitnesses: jax.Array,
             descriptors: jax.Array, add_result: AddResult) -> CMAESLocalState:
        cma = self._cma()
        values = -fitnesses.astype(jnp.float32)
        ranking = cma.ranking(state.cma, values)
        return CMAESLocalState(cma=cma.tell(state.cma, genotypes, ranking, values), rewards=fitnesses.astype(jnp.float32))

    def num_asked(self, state: CMAESLocalState) -> jax.Array:
        return jnp.asarray(self.population_size, jnp.int32)

    def population_rewards(self, state: CMAESLocalState) -> jax.Array:
        return state.rewards

    def should_stop(self, state: CMAESLocalState) -> jax.Array:
        return self._cma().should_stop(state.cma)
