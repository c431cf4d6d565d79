"""The task contract: ``evaluate(genotypes, key) -> Evaluation``.

A task is anything with an ``evaluate`` method (or a plain function with the same signature) that is pure
and jittable: it scores a batch of ``B`` genotypes at once, returning fitnesses, descriptors and optional
extras. Algorithms depend only on this contract, never on how a task computes its scores.
"""

from __future__ import annotations

from typing import Any, Protocol, Tuple

import jax
from flax import struct


@struct.dataclass
class Evaluation:
    """Scores of a batch of ``B`` genotypes.

    Attributes:
        fitnesses: ``(B,) float32``; higher is better. Use NaN or ``-inf`` to mark an invalid candidate
            (archives never store it).
        descriptors: ``(B, d) float32``.
        extras: pytree of per-candidate arrays with leading axis ``B`` (stored by archives created with a
            matching extras template), or None.
    """

    fitnesses: jax.Array
    descriptors: jax.Array
    extras: Any = None


class Task(Protocol):
    """What algorithms need from a task.

    Attributes:
        descriptor_bounds: ``(lower, upper)``, two tuples of length ``d``.
        qd_offset: a fitness lower bound, used as the archive's QD-score offset.
    """

    descriptor_bounds: Tuple[Tuple[float, ...], Tuple[float, ...]]
    qd_offset: float

    def evaluate(self, genotypes: Any, key: jax.Array) -> Evaluation:
        """Score a batch (pytree with leading axis ``B``); pure and jittable."""
        ...

    def initial_genotypes(self, key: jax.Array, n: int) -> Any:
        """``n`` random genotypes to seed an archive (pytree with leading axis ``n``)."""
        ...
