"""The task contract: ``evaluate(genotypes, key) -> Evaluation``.

A task is anything with an ``evaluate`` method (or a plain function with the same signature) that is pure
and jittable: it scores a batch of ``B`` genotypes at once, returning fitnesses, descriptors and optional
extras. Algorithms depend only on this contract, never on how a task computes its scores.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence, Tuple

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
        descriptor_names: ``d`` axis labels, what each descriptor dimension measures, with its unit (e.g.
            ``("final torso x (m)", "final torso y (m)")``). Optional: read it with
            :func:`descriptor_names`, which falls back to ``"descriptor 1"``, ... for tasks without one.
    """

    descriptor_bounds: Tuple[Tuple[float, ...], Tuple[float, ...]]
    qd_offset: float
    descriptor_names: Tuple[str, ...]

    def evaluate(self, genotypes: Any, key: jax.Array) -> Evaluation:
        """Score a batch (pytree with leading axis ``B``); pure and jittable."""
        ...

    def initial_genotypes(self, key: jax.Array, n: int) -> Any:
        """``n`` random genotypes to seed an archive (pytree with leading axis ``n``)."""
        ...


def default_descriptor_names(d: int) -> Tuple[str, ...]:
    """``("descriptor 1", ..., "descriptor d")``: the labels of unnamed descriptor axes.

    Raises:
        ValueError: ``d`` is not a positive integer.
    """
    if isinstance(d, bool) or int(d) != d or d < 1:
        raise ValueError(f"the number of descriptor dimensions must be a positive integer; got {d!r}")
    return tuple(f"descriptor {i + 1}" for i in range(int(d)))


def check_descriptor_names(names: Optional[Sequence[str]], d: int) -> Tuple[str, ...]:
    """``names`` as a tuple of ``d`` strings, or :func:`default_descriptor_names` when ``names`` is None.

    Raises:
        ValueError: ``names`` is a single string, or does not have ``d`` entries.
    """
    if names is None:
        return default_descriptor_names(d)
    if isinstance(names, str):
        raise ValueError(f"descriptor_names must be a sequence of {d} strings, not the single string {names!r}")
    names = tuple(str(n) for n in names)
    if len(names) != d:
        raise ValueError(f"descriptor_names has {len(names)} entries {names} but the descriptors have {d} dimensions")
    return names


def descriptor_names(task: Any, d: int) -> Tuple[str, ...]:
    """The ``d`` descriptor axis labels of ``task``: its ``descriptor_names`` if it has them, else
    ``("descriptor 1", ..., "descriptor d")`` (plain evaluate functions, tasks without names).

    Raises:
        ValueError: the task's names do not have ``d`` entries (``d`` is the archive's dimension: an
            archive built for another descriptor than the task's).
    """
    return check_descriptor_names(getattr(task, "descriptor_names", None), d)


def extras_template(task: Any, keys: Optional[Sequence[str]] = None) -> Any:
    """One unbatched entry of ``task.evaluate``'s extras, as zeros (computed abstractly: nothing runs), to
    give an archive as its ``extras_template`` (e.g. the sources a learned behaviour space re-encodes).

    Args:
        task: a task with ``evaluate`` and ``initial_genotypes``.
        keys: keep only these entries of a dict of extras (None: all of them).

    Raises:
        ValueError: the task returns no extras, or ``keys`` names an entry it does not return.
    """
    import jax.numpy as jnp

    def extras(key):
        return task.evaluate(task.initial_genotypes(key, 1), key).extras

    shapes = jax.eval_shape(extras, jax.random.PRNGKey(0))
    if shapes is None:
        raise ValueError(f"{type(task).__name__}.evaluate returns no extras")
    if keys is not None:
        missing = [k for k in keys if not isinstance(shapes, dict) or k not in shapes]
        if missing:
            have = sorted(shapes) if isinstance(shapes, dict) else type(shapes).__name__
            raise ValueError(f"{type(task).__name__}.evaluate's extras have no {missing}; they hold {have}")
        shapes = {k: shapes[k] for k in keys}
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape[1:], s.dtype), shapes)
