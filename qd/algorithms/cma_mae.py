"""CMA-MAE (Fontaine & Nikolaidis, "Covariance Matrix Adaptation MAP-Annealing", GECCO 2023,
arXiv:2205.10752): MAP-Elites over an *optimisation archive* with per-cell thresholds, and a separate
*result archive* of record.

The emitters (``emitters.CMAMAEEmitter``: ``K`` CMA-ES instances ranking by ``fitness - threshold``) see
only the optimisation archive (a :class:`qd.archives.ThresholdGridArchive` or
:class:`qd.archives.ThresholdCVTArchive` with learning rate ``alpha`` and ``threshold_min``): they sample
restart points from it and learn from its ``AddResult``. Every evaluated batch is also added to the result
archive (a plain grid or CVT archive, usually of the same tessellation), which keeps the best solution
ever found per cell: the optimisation archive may replace an elite by a worse candidate that beat the
cell's (lower) threshold, so its elites are not the algorithm's output. The driver's QD metrics are the
result archive's (``archive(S)``), as in the paper and pyribs' ``Scheduler(result_archive=...)``; the
optimisation archive's coverage and QD-score come as ``optimizer_coverage`` / ``optimizer_qd_score``.

It is MAP-Elites (:mod:`qd.algorithms.map_elites`) with one more ``add`` per iteration, written to the
driver's protocol (:mod:`qd.algorithms.driver`) without changes to the driver: the driver needs only
``archive(S)`` to name the archive of record, and ``metrics(S)`` for the extra metrics.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.algorithms.driver import Driver
from qd.archives.base import Archive
from qd.metrics import GroundTruth, archive_metrics
from qd.tasks.base import Evaluation

__all__ = ["CMAMAE", "CMAMAEAlgorithm", "CMAMAEState"]


@struct.dataclass
class CMAMAEState:
    """CMA-MAE's state: ``optimizer_archive`` (with thresholds: what the emitter sees), ``archive`` (the
    result archive, the archive of record, so that ``state.archive`` is the output as for every algorithm),
    ``emitter_state``, and ``started`` (bool scalar: the emitter was started)."""

    optimizer_archive: Archive
    archive: Archive
    emitter_state: Any
    started: jax.Array


class CMAMAEAlgorithm:
    """CMA-MAE as ``init`` / ``ask`` / ``tell`` (module docstring). Works with any emitter (the emitter of the
    paper is ``emitters.CMAMAEEmitter``) and any pair of archives with the same descriptor dimension ``d``.

    Args:
        emitter: ``batch_size`` (``B``), ``init(key, archive)``, ``ask(state, archive, key) -> (B, ...)``,
            ``tell(state, archive, genotypes, fitnesses (B,), descriptors (B, d), add_result)``.

    Raises:
        TypeError: ``emitter`` lacks one of those.
    """

    def __init__(self, emitter: Any):
        for attr in ("batch_size", "init", "ask", "tell"):
            if not hasattr(emitter, attr):
                raise TypeError(f"CMAMAE: the emitter {emitter!r} has no {attr!r}; see the emitters package")
        self.emitter = emitter

    def init(self, key: jax.Array, archive: Archive, result_archive: Archive, initial_genotypes: Any) -> Tuple[CMAMAEState, Any]:
        """``(state, initial_genotypes)``: both archives as given (empty, normally).

        Raises:
            ValueError: the archives' descriptor dimensions differ.
        """
        if archive.descriptor_dim != result_archive.descriptor_dim:
            raise ValueError(
                f"CMAMAE: the optimisation archive has d = {archive.descriptor_dim}, "
                f"the result archive d = {result_archive.descriptor_dim}"
            )
        state = CMAMAEState(archive, result_archive, self.emitter.init(key, archive), jnp.zeros((), bool))
        return state, initial_genotypes

    def ask(self, state: CMAMAEState, key: jax.Array) -> Tuple[Any, CMAMAEState]:
        """The emitter's proposal ``(B, ...)`` from the optimisation archive; the state is unchanged."""
        return self.emitter.ask(state.emitter_state, state.optimizer_archive, key), state

    def _add(self, state, genotypes, evaluation):
        archive, result = state.optimizer_archive.add(
            genotypes, evaluation.descriptors, evaluation.fitnesses, evaluation.extras
        )
        result_archive, _ = state.archive.add(
            genotypes, evaluation.descriptors, evaluation.fitnesses, evaluation.extras
        )
        return archive, result_archive, result

    def tell(self, state: CMAMAEState, genotypes: Any, evaluation: Evaluation, key: jax.Array) -> CMAMAEState:
        """Add the batch to both archives; the emitter learns from the optimisation archive's ``AddResult``
        (or, after the first batch, is started on the filled optimisation archive with ``key``)."""
        archive, result_archive, result = self._add(state, genotypes, evaluation)
        learn = lambda: self.emitter.tell(
            state.emitter_state, archive, genotypes, evaluation.fitnesses, evaluation.descriptors, result
        )
        emitter_state = jax.lax.cond(state.started, learn, lambda: self.emitter.init(key, archive))
        return CMAMAEState(archive, result_archive, emitter_state, jnp.ones((), bool))

    def tell_initial(self, state: CMAMAEState, genotypes: Any, evaluation: Evaluation, key: jax.Array) -> CMAMAEState:
        """An initial batch of any size (an eager start): add it to both archives, start the emitter."""
        archive, result_archive, _ = self._add(state, genotypes, evaluation)
        return CMAMAEState(archive, result_archive, self.emitter.init(key, archive), jnp.ones((), bool))

    def archive(self, state: CMAMAEState) -> Archive:
        """The archive of record: the result archive."""
        return state.archive

    def metrics(self, state: CMAMAEState) -> Dict[str, jax.Array]:
        """``optimizer_coverage``, ``optimizer_qd_score`` (float32): the optimisation archive's."""
        opt = state.optimizer_archive
        return {"optimizer_coverage": opt.coverage, "optimizer_qd_score": opt.qd_score()}


