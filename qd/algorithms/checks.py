"""Host-side and trace-time checks shared by every algorithm (and the emitters' configuration checks).

Each raises before anything compiles (on the host, or while tracing), with a message that names the
argument or function at fault and what was expected:

- :func:`batch_size` -- a genotype batch (pytree, leading axis ``B``) is non-empty and its leaves agree on ``B``;
- :func:`checked_evaluate` / :func:`checked_evaluation` -- an ``evaluate`` function returns a
  :class:`qd.Evaluation` with fitnesses ``(B,)`` and descriptors ``(B, d)``;
- :func:`check_not_consumed` -- a state passed to ``scan`` / ``run`` / ``tell`` was not donated already;
- :func:`check_positive`, :func:`check_positive_int`, :func:`check_clip` -- configuration values.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from qd.options import check_clip, check_positive, check_positive_int  # noqa: F401  (re-exported: they live in
# qd.options, which imports no JAX, so every layer can use them)
from qd.tasks.base import Evaluation

CONSUMED = (
    "this state was consumed by a previous {calls} (its buffers are donated); pass the state it returned"
)


# --------------------------------------------------------------------------------------------- #
# Genotype batches
# --------------------------------------------------------------------------------------------- #
def batch_size(genotypes: Any, where: str, name: str = "initial_genotypes") -> int:
    """The batch size ``B`` of ``genotypes`` (a pytree of arrays, each with leading axis ``B``), on the host.

    Raises:
        ValueError: the pytree has no arrays, a leaf has no leading axis, leaves disagree on ``B``, or
            ``B == 0`` (an empty batch).
    """
    leaves = jax.tree_util.tree_leaves(genotypes)
    if not leaves:
        raise ValueError(f"{where}: {name} holds no arrays; pass a pytree of arrays with a leading batch axis B >= 1")
    shapes = [tuple(x.shape) if hasattr(x, "shape") else np.shape(x) for x in leaves]
    if any(len(s) == 0 for s in shapes):
        raise ValueError(f"{where}: {name} has a scalar leaf; every leaf needs a leading batch axis B")
    sizes = sorted({s[0] for s in shapes})
    if len(sizes) > 1:
        raise ValueError(
            f"{where}: the leaves of {name} have different leading axes {sizes}; "
            f"every leaf needs the same batch size B (leaf shapes: {shapes})"
        )
    if sizes[0] < 1:
        raise ValueError(f"{where}: {name} is an empty batch (leading axis 0); it needs at least one genotype")
    return int(sizes[0])


# --------------------------------------------------------------------------------------------- #
# Evaluations
# --------------------------------------------------------------------------------------------- #
def function_name(fn: Any) -> str:
    """A readable name of ``fn`` for error messages (``Sphere.evaluate``, ``my_eval``, ``partial(...)``)."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not name:
        return repr(fn)
    return name.rsplit("<locals>.", 1)[-1]  # a function defined in a function: its own name


def checked_evaluation(
    evaluation: Any, batch: int, descriptor_dim: Optional[int], source: str
) -> Evaluation:
    """``evaluation`` as an :class:`qd.Evaluation` with float32 fitnesses and descriptors, after checking
    it (on the host or at trace time; only shapes and dtypes are read).

    Args:
        evaluation: what ``source`` returned or was given.
        batch: ``B``, the number of genotypes evaluated.
        descriptor_dim: ``d`` expected (the archive's), or None to accept any.
        source: what produced it, for the message (``"the evaluate function Sphere.evaluate"``).

    Raises:
        TypeError: ``evaluation`` is not a :class:`qd.Evaluation` (a tuple, a dict, ...).
        ValueError: fitnesses are not ``(B,)`` or descriptors not ``(B, d)``, or either is not real-valued.
    """
    if not isinstance(evaluation, Evaluation):
        raise TypeError(
            f"{source} returned a {type(evaluation).__name__}, not a qd.Evaluation; it must return "
            "qd.Evaluation(fitnesses=<(B,) float>, descriptors=<(B, d) float>, extras=<pytree or None>)"
        )
    fitnesses, descriptors = evaluation.fitnesses, evaluation.descriptors
    for field, value in (("fitnesses", fitnesses), ("descriptors", descriptors)):
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            value = np.asarray(value)  # numpy or lists given on the host
        if not (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)):
            raise ValueError(f"{source}: Evaluation.{field} must be real numbers; got dtype {value.dtype}")
        if field == "fitnesses":
            fitnesses = value
        else:
            descriptors = value
    d = "d" if descriptor_dim is None else str(descriptor_dim)
    if tuple(fitnesses.shape) != (batch,):
        raise ValueError(
            f"{source}: Evaluation.fitnesses must have shape (B,) = ({batch},) for a batch of {batch} "
            f"genotypes; got {tuple(fitnesses.shape)}"
        )
    if descriptors.ndim != 2 or descriptors.shape[0] != batch or (
        descriptor_dim is not None and descriptors.shape[1] != descriptor_dim
    ):
        what = "" if descriptor_dim is None else f" (the archive has {descriptor_dim} descriptor dimensions)"
        raise ValueError(
            f"{source}: Evaluation.descriptors must have shape (B, d) = ({batch}, {d}){what}; "
            f"got {tuple(descriptors.shape)}"
        )
    return Evaluation(
        fitnesses=jnp.asarray(fitnesses, jnp.float32),
        descriptors=jnp.asarray(descriptors, jnp.float32),
        extras=evaluation.extras,
    )


def checked_evaluate(evaluate: Callable[[Any, jax.Array], Any]) -> Callable[[Any, jax.Array], Evaluation]:
    """``evaluate`` wrapped so that its output is checked (at trace time) by :func:`checked_evaluation`
    against the batch it was given (any ``d``; the algorithm checks ``d`` against its archive)."""
    source = f"the evaluate function {function_name(evaluate)}"

    def wrapped(genotypes, key):
        batch = int(jax.tree_util.tree_leaves(genotypes)[0].shape[0])
        return checked_evaluation(evaluate(genotypes, key), batch, None, source)

    wrapped.source = source
    return wrapped


# --------------------------------------------------------------------------------------------- #
# Donated states
# --------------------------------------------------------------------------------------------- #
def check_not_consumed(state: Any, where: str, calls: str = "run/scan") -> None:
    """Raise ``ValueError`` if a leaf of ``state`` is a deleted (donated) ``jax.Array`` (a host check per leaf).

    ``scan``, ``run`` and ``tell`` donate their input state; passing that state again would otherwise fail
    inside JAX with "Array has been deleted".
    """
    for leaf in jax.tree_util.tree_leaves(state):
        if isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer) and leaf.is_deleted():
            raise ValueError(f"{where}: " + CONSUMED.format(calls=calls))
