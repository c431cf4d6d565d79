"""Which phase SERENE / STAX spend the next budget chunk on: exploration (novelty search) or exploitation
(emitters). The four schedulers of the STAX code (GPaolo/STAX, ``core/schedulers/``), pure and jittable.

After every chunk the algorithm calls :meth:`PhaseScheduler.choose` with the phase it just ran and the
number of emitters (candidates plus active emitters) before and after that chunk:

- ``"alternating"`` (the default, and SERENE's own loop): explore, exploit, explore, ... one chunk each;
- ``"fixed"`` (FixedSampling): explore with probability ``explore_probability`` (0.5), else exploit;
- ``"time"`` (TimeSampling): explore with probability ``remaining budget / total budget``, so the run
  explores early and exploits late;
- ``"ucb"`` (DiscountedUCB): a two-armed UCB bandit. The chunk just run earns ``-tanh(delta)`` if it
  explored and ``+tanh(delta)`` if it exploited, where ``delta`` is the change in the number of emitters
  over the chunk (new emitters call for exploitation). Each arm's value moves toward its rewards with step
  ``1 / n`` (``n`` its discounted count; [the STAX code's c = 1, step 1/n]); before that update every count
  is multiplied by ``discount`` (1: plain UCB1). The next arm is an unplayed one if any (exploration
  first), else ``argmax value + c sqrt(2 ln N / n)`` (``N`` the summed counts), ties to exploration.

The STAX code's DiscountedUCB is described in our design notes only by ``c = 1, step 1/n`` and its
reward; the discounting of the counts (off by default) is our reading of "discounted", labelled as such.

Phases: 0 = explore, 1 = exploit (``EXPLORE``, ``EXPLOIT`` of :mod:`qd.algorithms.serene`).
"""

from __future__ import annotations

from typing import Optional, Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.algorithms.checks import check_positive

SCHEDULERS = ("alternating", "fixed", "time", "ucb")


@struct.dataclass
class PhaseSchedulerState:
    """The scheduler's rule and settings, and the bandit statistics (used by ``"ucb"`` only; every rule keeps
    them so that states share one structure).

    The rule and its settings are traced values of the state, not constants of the program: runs that differ
    only in them (``alternating`` / ``fixed`` / ``time`` / ``ucb``, another probability) run the same
    compiled program (``qd bench`` compiles it once for all of them).

    Attributes:
        counts: ``(2,) float32`` (discounted) plays of explore / exploit.
        values: ``(2,) float32`` their value estimates.
        rule: ``() int32``, the index of the rule in :data:`SCHEDULERS`.
        explore_probability: ``() float32``, ``"fixed"``'s probability of exploring.
        exploration_bonus: ``() float32``, ``"ucb"``'s ``c``.
        discount: ``() float32``, ``"ucb"``'s discount of the counts.
    """

    counts: jax.Array
    values: jax.Array
    rule: jax.Array
    explore_probability: jax.Array
    exploration_bonus: jax.Array
    discount: jax.Array


