"""CMA-ME emitters (Fontaine, Togelius, Nikolaidis & Hoover, "Covariance Matrix Adaptation for the Rapid
Illumination of Behavior Space", GECCO 2020, arXiv:1912.02400) and CMA-MAE's emitter (Fontaine &
Nikolaidis, "Covariance Matrix Adaptation MAP-Annealing", GECCO 2023, arXiv:2205.10752).

One emitter object runs ``K = num_instances`` independent CMA-ES instances (:class:`emitters.cmaes.CMAES`)
``jax.vmap``-ed in one program, each with population ``P``: ``batch_size = K * P`` genotypes per ``ask``,
instance-major (candidate ``k * P + p`` is sample ``p`` of instance ``k``). pyribs' 15
``EvolutionStrategyEmitter`` s of batch 36 are one :class:`CMAMEEmitter` with ``num_instances=15,
population=36``. Genotypes are flat: ``(B, D) float32``; ``d`` = descriptor dimensions.

Each instance learns only from the archive's :class:`qd.AddResult` for its candidates (no cell is
recomputed). The rules follow pyribs 0.12 (``ribs.emitters.EvolutionStrategyEmitter`` and
``ribs.emitters.rankers``), which implement the papers:

* **Status as pyribs reports it** (:func:`batch_status`). pyribs gives every candidate that beats its
  cell's threshold *before* the batch the status NEW / IMPROVED, also when a better candidate of the same
  batch takes the cell; our archives mark such losers NOT_ADDED. :func:`batch_status` recovers pyribs'
  status from the ``AddResult`` alone: a loser beat the pre-batch threshold exactly when its cell's
  stored candidate has status NEW / IMPROVED and its own ``improvement`` is positive (``fitness -
  incumbent`` or ``fitness - threshold``), or the cell was empty and the archive takes any candidate into
  an empty cell (plain archives; threshold archives with ``threshold_min = -inf``). One segment maximum
  over the ``C`` cells, on the whole batch (all instances, as pyribs adds all emitters' solutions at once).
  Under a scheduler that tells each member its own slice of the batch (``CompositeEmitter``,
  ``BanditScheduler``), a candidate that lost its cell to *another member's* candidate is not seen as
  having beaten the threshold (it counts as not added).
* **Rankers** (``ranker``; pyribs' abbreviations), best first:

  ======== =========================================================================================
  ``2imp`` status (NEW > IMPROVED > NOT_ADDED), then ``improvement``: the *improvement emitter*
  ``imp``  ``improvement`` only (CMA-MAE: ``fitness - threshold``)
  ``obj``  fitness only: the *optimizing emitter* (with ``"mu"`` selection and ``"basic"`` restarts)
  ``2obj`` status, then fitness
  ``rd``   projection ``descriptor . v`` on the instance's random direction ``v``
  ``2rd``  status, then the projection: the *random direction emitter*
  ======== =========================================================================================

  Ties go to the *later* candidate, as in pyribs (the reverse of a stable ascending sort; pyribs' single
  key rankers use numpy's unstable ``argsort``, so their ties are unspecified). ``v = u * (upper - lower)``
  with ``u ~ N(0, I_d)`` and the archive's descriptor bounds, drawn at ``init`` and at each restart of the
  instance (pyribs' ranker ``reset``). Non-finite keys rank last (``-inf``).
* **Parents** (``selection_rule``): ``"filter"`` (pyribs' default, CMA-ME) takes the instance's
  candidates with a nonzero :func:`batch_status` as parents (``num_parents`` = their count; the ranking
  puts them first); ``"mu"`` (CMA-MAE) the best ``floor(P / 2)``. With 0 parents the distribution is kept.
* **Restarts** (``restart_rule``), after the update, from an elite drawn uniformly from the archive
  (``archive.sample``) with the instance's ``sigma0`` and ``C = I``: ``"no_improvement"`` (pyribs'
  default, CMA-ME) when none of the instance's candidates has a nonzero :func:`batch_status`, or
  ``"basic"`` (CMA-MAE) only on the stop criteria. The stop criteria are pyribs' ``CMAEvolutionStrategy.
  check_stop``: condition number ``> 1e14``, ``sigma * sqrt(max eigenvalue) < 1e-11``, or the first and
  last ranked candidates' ranking values (rows ``(status, value)`` for the two-stage rankers) within
  ``1e-12`` (Euclidean norm). With ``cmaes_stop=True`` the CMA-ES core's full set
  (:meth:`emitters.cmaes.CMAES.should_stop`) is added. The restart step runs under a ``lax.cond`` on
  "some instance stops" (a ``select`` again when the emitter itself is ``vmap``-ed, e.g. over seeds), so
  iterations without a restart neither draw elites nor rewrite the ``(K, D, D)`` matrices.

Departures from pyribs, each deliberate:

* Bounds (``clip``) are applied by clipping the samples (:class:`emitters.cmaes.CMAES`: pyribs resamples,
  which does not terminate in high dimension, pyribs issue 392), and the update uses the clipped samples.
* The covariance factor is a lazy Cholesky factor by default (``decomposition``), so the condition number
  and ``max eigenvalue`` of the stop test are read from it: ``(max diag L / min diag L)^2`` and
  ``max diag L`` are lower bounds of ``cond(C)`` and ``sqrt(lambda_max)`` (exact with
  ``decomposition="eigh"``). A non-finite state restarts too.
* The CMA-ES update is the core's (positive weights ``ln(mu + 1/2) - ln i``, ``active=False`` as pyribs),
  in float32; the initial means are elites of the archive (the driver's initial batch; start it from
  ``x0``-filled genotypes, as :meth:`qd.Sphere.initial_genotypes` does, for pyribs' ``x0``).
* ``restarts(state)`` (for :class:`emitters.BanditScheduler`'s ``reselect="terminated"``) is the total over
  the ``K`` instances: the member counts as restarted when any of its instances restarts.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd import NEW, NOT_ADDED, AddResult, Archive
from emitters.base import Emitter, check_positive
from emitters.cmaes import CMAES, CMAESState, default_population

__all__ = [
    "CMAMAEEmitter",
    "CMAMEEmitter",
    "CMAMEState",
    "ImprovementEmitter",
    "OptimizingEmitter",
    "RANKERS",
    "RandomDirectionEmitter",
    "batch_status",
    "rank_order",
]

RANKERS = ("2imp", "imp", "obj", "2obj", "rd", "2rd")
SELECTION_RULES = ("filter", "mu")
RESTART_RULES = ("no_improvement", "basic")


def batch_status(add_result: AddResult, archive: Archive) -> jax.Array:
    """pyribs' status of each candidate: ``(B,) int32``, relative to the archive *before* the batch.

    NEW (2) / IMPROVED (1) for every candidate that beat its cell's threshold (the incumbent's fitness, or a
    threshold archive's threshold) before the batch, whether or not it was the one stored; NOT_ADDED (0)
    otherwise (module docstring). Needs only ``add_result`` (cells, statuses and improvements ``(B,)``) and
    the archive's capacity and static ``threshold_min`` (``-inf`` for plain archives).

    Cost: ``O(B + C)`` (one segment maximum over the cells).
    """
    cells = archive.capacity
    cell = jnp.where(add_result.cell >= 0, add_result.cell, cells)
    cell_status = jax.ops.segment_max(add_result.status, cell, num_segments=cells + 1)[cell]
    empty_takes_all = getattr(archive, "threshold_min", -math.inf) == -math.inf
    imp = add_result.improvement
    beats = jnp.isfinite(imp) & ((imp > 0) | ((cell_status == NEW) & empty_takes_all)) & (add_result.cell >= 0)
    status = jnp.where(add_result.added, add_result.status, jnp.where(beats, cell_status, NOT_ADDED))
    return status.astype(jnp.int32)


def _finite_or_low(x):
    return jnp.where(jnp.isnan(x), -jnp.inf, x)


_PAIRWISE_RANK_MAX = 256  # up to this P, rank_order counts pairwise comparisons instead of sorting


def _sort_gt_eq(a, b):
    """``a > b`` and ``a == b`` in the order of JAX's sort comparator (NaN largest, all NaNs equal)."""
    if not jnp.issubdtype(a.dtype, jnp.floating):
        return a > b, a == b
    na, nb = jnp.isnan(a), jnp.isnan(b)
    return (a > b) | (na & ~nb), (a == b) | (na & nb)


