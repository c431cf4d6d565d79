"""MAP-Elites (Mouret & Clune 2015) with any emitter, archive and scoring function.

One iteration is ``ask -> evaluate -> add -> tell -> metrics``, all pure and jittable; :meth:`MAPElites.scan`
runs many iterations inside one compiled ``lax.scan``, and :meth:`MAPElites.run` calls it in chunks so that a
host loop can report progress between chunks. Users whose evaluation is not JAX use :meth:`MAPElites.ask`
and :meth:`MAPElites.tell` instead (as pyribs' scheduler offers).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.algorithms.chunks import run_in_chunks
from qd.archives.base import Archive
from qd.metrics import archive_metrics
from qd.tasks.base import Evaluation

ScoringFn = Callable[[Any, jax.Array], Evaluation]


@struct.dataclass
class MAPElitesState:
    """Everything that changes during a run (a pytree; checkpoint it with :mod:`qd.checkpoint`).

    Attributes:
        archive: the archive.
        emitter_state: the emitter's state pytree.
        key: PRNG key for the next iteration.
        iteration: ``int32`` scalar, iterations done (the initial batch is iteration 0).
        num_evaluations: ``int32`` scalar, candidates evaluated so far.
    """

    archive: Archive
    emitter_state: Any
    key: jax.Array
    iteration: jax.Array
    num_evaluations: jax.Array


class MAPElites:
    """The MAP-Elites algorithm.

    Args:
        emitter: an object with ``batch_size``, ``init(key, archive)``, ``ask(state, archive, key)`` and
            ``tell(state, archive, genotypes, fitnesses, descriptors, add_result)`` (see ``emitters``).
        evaluate: ``evaluate(genotypes, key) -> Evaluation``, pure and jittable (a task's ``evaluate``);
            may be None when only :meth:`ask` / :meth:`tell` are used.
        metrics_fn: ``archive -> dict of scalars`` computed after each iteration.

    Example::

        algo = MAPElites(IsoLineEmitter(batch_size=1024), Arm(100).evaluate)
        state, _ = algo.init(archive, task.initial_genotypes(k1, 1024), k2)
        state, metrics = algo.run(state, 200)
    """

    def __init__(
        self,
        emitter: Any,
        evaluate: Optional[ScoringFn],
        metrics_fn: Callable[[Archive], Dict[str, jax.Array]] = archive_metrics,
    ):
        self.emitter = emitter
        self.evaluate = evaluate
        self.metrics_fn = metrics_fn
        self._init = jax.jit(self._init_impl)
        self._init_and_evaluate = jax.jit(self._init_and_evaluate_impl)
        self._scan = jax.jit(self._scan_impl, static_argnums=1, donate_argnums=0)
        self._ask = jax.jit(self._ask_impl)
        self._tell = jax.jit(self._tell_impl, donate_argnums=0)

    # ---------------------------------------------------------------------------------------- #
    def _metrics(self, state: MAPElitesState) -> Dict[str, jax.Array]:
        metrics = dict(self.metrics_fn(state.archive))
        metrics["num_evaluations"] = state.num_evaluations
        metrics["iteration"] = state.iteration
        return metrics

    def _init_impl(self, archive, genotypes, evaluation, key):
        archive, _ = archive.add(genotypes, evaluation.descriptors, evaluation.fitnesses, evaluation.extras)
        k_emitter, key = jax.random.split(key)
        batch = jax.tree_util.tree_leaves(genotypes)[0].shape[0]
        state = MAPElitesState(
            archive=archive,
            emitter_state=self.emitter.init(k_emitter, archive),
            key=key,
            iteration=jnp.zeros((), jnp.int32),
            num_evaluations=jnp.asarray(batch, jnp.int32),
        )
        return state, self._metrics(state)

    def init(self, archive: Archive, initial_genotypes: Any, key: jax.Array) -> Tuple[MAPElitesState, Dict]:
        """Evaluate ``initial_genotypes`` (pytree, leading axis ``N``), add them, and start the emitter.

        Returns:
            ``(state, metrics)``.

        Raises:
            ValueError: if no ``evaluate`` function was given, or the batch does not fit the archive.
        """
        if self.evaluate is None:
            raise ValueError("MAPElites.init needs an evaluate function; use init_with_evaluation")
        return self._init_and_evaluate(archive, initial_genotypes, key)

    def _init_and_evaluate_impl(self, archive, genotypes, key):
        k_eval, key = jax.random.split(key)
        return self._init_impl(archive, genotypes, self.evaluate(genotypes, k_eval), key)

    def init_with_evaluation(
        self, archive: Archive, genotypes: Any, evaluation: Evaluation, key: jax.Array
    ) -> Tuple[MAPElitesState, Dict]:
        """Like :meth:`init` with scores computed by the caller (for evaluations outside JAX).

        Uses the same key schedule as :meth:`init`, so both give the same run for the same scores.
        """
        _, key = jax.random.split(key)
        return self._init(archive, genotypes, _as_evaluation(evaluation), key)

    # ---------------------------------------------------------------------------------------- #
    def _apply(self, state, genotypes, evaluation, key):
        archive, result = state.archive.add(
            genotypes, evaluation.descriptors, evaluation.fitnesses, evaluation.extras
        )
        emitter_state = self.emitter.tell(
            state.emitter_state, archive, genotypes, evaluation.fitnesses, evaluation.descriptors, result
        )
        state = state.replace(
            archive=archive,
            emitter_state=emitter_state,
            key=key,
            iteration=state.iteration + 1,
            num_evaluations=state.num_evaluations + evaluation.fitnesses.shape[0],
        )
        return state, self._metrics(state)

    def step(self, state: MAPElitesState) -> Tuple[MAPElitesState, Dict]:
        """One iteration (pure; jit it or use :meth:`scan`). Returns ``(state, metrics)``."""
        key, k_ask, k_eval = jax.random.split(state.key, 3)
        genotypes = self.emitter.ask(state.emitter_state, state.archive, k_ask)
        evaluation = self.evaluate(genotypes, k_eval)
        return self._apply(state, genotypes, evaluation, key)

    def _scan_impl(self, state, num_iterations):
        return jax.lax.scan(lambda s, _: self.step(s), state, None, length=num_iterations)

    def scan(self, state: MAPElitesState, num_iterations: int) -> Tuple[MAPElitesState, Dict]:
        """Run ``num_iterations`` iterations in one compiled ``lax.scan``.

        The input ``state`` is donated (its buffers are reused): use only the returned state afterwards.

        Returns:
            ``(state, metrics)`` where each metric has shape ``(num_iterations,)``.
        """
        if self.evaluate is None:
            raise ValueError("MAPElites.scan needs an evaluate function")
        if int(num_iterations) < 1:
            raise ValueError(f"num_iterations must be positive; got {num_iterations}")
        return self._scan(state, int(num_iterations))

    def run(
        self,
        state: MAPElitesState,
        num_iterations: int,
        chunk_size: int = 50,
        callback: Optional[Callable[[MAPElitesState, Dict[str, np.ndarray]], None]] = None,
    ) -> Tuple[MAPElitesState, Dict[str, np.ndarray]]:
        """Run ``num_iterations`` iterations in compiled chunks of ``chunk_size``.

        After each chunk, ``callback(state, chunk_metrics)`` runs on the host (progress, checkpoints).
        At most two programs are compiled: the full chunk and the final remainder.

        Returns:
            ``(state, metrics)`` with every metric a numpy array of shape ``(num_iterations,)``.
        """
        return run_in_chunks(self.scan, state, num_iterations, chunk_size, callback)

    # ---------------------------------------------------------------------------------------- #
    def _ask_impl(self, state):
        # Same key schedule as ``step``, so ask/tell with the same scores reproduces ``scan`` exactly.
        key, k_ask, _ = jax.random.split(state.key, 3)
        return self.emitter.ask(state.emitter_state, state.archive, k_ask), state.replace(key=key)

    def ask(self, state: MAPElitesState) -> Tuple[Any, MAPElitesState]:
        """Propose a batch for evaluation outside JAX: ``(genotypes, state)``; pass both to :meth:`tell`."""
        return self._ask(state)

    def _tell_impl(self, state, genotypes, evaluation):
        return self._apply(state, genotypes, evaluation, state.key)

    def tell(
        self,
        state: MAPElitesState,
        genotypes: Any,
        fitnesses: Any,
        descriptors: Any,
        extras: Any = None,
    ) -> Tuple[MAPElitesState, Dict]:
        """Insert externally computed scores ``(B,)`` and ``(B, d)`` for the genotypes from :meth:`ask`.

        Returns:
            ``(state, metrics)``. The input state is donated.
        """
        evaluation = _as_evaluation(Evaluation(fitnesses, descriptors, extras))
        return self._tell(state, genotypes, evaluation)


def _as_evaluation(evaluation: Evaluation) -> Evaluation:
    return Evaluation(
        fitnesses=jnp.asarray(evaluation.fitnesses, jnp.float32),
        descriptors=jnp.asarray(evaluation.descriptors, jnp.float32),
        extras=evaluation.extras,
    )
