"""A CMA-ES core in pure JAX: pure ``init`` / ``ask`` / ``tell`` / ``should_stop`` / ``restart``.

Written from the equations of N. Hansen, "The CMA Evolution Strategy: A Tutorial" (arXiv:1604.00772,
2016), with its default parameters (its Table 1, "active" negative weights included). Cited below as
[T] (equations by name, as in its Table 1 and its algorithm summary). This is the core the CMA-ME / CMA-MAE emitters drive:
they rank candidates by their own criteria (``AddResult``), so :meth:`CMAES.tell` takes a rank order,
not fitnesses.

Shapes: ``D`` = genotype dimension (``dim``), ``P`` = the static population bound
(``max_population``; the samples of :meth:`CMAES.ask` have shape ``(P, D)``), ``lambda`` = the
current population (``state.population``, ``<= P``). Every state field is a fixed-shape array, so all
functions are jittable and ``jax.vmap``-able over many instances (``states`` with a leading axis ``K``):
``jax.vmap(cma.tell)(states, samples (K, P, D), rankings (K, P))``.

Design decisions (each one is a choice; the reasons are here, so nobody has to reverse-engineer them):

* **Lazy decomposition, Cholesky by default.** Sampling and the whitening ``C^{-1/2}`` of the
  step-size path use a factor ``A`` of ``C = A A^T`` (``state.factor``, ``state.whiten``), refreshed from
  ``C`` only when ``lazy_gap / (n (c1 + c_mu))`` iterations have passed since the last refresh; in
  between, the stale factor is used, as in [T]. [T] (its appendix on implementation) suggests a
  gap of ``1/(10 n (c1 + c_mu))`` iterations (``lazy_gap = 0.1``); pycma and pyribs use
  ``0.5 lambda / ((c1 + c_mu) n)`` evaluations, i.e. ``lazy_gap = 0.5`` here, our default (every 2.7
  iterations at 100-D, population 36; every 2 at 10-D, population 10). ``C`` itself is updated exactly
  every iteration. Two factors:

  - ``decomposition="cholesky"`` (default): ``A = L``, the lower-triangular Cholesky factor, and
    ``L^{-1}`` in place of ``C^{-1/2}``, as in the Cholesky-CMA-ES of Krause, Arbones & Igel (NeurIPS
    2016), except that ``L`` is recomputed from ``C`` rather than updated by rank-one steps (XLA runs a
    batched factorisation far faster than ``mu + 1`` sequential rank-one updates). ``L^{-1}`` is formed
    (``state.whiten``) only when ``tell`` whitens every step (negative weights, bounds); otherwise (CMA-ME
    and CMA-MAE: ``active=False``, no bounds) ``tell`` whitens one vector per iteration by a triangular
    solve with ``L`` (``D^2`` flops instead of the ``D^3 / 3`` of the inverse), and ``state.whiten`` is None.
  - ``decomposition="eigh"``: [T]'s ``A = B diag(d)`` and the symmetric ``C^{-1/2} = B diag(1/d) B^T``.

  Measured on this project's shared 2-core CPU (``benchmarks/cmaes_core.py``, 15 instances x 100-D
  x population 36, vmapped, the core's defaults (active weights, so ``L^{-1}`` is kept); two runs): 0.88-1.0 ms
  per ask+tell with the lazy Cholesky, 3.3-4.0 ms with the lazy ``eigh``, against 8.3-8.8 ms for evosax 0.3.2
  (an ``eigh`` every iteration). (An older version of this core, measured then: 1.35 ms, 3.4 ms and
  7.6 ms; with ``lazy_gap=0`` and ``eigh``: 8.6 ms; without any factorisation: 0.7 ms.) So we write our own rather
  than wrap evosax (the issue's rule: evosax only if within 20%). Both factors
  reach the same optima in the same evaluation counts (tests at 10-D; 30-D rotated ellipsoid and
  Rosenbrock checked by hand, Cholesky vs eigh: 27,800 vs 28,200 and 35,900 vs 33,600 evaluations,
  medians of 4 seeds).

  Under ``jax.vmap`` a per-instance ``lax.cond`` would become a ``select`` and factorise every
  iteration; a custom batching rule (:func:`_lazy_stack_for`) instead runs one batched factorisation
  only in iterations where at least one instance is due, and writes the result only into the instances
  that are due, so a vmapped instance follows the trajectory it would follow alone (up to float32 rounding;
  eigenvector signs are made canonical so that batched and single ``eigh`` agree). A
  factorisation that fails (NaN, e.g. ``C`` lost positive definiteness in float32) keeps the old factor.
  ``tell`` keeps ``C`` exactly symmetric (it symmetrises the rank-``mu`` product, the other terms are
  symmetric bit for bit), so the Cholesky factorisation reads only its lower triangle.

  Per-iteration costs at the CMA-MAE benchmark's size (15 x 100-D x 36, measured with XLA's profiler):
  without negative weights and bounds ``tell`` whitens only the weighted mean step (one matrix-vector
  product or triangular solve, not ``C^{-1/2} y`` for every sample) and forms the rank-``mu`` product from the ``mu`` parents
  only; ``ask`` draws ``jax.random.normal``'s numbers bit for bit with an unrolled threefry
  (:func:`_standard_normal`; JAX's CPU lowering is a rolled loop).

* **Bounds: clip, update with the clipped samples.** :meth:`CMAES.ask` clips samples to
  ``[lower, upper]``: no resampling loop (pyribs' resampling does not terminate in high dimension,
  pyribs issue 392). ``tell`` uses the samples it is given, i.e. the clipped ones that were evaluated
  (and that an archive stores): a repaired, "Lamarckian" update, where the solution that was evaluated
  is the one the distribution learns from, so the update and the ranking agree. The alternative
  (update with the unclipped sample, evaluate the clipped one) makes the objective flat outside the
  box, where the mean can drift away. A repaired solution is not distributed as ``N(m, sigma^2 C)``,
  so, as Hansen, "Injecting external solutions into CMA-ES" (arXiv:1110.4181, 2011) prescribes for
  such solutions, the step ``y = (x - m) / sigma`` of a sample that lies on the boundary is shortened to
  Mahalanobis length ``||C^{-1/2} y|| <= c_y = sqrt(n) + 2 n / (n + 2)``; samples inside the box are
  untouched. Clipped samples lie between the mean and the box, so a mean inside the box stays inside.

* **Population changes keep shapes.** ``P = max_population`` is static. ``ask`` always returns ``P``
  samples; only the first ``lambda = state.population`` are the population (``valid_mask``), the
  others are drawn too (so they can be evaluated harmlessly) but get no weight. Every strategy
  parameter (weights, ``mu_eff``, ``c_sigma``, ``d_sigma``, ``c_c``, ``c_1``, ``c_mu``) is computed from
  the dynamic ``lambda`` (and ``num_parents``) inside ``tell``, with the formulas of [T] Table 1. With
  ``max_population == population`` (the default) nothing is wasted; IPOP / BIPOP need a larger bound,
  and stay at ``P`` once doubling would pass it.

* **Restarts** (:meth:`CMAES.restart`) re-initialise one instance at a mean given by the caller
  (CMA-ME restarts at a random elite). ``restart_rule``: ``"basic"`` (same ``lambda`` and ``sigma0``),
  ``"ipop"`` (Auger & Hansen, CEC 2005: ``lambda`` doubles at each restart), ``"bipop"`` (Hansen,
  GECCO 2009 BBOB workshop: a large regime with doubling ``lambda`` and ``sigma0``, interleaved with a
  small regime ``lambda_s = floor(lambda_def (lambda_l / (2 lambda_def))^(U^2))``,
  ``sigma_s = sigma0 * 10^(-2 U')``, ``U, U' ~ U[0, 1]``, ``lambda_l`` the last large population; the
  regime with the smaller evaluation budget spent so far runs next, the large one on ties, and the
  first run counts in neither budget, so the first restart is large).

Stop criteria (:meth:`CMAES.stop_criteria`; ``should_stop`` is their ``or``), from [T] (its appendix
on termination criteria) and pycma's defaults where [T] gives no value (``n = D``, ``g`` = iterations since the last (re)start,
``values`` = the optional per-candidate values given to ``tell``, lower is better):

==================  ==============================================================================
``max_iter``        ``g >= 100 + 150 (n + 3)^2 / sqrt(lambda)`` (pycma's ``maxiter`` default).
``tol_fun``         the range of the best values of the last ``10 + ceil(30 n / lambda)`` iterations
                    and of all values of the last iteration are below ``tol_fun = 1e-12`` ([T]).
``equal_fun``       the range of the best values of the last ``10 + ceil(30 n / lambda)`` iterations
                    is zero ([T] "EqualFunValues").
``stagnation``      over a window of the last 20% of iterations, at least ``120 + 30 n / lambda``
                    (and at most ``stagnation_window`` iterations, a static bound; [T] says 20,000),
                    the median of the most recent 30% of both the best and the median values is not
                    better than the median of the first 30% ([T]).
``tol_x``           all ``sigma sqrt(C_ii)`` and all ``sigma |p_c,i|`` are below ``tol_x = 1e-12 sigma0``.
``tol_x_up``        ``sigma max(d) > 1e4 sigma0`` ([T] "TolXUp": sigma0 far too small, or divergence).
``no_effect_axis``  adding ``0.1 sigma a_i`` to the mean changes no coordinate, for some column
                    ``a_i`` of the factor (``eigh``: ``d_i b_i``, the principal axes of [T]).
``no_effect_coord`` adding ``0.2 sigma sqrt(C_jj)`` to ``m_j`` does not change it, for some j.
``condition_cov``   ``(max d / min d)^2 > 1e14`` (``eigh``: ``cond(C)``; ``cholesky``, with
                    ``d = diag(L)``: a lower bound of ``cond(C)``).
==================  ==============================================================================

``d`` is ``state.axis_std``, taken at the last factorisation. In float32 (the default dtype)
``condition_cov`` is out of reach: float32 factorisations lose ``C``'s positive definiteness long before
``1e14``; ``no_effect_*`` and ``tol_fun`` end such runs.

The value-based criteria (``tol_fun``, ``equal_fun``, ``stagnation``) need ``values`` in ``tell``; without
them they never fire. (An emitter that ranks by archive improvement passes ``-improvement``.)
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax
from jax.custom_batching import custom_vmap

__all__ = ["CMAES", "CMAESState", "default_population"]

RESTART_RULES = ("basic", "ipop", "bipop")
STOP_CRITERIA = (
    "max_iter",
    "tol_fun",
    "equal_fun",
    "stagnation",
    "tol_x",
    "tol_x_up",
    "no_effect_axis",
    "no_effect_coord",
    "condition_cov",
)
_REGIME_FIRST, _REGIME_LARGE, _REGIME_SMALL = 0, 1, 2


def default_population(dim: int) -> int:
    """[T] Table 1: ``lambda = 4 + floor(3 ln n)`` (10 at 10-D, 17 at 100-D)."""
    return 4 + int(math.floor(3 * math.log(dim)))


@struct.dataclass
class CMAESState:
    """One CMA-ES instance (add a leading axis ``K`` to every field for ``K`` vmapped instances).

    Attributes:
        mean: ``(D,)`` distribution mean ``m``.
        sigma: ``()`` step size.
        cov: ``(D, D)`` covariance matrix ``C``.
        factor: ``(D, D)`` ``A`` with ``A A^T = C`` at the last decomposition; samples are
            ``m + sigma A z``. ``eigh``: ``B diag(d)`` (columns: the principal axes, scaled);
            ``cholesky``: the lower-triangular factor ``L``.
        whiten: ``(D, D)`` the matching ``C^{-1/2}``: ``B diag(1/d) B^T`` (``eigh``) or ``L^{-1}``; None
            for a Cholesky factor without negative weights and bounds (``tell`` solves with ``L`` instead:
            module docstring).
        axis_std: ``(D,)`` ``d``, the square roots of the eigenvalues of ``C`` (``eigh``), or ``diag(L)``
            (``cholesky``), at the last decomposition.
        p_sigma: ``(D,)`` conjugate evolution path.
        p_c: ``(D,)`` evolution path of ``C``.
        generation: ``()`` int32, iterations (``tell`` calls that updated) since the last (re)start.
        decomposed_at: ``()`` int32, ``generation`` at the last eigendecomposition.
        population: ``()`` int32 ``lambda``, the current population (``<= P``).
        sigma0: ``()`` the step size this run started with.
        evaluations: ``()`` int32, evaluations (``lambda`` per ``tell``) since the last (re)start.
        total_evaluations: ``()`` int32, evaluations over all runs of this instance.
        restarts: ``()`` int32, restarts so far.
        large_restarts: ``()`` int32, BIPOP / IPOP large-regime restarts so far (``lambda_l = 2^k lambda0``).
        regime: ``()`` int32, BIPOP regime of the current run (0 first run, 1 large, 2 small).
        budget_large: ``()`` int32, BIPOP evaluations spent in large-regime runs.
        budget_small: ``()`` int32, BIPOP evaluations spent in small-regime runs.
        best_history: ``(H,)`` ring buffer of each iteration's best value (``H = stagnation_window``).
        median_history: ``(H,)`` ring buffer of each iteration's median value.
        history_count: ``()`` int32, iterations recorded in the histories since the last (re)start.
        last_range: ``()`` range of the values of the last iteration (inf before the first).
    """

    mean: jax.Array
    sigma: jax.Array
    cov: jax.Array
    factor: jax.Array
    whiten: jax.Array
    axis_std: jax.Array
    p_sigma: jax.Array
    p_c: jax.Array
    generation: jax.Array
    decomposed_at: jax.Array
    population: jax.Array
    sigma0: jax.Array
    evaluations: jax.Array
    total_evaluations: jax.Array
    restarts: jax.Array
    large_restarts: jax.Array
    regime: jax.Array
    budget_large: jax.Array
    budget_small: jax.Array
    best_history: jax.Array
    median_history: jax.Array
    history_count: jax.Array
    last_range: jax.Array


# --- lazy decomposition that stays lazy under vmap ---------------------------------------------------


def _eigh(cov):
    """``cov (D, D)`` -> ``(factor, whiten (D, D), axis_std (D,))``: ``B diag(d)``, ``B diag(1/d) B^T``, ``d``.

    ``cov = B diag(d^2) B^T``; ``whiten`` is the symmetric ``C^{-1/2}`` of [T].
    """
    eigvals, eigvecs = jnp.linalg.eigh(cov)  # symmetrises its input
    # Eigenvectors are defined up to sign, and LAPACK may pick other signs for the same matrix alone or
    # in a batch: make each column's largest entry positive, so samples do not depend on batching.
    pivot = jnp.take_along_axis(eigvecs, jnp.argmax(jnp.abs(eigvecs), axis=0)[None, :], axis=0)
    eigvecs = eigvecs * jnp.where(pivot < 0, -1.0, 1.0)
    d = jnp.sqrt(jnp.maximum(eigvals, 0.0))
    inv_d = 1.0 / jnp.maximum(d, jnp.finfo(d.dtype).tiny)
    return eigvecs * d, (eigvecs * inv_d) @ eigvecs.T, d


def _cholesky(cov):
    """``cov (D, D)`` -> ``(L, L^{-1} (D, D), diag(L) (D,))`` with ``cov = L L^T``, ``L`` lower triangular.

    The triangular factor replaces ``C^{1/2}`` and ``C^{-1/2}`` as in Krause, Arbones & Igel, "CMA-ES
    with optimal covariance update and storage complexity" (NeurIPS 2016); the factor is recomputed
    from ``C`` (lazily), not updated in place. A failed factorisation (NaN) is left to the caller.
    """
    lower, axis_std = _cholesky_factor(cov)
    eye = jnp.eye(cov.shape[-1], dtype=cov.dtype)
    inverse = jax.scipy.linalg.solve_triangular(lower, eye, lower=True)
    return lower, inverse, axis_std


def _cholesky_factor(cov):
    """``cov (D, D)`` -> ``(L, diag(L) (D,))``: :func:`_cholesky` without the inverse (``state.whiten`` None)."""
    # Of C^T, which is C (tell keeps C exactly symmetric): LAPACK reads column-major operands, and C^T's
    # column-major layout is C's row-major one, so XLA passes C without a transposing copy.
    lower = jnp.linalg.cholesky(cov.T, symmetrize_input=False)
    return lower, jnp.diagonal(lower)


def _all_finite(x, axis=None):
    """``jnp.all(jnp.isfinite(x), axis)``, as one float sum: ``0 * x`` is 0 where ``x`` is finite, NaN elsewhere.

    (XLA:CPU reduces a boolean ``all`` over a ``(K, D, D)`` array about 3x slower than a float sum.)
    """
    return jnp.isfinite(jnp.sum(x * jnp.zeros((), x.dtype), axis=axis))


def _materialised(*scalars):
    """The scalars as the output of one reduction (``x + 0``, a sum over a pair): XLA does not fuse a reduction
    into its consumers, so a fused pass over a ``(D, D)`` matrix reads them instead of recomputing their
    whole chain of operations for every entry (``lax.optimization_barrier`` is removed before fusion on CPU)."""
    stacked = jnp.stack(scalars, axis=-1)
    out = jnp.sum(jnp.stack([stacked, jnp.zeros_like(stacked)], axis=-1), axis=-1)
    return tuple(out[..., i] for i in range(len(scalars)))


_DECOMPOSITIONS = {"eigh": _eigh, "cholesky": _cholesky}
_FACTOR_ONLY = {"cholesky": _cholesky_factor}  # the variants without ``whiten`` (see ``CMAESState.whiten``)
_LAZY = {}


def _lazy_stack_for(method, with_whiten=True):
    """The lazy decomposition of a stack of ``K`` instances, with a batching rule that keeps it lazy.

    ``f(due (K,), cov (K, D, D), factor (K, D, D), whiten (K, D, D), axis_std (K, D))`` returns the new
    ``(factor, whiten, axis_std)``: the decomposition of ``cov`` where ``due`` (and where it is finite),
    the old values elsewhere. The decomposition runs (batched) only when some instance is due. Without
    ``whiten`` (``with_whiten=False``, Cholesky only): ``f(due, cov, factor, axis_std) -> (factor, axis_std)``.
    """
    if (method, with_whiten) in _LAZY:
        return _LAZY[method, with_whiten]
    decompose_one = (_DECOMPOSITIONS if with_whiten else _FACTOR_ONLY)[method]

    @custom_vmap
    def lazy_stack(due, cov, *old):
        def decompose(ops):
            due, cov, old = ops[0], ops[1], ops[2:]
            new = jax.vmap(decompose_one)(cov)
            ok = due
            for matrix in new[:-1]:  # factor (and whiten); axis_std is derived from them
                ok = ok & _all_finite(matrix, axis=(1, 2))
            return tuple(jnp.where(ok.reshape((-1,) + (1,) * (n.ndim - 1)), n, o) for n, o in zip(new, old))

        ops = (due, cov) + old
        return lax.cond(jnp.any(due), decompose, lambda ops: ops[2:], ops)

    @lazy_stack.def_vmap
    def lazy_stack_vmap(axis_size, in_batched, *args):
        # A vmap over the stack folds the new axis into the stack axis, so the predicate stays one scalar
        # (``any`` over all instances of all nested vmaps) and the cond stays a cond.
        flat = []
        for x, batched in zip(args, in_batched):
            if not batched:
                x = jnp.broadcast_to(x, (axis_size,) + x.shape)
            flat.append(x.reshape((-1,) + x.shape[2:]))
        out = lazy_stack(*flat)
        return tuple(o.reshape((axis_size, -1) + o.shape[1:]) for o in out), (True,) * len(out)

    _LAZY[method, with_whiten] = lazy_stack
    return lazy_stack


def _lazy_decompose(method, due, cov, factor, whiten, axis_std):
    """One instance: ``due ()``, ``cov, factor, whiten (D, D)``, ``axis_std (D,)`` -> new ``(factor, whiten, axis_std)``.

    ``whiten`` None (Cholesky without the inverse factor): only ``factor`` and ``axis_std`` are refreshed.
    """
    if whiten is None:
        factor, axis_std = _lazy_stack_for(method, False)(due[None], cov[None], factor[None], axis_std[None])
        return factor[0], None, axis_std[0]
    out = _lazy_stack_for(method)(due[None], cov[None], factor[None], whiten[None], axis_std[None])
    return tuple(o[0] for o in out)


# --- helpers --------------------------------------------------------------------------------------------

_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k1, k2, x1, x2):
    """Threefry-2x32 (20 rounds) of the counters ``x1, x2`` (uint32 arrays) under the key words ``k1, k2``.

    The function of ``jax.random``'s threefry implementation, written out unrolled: on CPU JAX lowers it
    as a rolled loop of 5 steps (``lax.fori_loop``), about 3x slower at ``15 x 36 x 100`` words.
    """
    u32 = jnp.uint32
    ks = (k1, k2, k1 ^ k2 ^ u32(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _THREEFRY_ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = x1 ^ ((x2 << u32(r)) | (x2 >> u32(32 - r)))
        x1, x2 = x1 + ks[(i + 1) % 3], x2 + ks[(i + 2) % 3] + u32(i + 1)
    return x1, x2


def _standard_normal(key, shape, dtype):
    """``jax.random.normal(key, shape, dtype)``, bit for bit, computed faster on CPU.

    For a typed threefry key, float32 and JAX's default ``jax_threefry_partitionable`` mode, the bits are
    ``jax.random.bits``' (threefry of the 64-bit flat index, the two output words xor-ed; unrolled by
    :func:`_threefry2x32`) and the transform is ``jax.random.normal``'s (``sqrt(2) erfinv(u)``, ``u``
    uniform in ``(-1, 1)``). Anything else falls back to ``jax.random.normal``.
    """
    n = int(np.prod(shape))
    fast = (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        and str(jax.random.key_impl(key)) == "threefry2x32"
        and jax.config.jax_threefry_partitionable
        and jnp.dtype(dtype) == jnp.float32
        and n < 2**32
    )
    if not fast:
        return jax.random.normal(key, shape, dtype)
    words = jax.random.key_data(key)
    count = lax.iota(jnp.uint32, n).reshape(shape)
    b1, b2 = _threefry2x32(words[0], words[1], jnp.zeros(shape, jnp.uint32), count)
    bits = b1 ^ b2
    one = np.array(1.0, np.float32).view(np.uint32)
    floats = lax.bitcast_convert_type((bits >> jnp.uint32(9)) | jnp.uint32(one), jnp.float32) - np.float32(1.0)
    lo = np.nextafter(np.float32(-1.0), np.float32(0.0))
    u = lax.max(lo, floats * (np.float32(1.0) - lo) + lo)
    return np.float32(np.sqrt(2)) * lax.erf_inv(u)



def _masked_median(values, mask):
    """Median of ``values (H,)`` where ``mask (H,)``; inf when the mask is empty."""
    count = jnp.sum(mask)
    ordered = jnp.sort(jnp.where(mask, values, jnp.inf))
    lo = ordered[jnp.maximum((count - 1) // 2, 0)]
    hi = ordered[jnp.maximum(count // 2, 0)]
    return jnp.where(count > 0, 0.5 * (lo + hi), jnp.inf)


class CMAES:
    """CMA-ES with [T]'s default parameters; static configuration, pure functions of a :class:`CMAESState`.

    Args:
        dim: ``D``, the genotype dimension.
        population: ``lambda0``, the initial population (default ``4 + floor(3 ln D)``).
        sigma0: initial step size (genotype units).
        max_population: ``P``, the static bound on the population (default ``population``; IPOP / BIPOP
            need more, e.g. ``2**k * population`` for ``k`` doublings).
        lower, upper: scalar or ``(D,)`` bounds (None: unbounded on that side); samples are clipped.
        restart_rule: ``"basic"``, ``"ipop"`` or ``"bipop"`` (module docstring).
        active: use [T]'s negative weights (active CMA, the default in [T]); False gives the classic
            positive-weights-only update (what pyribs' CMA-ME uses).
        lazy_gap: eigendecomposition every ``lazy_gap / (D (c1 + c_mu))`` iterations (at least 1);
            0.5 is pycma's and pyribs' gap, 0.1 is [T]'s suggestion, 0 decomposes every iteration.
        decomposition: ``"eigh"`` (``C = B diag(d^2) B^T``, [T]) or ``"cholesky"`` (``C = L L^T``,
            Krause et al. 2016; module docstring).
        tol_fun, tol_x_factor, tol_x_up, condition_cov, max_iter: stop thresholds (module docstring);
            ``max_iter`` None: ``100 + 150 (D + 3)^2 / sqrt(lambda)``.
        stagnation_window: ``H``, static length of the value histories (the stagnation window's upper
            bound); default ``2 * (120 + ceil(30 D / lambda0))``.
        dtype: floating dtype of the state (default float32).

    All methods are pure and jittable; ``jax.vmap`` them over states for many instances.
    """

    def __init__(
        self,
        dim: int,
        population: Optional[int] = None,
        sigma0: float = 1.0,
        *,
        max_population: Optional[int] = None,
        lower=None,
        upper=None,
        restart_rule: str = "basic",
        active: bool = True,
        lazy_gap: float = 0.5,
        decomposition: str = "cholesky",
        tol_fun: float = 1e-12,
        tol_x_factor: float = 1e-12,
        tol_x_up: float = 1e4,
        condition_cov: float = 1e14,
        max_iter: Optional[int] = None,
        stagnation_window: Optional[int] = None,
        dtype=jnp.float32,
    ):
        if int(dim) != dim or dim < 1:
            raise ValueError(f"CMAES: dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        population = default_population(self.dim) if population is None else population
        if int(population) != population or population < 2:
            raise ValueError(f"CMAES: population must be an integer >= 2, got {population!r}")
        self.population = int(population)
        max_population = self.population if max_population is None else max_population
        if int(max_population) != max_population or max_population < self.population:
            raise ValueError(f"CMAES: max_population must be an integer >= population, got {max_population!r}")
        self.max_population = int(max_population)
        if not (np.isfinite(sigma0) and sigma0 > 0):
            raise ValueError(f"CMAES: sigma0 must be positive and finite, got {sigma0!r}")
        self.sigma0 = float(sigma0)
        if restart_rule not in RESTART_RULES:
            raise ValueError(f"CMAES: restart_rule must be one of {RESTART_RULES}, got {restart_rule!r}")
        self.restart_rule = restart_rule
        self.active = bool(active)
        if not lazy_gap >= 0:
            raise ValueError(f"CMAES: lazy_gap must be >= 0, got {lazy_gap!r}")
        self.lazy_gap = float(lazy_gap)
        if decomposition not in _DECOMPOSITIONS:
            raise ValueError(f"CMAES: decomposition must be one of {tuple(_DECOMPOSITIONS)}, got {decomposition!r}")
        self.decomposition = decomposition
        self.dtype = jnp.dtype(dtype)
        self.lower = None if lower is None else np.broadcast_to(np.asarray(lower, self.dtype), (self.dim,))
        self.upper = None if upper is None else np.broadcast_to(np.asarray(upper, self.dtype), (self.dim,))
        if self.lower is not None and self.upper is not None and not np.all(self.lower < self.upper):
            raise ValueError("CMAES: lower must be below upper in every coordinate")
        self.tol_fun = float(tol_fun)
        self.tol_x_factor = float(tol_x_factor)
        self.tol_x_up = float(tol_x_up)
        self.condition_cov = float(condition_cov)
        self.max_iter = max_iter
        base = 120 + math.ceil(30 * self.dim / self.population)
        self.stagnation_window = int(2 * base if stagnation_window is None else stagnation_window)
        if self.stagnation_window < 10 + math.ceil(30 * self.dim / self.population):
            raise ValueError("CMAES: stagnation_window must hold at least 10 + ceil(30 D / population) iterations")

    # --- strategy parameters ([T] Table 1), from the dynamic population and number of parents --------

    def _weights(self, lam, mu, default_mu):
        """Weights ``w (P,)`` by rank position (0 beyond ``lam``) and the learning rates, for ``lam, mu ()``.

        ``w'_i = ln((lambda + 1) / 2) - ln i`` ([T] Table 1) when ``default_mu`` (``mu = floor(lambda / 2)``),
        else ``ln(mu + 1/2) - ln i`` (the same for even ``lambda``); positive weights sum to 1,
        negative ones (``mu < i <= lambda``, if ``active``) are scaled by ``min(alpha_mu^-,
        alpha_mueff^-, alpha_posdef^-)`` over the sum of their absolute values ([T] Table 1).
        """
        n = self.dim
        dt = self.dtype
        rank = jnp.arange(1, self.max_population + 1, dtype=dt)
        lam_f = lam.astype(dt)
        mu_f = mu.astype(dt)
        raw = jnp.log((lam_f + 1.0) / 2.0 if default_mu else mu_f + 0.5) - jnp.log(rank)
        positive = rank <= mu_f
        negative = (rank > mu_f) & (rank <= lam_f) if self.active else jnp.zeros_like(positive)
        w_pos = jnp.where(positive, raw, 0.0)
        w_neg = jnp.where(negative, raw, 0.0)
        sum_pos, sum_neg = jnp.sum(w_pos), jnp.sum(jnp.abs(w_neg))
        mueff = sum_pos**2 / jnp.sum(w_pos**2)
        has_neg = sum_neg > 0
        mueff_neg = jnp.where(has_neg, sum_neg**2 / jnp.where(has_neg, jnp.sum(w_neg**2), 1.0), 0.0)

        alpha_cov = 2.0
        c1 = alpha_cov / ((n + 1.3) ** 2 + mueff)  # [T] Table 1
        cmu = jnp.minimum(1.0 - c1, alpha_cov * (mueff - 2.0 + 1.0 / mueff) / ((n + 2.0) ** 2 + alpha_cov * mueff / 2.0))
        c_sigma = (mueff + 2.0) / (n + mueff + 5.0)
        d_sigma = 1.0 + 2.0 * jnp.maximum(0.0, jnp.sqrt((mueff - 1.0) / (n + 1.0)) - 1.0) + c_sigma
        c_c = (4.0 + mueff / n) / (n + 4.0 + 2.0 * mueff / n)

        safe_cmu = jnp.where(cmu > 0, cmu, 1.0)
        alpha_mu_neg = jnp.where(cmu > 0, 1.0 + c1 / safe_cmu, jnp.inf)
        alpha_mueff_neg = 1.0 + 2.0 * mueff_neg / (mueff + 2.0)
        alpha_posdef_neg = jnp.where(cmu > 0, (1.0 - c1 - cmu) / (n * safe_cmu), jnp.inf)
        scale_neg = jnp.minimum(jnp.minimum(alpha_mu_neg, alpha_mueff_neg), alpha_posdef_neg)
        weights = w_pos / sum_pos + jnp.where(has_neg, scale_neg / jnp.where(has_neg, sum_neg, 1.0), 0.0) * w_neg
        return weights.astype(dt), dict(mueff=mueff, c1=c1, cmu=cmu, c_sigma=c_sigma, d_sigma=d_sigma, c_c=c_c)

    @property
    def _keeps_whiten(self) -> bool:
        """Whether the state holds ``whiten``: ``tell`` whitens every step (negative weights, bounds), or the
        factor is ``eigh``'s. Otherwise (Cholesky, no negative weights, no bounds) ``tell`` whitens one vector
        per iteration, ``L^{-1} y_w``, by a triangular solve, and ``whiten`` is None."""
        bounded = self.lower is not None or self.upper is not None
        return self.decomposition != "cholesky" or self.active or bounded

    def _chi_n(self):
        n = self.dim
        return math.sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n))  # E||N(0, I)||

    def _max_iter(self, lam):
        if self.max_iter is not None:
            return jnp.asarray(self.max_iter, jnp.float32)
        return 100.0 + 150.0 * (self.dim + 3) ** 2 / jnp.sqrt(lam.astype(jnp.float32))

    # --- public API -------------------------------------------------------------------------------------

    def init(self, key: jax.Array, mean: jax.Array) -> CMAESState:
        """A fresh instance at ``mean (D,)``: ``C = I``, ``sigma = sigma0``, ``lambda = population``.

        ``key`` is unused (kept for the init/ask/tell convention; the start is deterministic).
        """
        del key
        return self._fresh(
            jnp.asarray(mean, self.dtype),
            jnp.asarray(self.sigma0, self.dtype),
            jnp.asarray(self.population, jnp.int32),
            counters=dict(
                total_evaluations=jnp.zeros((), jnp.int32),
                restarts=jnp.zeros((), jnp.int32),
                large_restarts=jnp.zeros((), jnp.int32),
                regime=jnp.asarray(_REGIME_FIRST, jnp.int32),
                budget_large=jnp.zeros((), jnp.int32),
                budget_small=jnp.zeros((), jnp.int32),
            ),
        )

    def _fresh(self, mean, sigma, population, counters):
        n, dt, h = self.dim, self.dtype, self.stagnation_window
        mean = self._clip(mean.reshape(n))
        return CMAESState(
            mean=mean,
            sigma=sigma.astype(dt),
            cov=jnp.eye(n, dtype=dt),
            factor=jnp.eye(n, dtype=dt),
            whiten=jnp.eye(n, dtype=dt) if self._keeps_whiten else None,
            axis_std=jnp.ones((n,), dt),
            p_sigma=jnp.zeros((n,), dt),
            p_c=jnp.zeros((n,), dt),
            generation=jnp.zeros((), jnp.int32),
            decomposed_at=jnp.zeros((), jnp.int32),
            population=population.astype(jnp.int32),
            sigma0=sigma.astype(dt),
            evaluations=jnp.zeros((), jnp.int32),
            best_history=jnp.full((h,), jnp.inf, dt),
            median_history=jnp.full((h,), jnp.inf, dt),
            history_count=jnp.zeros((), jnp.int32),
            last_range=jnp.asarray(jnp.inf, dt),
            **counters,
        )

    def _clip(self, x):
        if self.lower is not None:
            x = jnp.maximum(x, jnp.asarray(self.lower))
        if self.upper is not None:
            x = jnp.minimum(x, jnp.asarray(self.upper))
        return x

    def valid_mask(self, state: CMAESState) -> jax.Array:
        """``(P,)`` bool: which of :meth:`ask`'s ``P`` samples belong to the population (the first ``lambda``)."""
        return jnp.arange(self.max_population) < state.population

    def ask(self, state: CMAESState, key: jax.Array) -> Tuple[jax.Array, CMAESState]:
        """``P`` samples ``x_k = clip(m + sigma A z_k)``, ``z_k ~ N(0, I)``, ``A = state.factor`` ([T]).

        Returns:
            ``(samples (P, D), state)``; ``state`` is returned unchanged (the samples are not stored:
            ``tell`` recomputes the steps from the samples it is given). Rows ``>= lambda`` are valid
            samples but not part of the population (:meth:`valid_mask`).
        """
        z = _standard_normal(key, (self.max_population, self.dim), self.dtype)  # = jax.random.normal
        y = z @ state.factor.T
        return self._clip(state.mean + state.sigma * y), state

    def tell(
        self,
        state: CMAESState,
        samples: jax.Array,
        ranking: jax.Array,
        values: Optional[jax.Array] = None,
        num_parents=None,
    ) -> CMAESState:
        """One CMA-ES update ([T]'s summary: mean, both paths, sigma, C, with its active weights).

        Args:
            state: the instance.
            samples: ``(P, D)``, the samples of :meth:`ask` (as evaluated, i.e. clipped).
            ranking: ``(P,)`` int, candidate indices best first (``argsort`` of values to minimise).
                Indices ``>= lambda`` (outside :meth:`valid_mask`) are moved to the end, keeping order.
            values: optional ``(P,)`` per-candidate values, lower is better, consistent with
                ``ranking``; only the value-based stop criteria use them (histories).
            num_parents: optional ``()`` int ``mu``, how many of the best ranked are parents (positive
                weights ``ln(mu + 1/2) - ln i``); default ``floor(lambda / 2)``. CMA-ME's "filter"
                selection passes the number of candidates the archive accepted; with 0 the
                distribution is left as it is (only the counters move).

        Returns:
            The updated state. The eigendecomposition is refreshed when due (lazy, module docstring).
        """
        n, dt, P = self.dim, self.dtype, self.max_population
        lam = state.population
        mu = lam // 2 if num_parents is None else jnp.clip(jnp.asarray(num_parents, jnp.int32), 0, lam)
        mu_safe = jnp.maximum(mu, 1)
        weights, sp = self._weights(lam, mu_safe, default_mu=num_parents is None)
        c1, cmu, c_sigma, d_sigma, c_c, mueff = (sp[k] for k in ("c1", "cmu", "c_sigma", "d_sigma", "c_c", "mueff"))

        ranking = jnp.asarray(ranking, jnp.int32)
        # Stable partition of the ranking, the population first: each entry's place counted directly
        # (two cumulative sums and a scatter; a sort of P entries costs more on CPU).
        valid = ranking < lam
        n_valid = jnp.sum(valid, dtype=jnp.int32)
        place = jnp.where(valid, jnp.cumsum(valid, dtype=jnp.int32) - 1, n_valid + jnp.cumsum(~valid, dtype=jnp.int32) - 1)
        order = jnp.zeros((P,), jnp.int32).at[place].set(ranking, unique_indices=True)

        samples = jnp.asarray(samples, dt)
        bounded = self.lower is not None or self.upper is not None
        # Rows of weight 0 are left out (static bound): without negative weights only the first
        # ``mu <= P // 2`` (default ``mu``) or ``mu <= lambda <= P`` ranks have one.
        rows = P if (self.active or num_parents is not None) else max(1, P // 2)
        order, weights = order[:rows], weights[:rows]
        y = (samples[order] - state.mean) / state.sigma  # (rows, D) steps, best first
        w_pos = jnp.maximum(weights, 0.0)
        y_w = w_pos @ y  # (D,) the mean moves with the positive weights only (c_m = 1)
        # C^{-1/2} y with the stored (possibly stale) decomposition: for every step when they are needed
        # (negative weights, repaired samples), else only for their weighted sum (C^{-1/2} y_w, a matvec).
        need_z = self.active or bounded
        if need_z:
            z = y @ state.whiten.T
            z_norm2 = jnp.sum(z * z, axis=-1)
        if bounded:
            # Repaired (clipped) samples: limit the Mahalanobis step length (Hansen 2011, see module doc).
            x = samples[order]
            on_bound = jnp.zeros((rows,), bool)
            if self.lower is not None:
                on_bound |= jnp.any(x <= jnp.asarray(self.lower), axis=-1)
            if self.upper is not None:
                on_bound |= jnp.any(x >= jnp.asarray(self.upper), axis=-1)
            c_y = math.sqrt(n) + 2.0 * n / (n + 2.0)
            norm = jnp.sqrt(z_norm2)
            shrink = jnp.where(on_bound, jnp.minimum(1.0, c_y / jnp.maximum(norm, jnp.finfo(dt).tiny)), 1.0)
            y, z = y * shrink[:, None], z * shrink[:, None]
            z_norm2 = z_norm2 * shrink**2
            y_w = w_pos @ y
        if need_z:
            z_w = w_pos @ z
        elif state.whiten is None:  # Cholesky: C^{-1/2} y_w as L^{-1} y_w, one triangular solve of one vector
            # As the transposed solve with L^T: LAPACK reads column-major operands, and L^T's column-major
            # layout is L's row-major one, so XLA passes the factor without a transposing copy.
            z_w = lax.linalg.triangular_solve(
                state.factor.T, y_w[:, None], left_side=True, lower=False, transpose_a=True
            )[:, 0]
        else:
            z_w = state.whiten @ y_w
        mean = state.mean + state.sigma * y_w

        g = state.generation + 1
        p_sigma = (1.0 - c_sigma) * state.p_sigma + jnp.sqrt(c_sigma * (2.0 - c_sigma) * mueff) * z_w
        ps_norm = jnp.linalg.norm(p_sigma)
        chi_n = self._chi_n()
        h_sigma = ps_norm / jnp.sqrt(1.0 - (1.0 - c_sigma) ** (2.0 * g.astype(dt))) < (1.4 + 2.0 / (n + 1.0)) * chi_n
        h_sigma = h_sigma.astype(dt)
        p_c = (1.0 - c_c) * state.p_c + h_sigma * jnp.sqrt(c_c * (2.0 - c_c) * mueff) * y_w
        delta_h = (1.0 - h_sigma) * c_c * (2.0 - c_c)
        # negative weights rescaled by n / ||C^{-1/2} y||^2.
        if self.active:
            w_circ = jnp.where(weights >= 0, weights, weights * n / jnp.maximum(z_norm2, jnp.finfo(dt).tiny))
        else:
            w_circ = weights
        rank_mu = (y * w_circ[:, None]).T @ y
        # The product is symmetrised (``(cmu / 2) (R + R^T)``), not the sum: the other terms are symmetric bit
        # for bit, so C stays exactly symmetric.
        decay = 1.0 + c1 * delta_h - c1 - cmu * jnp.sum(weights)
        # The scalars computed once, before the one fused pass over C's entries (without the barrier XLA
        # recomputes their whole chain for every entry).
        decay, c1_, cmu_half = _materialised(decay, c1, 0.5 * cmu)
        cov = decay * state.cov + c1_ * jnp.outer(p_c, p_c) + cmu_half * (rank_mu + rank_mu.T)
        sigma = state.sigma * jnp.exp((c_sigma / d_sigma) * (ps_norm / chi_n - 1.0))

        gap = jnp.maximum(1.0, self.lazy_gap / (n * (c1 + cmu)))
        due = (g - state.decomposed_at).astype(dt) >= gap
        factor, whiten, axis_std = _lazy_decompose(self.decomposition, due, cov, state.factor, state.whiten, state.axis_std)

        # Histories for the value-based stop criteria.
        if values is not None:
            v = jnp.where(self.valid_mask(state), jnp.asarray(values, dt), jnp.inf)
            ordered = jnp.sort(v)
            best = ordered[0]
            median = 0.5 * (ordered[(lam - 1) // 2] + ordered[lam // 2])
            slot = state.history_count % self.stagnation_window
            best_history = state.best_history.at[slot].set(best)
            median_history = state.median_history.at[slot].set(median)
            history_count = state.history_count + 1
            last_range = ordered[lam - 1] - best
        else:
            best_history, median_history = state.best_history, state.median_history
            history_count, last_range = state.history_count, state.last_range

        updated = state.replace(
            mean=mean,
            sigma=sigma,
            cov=cov,
            factor=factor,
            whiten=whiten,
            axis_std=axis_std,
            p_sigma=p_sigma,
            p_c=p_c,
            generation=g,
            decomposed_at=jnp.where(due, g, state.decomposed_at),
        )
        if num_parents is None:  # mu = floor(lambda / 2) >= 1 (lambda >= 2): always an update
            new = updated
        else:  # num_parents == 0: keep the distribution, count the evaluations.
            keep = mu < 1
            new = jax.tree_util.tree_map(lambda old, upd: jnp.where(keep, old, upd), state, updated)
        return new.replace(
            evaluations=state.evaluations + lam,
            total_evaluations=state.total_evaluations + lam,
            best_history=best_history,
            median_history=median_history,
            history_count=history_count,
            last_range=last_range,
        )

    def stop_criteria(self, state: CMAESState) -> Dict[str, jax.Array]:
        """Each stop criterion of the module docstring: ``{name: () bool}``."""
        n, dt = self.dim, self.dtype
        lam = state.population.astype(dt)
        H = self.stagnation_window
        count = state.history_count
        # Slot j holds the value recorded ``age_j`` iterations ago (0 = the last one).
        age = (count - 1 - jnp.arange(H)) % H
        recorded = age < jnp.minimum(count, H)

        fun_window = 10 + jnp.ceil(30.0 * n / lam).astype(jnp.int32)
        in_fun = recorded & (age < fun_window)
        best_range = jnp.max(jnp.where(in_fun, state.best_history, -jnp.inf)) - jnp.min(
            jnp.where(in_fun, state.best_history, jnp.inf)
        )
        fun_full = count >= fun_window
        tol_fun = fun_full & (best_range < self.tol_fun) & (state.last_range < self.tol_fun)
        equal_fun = fun_full & (best_range == 0)

        base = 120 + jnp.ceil(30.0 * n / lam).astype(jnp.int32)
        window = jnp.minimum(jnp.maximum((0.2 * count.astype(dt)).astype(jnp.int32), base), H)
        part = jnp.ceil(0.3 * window.astype(dt)).astype(jnp.int32)
        last_part = recorded & (age < part)
        first_part = recorded & (age >= window - part) & (age < window)
        stalled = lambda hist: _masked_median(hist, last_part) >= _masked_median(hist, first_part)
        stagnation = (count >= window) & (count >= base) & stalled(state.best_history) & stalled(state.median_history)

        sigma, mean = state.sigma, state.mean
        diag = jnp.diagonal(state.cov)
        tol_x_value = self.tol_x_factor * state.sigma0
        tol_x = jnp.all(sigma * jnp.sqrt(diag) < tol_x_value) & jnp.all(sigma * jnp.abs(state.p_c) < tol_x_value)
        tol_x_up = sigma * jnp.max(state.axis_std) > self.tol_x_up * state.sigma0
        axis_steps = 0.1 * sigma * state.factor  # column i: axis i
        no_effect_axis = jnp.any(jnp.all(mean[:, None] + axis_steps == mean[:, None], axis=0))
        no_effect_coord = jnp.any(mean + 0.2 * sigma * jnp.sqrt(diag) == mean)
        d_max, d_min = jnp.max(state.axis_std), jnp.min(state.axis_std)
        condition_cov = (d_min <= 0) | ((d_max / jnp.maximum(d_min, jnp.finfo(dt).tiny)) ** 2 > self.condition_cov)
        max_iter = state.generation.astype(jnp.float32) >= self._max_iter(state.population)
        return dict(
            max_iter=max_iter,
            tol_fun=tol_fun,
            equal_fun=equal_fun,
            stagnation=stagnation,
            tol_x=tol_x,
            tol_x_up=tol_x_up,
            no_effect_axis=no_effect_axis,
            no_effect_coord=no_effect_coord,
            condition_cov=condition_cov,
        )

    def should_stop(self, state: CMAESState) -> jax.Array:
        """``()`` bool: any of :meth:`stop_criteria` (also true if the state has gone non-finite)."""
        finite = jnp.all(jnp.isfinite(state.mean)) & jnp.isfinite(state.sigma) & _all_finite(state.cov)
        return jnp.any(jnp.stack(list(self.stop_criteria(state).values()))) | ~finite

    def restart(self, state: CMAESState, key: jax.Array, mean: jax.Array) -> CMAESState:
        """Re-initialise the instance at ``mean (D,)`` under ``restart_rule`` (module docstring).

        Resets the mean, ``sigma``, ``C = B = I``, ``d = 1``, both paths, the iteration, evaluation and
        decomposition counters and the value histories. Sets the new population and ``sigma0`` of the
        run. Keeps ``total_evaluations`` and the restart / BIPOP bookkeeping (incremented).
        ``key (2,)`` draws BIPOP's small-regime population and step size (unused otherwise).
        """
        lam0 = self.population
        P = self.max_population
        evals = state.evaluations
        budget_large = state.budget_large + jnp.where(state.regime == _REGIME_LARGE, evals, 0)
        budget_small = state.budget_small + jnp.where(state.regime == _REGIME_SMALL, evals, 0)
        sigma0 = jnp.asarray(self.sigma0, self.dtype)
        large_restarts = state.large_restarts
        regime = jnp.asarray(_REGIME_FIRST, jnp.int32)
        if self.restart_rule == "basic":
            population = jnp.asarray(lam0, jnp.int32)
            sigma = sigma0
        elif self.restart_rule == "ipop":
            large_restarts = large_restarts + 1
            population = jnp.minimum(2 * state.population, P).astype(jnp.int32)
            sigma = sigma0
        else:  # bipop
            large = budget_small >= budget_large
            large_restarts = large_restarts + large.astype(jnp.int32)
            lam_large = jnp.minimum(lam0 * 2.0 ** large_restarts.astype(jnp.float32), float(P))
            k_lam, k_sigma = jax.random.split(key)
            u_lam, u_sigma = jax.random.uniform(k_lam), jax.random.uniform(k_sigma)
            lam_small = jnp.floor(lam0 * (0.5 * lam_large / lam0) ** (u_lam**2))
            lam_small = jnp.clip(lam_small, lam0, P)
            population = jnp.where(large, lam_large, lam_small).astype(jnp.int32)
            sigma = jnp.where(large, sigma0, sigma0 * 10.0 ** (-2.0 * u_sigma)).astype(self.dtype)
            regime = jnp.where(large, _REGIME_LARGE, _REGIME_SMALL).astype(jnp.int32)
        if self.restart_rule == "ipop":
            regime = jnp.asarray(_REGIME_LARGE, jnp.int32)
        return self._fresh(
            jnp.asarray(mean, self.dtype),
            sigma,
            population,
            counters=dict(
                total_evaluations=state.total_evaluations,
                restarts=state.restarts + 1,
                large_restarts=large_restarts,
                regime=regime,
                budget_large=budget_large,
                budget_small=budget_small,
            ),
        )

    def restart_where(self, state: CMAESState, key: jax.Array, mean: jax.Array, condition) -> CMAESState:
        """:meth:`restart` where ``condition`` (``()`` bool), else ``state`` unchanged (jittable, vmappable).

        The usual step of an emitter: ``cma.restart_where(state, key, elite, cma.should_stop(state))``.
        """
        fresh = self.restart(state, key, mean)
        return jax.tree_util.tree_map(lambda new, old: jnp.where(condition, new, old), fresh, state)

    def ranking(self, state: CMAESState, values: jax.Array) -> jax.Array:
        """``(P,)`` int: candidate indices by increasing ``values (P,)``, the population first."""
        values = jnp.where(self.valid_mask(state), values, jnp.inf)
        return jnp.argsort(values, stable=True).astype(jnp.int32)