def rank_order(keys: Tuple[jax.Array, ...]) -> jax.Array:
    """Indices best first by lexicographic ``keys`` (primary first, each ``(..., P)``, higher is better),
    ties to the later index (pyribs' ``flip(lexsort(...))``): ``(..., P) int32``.

    For ``P <= 256`` the same permutation as ``flip(lexsort(...))`` is computed without a sort: candidate
    ``i``'s place is the number of candidates ranked before it (``O(P^2)`` comparisons in one fused
    kernel, cheaper on CPU than XLA's sort at CMA-ES populations).
    """
    P = keys[0].shape[-1]
    if P > _PAIRWISE_RANK_MAX:
        order = jnp.lexsort(tuple(reversed(keys)), axis=-1)  # jnp.lexsort: the last key is the primary one
        return jnp.flip(order, axis=-1).astype(jnp.int32)
    # before[..., i, j]: candidate j is ranked before candidate i.
    index = jnp.arange(P, dtype=jnp.int32)
    before, tied = jnp.zeros((), bool), jnp.ones((), bool)
    for k in keys:
        gt, eq = _sort_gt_eq(k[..., None, :], k[..., :, None])
        before, tied = before | (tied & gt), tied & eq
    before = before | (tied & (index[None, :] > index[:, None]))
    place = jnp.sum(before, axis=-1, dtype=jnp.int32)  # (..., P): a permutation of 0..P-1
    return jnp.sum(jnp.where(place[..., None, :] == index[:, None], index[None, :], 0), axis=-1, dtype=jnp.int32)


