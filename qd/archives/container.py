"""AURORA's unstructured container: MAP-Elites in an unbounded (learned) descriptor space.

Sources: Cully & Demiris, "Quality and Diversity Optimization: A Unifying Modular Framework" (IEEE TEVC
2018, the unstructured archive); Cully, "Autonomous skill discovery with quality-diversity and
unsupervised descriptors" (GECCO 2019, AURORA); Grillotti & Cully, "Unsupervised Behavior Discovery With
Quality-Diversity Optimization" (IEEE TEVC 2022, AURORA with container-size control). Reference code read
(not copied): QDax 0.5.0 ``qdax/core/containers/unstructured_repertoire.py`` and ``qdax/core/aurora.py``;
the authors' C++ (``adaptive-intelligent-robotics/AURORA``: ``cpp/algorithms/container/
general_distance_archive.hpp``, ``cpp/modifier/dimensionality_reduction.hpp``, ``docs/doc_experiment_class.md``).

The container is a table of ``C`` slots with a validity mask (like every :class:`qd.archives.base.Archive`)
and a dynamic distance threshold ``l`` (``float32`` scalar). Elites are kept about ``l`` apart: a candidate
farther than ``l`` from every elite takes a new slot; a candidate within ``l`` of its nearest elite may
replace that elite if it is fitter. ``l`` is adapted from outside (:func:`container_size_control`) so that
the number of elites stays near a target, and after an encoder training :meth:`UnstructuredContainer.rebuild`
re-inserts every elite with its new descriptor. AURORA stores each elite's observation source (a final
state, a subsampled trajectory) in ``extras``, from which the new descriptors are computed.

Insertion rule (``add``), batched and deterministic
----------------------------------------------------
Distances are Euclidean, compared squared in float32 (``sum_j (a_j - b_j)^2`` in index order against
``l * |l|``; a negative ``l`` therefore makes every candidate new). For a batch of ``B`` candidates and the
container as it was *before* the batch:

1. A candidate with a non-finite fitness or descriptor entry is rejected (never stored; improvement
   ``-inf``). Finite descriptors are clipped to the bounds when the container has bounds.
2. Its nearest stored elite ``n`` (lowest slot on ties), at distance ``d1``, and its second nearest, at
   ``d2`` (``+inf`` when there is none), are found among the filled slots.
3. *New type*: ``d1 > l`` (always true in an empty container). *Close type*: ``d1 <= l``; it is eligible
   only if ``d2 > l`` (it lies within ``l`` of one elite only: both references reject a candidate that is
   too close to its second neighbour, "this avoids clusters") and its fitness is strictly above the
   fitness of ``n``.
4. Batch conflicts are resolved greedily, fittest first: candidates are visited by decreasing fitness,
   ties by increasing batch index. A visited candidate is accepted iff it is eligible and no previously
   accepted candidate of the batch *conflicts* with it: lies within ``l`` of it (distance ``<= l``), or is a
   close-type candidate of the same nearest elite ``n`` (one replacement per slot). An accepted new-type
   candidate also needs a free slot; when none is left it is dropped and counted in ``num_overflow`` (and,
   not being stored, blocks nobody).
5. Accepted new-type candidates fill the free slots in increasing slot order, in visiting order (the
   fittest gets the lowest free slot); accepted close-type candidates overwrite their ``n``.

This is exactly a sequential insertion in visiting order in which each candidate sees the elites of the
container before the batch plus the candidates accepted so far -- except that an elite replaced earlier in
the same batch still counts as a neighbour (its replacement decides its slot). The consequences of that
choice: the accepted candidates of one batch are pairwise farther than ``l`` apart, every accepted
candidate is farther than ``l`` from every elite it did not replace (so if the elites were pairwise more
than ``l`` apart they stay so), and a batch never stores two near-identical new candidates.

How QDax's ``UnstructuredRepertoire.add`` differs (read in QDax 0.5.0): it also judges the batch against the
container before the batch, with the same new / close (``<= l``) split and the second-neighbour rejection
(``d2 <= l``), one replacement per slot by ``segment_max`` (equal fitnesses tie and all write the slot), and
a replacement needs a strictly higher fitness. Its intra-batch rule is not greedy: a candidate is dropped if
*any* fitter candidate of the batch lies within ``l``, whether or not that one is itself stored (so a chain
of candidates each within ``l`` of the next, with rising fitness, keeps only the fittest, while the greedy
rule keeps every other one); when all fitnesses are equal it breaks ties by a virtual fitness that grows with
the (sorted) batch position. When the container is full QDax has no rule (a TODO in its code): the index
``-1`` that ``jnp.nonzero`` pads with wraps to the last slot, so new candidates overwrite slot ``C - 1``.

How the authors' C++ (sferes2) container differs: it is unbounded (no capacity) and inserts one candidate
at a time in population order, so each candidate sees every earlier insertion; the second-neighbour test is
``d2 < (1 - eps) l`` (``eps = 0.1``); and a close candidate replaces its neighbour when it is not
eps-dominated on (fitness, novelty) and better on one of them, novelty being the mean distance to the
``k = 15`` nearest elites. Here, as in QDax, replacement is by fitness alone (``O(1)`` per candidate, and
AURORA tasks are run with a fitness); with a constant fitness no elite is ever replaced.

Full container. AURORA's container has no hard capacity: the threshold ``l`` (container-size control) is
what bounds its size. With ``C`` fixed slots, a new-type candidate that finds no free slot is dropped and
counted in ``num_overflow`` (an ``int32`` a user can read: if it grows, raise ``C`` or lower the target);
close-type candidates still replace their elite, so a full container keeps improving. Nothing is evicted to
make room.

:class:`qd.AddResult` for this container: ``cell`` is the slot written, or ``-1``; ``status`` is
:data:`NEW` (a free slot was filled), :data:`IMPROVED` (a nearer-than-``l`` elite was replaced) or
:data:`NOT_ADDED`; ``improvement`` is ``fitness - fitness(n)`` for a close-type candidate, ``fitness -
qd_offset`` for a new-type one, ``-inf`` for a rejected (non-finite) one. Candidates that lose a batch
conflict keep their value and get :data:`NOT_ADDED`.

``coverage`` is the fill fraction ``num_elites / C`` (as for :class:`qd.UnstructuredArchive` and
:class:`qd.DominatedNoveltyArchive`); :func:`qd.metrics.archive_metrics` works unchanged.

Container-size control and ``l``
--------------------------------
:func:`container_size_control` implements both published update rules of ``l`` (``rule=``):

- ``"qdax"`` (QDax's ``AURORA.container_size_control``): a PD controller on the number of elites ``N``,
  ``e = N - target``, ``l <- l + K e + K (e - e_prev)``, ``K = 1e-5`` (QDax writes ``1 * 10e-6``).
- ``"aurora"`` (Grillotti & Cully 2022, the C++ ``update_l``): proportional and multiplicative,
  ``l <- l (1 - K_CSC (target - N))``, ``K_CSC = 5e-6`` by default, applied every ``T_C = 10`` iterations
  together with a rebuild in which elites are re-inserted at ``(1 - eps) l``, ``eps = 0.1`` (pass
  ``insertion_scale=0.9``).

Both then rebuild the container with the new ``l`` (QDax re-``init``s its repertoire, the C++ re-adds the
whole population). :func:`initial_l` is the C++ ``initialise_l`` (the threshold AURORA starts from after its
first training): ``0.5 (V / target)^(1/d)``, ``V`` the volume of the box around the elites' descriptors in
their principal axes. :func:`volume_adaptive_l` is the original AURORA's (Cully 2019) volume adaptive
threshold (VAT): ``max pairwise distance / (k * target)^(1/d)`` (the C++ uses ``k`` = 18 to 25 by task).
QDax has no initial-``l`` helper (``l`` is a user parameter there).

Shapes: ``B`` candidates, ``C`` slots, ``d`` descriptor dimensions.
Cost of ``add``: ``O(B C d)`` for the two nearest elites (blocks of ``R`` candidate rows with
``R C <= 2^20``: no ``(B, C)`` or ``(B, C, d)`` tensor), ``O(B log B)`` for the order, ``O(B^2 d)`` for the
greedy pass (``B`` sequential steps of ``O(B d)``: distances to the visited candidate are recomputed, so
memory stays ``O(B d)``), ``O(B)`` scatters. :meth:`rebuild` is an ``add`` of ``C`` candidates into an
empty container: ``O(C^2 d)`` work in ``C`` sequential steps, no nearest-elite search.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.archives.base import (
    IMPROVED,
    NEW,
    NOT_ADDED,
    AddResult,
    Archive,
    check_qd_offset,
    empty_storage,
    optional_bounds,
    scatter,
)

BLOCK_ELEMENTS = 1 << 20  # bound on R * C, one block of squared distances (4 MB of float32)
_UNROLL_DIMS = 16  # up to this d the distance sum is unrolled; beyond, a fori_loop
CSC_RULES = ("qdax", "aurora")
DEFAULT_GAINS = {"qdax": 1e-5, "aurora": 5e-6}


# --------------------------------------------------------------------------------------------- #
# Distances
# --------------------------------------------------------------------------------------------- #
def _squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """``(R, d), (N, d) -> (R, N) float32``: ``sum_j (a_j - b_j)^2``, summed in index order, elementwise."""
    acc = jnp.zeros((a.shape[0], b.shape[0]), jnp.float32)
    if a.shape[1] <= _UNROLL_DIMS:
        for j in range(a.shape[1]):
            t = a[:, j][:, None] - b[:, j][None, :]
            acc = acc + t * t
        return acc

    def step(j, acc):
        t = jax.lax.dynamic_index_in_dim(a, j, 1) - jax.lax.dynamic_index_in_dim(b, j, 1, keepdims=False)[None, :]
        return acc + t * t

    return jax.lax.fori_loop(0, a.shape[1], step, acc)


def _row_blocks(fn, queries: jax.Array, num_points: int):
    """Apply ``fn`` (``(R, d) -> pytree of (R, ...)``) to blocks of query rows with ``R * num_points <= 2^20``."""
    num, dim = queries.shape
    rows = int(max(1, min(num, BLOCK_ELEMENTS // max(1, num_points))))
    blocks = -(-num // rows)
    if blocks == 1:
        return fn(queries)
    pad = blocks * rows - num
    q = jnp.concatenate([queries, jnp.zeros((pad, dim), queries.dtype)]).reshape(blocks, rows, dim)
    out = jax.lax.map(fn, q)
    return jax.tree_util.tree_map(lambda x: x.reshape((blocks * rows,) + x.shape[2:])[:num], out)


def two_nearest(queries: jax.Array, points: jax.Array, mask: jax.Array) -> Tuple[jax.Array, jax.Array, jax.Array]:
    """The nearest and second-nearest masked point of every query.

    Args:
        queries: ``(B, d) float32``, finite.
        points: ``(C, d) float32``, finite where ``mask``.
        mask: ``(C,) bool``, the points that count.

    Returns:
        ``(d1, n1, d2)``: ``(B,) float32`` squared distance to the nearest point, ``(B,) int32`` its index
        (the lowest on ties; 0 when no point counts), ``(B,) float32`` squared distance to the second
        nearest (``+inf`` when fewer than two points count; equal to ``d1`` on an exact tie).

    Cost: ``O(B C d)`` in blocks of ``R`` rows (``R C <= 2^20``).
    """
    capacity = points.shape[0]
    index = jnp.arange(capacity, dtype=jnp.int32)

    def block(q):
        dist = jnp.where(mask[None, :], _squared_distances(q, points), jnp.inf)
        n1 = jnp.argmin(dist, axis=1).astype(jnp.int32)
        d1 = jnp.min(dist, axis=1)
        d2 = jnp.min(jnp.where(index[None, :] == n1[:, None], jnp.inf, dist), axis=1)
        return d1, n1, d2

    return _row_blocks(block, queries, capacity)


# --------------------------------------------------------------------------------------------- #
# The insertion plan (shared by add and rebuild)
# --------------------------------------------------------------------------------------------- #
@functools.partial(jax.jit, static_argnames=("search",))
def _plan(x, f, valid, l2, stored_descriptors, stored_fitnesses, filled, search: bool):
    """Decide the batch (see the module docstring). ``x (B, d)`` finite, ``f (B,)``, ``valid (B,) bool``,
    ``l2`` the float32 scalar ``l * |l|``. With ``search=False`` the container is known to be empty.
    Jitted, so that eager and jitted callers get the same bits (and eager calls do not run the greedy
    loop op by op).

    Returns ``(accepted (B,) bool, new_type (B,) bool, slot (B,) int32, incumbent (B,) float32,
    overflow int32)``: ``slot`` is meaningful where ``accepted``; ``incumbent`` is the fitness of the nearest
    elite (``-inf`` without search); ``overflow`` counts the candidates dropped for want of a free slot.
    """
    batch = x.shape[0]
    capacity = filled.shape[0]
    if search:
        d1, n1, d2 = two_nearest(x, stored_descriptors, filled)
        incumbent = stored_fitnesses[n1]
        new_type = valid & (d1 > l2)
        close = valid & ~new_type
        eligible = new_type | (close & (d2 > l2) & (f > incumbent))
    else:
        n1 = jnp.zeros((batch,), jnp.int32)
        incumbent = jnp.full((batch,), -jnp.inf, jnp.float32)
        new_type = valid
        close = jnp.zeros((batch,), bool)
        eligible = valid
    # Visiting order: decreasing fitness, ties by batch index; "+ 0.0" makes -0.0 tie with 0.0.
    key = jnp.where(valid, -f + 0.0, jnp.inf)
    order = jnp.argsort(key, stable=True).astype(jnp.int32)
    free = capacity - jnp.sum(filled, dtype=jnp.int32)

    def visit(k, carry):
        accepted, rank, num_new, overflow = carry
        c = order[k]
        xc = jax.lax.dynamic_slice_in_dim(x, c, 1, 0)  # (1, d)
        conflict = _squared_distances(xc, x)[0] <= l2
        if search:
            conflict = conflict | (close & close[c] & (n1 == n1[c]))
        ok = eligible[c] & ~jnp.any(accepted & conflict)
        is_new = new_type[c]
        room = num_new < free
        take = ok & (~is_new | room)
        accepted = accepted.at[c].set(take)
        rank = rank.at[c].set(num_new)
        num_new = num_new + (take & is_new).astype(jnp.int32)
        overflow = overflow + (ok & is_new & ~room).astype(jnp.int32)
        return accepted, rank, num_new, overflow

    zero = jnp.zeros((), jnp.int32)
    init = (jnp.zeros((batch,), bool), jnp.zeros((batch,), jnp.int32), zero, zero)
    accepted, rank, _, overflow = jax.lax.fori_loop(0, batch, visit, init)
    num_free_slots = min(batch, capacity)
    free_slots = jnp.nonzero(~filled, size=num_free_slots, fill_value=capacity)[0].astype(jnp.int32)
    new_slot = free_slots[jnp.clip(rank, 0, num_free_slots - 1)]
    slot = jnp.where(new_type, new_slot, n1)
    return accepted, new_type, slot, incumbent, overflow


# --------------------------------------------------------------------------------------------- #
# The container
# --------------------------------------------------------------------------------------------- #
@struct.dataclass
class UnstructuredContainer(Archive):
    """AURORA's unstructured container of ``C`` slots (see the module docstring). Create it with :meth:`create`.

    Attributes (beyond :class:`qd.archives.base.Archive`'s storage, all of leading axis ``C``):
        l: ``float32`` scalar, the distance threshold (dynamic: :func:`container_size_control` or
            ``container.replace(l=...)`` change it without recompiling).
        num_overflow: ``int32`` scalar, new-type candidates dropped so far because no slot was free.
        num_rebuild_lost: ``int32`` scalar, elites lost so far by :meth:`rebuild` (closer than ``l`` to a
            fitter elite under their new descriptors, or given a non-finite new descriptor).
    """

    l: jax.Array = None  # noqa: E741 (AURORA's name for the threshold)
    num_overflow: jax.Array = None
    num_rebuild_lost: jax.Array = None

    @classmethod
    def create(
        cls,
        genotype_template: Any,
        capacity: int,
        descriptor_dim: int,
        lower: Optional[Sequence[float]] = None,
        upper: Optional[Sequence[float]] = None,
        *,
        l: float = 0.1,  # noqa: E741
        extras_template: Any = None,
        qd_offset: float = 0.0,
    ) -> "UnstructuredContainer":
        """An empty container.

        Args:
            genotype_template: one unbatched genotype pytree (structure, shapes, dtypes).
            capacity: number of slots ``C``.
            descriptor_dim: ``d``.
            lower, upper: optional ``(d,)`` descriptor bounds (descriptors are clipped to them). None: unbounded
                (``bounds`` is then ``+-inf``), the usual case for a learned space.
            l: initial distance threshold, a finite number ``>= 0`` (a user parameter; AURORA sets it from the
                first trained descriptors, see :func:`initial_l`).
            extras_template: unbatched pytree of per-elite extras (AURORA: the observation source), or None.
            qd_offset: subtracted from fitnesses in the QD-score.

        Raises:
            ValueError: non-positive ``capacity`` / ``descriptor_dim``, a negative or non-finite ``l``, bad
                bounds, a non-finite ``qd_offset``.
        """
        capacity, descriptor_dim = int(capacity), int(descriptor_dim)
        if capacity < 1:
            raise ValueError(f"capacity must be positive; got {capacity}")
        if descriptor_dim < 1:
            raise ValueError(f"descriptor_dim must be positive; got {descriptor_dim}")
        try:
            l_value = float(l)
        except (TypeError, ValueError):
            raise ValueError(f"l must be a finite number >= 0; got {l!r}") from None
        if not (np.isfinite(l_value) and l_value >= 0):
            raise ValueError(f"l must be a finite number >= 0; got {l!r}")
        lower, upper = optional_bounds(lower, upper, descriptor_dim)
        return cls(
            **empty_storage(genotype_template, capacity, descriptor_dim, extras_template),
            lower=tuple(float(x) for x in lower),
            upper=tuple(float(x) for x in upper),
            qd_offset=check_qd_offset(qd_offset),
            l=jnp.asarray(l_value, jnp.float32),
            num_overflow=jnp.zeros((), jnp.int32),
            num_rebuild_lost=jnp.zeros((), jnp.int32),
        )

    # ----------------------------------------------------------------------------------------- #
    def add(self, genotypes, descriptors, fitnesses, extras=None) -> Tuple["UnstructuredContainer", AddResult]:
        """Insert a batch by the rule of the module docstring.

        Args:
            genotypes: pytree with leading axis ``B`` matching the stored structure.
            descriptors: ``(B, d)`` floating.
            fitnesses: ``(B,)`` floating.
            extras: pytree with leading axis ``B``; required iff the container stores extras.

        Returns:
            ``(container, AddResult)``.

        Raises:
            ValueError: at trace time, for shapes / dtypes that do not match the container.

        Cost: ``O(B C d + B^2 d)`` time (``B`` sequential steps in the greedy pass), ``O(R C + B d)`` memory.
        """
        return _insert(self, genotypes, descriptors, fitnesses, extras, self.l, search=True)

    def _insert_traced(self, genotypes, descriptors, fitnesses, extras, l_insert, search: bool):
        # Called through the jitted _insert below: one compiled program per shape, eager or not.
        descriptors, fitnesses = self._validate(genotypes, descriptors, fitnesses, extras)
        finite_descriptor, valid = self._admissible(descriptors, fitnesses)
        x = self._clip(jnp.where(finite_descriptor[:, None], descriptors, 0.0))
        f = jnp.where(valid, fitnesses, 0.0)
        l_insert = jnp.asarray(l_insert, jnp.float32)
        l2 = l_insert * jnp.abs(l_insert)
        accepted, new_type, slot, incumbent, overflow = _plan(
            x, f, valid, l2, self.descriptors, self.fitnesses, self.filled, search
        )
        capacity = self.capacity
        target = jnp.where(accepted, slot, capacity).astype(jnp.int32)  # out of range -> dropped
        container = self.replace(
            genotypes=scatter(self.genotypes, target, genotypes),
            fitnesses=self.fitnesses.at[target].set(f, mode="drop"),
            descriptors=self.descriptors.at[target].set(x, mode="drop"),
            extras=None if self.extras is None else scatter(self.extras, target, extras),
            filled=self.filled.at[target].set(True, mode="drop"),
            num_overflow=self.num_overflow + overflow,
        )
        improvement = jnp.where(new_type, f - self.qd_offset, f - incumbent)
        result = AddResult(
            cell=jnp.where(accepted, slot, -1).astype(jnp.int32),
            status=jnp.where(accepted, jnp.where(new_type, NEW, IMPROVED), NOT_ADDED).astype(jnp.int32),
            improvement=jnp.where(valid, improvement, -jnp.inf).astype(jnp.float32),
        )
        return container, result

    # ----------------------------------------------------------------------------------------- #
    def rebuild(
        self,
        descriptors: Optional[jax.Array] = None,
        *,
        l: Optional[jax.Array] = None,  # noqa: E741
        insertion_scale: float = 1.0,
    ) -> "UnstructuredContainer":
        """Re-insert every elite, with new descriptors, into an empty container (after an encoder training).

        The elites of the filled slots are added as one batch of ``C`` candidates (genotypes, fitnesses and
        extras stay with their elite) to the container emptied, by the rule of :meth:`add`: fittest first, an
        elite survives iff no fitter survivor lies within the threshold, survivors fill slots ``0 .. n-1``
        by decreasing fitness (ties by old slot). This is QDax's ``repertoire.init(...)`` after training and
        the C++ ``update_container`` (which re-adds at ``(1 - eps) l``: ``insertion_scale = 1 - eps``).

        Args:
            descriptors: ``(C, d)`` floating, the new descriptor of every slot (rows of empty slots are
                ignored); None: the stored ones (a rebuild after ``l`` changed). An elite whose new
                descriptor is not finite is lost.
            l: optional new threshold to store (float scalar); default the current ``l``.
            insertion_scale: static factor of the threshold used for the re-insertion only
                (the stored ``l`` is unchanged by it).

        Returns:
            The rebuilt container; ``num_rebuild_lost`` grows by the number of elites lost, ``num_overflow``
            is unchanged (every elite has a slot).

        Raises:
            ValueError: at trace time, ``descriptors`` not of shape ``(C, d)`` or not floating.

        Cost: ``O(C^2 d)`` time in ``C`` sequential steps (no nearest-elite search: the container is empty),
        ``O(C d)`` memory beside a second copy of the storage.
        """
        descriptors = self.descriptors if descriptors is None else descriptors
        if not hasattr(descriptors, "shape") or tuple(descriptors.shape) != tuple(self.descriptors.shape):
            raise ValueError(
                f"descriptors must have shape {tuple(self.descriptors.shape)}; got {getattr(descriptors, 'shape', None)}"
            )
        l_new = self.l if l is None else jnp.asarray(l, jnp.float32)
        zeros = lambda tree: None if tree is None else jax.tree_util.tree_map(jnp.zeros_like, tree)
        empty = self.replace(
            genotypes=zeros(self.genotypes),
            extras=zeros(self.extras),
            fitnesses=jnp.full_like(self.fitnesses, -jnp.inf),
            descriptors=jnp.zeros_like(self.descriptors),
            filled=jnp.zeros_like(self.filled),
            l=l_new,
        )
        fitnesses = jnp.where(self.filled, self.fitnesses, jnp.nan)
        rebuilt, _ = _insert(
            empty, self.genotypes, descriptors, fitnesses, self.extras, l_new * float(insertion_scale), search=False
        )
        lost = self.num_elites - rebuilt.num_elites
        return rebuilt.replace(num_overflow=self.num_overflow, num_rebuild_lost=self.num_rebuild_lost + lost)

    # ----------------------------------------------------------------------------------------- #
    def to_dict(self) -> Dict[str, np.ndarray]:
        """Storage, ``l`` and counters as a flat dict of numpy arrays (see :meth:`Archive.to_dict`)."""
        out = super().to_dict()
        out["l"] = np.asarray(self.l)
        out["num_overflow"] = np.asarray(self.num_overflow)
        out["num_rebuild_lost"] = np.asarray(self.num_rebuild_lost)
        return out

    def replace_storage_from_dict(self, data: Dict[str, np.ndarray]) -> "UnstructuredContainer":
        """Inverse of :meth:`to_dict` for a container of the same configuration.

        Raises:
            ValueError: a key is missing or an array has the wrong shape.
        """
        container = super().replace_storage_from_dict(data)
        for name in ("l", "num_overflow", "num_rebuild_lost"):
            if name not in data or np.shape(data[name]) != ():
                raise ValueError(f"archive data has no scalar {name!r}")
        return container.replace(
            l=jnp.asarray(data["l"], jnp.float32),
            num_overflow=jnp.asarray(data["num_overflow"], jnp.int32),
            num_rebuild_lost=jnp.asarray(data["num_rebuild_lost"], jnp.int32),
        )


@functools.partial(jax.jit, static_argnames=("search",))
def _insert(container, genotypes, descriptors, fitnesses, extras, l_insert, search: bool):
    return container._insert_traced(genotypes, descriptors, fitnesses, extras, l_insert, search)


# --------------------------------------------------------------------------------------------- #
# The threshold: container-size control and initial values
# --------------------------------------------------------------------------------------------- #
def container_size_control(
    container: UnstructuredContainer,
    target_size,
    previous_error=0.0,
    gain: Optional[float] = None,
    *,
    rule: str = "qdax",
    rebuild: bool = True,
    insertion_scale: float = 1.0,
) -> Tuple[UnstructuredContainer, jax.Array]:
    """Adapt ``l`` so that the number of elites ``N`` approaches ``target_size``, then rebuild (jittable).

    Rules (``e = N - target_size``):

    - ``"qdax"`` (QDax 0.5.0 ``AURORA.container_size_control``): ``l <- l + K e + K (e - previous_error)``,
      ``K = gain`` (default ``1e-5``). A PD controller; ``l`` may go below 0 (every candidate is then new).
    - ``"aurora"`` (Grillotti & Cully 2022; the authors' C++ ``update_l``): ``l <- l (1 + K e)``, ``K = gain``
      (default ``K_CSC = 5e-6``), ``previous_error`` unused. The paper applies it every ``T_C = 10``
      iterations with ``insertion_scale = 0.9`` (``1 - eps``).

    Args:
        container: the container.
        target_size: the target number of elites (int or scalar array).
        previous_error: the ``e`` this function returned last time (``float32`` scalar; 0 at first).
        gain: the controller gain (None: the rule's default).
        rule: static, ``"qdax"`` or ``"aurora"``.
        rebuild: static; re-insert the elites under the new ``l`` (:meth:`UnstructuredContainer.rebuild`
            with the stored descriptors), as both references do. Without it only ``l`` changes.
        insertion_scale: static, passed to the rebuild.

    Returns:
        ``(container, error)``: the container with its new ``l`` (rebuilt), and ``e`` (``float32`` scalar,
        measured before the rebuild) to pass back as ``previous_error``.

    Raises:
        ValueError: an unknown rule.
    """
    if rule not in CSC_RULES:
        raise ValueError(f"rule must be one of {CSC_RULES}; got {rule!r}")
    k = DEFAULT_GAINS[rule] if gain is None else float(gain)
    error = container.num_elites.astype(jnp.float32) - jnp.asarray(target_size, jnp.float32)
    if rule == "qdax":
        change = error - jnp.asarray(previous_error, jnp.float32)
        l_new = container.l + k * error + k * change
    else:
        l_new = container.l * (1.0 + k * error)
    l_new = l_new.astype(jnp.float32)
    if rebuild:
        container = container.rebuild(l=l_new, insertion_scale=insertion_scale)
    else:
        container = container.replace(l=l_new)
    return container, error


def _masked(descriptors, mask):
    descriptors = jnp.asarray(descriptors, jnp.float32)
    mask = jnp.ones(descriptors.shape[:1], bool) if mask is None else jnp.asarray(mask, bool)
    return descriptors, mask & jnp.all(jnp.isfinite(descriptors), axis=1)


def initial_l(descriptors: jax.Array, target_size, mask: Optional[jax.Array] = None) -> jax.Array:
    """AURORA's initial threshold (the authors' C++ ``initialise_l``): ``0.5 (V / target)^(1/d)``.

    ``V`` is the volume of the axis-aligned box around the descriptors expressed in their principal axes
    (eigenvectors of the scatter matrix of the centred descriptors): the product of the ranges of the
    projections. AURORA uses it after its first training, on the descriptors of the initial population.

    Args:
        descriptors: ``(n, d)`` floating (e.g. ``container.descriptors``).
        target_size: the target number of elites.
        mask: optional ``(n,) bool``, the rows to use (e.g. ``container.filled``); rows with a non-finite
            entry are never used.

    Returns:
        ``float32`` scalar (0 when fewer than two rows count or they span no volume). Computed in float32
        (the C++ uses double).
    """
    x, mask = _masked(descriptors, mask)
    count = jnp.maximum(jnp.sum(mask), 1).astype(jnp.float32)
    mean = jnp.sum(jnp.where(mask[:, None], x, 0.0), axis=0) / count
    centred = jnp.where(mask[:, None], x - mean, 0.0)
    _, vectors = jnp.linalg.eigh(centred.T @ centred)
    projected = centred @ vectors
    upper = jnp.max(jnp.where(mask[:, None], projected, -jnp.inf), axis=0)
    lower = jnp.min(jnp.where(mask[:, None], projected, jnp.inf), axis=0)
    volume = jnp.prod(jnp.where(jnp.sum(mask) > 0, upper - lower, 0.0))
    dim = x.shape[1]
    return (0.5 * (volume / jnp.asarray(target_size, jnp.float32)) ** (1.0 / dim)).astype(jnp.float32)


def volume_adaptive_l(
    descriptors: jax.Array, target_size, mask: Optional[jax.Array] = None, resolution_constant: float = 25.0
) -> jax.Array:
    """The original AURORA's volume adaptive threshold (VAT, Cully 2019; the C++ ``get_new_l``).

    ``l = D / (k * target)^(1/d)`` with ``D`` the largest distance between two of the descriptors and
    ``k = resolution_constant`` (the C++ uses 25 for the maze, 18 for the hexapod and air-hockey tasks).

    Args:
        descriptors: ``(n, d)`` floating.
        target_size: the target number of elites.
        mask: optional ``(n,) bool`` rows to use; rows with a non-finite entry are never used.
        resolution_constant: ``k``.

    Returns:
        ``float32`` scalar (0 with fewer than two rows).

    Cost: ``O(n^2 d)`` in blocks of rows (no ``(n, n)`` tensor beyond a block).
    """
    x, mask = _masked(descriptors, mask)
    x = jnp.where(mask[:, None], x, 0.0)
    n, dim = x.shape

    def block(q):  # q carries its own mask in an extra column
        dist = _squared_distances(q[:, :dim], x)
        dist = jnp.where(mask[None, :] & (q[:, dim:] > 0), dist, 0.0)
        return jnp.max(dist, axis=1)

    rows = jnp.concatenate([x, mask[:, None].astype(jnp.float32)], axis=1)
    largest = jnp.max(_row_blocks(block, rows, n)) if n else jnp.float32(0.0)
    k = float(resolution_constant) * jnp.asarray(target_size, jnp.float32)
    return (jnp.sqrt(largest) / k ** (1.0 / dim)).astype(jnp.float32)
