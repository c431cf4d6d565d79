"""An unstructured (novelty) archive: a fixed-capacity list of behaviours with a validity mask.

Novelty search, AURORA, TAXONS, SERENE and STAX keep an archive that is not a tessellation: a growing set of
descriptors whose insertion rule is about novelty, not fitness. Here it is a fixed table of ``C`` slots
filled in insertion order (slot ``i`` is the ``i``-th insertion), behind the same interface as the grid and
CVT archives (:class:`qd.archives.base.Archive`): ``add``, ``sample``, ``best``, ``elites``, ``to_dict``,
``coverage`` (here the fill fraction ``filled / C``), ...

Insertion policies (static ``policy``; ``B`` = batch size):

- ``"threshold"``: store every candidate whose novelty is at least ``threshold`` (Lehman & Stanley 2011's
  ``rho_min``; also AURORA's container with a distance threshold). The threshold is a dynamic field: a
  caller may adapt it (``archive.replace(threshold=...)``).
- ``"random"``: store ``num_per_batch`` candidates drawn uniformly without replacement from the batch
  (SERENE / STAX: 5 random offspring per generation). The draw uses the archive's own PRNG ``key`` (split
  at every ``add``) unless ``add`` gets ``key=``.
- ``"most_novel"``: store the ``num_per_batch`` most novel candidates of the batch (TAXONS' "top-5").

Novelty of a candidate, unless the caller passes ``novelty=`` (the novelty search driver does, computed
against its full reference set), is its mean distance to its ``num_neighbors`` nearest neighbours among the
stored behaviours and the *other* candidates of the batch (:func:`qd.novelty.knn_novelty`); with no
neighbour at all it is ``+inf``. Candidates are scored together, against the archive as it was before the
batch: two near-identical novel candidates of one batch therefore see each other and get a low novelty.

Fitness. It is stored (and ``best()`` uses it) but plays no role in insertion: any finite value is accepted.
A candidate whose fitness or descriptor is not finite (NaN, +-inf) is never stored.

Full archive (static ``full_policy``), counted in ``num_overflow`` (an ``int32`` a user can read):

- ``"drop"`` (default): once the ``C`` slots are used, selected candidates are discarded; ``num_overflow``
  counts them. Nothing already stored ever changes.
- ``"fifo"``: the oldest entries are overwritten (a ring buffer); ``num_overflow`` counts overwrites.

``num_inserted`` counts every insertion ever made (``min(num_inserted, C)`` slots are filled).

:class:`qd.AddResult` for this archive: ``cell`` is the slot written, or ``-1``; ``status`` is :data:`NEW`
for every stored candidate (also when it overwrote an old one under ``"fifo"``) and :data:`NOT_ADDED`
otherwise; ``improvement`` is the candidate's novelty (``-inf`` when it was rejected as non-finite).

Shapes: ``B`` candidates, ``C`` slots, ``d`` descriptor dimensions.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.archives.base import NEW, NOT_ADDED, AddResult, Archive, check_qd_offset, empty_storage, optional_bounds, scatter
from qd.novelty import DEFAULT_K, knn_novelty

POLICIES = ("threshold", "random", "most_novel")
FULL_POLICIES = ("drop", "fifo")


@struct.dataclass
class UnstructuredArchive(Archive):
    """A novelty archive of ``C`` slots filled in insertion order. Create it with :meth:`create`.

    Attributes (beyond :class:`qd.archives.base.Archive`'s storage):
        threshold: ``float32`` scalar, the novelty threshold of the ``"threshold"`` policy.
        key: PRNG key used by the ``"random"`` policy.
        num_inserted: ``int32`` scalar, insertions made so far (all policies).
        num_overflow: ``int32`` scalar, candidates dropped because the archive was full (``"drop"``) or
            stored over an older entry (``"fifo"``).
        policy, full_policy, num_per_batch, num_neighbors: static configuration (see the module doc).
    """

    threshold: jax.Array = None
    key: jax.Array = None
    num_inserted: jax.Array = None
    num_overflow: jax.Array = None
    policy: str = struct.field(pytree_node=False, default="threshold")
    full_policy: str = struct.field(pytree_node=False, default="drop")
    num_per_batch: int = struct.field(pytree_node=False, default=5)
    num_neighbors: int = struct.field(pytree_node=False, default=DEFAULT_K)

    @classmethod
    def create(
        cls,
        genotype_template: Any,
        capacity: int,
        descriptor_dim: int,
        lower: Optional[Sequence[float]] = None,
        upper: Optional[Sequence[float]] = None,
        *,
        policy: str = "threshold",
        threshold: float = 0.1,
        num_per_batch: int = 5,
        num_neighbors: int = DEFAULT_K,
        full_policy: str = "drop",
        extras_template: Any = None,
        qd_offset: float = 0.0,
        seed: int = 0,
    ) -> "UnstructuredArchive":
        """An empty unstructured archive.

        The positional arguments follow the other archives' order (genotype template, cells, bounds), with
        ``descriptor_dim`` before the bounds because they are optional here; the rest is keyword-only.

        Args:
            genotype_template: one unbatched genotype pytree (structure, shapes, dtypes).
            capacity: number of slots ``C``.
            descriptor_dim: ``d``.
            lower, upper: optional ``(d,)`` descriptor bounds; descriptors are clipped to them (as in every
                archive). None: unbounded (no clipping; ``bounds`` is then ``+-inf``).
            policy: ``"threshold"``, ``"random"`` or ``"most_novel"``.
            threshold: initial novelty threshold (``"threshold"`` policy), ``>= 0``.
            num_per_batch: candidates stored per ``add`` by ``"random"`` / ``"most_novel"``.
            num_neighbors: ``k`` of the k-nearest-neighbour novelty.
            full_policy: ``"drop"`` or ``"fifo"``.
            extras_template: unbatched pytree of per-entry extras to store, or None.
            qd_offset: subtracted from fitnesses in the QD-score.
            seed: seed of the archive's PRNG key (``"random"`` policy).

        Raises:
            ValueError: unknown policy, non-positive capacity / ``num_per_batch`` / ``num_neighbors``,
                negative or non-finite threshold, bad bounds, a non-finite ``qd_offset``.
        """
        capacity, descriptor_dim = int(capacity), int(descriptor_dim)
        if capacity < 1:
            raise ValueError(f"capacity must be positive; got {capacity}")
        if descriptor_dim < 1:
            raise ValueError(f"descriptor_dim must be positive; got {descriptor_dim}")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}; got {policy!r}")
        if full_policy not in FULL_POLICIES:
            raise ValueError(f"full_policy must be one of {FULL_POLICIES}; got {full_policy!r}")
        if int(num_per_batch) < 1:
            raise ValueError(f"num_per_batch must be positive; got {num_per_batch}")
        if int(num_neighbors) < 1:
            raise ValueError(f"num_neighbors must be positive; got {num_neighbors}")
        if not (np.isfinite(threshold) and threshold >= 0):
            raise ValueError(f"threshold must be a finite number >= 0; got {threshold}")
        lower, upper = optional_bounds(lower, upper, descriptor_dim)
        return cls(
            **empty_storage(genotype_template, capacity, descriptor_dim, extras_template),
            lower=tuple(float(x) for x in lower),
            upper=tuple(float(x) for x in upper),
            qd_offset=check_qd_offset(qd_offset),
            threshold=jnp.asarray(threshold, jnp.float32),
            key=jax.random.PRNGKey(int(seed)),  # raw uint32 key data: checkpoints as a plain array
            num_inserted=jnp.zeros((), jnp.int32),
            num_overflow=jnp.zeros((), jnp.int32),
            policy=policy,
            full_policy=full_policy,
            num_per_batch=int(num_per_batch),
            num_neighbors=int(num_neighbors),
        )

    # ----------------------------------------------------------------------------------------- #
    def novelty(self, descriptors: jax.Array, exclude: Optional[jax.Array] = None) -> jax.Array:
        """Novelty of ``(B, d)`` descriptors against the stored behaviours only: ``(B,) float32``.

        ``exclude``: ``(B,) int32`` slot of each query to skip (its own entry), or ``-1``.
        """
        return knn_novelty(descriptors, self.descriptors, self.filled, self.num_neighbors, exclude)

    def batch_novelty(self, descriptors: jax.Array, include: Optional[jax.Array] = None) -> jax.Array:
        """Novelty of each candidate against the stored behaviours plus the other candidates: ``(B,)``.

        ``include``: optional ``(B,) bool``, the candidates that count as neighbours of the others
        (default: those with a finite descriptor).
        """
        batch = descriptors.shape[0]
        reference = jnp.concatenate([self.descriptors, descriptors.astype(jnp.float32)], axis=0)
        if include is None:
            include = jnp.all(jnp.isfinite(descriptors), axis=1)
        mask = jnp.concatenate([self.filled, include])
        own = self.capacity + jnp.arange(batch, dtype=jnp.int32)
        return knn_novelty(descriptors, reference, mask, self.num_neighbors, exclude=own)

    def add(
        self,
        genotypes,
        descriptors,
        fitnesses,
        extras=None,
        novelty: Optional[jax.Array] = None,
        key: Optional[jax.Array] = None,
    ) -> Tuple["UnstructuredArchive", AddResult]:
        """Insert a batch by the archive's policy.

        Args:
            genotypes: pytree with leading axis ``B`` matching the stored structure.
            descriptors: ``(B, d)`` floating (clipped to the bounds when the archive has finite bounds).
            fitnesses: ``(B,)`` floating; any finite value is accepted, non-finite candidates are rejected.
            extras: pytree with leading axis ``B``; required iff the archive stores extras.
            novelty: optional ``(B,)`` novelty scores to use instead of :meth:`batch_novelty` (for the
                ``"threshold"`` and ``"most_novel"`` policies, and reported in ``improvement``).
            key: optional PRNG key for the ``"random"`` policy (default: the archive's own key, split).

        Returns:
            ``(archive, AddResult)``; see the module docstring for the meaning of the result's fields.

        Raises:
            ValueError: at trace time, for shapes/dtypes that do not match the archive, or a ``novelty`` of
                the wrong shape.

        Cost: ``O(B (C + B) d)`` for the novelty (skipped for ``"random"`` when ``novelty`` is given),
        ``O(B log B)`` for the selection, ``O(B)`` scatters.
        """
        descriptors, fitnesses = self._validate(genotypes, descriptors, fitnesses, extras)
        # The rule of every archive: any non-finite descriptor entry or fitness is rejected (checked
        # before clipping, so +-inf is not clipped into a bounded archive); the descriptor is zeroed so
        # that no NaN reaches the novelty of the others.
        finite_descriptor, eligible = self._admissible(descriptors, fitnesses)
        descriptors = self._clip(jnp.where(finite_descriptor[:, None], descriptors, 0.0))
        batch, capacity = fitnesses.shape[0], self.capacity
        if novelty is not None:
            if not hasattr(novelty, "shape") or tuple(novelty.shape) != (batch,):
                raise ValueError(f"novelty must have shape ({batch},); got {getattr(novelty, 'shape', None)}")
            nov = novelty.astype(jnp.float32)
        else:
            nov = self.batch_novelty(descriptors, include=finite_descriptor)

        archive_key = self.key
        if self.policy == "threshold":
            selected = eligible & (nov >= self.threshold)
        else:
            m = min(self.num_per_batch, batch)
            if self.policy == "random":
                if key is None:
                    archive_key, key = jax.random.split(self.key)
                score = jax.random.uniform(key, (batch,))
            else:
                score = jnp.where(jnp.isnan(nov), -jnp.inf, nov)
            # Ineligible candidates are pushed below every eligible one; ties go to the lowest index.
            order_score = jnp.where(eligible, score, -jnp.inf)
            _, top = jax.lax.top_k(order_score, m)
            selected = jnp.zeros((batch,), bool).at[top].set(True) & eligible

        rank = jnp.cumsum(selected.astype(jnp.int32)) - 1
        num_selected = jnp.sum(selected, dtype=jnp.int32)
        position = self.num_inserted + rank  # insertion number of each selected candidate
        if self.full_policy == "drop":
            stored = selected & (position < capacity)
            slot = position
            overflow = num_selected - jnp.sum(stored, dtype=jnp.int32)
        else:  # fifo: within one batch only the last C selected survive
            stored = selected & (rank >= num_selected - capacity)
            slot = jnp.mod(position, capacity)
            overflow = jnp.sum(stored & (position >= capacity), dtype=jnp.int32)
        num_stored = jnp.sum(stored, dtype=jnp.int32)
        target = jnp.where(stored, slot, capacity).astype(jnp.int32)  # out of range -> dropped

        archive = self.replace(
            genotypes=scatter(self.genotypes, target, genotypes),
            fitnesses=self.fitnesses.at[target].set(fitnesses, mode="drop"),
            descriptors=self.descriptors.at[target].set(descriptors, mode="drop"),
            extras=None if self.extras is None else scatter(self.extras, target, extras),
            filled=self.filled.at[target].set(True, mode="drop"),
            key=archive_key,
            num_inserted=self.num_inserted + num_stored,
            num_overflow=self.num_overflow + overflow,
        )
        result = AddResult(
            cell=jnp.where(stored, slot, -1).astype(jnp.int32),
            status=jnp.where(stored, NEW, NOT_ADDED).astype(jnp.int32),
            improvement=jnp.where(eligible, nov, -jnp.inf).astype(jnp.float32),
        )
        return archive, result

    # ----------------------------------------------------------------------------------------- #
    def config(self) -> Dict[str, Any]:
        """The static configuration (JSON-serialisable): what :func:`qd.load_archive` rebuilds it from."""
        return {
            **super().config(),
            "policy": self.policy,
            "full_policy": self.full_policy,
            "num_per_batch": self.num_per_batch,
            "num_neighbors": self.num_neighbors,
        }

    def to_dict(self) -> Dict[str, np.ndarray]:
        """Storage and counters as a flat dict of numpy arrays (see :meth:`Archive.to_dict`)."""
        out = super().to_dict()
        out["threshold"] = np.asarray(self.threshold)
        out["num_inserted"] = np.asarray(self.num_inserted)
        out["num_overflow"] = np.asarray(self.num_overflow)
        out["key"] = np.asarray(self.key)
        return out

    def replace_storage_from_dict(self, data: Dict[str, np.ndarray]) -> "UnstructuredArchive":
        """Inverse of :meth:`to_dict` for an archive of the same configuration.

        Raises:
            ValueError: a key is missing or an array has the wrong shape.
        """
        archive = super().replace_storage_from_dict(data)
        for name in ("threshold", "num_inserted", "num_overflow"):
            if name not in data:
                raise ValueError(f"archive data has no array {name!r}")
        key = jnp.asarray(data["key"], self.key.dtype) if "key" in data else self.key
        return archive.replace(
            key=key,
            threshold=jnp.asarray(data["threshold"], jnp.float32),
            num_inserted=jnp.asarray(data["num_inserted"], jnp.int32),
            num_overflow=jnp.asarray(data["num_overflow"], jnp.int32),
        )