class CMAMAE(Driver):
    """CMA-MAE (:class:`CMAMAEAlgorithm`) on the :class:`~qd.algorithms.driver.Driver`.

    ``init(archive, result_archive, initial_genotypes, key, lazy=None)`` starts a run (``archive``: the
    optimisation archive, e.g. ``ThresholdGridArchive.create(..., learning_rate=0.01, threshold_min=0.0)``;
    ``result_archive``: e.g. the plain ``GridArchive.create(...)`` of the same grid); then ``run`` / ``scan``
    / ``ask`` / ``tell`` as :class:`qd.MAPElites`. Metrics: the result archive's QD metrics (as
    :class:`qd.MAPElites`'), ``optimizer_coverage`` and ``optimizer_qd_score``, ``num_evaluations``,
    ``iteration``.

    Args: as :class:`qd.MAPElites` (``emitter``, ``evaluate``, ``metrics_fn``, ``compiler_options``,
    ``devices``, ``ground_truth``).

    Raises:
        TypeError: ``emitter`` lacks ``batch_size`` / ``init`` / ``ask`` / ``tell``, or ``evaluate`` is not callable.
        ValueError: ``devices`` names more devices than there are; (at ``init``) archives of different ``d``.

    Example::

        opt = ThresholdGridArchive.create(jnp.zeros(100), 100, lo, hi, learning_rate=0.01, threshold_min=0.0)
        res = GridArchive.create(jnp.zeros(100), 100, lo, hi)
        algo = CMAMAE(CMAMAEEmitter(genotype_dim=100, num_instances=15, population=36), task.evaluate)
        state, _ = algo.init(opt, res, task.initial_genotypes(key, 540), key)
        state, metrics = algo.run(state, 10_000)
    """

    def __init__(
        self,
        emitter: Any,
        evaluate: Optional[Callable[[Any, jax.Array], Evaluation]],
        metrics_fn: Callable[[Archive], Dict[str, jax.Array]] = archive_metrics,
        compiler_options: Optional[Dict[str, Any]] = None,
        devices: Any = None,
        ground_truth: Optional[GroundTruth] = None,
    ):
        super().__init__(
            CMAMAEAlgorithm(emitter), evaluate, metrics_fn=metrics_fn, ground_truth=ground_truth,
            compiler_options=compiler_options, devices=devices,
        )

    @property
    def emitter(self) -> Any:
        """The emitter."""
        return self.algorithm.emitter