@struct.dataclass
class CMAMEState:
    """State of a :class:`CMAMEEmitter` (``K`` instances).

    Attributes:
        cma: :class:`emitters.cmaes.CMAESState` with a leading axis ``K``.
        directions: ``(K, d) float32``, each instance's random direction (used by ``rd`` / ``2rd``).
        key: PRNG key of the restarts (``tell`` is given none): split at each ``tell``.
    """

    cma: CMAESState
    directions: jax.Array
    key: jax.Array


@struct.dataclass
class CMAMEEmitter(Emitter):
    """``K`` CMA-ES instances ranked by the archive's ``AddResult`` (module docstring: rules, departures).

    Attributes:
        genotype_dim: static ``D``, the flat genotype size.
        num_instances: static ``K`` (default 1).
        population: static ``P`` per instance (default ``4 + floor(3 ln D)``).
        sigma0: static initial (and restart) step size.
        ranker: static, one of :data:`RANKERS` (default ``"2imp"``, the improvement emitter).
        selection_rule: static ``"filter"`` (default) or ``"mu"``.
        restart_rule: static ``"no_improvement"`` (default) or ``"basic"``.
        cmaes_stop: static; also restart on the CMA-ES core's stop criteria (default False: pyribs' only).
        decomposition: static factor of the CMA-ES core, ``"cholesky"`` (default) or ``"eigh"``.
        clip: static genotype bounds ``(low, high)`` (the samples are clipped), or None.
        batch_size: ``K * P`` (derived; passing another nonzero value raises).

    Raises:
        ValueError: ``genotype_dim`` / ``num_instances`` / ``population`` not positive integers
            (``population >= 2``), ``sigma0`` not positive, an unknown ``ranker`` / ``selection_rule`` /
            ``restart_rule``, ``batch_size`` given and not ``K * P``; at trace time, genotypes that are not
            ``(B, D)`` arrays.
    """

    batch_size: int = struct.field(pytree_node=False, default=0)
    genotype_dim: int = struct.field(pytree_node=False, default=0)
    num_instances: int = struct.field(pytree_node=False, default=1)
    population: Optional[int] = struct.field(pytree_node=False, default=None)
    sigma0: float = struct.field(pytree_node=False, default=0.5)
    ranker: str = struct.field(pytree_node=False, default="2imp")
    selection_rule: str = struct.field(pytree_node=False, default="filter")
    restart_rule: str = struct.field(pytree_node=False, default="no_improvement")
    cmaes_stop: bool = struct.field(pytree_node=False, default=False)
    decomposition: str = struct.field(pytree_node=False, default="cholesky")

    def __post_init__(self):
        name = type(self).__name__
        dim = self.genotype_dim
        if isinstance(dim, bool) or int(dim) != dim or dim < 1:
            raise ValueError(f"{name}: genotype_dim must be a positive integer, got {dim!r}")
        k = self.num_instances
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"{name}: num_instances must be a positive integer, got {k!r}")
        pop = default_population(int(dim)) if self.population is None else self.population
        if isinstance(pop, bool) or int(pop) != pop or pop < 2:
            raise ValueError(f"{name}: population must be an integer >= 2, got {pop!r}")
        for field, value, allowed in (
            ("ranker", self.ranker, RANKERS),
            ("selection_rule", self.selection_rule, SELECTION_RULES),
            ("restart_rule", self.restart_rule, RESTART_RULES),
        ):
            if value not in allowed:
                raise ValueError(f"{name}: {field} must be one of {allowed}, got {value!r}")
        batch = int(k) * int(pop)
        if self.batch_size not in (0, None) and self.batch_size != batch:
            raise ValueError(f"{name}: batch_size is num_instances * population = {batch}; got {self.batch_size!r}")
        for field, value in (("genotype_dim", int(dim)), ("num_instances", int(k)), ("population", int(pop)), ("batch_size", batch)):
            object.__setattr__(self, field, value)
        object.__setattr__(self, "sigma0", check_positive(f"{name}: sigma0", self.sigma0))
        super().__post_init__()
        self._cma()  # checks the CMA-ES configuration (decomposition, bounds) now

    def _cma(self) -> CMAES:
        low, high = (None, None) if self.clip is None else self.clip
        low = None if low is None or low == -math.inf else low
        high = None if high is None or high == math.inf else high
        return CMAES(
            self.genotype_dim, self.population, self.sigma0, lower=low, upper=high, restart_rule="basic",
            active=False, decomposition=self.decomposition,
        )

    def _directions(self, key: jax.Array, archive: Archive) -> jax.Array:
        lower, upper = archive.bounds
        u = jax.random.normal(key, (self.num_instances, archive.descriptor_dim), jnp.float32)
        return u * jnp.asarray(upper - lower)

    def _means(self, key: jax.Array, archive: Archive) -> jax.Array:
        means = archive.sample(key, self.num_instances).genotypes
        if not hasattr(means, "shape") or means.ndim != 2 or means.shape[1] != self.genotype_dim:
            got = getattr(means, "shape", type(means).__name__)
            raise ValueError(f"{type(self).__name__}: needs flat genotypes of shape (B, {self.genotype_dim}); got {got}")
        return means.astype(jnp.float32)

    def init(self, key: jax.Array, archive: Archive) -> CMAMEState:
        """``K`` fresh instances at elites drawn uniformly from ``archive`` (fill it first), ``sigma = sigma0``,
        ``C = I``, and their random directions ``(K, d)``."""
        k_mean, k_dir, k_cma, k_state = jax.random.split(key, 4)
        cma = self._cma()
        keys = jax.random.split(k_cma, self.num_instances)
        states = jax.vmap(cma.init)(keys, self._means(k_mean, archive))
        return CMAMEState(cma=states, directions=self._directions(k_dir, archive), key=k_state)

    def ask(self, state: CMAMEState, archive: Archive, key: jax.Array) -> jax.Array:
        """``(B, D) float32`` samples, instance-major (``B = K * P``)."""
        keys = jax.random.split(key, self.num_instances)
        samples, _ = jax.vmap(self._cma().ask)(state.cma, keys)
        return samples.reshape(self.batch_size, self.genotype_dim)

    def rank(
        self, state: CMAMEState, archive: Archive, fitnesses: jax.Array, descriptors: jax.Array, add_result: AddResult
    ) -> Tuple[jax.Array, jax.Array, jax.Array]:
        """The ranking of each instance's candidates (module docstring, ``ranker``).

        Args:
            fitnesses: ``(B,)``; descriptors: ``(B, d)``; add_result: the archive's result ``(B,)``.

        Returns:
            ``(order (K, P) int32`` candidate indices within the instance, best first; ``values (K, P, v)
            float32``, the ranking keys (``v = 2``: ``(status, value)`` for two-stage rankers, else ``1``);
            ``status (K, P) int32``, :func:`batch_status`).
        """
        K, P = self.num_instances, self.population
        status = batch_status(add_result, archive).reshape(K, P)
        if self.ranker in ("imp", "2imp"):
            value = add_result.improvement.reshape(K, P)
        elif self.ranker in ("obj", "2obj"):
            value = fitnesses.astype(jnp.float32).reshape(K, P)
        else:
            proj = jnp.einsum("kpd,kd->kp", descriptors.astype(jnp.float32).reshape(K, P, -1), state.directions)
            value = proj
        value = _finite_or_low(value)
        if self.ranker.startswith("2"):
            keys = (status.astype(jnp.float32), value)
        else:
            keys = (value,)
        order = rank_order(keys)
        return order, jnp.stack(keys, axis=-1), status

    def tell(self, state, archive, genotypes, fitnesses, descriptors, add_result) -> CMAMEState:
        """Rank, update each instance with its parents, restart the instances due (module docstring).

        Args:
            genotypes: ``(B, D)``, the batch :meth:`ask` proposed (as evaluated); fitnesses ``(B,)``,
                descriptors ``(B, d)``, add_result: the archive's :class:`qd.AddResult` for them; archive:
                the archive after the batch (restarts draw from it).
        """
        K, P, D = self.num_instances, self.population, self.genotype_dim
        cma = self._cma()
        order, values, status = self.rank(state, archive, fitnesses, descriptors, add_result)
        added = jnp.sum(status != NOT_ADDED, axis=1).astype(jnp.int32)  # (K,)
        samples = genotypes.reshape(K, P, D).astype(jnp.float32)
        if self.selection_rule == "filter":
            cmas = jax.vmap(lambda s, x, r, mu: cma.tell(s, x, r, num_parents=mu))(state.cma, samples, order, added)
        else:
            cmas = jax.vmap(lambda s, x, r: cma.tell(s, x, r))(state.cma, samples, order)

        ranked = jnp.take_along_axis(values, order[..., None], axis=1)  # (K, P, v)
        flat = jnp.linalg.norm(ranked[:, 0] - ranked[:, -1], axis=-1) < 1e-12
        crit = jax.vmap(cma.stop_criteria)(cmas)
        area = cmas.sigma * jnp.max(cmas.axis_std, axis=1) < 1e-11
        # C's diagonal stands for C: with positive weights C' = decay C + (PSD terms), decay >= 0, so an entry
        # can be non-finite only with a non-finite diagonal (|C_ij| <= sqrt(C_ii C_jj), and inf / NaN steps or
        # paths reach the diagonal as squares); a read of K * D values, not of the (K, D, D) matrices.
        diagonal = jnp.diagonal(cmas.cov, axis1=1, axis2=2)
        finite = jnp.all(jnp.isfinite(cmas.mean), axis=1) & jnp.isfinite(cmas.sigma) & jnp.all(jnp.isfinite(diagonal), axis=1)
        stop = crit["condition_cov"] | area | flat | ~finite
        if self.cmaes_stop:
            stop = stop | jax.vmap(cma.should_stop)(cmas)
        if self.restart_rule == "no_improvement":
            stop = stop | (added == 0)

        key, k_mean, k_dir, k_cma = jax.random.split(state.key, 4)  # tell gets no key: the state holds one

        def restart(cmas):
            means = self._means(k_mean, archive)
            keys = jax.random.split(k_cma, K)
            cmas = jax.vmap(cma.restart_where)(cmas, keys, means, stop)
            return cmas, jnp.where(stop[:, None], self._directions(k_dir, archive), state.directions)

        # Restarts are rare: only iterations with one draw elites and rewrite the (K, D, D) matrices.
        cmas, directions = jax.lax.cond(jnp.any(stop), restart, lambda cmas: (cmas, state.directions), cmas)
        return CMAMEState(cma=cmas, directions=directions, key=key)

    def restarts(self, state: CMAMEState) -> jax.Array:
        """``() int32``: restarts so far, summed over the ``K`` instances."""
        return jnp.sum(state.cma.restarts).astype(jnp.int32)


