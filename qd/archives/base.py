"""The archive interface shared by every archive (grid, CVT, unstructured).

An archive is a fixed-capacity table of ``C`` slots ("cells"). Each slot holds one elite: its genotype
(any pytree, stored with a leading axis ``C``), fitness, descriptor and optional extras, plus a boolean
``filled`` mask. Archives are immutable ``flax.struct.dataclass`` pytrees: ``add`` returns a new archive.
Static configuration (bounds, resolution, capacity) lives in ``pytree_node=False`` fields, so the archive
can be a ``jit`` argument or a ``lax.scan`` carry without recompiling between iterations.

Shapes used throughout: ``B`` candidates per batch, ``C`` cells, ``d`` descriptor dimensions.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Genotype = Any  # any pytree whose leaves have a leading batch axis
Extras = Any  # a pytree of per-candidate arrays with a leading batch axis (or None)

ARCHIVE_KEY = "__archive__"  # the JSON description of an archive in its saved form (see qd.archives.io)

# Status codes returned per candidate by ``add`` (pyribs' convention: higher is better news).
NOT_ADDED = 0
IMPROVED = 1
NEW = 2


@struct.dataclass
class AddResult:
    """What ``add`` did with each candidate of a batch.

    Attributes:
        cell: ``(B,) int32``, the cell each candidate falls in (after clipping its descriptor), or ``-1``
            when its descriptor is not finite (it falls in no cell). For the unstructured archive, the slot
            it was written to, or ``-1`` when it was not stored.
        status: ``(B,) int32``, :data:`NEW` (filled an empty cell), :data:`IMPROVED` (replaced a worse
            elite) or :data:`NOT_ADDED`.
        improvement: ``(B,) float32``, the value CMA-ME-style emitters rank by: ``fitness - incumbent``
            when the cell holds an elite, ``fitness - qd_offset`` when it is empty (so it is comparable
            with the QD-score gain), and ``-inf`` for a rejected candidate (a non-finite fitness or
            descriptor entry). Candidates that lose
            an in-batch tie keep their value but have status ``NOT_ADDED``.
    """

    cell: jax.Array
    status: jax.Array
    improvement: jax.Array

    @property
    def added(self) -> jax.Array:
        """``(B,) bool``: whether the candidate is now an elite."""
        return self.status != NOT_ADDED


@struct.dataclass
class Elites:
    """A batch of elites taken from an archive (by ``sample`` or a query).

    Attributes:
        genotypes: pytree, leaves with leading axis ``n``.
        fitnesses: ``(n,) float32``.
        descriptors: ``(n, d) float32``.
        extras: pytree with leading axis ``n``, or None.
        cells: ``(n,) int32``, the cells they come from.
    """

    genotypes: Genotype
    fitnesses: jax.Array
    descriptors: jax.Array
    extras: Extras
    cells: jax.Array


def _check_batch(descriptors, fitnesses, descriptor_dim: int) -> None:
    """Static (trace-time) checks of an ``add`` batch; raises ``ValueError`` naming the problem."""
    if not hasattr(descriptors, "shape") or not hasattr(fitnesses, "shape"):
        raise ValueError("descriptors and fitnesses must be arrays")
    if descriptors.ndim != 2 or descriptors.shape[1] != descriptor_dim:
        raise ValueError(
            f"descriptors must have shape (batch, {descriptor_dim}); got {tuple(descriptors.shape)}"
        )
    if not jnp.issubdtype(descriptors.dtype, jnp.floating):
        raise ValueError(f"descriptors must be a floating dtype; got {descriptors.dtype}")
    if fitnesses.shape != (descriptors.shape[0],):
        raise ValueError(
            f"fitnesses must have shape ({descriptors.shape[0]},) to match descriptors; "
            f"got {tuple(fitnesses.shape)}"
        )
    if not jnp.issubdtype(fitnesses.dtype, jnp.floating):
        raise ValueError(f"fitnesses must be a floating dtype; got {fitnesses.dtype}")


def _check_genotypes(genotypes, stored, batch: int) -> None:
    got = jax.tree_util.tree_structure(genotypes)
    want = jax.tree_util.tree_structure(stored)
    if got != want:
        raise ValueError(f"genotypes have tree structure {got}, the archive stores {want}")
    for new, old in zip(jax.tree_util.tree_leaves(genotypes), jax.tree_util.tree_leaves(stored)):
        if new.shape != (batch,) + old.shape[1:]:
            raise ValueError(
                f"a genotype leaf has shape {tuple(new.shape)}; expected {(batch,) + old.shape[1:]}"
            )


def allocate(template: Any, capacity: int, dtype_default=None) -> Any:
    """Zeroed storage with a leading axis ``capacity`` for one unbatched ``template`` pytree.

    Template leaves may be arrays, scalars or ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape``).
    """

    def leaf(x):
        if not (hasattr(x, "shape") and hasattr(x, "dtype")):  # arrays and ShapeDtypeStructs pass as they are
            x = jnp.asarray(x)
        return jnp.zeros((capacity,) + x.shape, x.dtype if dtype_default is None else dtype_default)

    return jax.tree_util.tree_map(leaf, template)


def empty_storage(genotype_template: Any, capacity: int, descriptor_dim: int, extras_template: Any = None) -> Dict[str, Any]:
    """The storage fields of an empty archive, as keyword arguments for an ``Archive`` constructor.

    Returns:
        ``genotypes`` and ``extras`` (zeroed pytrees with leading axis ``C``, extras None without a
        template), ``fitnesses (C,) float32`` all ``-inf``, ``descriptors (C, d) float32`` zeros and
        ``filled (C,) bool`` all False.
    """
    return dict(
        genotypes=allocate(genotype_template, capacity),
        fitnesses=jnp.full((capacity,), -jnp.inf, jnp.float32),
        descriptors=jnp.zeros((capacity, descriptor_dim), jnp.float32),
        extras=None if extras_template is None else allocate(extras_template, capacity),
        filled=jnp.zeros((capacity,), bool),
    )


def scatter(store: Any, index: jax.Array, values: Any) -> Any:
    """Write ``values[i]`` to ``store[index[i]]`` for every leaf; out-of-range indices are dropped."""
    return jax.tree_util.tree_map(lambda s, v: s.at[index].set(v.astype(s.dtype), mode="drop"), store, values)


def gather(store: Any, index: jax.Array) -> Any:
    """``store[index]`` for every leaf of a pytree."""
    return jax.tree_util.tree_map(lambda s: s[index], store)


@struct.dataclass
class Archive:
    """Base class of all archives: storage, queries and uniform sampling.

    Subclasses implement :meth:`add`. All fields below have a leading axis ``C`` (the capacity).

    Attributes:
        genotypes: pytree of stored genotypes.
        fitnesses: ``(C,) float32``; ``-inf`` in empty cells.
        descriptors: ``(C, d) float32``; zeros in empty cells.
        extras: pytree of per-elite extra data (or None).
        filled: ``(C,) bool``.
        lower, upper: static tuples of length ``d``, the descriptor bounds.
        qd_offset: static float subtracted from each elite's fitness in the QD-score, so that it counts
            every elite positively when fitnesses can be negative (e.g. the arm's ``-std`` fitness).
    """

    genotypes: Genotype
    fitnesses: jax.Array
    descriptors: jax.Array
    extras: Extras
    filled: jax.Array
    lower: Tuple[float, ...] = struct.field(pytree_node=False, default=())
    upper: Tuple[float, ...] = struct.field(pytree_node=False, default=())
    qd_offset: float = struct.field(pytree_node=False, default=0.0)

    # ----------------------------------------------------------------------------------------- #
    # Interface
    # ----------------------------------------------------------------------------------------- #
    def add(self, genotypes, descriptors, fitnesses, extras=None) -> Tuple["Archive", AddResult]:
        """Insert a batch of candidates; see the subclasses. Returns ``(new_archive, AddResult)``."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------- #
    # Shared queries
    # ----------------------------------------------------------------------------------------- #
    @property
    def capacity(self) -> int:
        """Number of cells ``C`` (a Python int)."""
        return int(self.filled.shape[0])

    @property
    def descriptor_dim(self) -> int:
        """Number of descriptor dimensions ``d`` (a Python int)."""
        return int(self.descriptors.shape[1])

    @property
    def bounds(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)``: two ``(d,) float32`` numpy arrays, the descriptor bounds."""
        return np.asarray(self.lower, np.float32), np.asarray(self.upper, np.float32)

    @property
    def num_elites(self) -> jax.Array:
        """Number of filled cells, an ``int32`` scalar."""
        return jnp.sum(self.filled, dtype=jnp.int32)

    @property
    def coverage(self) -> jax.Array:
        """Fraction of filled cells in ``[0, 1]``, a ``float32`` scalar."""
        return self.num_elites / self.capacity

    def qd_score(self) -> jax.Array:
        """Sum over elites of ``fitness - qd_offset`` (``float32`` scalar; 0 for an empty archive)."""
        return jnp.sum(jnp.where(self.filled, self.fitnesses - self.qd_offset, 0.0))

    def best(self) -> Elites:
        """The elite of highest fitness, as an :class:`Elites` batch of size 1.

        On an empty archive the returned fitness is ``-inf`` (check ``num_elites`` first).
        """
        idx = jnp.argmax(jnp.where(self.filled, self.fitnesses, -jnp.inf))[None]
        return self._elites_at(idx)

    def sample(self, key: jax.Array, n: int) -> Elites:
        """Draw ``n`` elites uniformly (with replacement) among the filled cells.

        Args:
            key: a JAX PRNG key.
            n: static number of samples.

        Returns:
            :class:`Elites` with leading axis ``n``. On an empty archive the cells are drawn uniformly
            among all (empty) cells, so the result is well defined but meaningless: seed the archive with
            an initial batch first (``MAPElites.init`` does).

        Cost: ``O(C + n log C)`` (one cumulative sum and a binary search per sample).
        """
        weights = jnp.where(jnp.any(self.filled), self.filled, True).astype(jnp.float32)
        cdf = jnp.cumsum(weights)
        u = jax.random.uniform(key, (n,), minval=0.0, maxval=cdf[-1])
        idx = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, self.capacity - 1).astype(jnp.int32)
        return self._elites_at(idx)

    def _elites_at(self, idx: jax.Array) -> Elites:
        return Elites(
            genotypes=gather(self.genotypes, idx),
            fitnesses=self.fitnesses[idx],
            descriptors=self.descriptors[idx],
            extras=None if self.extras is None else gather(self.extras, idx),
            cells=idx,
        )

    def elites(self) -> Dict[str, Any]:
        """The filled cells as host numpy arrays (not jittable).

        Returns:
            dict with ``cells (n,) int``, ``fitnesses (n,)``, ``descriptors (n, d)``, ``genotypes``
            (pytree of ``(n, ...)`` arrays) and ``extras`` (pytree or None), ``n`` = number of elites.
        """
        mask = np.asarray(self.filled)
        pick = lambda x: np.asarray(x)[mask]
        return {
            "cells": np.nonzero(mask)[0],
            "fitnesses": pick(self.fitnesses),
            "descriptors": pick(self.descriptors),
            "genotypes": jax.tree_util.tree_map(pick, self.genotypes),
            "extras": None if self.extras is None else jax.tree_util.tree_map(pick, self.extras),
        }

    def config(self) -> Dict[str, Any]:
        """The archive's static configuration as a JSON-serialisable dict.

        With the arrays of :meth:`to_dict` it is everything :func:`qd.load_archive` needs to rebuild the
        archive; subclasses add their own fields (resolution, policy, ...).
        """
        return {
            "kind": type(self).__name__,
            "lower": [float(x) for x in self.lower],
            "upper": [float(x) for x in self.upper],
            "qd_offset": float(self.qd_offset),
            "capacity": self.capacity,
            "descriptor_dim": self.descriptor_dim,
        }

    def to_dict(self) -> Dict[str, np.ndarray]:
        """All storage as a flat dict of numpy arrays (for ``np.savez``), keys are pytree paths.

        Also holds the configuration (:meth:`config`, JSON under the key ``"__archive__"``) and the
        structure of the genotype and extras pytrees, so that :func:`qd.load_archive` rebuilds the archive
        from the file alone. Arrays that are configuration (a CVT's centroids) are included.
        """
        out = {}
        for name in ("fitnesses", "descriptors", "filled"):
            out[name] = np.asarray(getattr(self, name))
        for prefix, tree in (("genotypes", self.genotypes), ("extras", self.extras)):
            if tree is None:
                continue
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
                out[prefix + jax.tree_util.keystr(path)] = np.asarray(leaf)
        out["lower"] = np.asarray(self.lower, np.float32)
        out["upper"] = np.asarray(self.upper, np.float32)
        out.update(self._config_arrays())
        from qd.archives.io import describe  # the file format lives in one module

        out[ARCHIVE_KEY] = np.asarray(describe(self))
        return out

    def to_csv(self, path: str, include_genotypes: bool = False) -> None:
        """Write the elites to ``path`` as a tidy CSV, one row per elite (:func:`qd.archives.export_csv`)."""
        from qd.archives.io import export_csv

        export_csv(self, path, include_genotypes)

    def _config_arrays(self) -> Dict[str, np.ndarray]:
        """Configuration that is an array (saved by :meth:`to_dict`); none in the base class."""
        return {}

    def replace_storage_from_dict(self, data: Dict[str, np.ndarray]) -> "Archive":
        """Inverse of :meth:`to_dict` for an archive of the same configuration.

        Raises:
            ValueError: if a key is missing or an array has the wrong shape.
        """

        def load(prefix, tree):
            if tree is None:
                return None
            flat = []
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
                k = prefix + jax.tree_util.keystr(path)
                if k not in data or data[k].shape != leaf.shape:
                    raise ValueError(f"archive data has no array {k!r} of shape {leaf.shape}")
                flat.append(jnp.asarray(data[k], leaf.dtype))
            return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(tree), flat)

        for name in ("fitnesses", "descriptors", "filled"):
            if name not in data or data[name].shape != getattr(self, name).shape:
                raise ValueError(f"archive data has no array {name!r} of shape {getattr(self, name).shape}")
        return self.replace(
            fitnesses=jnp.asarray(data["fitnesses"], jnp.float32),
            descriptors=jnp.asarray(data["descriptors"], jnp.float32),
            filled=jnp.asarray(data["filled"], bool),
            genotypes=load("genotypes", self.genotypes),
            extras=load("extras", self.extras),
        )

    # ----------------------------------------------------------------------------------------- #
    # Helpers for subclasses
    # ----------------------------------------------------------------------------------------- #
    def _validate(self, genotypes, descriptors, fitnesses, extras):
        """Check a batch statically and return ``(descriptors, fitnesses)`` as float32."""
        _check_batch(descriptors, fitnesses, self.descriptor_dim)
        batch = descriptors.shape[0]
        _check_genotypes(genotypes, self.genotypes, batch)
        if self.extras is not None:
            if extras is None:
                raise ValueError("this archive stores extras: add() needs the extras of the batch")
            _check_genotypes(extras, self.extras, batch)
        return descriptors.astype(jnp.float32), fitnesses.astype(jnp.float32)

    @staticmethod
    def _admissible(descriptors: jax.Array, fitnesses: jax.Array) -> Tuple[jax.Array, jax.Array]:
        """``(finite_descriptor (B,) bool, admissible (B,) bool)``, before clipping.

        The rule shared by every archive: a candidate is stored only if its fitness and every entry of
        its descriptor are finite. NaN and +-inf are rejected alike (an infinite descriptor is not
        clipped to the bounds); finite values outside the bounds are clipped.
        """
        finite_descriptor = jnp.all(jnp.isfinite(descriptors), axis=1)
        return finite_descriptor, finite_descriptor & jnp.isfinite(fitnesses)

    def _clip(self, descriptors: jax.Array) -> jax.Array:
        return jnp.clip(descriptors, jnp.asarray(self.lower, jnp.float32), jnp.asarray(self.upper, jnp.float32))


def add(archive: Archive, genotypes, descriptors, fitnesses, extras=None) -> Tuple[Archive, AddResult]:
    """Functional form of ``archive.add``: ``(new_archive, AddResult)``. See :meth:`GridArchive.add`."""
    return archive.add(genotypes, descriptors, fitnesses, extras)


def sample(archive: Archive, key: jax.Array, n: int) -> Elites:
    """Functional form of ``archive.sample``: ``n`` elites drawn uniformly among filled cells."""
    return archive.sample(key, n)


def check_qd_offset(qd_offset) -> float:
    """``qd_offset`` as a float. Raises ``ValueError`` if it is not a finite number."""
    try:
        value = float(qd_offset)
    except (TypeError, ValueError):
        raise ValueError(f"qd_offset must be a finite number; got {qd_offset!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"qd_offset must be a finite number; got {qd_offset!r}")
    return value


def optional_bounds(lower, upper, descriptor_dim: int) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Bounds of an archive whose bounds are optional: ``+-inf`` when both are None, else :func:`check_bounds`.

    Raises:
        ValueError: only one of the two given, bad bounds, or bounds without ``descriptor_dim`` entries.
    """
    if lower is None and upper is None:
        return (-np.inf,) * descriptor_dim, (np.inf,) * descriptor_dim
    if lower is None or upper is None:
        raise ValueError("give both lower and upper bounds, or neither")
    lower, upper = check_bounds(lower, upper, "descriptor bounds")
    if len(lower) != descriptor_dim:
        raise ValueError(f"bounds have {len(lower)} dimensions, descriptor_dim is {descriptor_dim}")
    return lower, upper


def check_bounds(lower, upper, name: str = "bounds") -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Validate descriptor bounds on the host; returns them as tuples of floats.

    Raises:
        ValueError: not numbers, not 1-D, empty, lengths differ, a bound is not finite (or beyond
            float32's range), or ``lower >= upper`` somewhere.
    """
    try:
        lo = np.atleast_1d(np.asarray(lower, np.float64))
        hi = np.atleast_1d(np.asarray(upper, np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be sequences of numbers; got lower={lower!r}, upper={upper!r}") from None
    if lo.ndim != 1 or hi.ndim != 1 or lo.size == 0:
        raise ValueError(f"{name} must be non-empty 1-D sequences; got lower={lower!r}, upper={upper!r}")
    lower, upper = tuple(float(x) for x in lo), tuple(float(x) for x in hi)
    if len(lower) != len(upper):
        raise ValueError(f"{name}: lower has {len(lower)} values, upper has {len(upper)}")
    if not all(np.isfinite(lower + upper)) or max(abs(x) for x in lower + upper) > np.finfo(np.float32).max:
        raise ValueError(f"{name} must be finite float32 numbers; got lower={lower}, upper={upper}")
    if any(lo >= hi for lo, hi in zip(lower, upper)):
        raise ValueError(f"{name}: every lower bound must be below its upper bound; got {lower}, {upper}")
    return lower, upper
