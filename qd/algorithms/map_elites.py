"""MAP-Elites (Mouret & Clune 2015, "Illuminating search spaces by mapping elites") with any emitter and archive.

:class:`MAPElitesAlgorithm` is the algorithm, written to the protocol of :mod:`qd.algorithms.driver`: ``ask``
is the emitter's proposal, ``tell`` adds the scored batch to the archive and gives the emitter the
archive's ``AddResult`` (the first ``tell``, of the initial batch, starts the emitter on the filled
archive instead). :class:`MAPElites` is that algorithm on the :class:`~qd.algorithms.driver.Driver` (compiled loop in
chunks, lazy initial batch, sharding, host-side ask/tell, several seeds as one program).
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

ScoringFn = Callable[[Any, jax.Array], Evaluation]


@struct.dataclass
class MAPElitesState:
    """MAP-Elites' own state (a pytree): ``archive`` (the archive of record), ``emitter_state``, and
    ``started`` (bool scalar: whether a batch was told, so that the emitter was started on the archive)."""

    archive: Archive
    emitter_state: Any
    started: jax.Array


class MAPElitesAlgorithm:
    """MAP-Elites as ``init`` / ``ask`` / ``tell`` (see :mod:`qd.algorithms.driver`).

    Args:
        emitter: an object with ``batch_size`` (``B``), ``init(key, archive)``, ``ask(state, archive, key) ->
            genotypes (B, ...)`` and ``tell(state, archive, genotypes, fitnesses (B,), descriptors (B, d),
            add_result)`` (see the ``emitters`` package).

    Raises:
        TypeError: ``emitter`` lacks one of those.
    """

    def __init__(self, emitter: Any):
        for attr in ("batch_size", "init", "ask", "tell"):
            if not hasattr(emitter, attr):
                raise TypeError(f"MAPElites: the emitter {emitter!r} has no {attr!r}; see the emitters package")
        self.emitter = emitter

    def init(self, key: jax.Array, archive: Archive, initial_genotypes: Any) -> Tuple[MAPElitesState, Any]:
        """``(state, initial_genotypes)``: the archive as given and an emitter state (built on it only to fix
        the structure; the first ``tell`` starts the emitter on the filled archive)."""
        return MAPElitesState(archive, self.emitter.init(key, archive), jnp.zeros((), bool)), initial_genotypes

    def ask(self, state: MAPElitesState, key: jax.Array) -> Tuple[Any, MAPElitesState]:
        """The emitter's proposal ``(B, ...)``; the state is unchanged."""
        return self.emitter.ask(state.emitter_state, state.archive, key), state

    def tell(self, state: MAPElitesState, genotypes: Any, evaluation: Evaluation, key: jax.Array) -> MAPElitesState:
        """Add the batch (any size: the initial batch is told too) to the archive; the emitter learns from the
        archive's ``AddResult``, or, after the first batch, is started on the filled archive with ``key``.
        (The choice is a ``lax.cond`` on the small emitter state only, not on the archive.)"""
        archive, result = state.archive.add(genotypes, evaluation.descriptors, evaluation.fitnesses, evaluation.extras)
        learn = lambda: self.emitter.tell(
            state.emitter_state, archive, genotypes, evaluation.fitnesses, evaluation.descriptors, result
        )
        emitter_state = jax.lax.cond(state.started, learn, lambda: self.emitter.init(key, archive))
        return MAPElitesState(archive, emitter_state, jnp.ones((), bool))

    def tell_initial(self, state: MAPElitesState, genotypes: Any, evaluation: Evaluation, key: jax.Array) -> MAPElitesState:
        """An initial batch of any size ``N`` (an eager start): add it, start the emitter on the filled archive."""
        archive, _ = state.archive.add(genotypes, evaluation.descriptors, evaluation.fitnesses, evaluation.extras)
        return MAPElitesState(archive, self.emitter.init(key, archive), jnp.ones((), bool))

    def archive(self, state: MAPElitesState) -> Archive:
        """The archive of record."""
        return state.archive


class MAPElites(Driver):
    """MAP-Elites (:class:`MAPElitesAlgorithm`) on the :class:`~qd.algorithms.driver.Driver`.

    Args:
        emitter: see :class:`MAPElitesAlgorithm`.
        evaluate: ``evaluate(genotypes, key) -> Evaluation`` with fitnesses ``(B,)`` and descriptors ``(B, d)``,
            pure and jittable (a task's ``evaluate``); may be None when only ``ask`` / ``tell`` are used.
        metrics_fn: ``archive -> dict of scalars`` computed after each iteration.
        compiler_options: XLA options for the programs that evaluate (e.g. a task's ``compiler_options``).
        devices: split each batch's evaluation over these devices (``"all"``, a count, or a list of
            ``jax.Device``; see :mod:`qd.parallel`). None (default): one device.
        ground_truth: a :class:`qd.metrics.GroundTruth` (``GroundTruth.of_task(task)`` on the sparse tasks)
            for the exploration metrics, or None.

    ``init(archive, initial_genotypes, key, lazy=None)`` starts a run (the initial batch ``(N, ...)`` is lazy
    when ``N`` is the emitter's ``batch_size``; see :meth:`Driver.init`), ``run`` / ``scan`` / ``step`` run
    it, ``ask`` / ``tell(state, genotypes, fitnesses, descriptors, extras=None)`` and
    ``init_with_evaluation(archive, genotypes, evaluation, key)`` serve evaluations outside JAX.

    Metrics (``init``, ``step``, ``tell``: a dict of scalars; ``scan`` / ``run``: one value per iteration),
    with the default ``metrics_fn`` (:func:`qd.archive_metrics` of the archive):

    - ``qd_score`` (float32): sum over elites of ``fitness - qd_offset``;
    - ``coverage`` (float32 in ``[0, 1]``): filled cells / cells of the archive (its own grid or
      centroids, not a ground-truth grid);
    - ``max_fitness``, ``mean_fitness`` (float32): over the elites (``-inf`` and ``0`` when empty);
    - ``num_elites`` (int32);
    - with a ``ground_truth``: ``gt_coverage``, ``uniformity``, ``reward_areas_found``,
      ``best_reward_area_<i>`` over every agent evaluated (see :mod:`qd.algorithms.driver`);
    - ``num_evaluations`` (int32): candidates evaluated so far, the initial batch included;
    - ``iteration`` (int32): iterations done (``0`` after the initial batch, ``-1`` while it is pending).

    A custom ``metrics_fn`` replaces the first five.

    Raises:
        ValueError: ``devices`` names more devices than there are.
        TypeError: ``emitter`` lacks ``batch_size`` / ``init`` / ``ask`` / ``tell``, or ``evaluate`` is not callable.

    Example::

        algo = MAPElites(IsoLineEmitter(batch_size=1024), Arm(100).evaluate)
        state, _ = algo.init(archive, task.initial_genotypes(k1, 1024), k2)
        state, metrics = algo.run(state, 200)  # the initial batch, then 200 iterations
    """

    def __init__(
        self,
        emitter: Any,
        evaluate: Optional[ScoringFn],
        metrics_fn: Callable[[Archive], Dict[str, jax.Array]] = archive_metrics,
        compiler_options: Optional[Dict[str, Any]] = None,
        devices: Any = None,
        ground_truth: Optional[GroundTruth] = None,
    ):
        super().__init__(
            MAPElitesAlgorithm(emitter), evaluate, metrics_fn=metrics_fn, ground_truth=ground_truth,
            compiler_options=compiler_options, devices=devices,
        )

    @property
    def emitter(self) -> Any:
        """The emitter."""
        return self.algorithm.emitter