@struct.dataclass
class ImprovementEmitter(CMAMEEmitter):
    """CMA-ME's improvement emitter: :class:`CMAMEEmitter` with ``ranker="2imp"`` (the default)."""

    ranker: str = struct.field(pytree_node=False, default="2imp")


@struct.dataclass
class OptimizingEmitter(CMAMEEmitter):
    """CMA-ME's optimizing emitter: :class:`CMAMEEmitter` with ``ranker="obj"`` (fitness only),
    ``selection_rule="mu"`` and ``restart_rule="basic"``: CMA-ES with restarts on its stop criteria, as in the
    paper (and pyribs' ``cma_me_opt`` configuration)."""

    ranker: str = struct.field(pytree_node=False, default="obj")
    selection_rule: str = struct.field(pytree_node=False, default="mu")
    restart_rule: str = struct.field(pytree_node=False, default="basic")


@struct.dataclass
class RandomDirectionEmitter(CMAMEEmitter):
    """CMA-ME's random direction emitter: :class:`CMAMEEmitter` with ``ranker="2rd"`` (status, then the
    descriptor's projection on a random direction ``(d,)`` per instance, redrawn at each restart)."""

    ranker: str = struct.field(pytree_node=False, default="2rd")


@struct.dataclass
class CMAMAEEmitter(CMAMEEmitter):
    """CMA-MAE's emitter (pyribs' CMA-MAE set-up): ``ranker="imp"`` (``fitness - threshold`` on a
    :class:`qd.archives.ThresholdGridArchive`), ``selection_rule="mu"``, ``restart_rule="basic"``.
    Run it with :class:`qd.algorithms.CMAMAE` (an optimisation archive with thresholds and a result archive)."""

    ranker: str = struct.field(pytree_node=False, default="imp")
    selection_rule: str = struct.field(pytree_node=False, default="mu")
    restart_rule: str = struct.field(pytree_node=False, default="basic")
