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

from typing import Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.algorithms.checks import check_positive

SCHEDULERS = ("alternating", "fixed", "time", "ucb")


@struct.dataclass
class PhaseSchedulerState:
    """Bandit statistics (used by ``"ucb"`` only; kept by every scheduler so states share one structure).

    Attributes:
        counts: ``(2,) float32`` (discounted) plays of explore / exploit.
        values: ``(2,) float32`` their value estimates.
    """

    counts: jax.Array
    values: jax.Array


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
        """Nothing played yet."""
        return PhaseSchedulerState(counts=jnp.zeros((2,), jnp.float32), values=jnp.zeros((2,), jnp.float32))

    def choose(self, state: PhaseSchedulerState, key: jax.Array, last: jax.Array, spent: jax.Array, budget: int,
               emitters_before: jax.Array, emitters_after: jax.Array) -> Tuple[jax.Array, PhaseSchedulerState]:
        """The phase of the next chunk: ``(phase () int32, state)``.

        Args:
            state: the scheduler's statistics.
            key: for the sampling rules.
            last: ``() int32``, the phase of the chunk that just ended.
            spent: ``() int32``, evaluations spent so far; ``budget``: the run's total (static).
            emitters_before, emitters_after: ``() int32`` emitters (candidates + active) at the start and at
                the end of that chunk.
        """
        if self.rule == "alternating":
            return (1 - last).astype(jnp.int32), state
        if self.rule == "fixed":
            explore = jax.random.uniform(key) < self.explore_probability
            return jnp.where(explore, 0, 1).astype(jnp.int32), state
        if self.rule == "time":
            remaining = jnp.maximum(budget - spent, 0).astype(jnp.float32) / float(budget)
            explore = jax.random.uniform(key) < remaining
            return jnp.where(explore, 0, 1).astype(jnp.int32), state
        delta = jnp.tanh((emitters_after - emitters_before).astype(jnp.float32))
        reward = jnp.where(last == 0, -delta, delta)
        counts = state.counts * self.discount
        counts = counts.at[last].add(1.0)
        values = state.values.at[last].add((reward - state.values[last]) / counts[last])
        total = jnp.sum(counts)
        bonus = self.exploration_bonus * jnp.sqrt(2.0 * jnp.log(jnp.maximum(total, 1.0)) / jnp.maximum(counts, 1e-12))
        score = jnp.where(counts > 0, values + bonus, jnp.inf)
        phase = jnp.where(score[1] > score[0], 1, 0).astype(jnp.int32)
        return phase, PhaseSchedulerState(counts=counts, values=values)