class PhaseScheduler:
    """A chunk scheduler (module docstring).

    Args:
        rule: one of :data:`SCHEDULERS`.
        explore_probability: ``"fixed"``'s probability of exploring, in ``(0, 1)``.
        exploration_bonus: ``"ucb"``'s ``c`` (1).
        discount: ``"ucb"``'s discount of the counts, in ``(0, 1]`` (1: none).

    Raises:
        ValueError: an unknown rule; a probability outside ``(0, 1)``; a non-positive bonus; a discount
            outside ``(0, 1]``.
    """

    def __init__(self, rule: str = "alternating", explore_probability: float = 0.5, exploration_bonus: float = 1.0,
                 discount: float = 1.0):
        if rule not in SCHEDULERS:
            raise ValueError(f"PhaseScheduler: rule must be one of {SCHEDULERS}; got {rule!r}")
        if not 0.0 < float(explore_probability) < 1.0:
            raise ValueError(f"PhaseScheduler: explore_probability must lie in (0, 1); got {explore_probability!r}")
        if not 0.0 < float(discount) <= 1.0:
            raise ValueError(f"PhaseScheduler: discount must lie in (0, 1]; got {discount!r}")
        self.rule = rule
        self.explore_probability = float(explore_probability)
        self.exploration_bonus = check_positive("PhaseScheduler: exploration_bonus", exploration_bonus)
        self.discount = float(discount)

    def init(self) -> PhaseSchedulerState:
        """Nothing played yet; the rule and settings of this scheduler."""
        f32 = lambda x: jnp.asarray(x, jnp.float32)
        return PhaseSchedulerState(
            counts=jnp.zeros((2,), jnp.float32), values=jnp.zeros((2,), jnp.float32),
            rule=jnp.asarray(SCHEDULERS.index(self.rule), jnp.int32), explore_probability=f32(self.explore_probability),
            exploration_bonus=f32(self.exploration_bonus), discount=f32(self.discount),
        )

    def choose(self, state: PhaseSchedulerState, key: Optional[jax.Array], last: jax.Array, spent: jax.Array, budget: int,
               emitters_before: jax.Array, emitters_after: jax.Array) -> Tuple[jax.Array, PhaseSchedulerState]:
        """The phase of the next chunk: ``(phase () int32, state)``, by the rule of ``state`` (every rule is
        computed, a few scalar operations, and the state's is selected; the bandit statistics change only
        under ``"ucb"``).

        Args:
            state: the scheduler's rule, settings and statistics.
            key: for the sampling rules (None is accepted when this scheduler's rule does not sample).
            last: ``() int32``, the phase of the chunk that just ended.
            spent: ``() int32``, evaluations spent so far; ``budget``: the run's total (static).
            emitters_before, emitters_after: ``() int32`` emitters (candidates + active) at the start and at
                the end of that chunk.

        Raises:
            ValueError: ``key`` is None and this scheduler's rule samples (``"fixed"``, ``"time"``).
        """
        if key is None:
            if self.rule in ("fixed", "time"):
                raise ValueError(f"PhaseScheduler({self.rule!r}).choose: this rule samples; give it a PRNG key")
            draw = jnp.ones((), jnp.float32)  # never below a probability: only the sampling rules read it
        else:
            draw = jax.random.uniform(key)
        alternating = 1 - last
        fixed = jnp.where(draw < state.explore_probability, 0, 1)
        remaining = jnp.maximum(budget - spent, 0).astype(jnp.float32) / float(budget)
        time = jnp.where(draw < remaining, 0, 1)
        ucb, bandit = self._ucb(state, last, emitters_before, emitters_after)
        phase = jnp.stack([alternating, fixed, time, ucb]).astype(jnp.int32)[state.rule]
        is_ucb = state.rule == SCHEDULERS.index("ucb")
        keep = lambda new, old: jnp.where(is_ucb, new, old)
        return phase, state.replace(counts=keep(bandit.counts, state.counts), values=keep(bandit.values, state.values))

    @staticmethod
    def _ucb(state: PhaseSchedulerState, last: jax.Array, emitters_before: jax.Array,
             emitters_after: jax.Array) -> Tuple[jax.Array, PhaseSchedulerState]:
        """``"ucb"``'s choice and updated statistics (module docstring)."""
        delta = jnp.tanh((emitters_after - emitters_before).astype(jnp.float32))
        reward = jnp.where(last == 0, -delta, delta)
        counts = state.counts * state.discount
        counts = counts.at[last].add(1.0)
        values = state.values.at[last].add((reward - state.values[last]) / counts[last])
        total = jnp.sum(counts)
        bonus = state.exploration_bonus * jnp.sqrt(2.0 * jnp.log(jnp.maximum(total, 1.0)) / jnp.maximum(counts, 1e-12))
        score = jnp.where(counts > 0, values + bonus, jnp.inf)
        phase = jnp.where(score[1] > score[0], 1, 0).astype(jnp.int32)
        return phase, state.replace(counts=counts, values=values)
