"""MAP-Elites (Mouret & Clune 2015) with any emitter, archive and scoring function.

One iteration is ``ask -> evaluate -> add -> tell -> metrics``, all pure and jittable; :meth:`MAPElites.scan`
runs many iterations inside one compiled ``lax.scan``, and :meth:`MAPElites.run` calls it in chunks so that
a host loop can report progress between chunks. Users whose evaluation is not JAX use :meth:`MAPElites.ask` and
:meth:`MAPElites.tell` instead (as pyribs' scheduler offers).

Compiling once. The evaluation (a Brax rollout, say) is most of what there is to compile. When the initial
batch has the emitter's batch size, :meth:`MAPElites.init` does not evaluate it: the batch waits in the
state and the first iteration evaluates it in place of the emitter's proposal (it is iteration 0; the
emitter is then initialised from the filled archive, as it would have been after an eager initialisation).
So the evaluation exists only in the iteration programs, and with chunks of one iteration (the runner's
choice for Brax tasks) in exactly one program.
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
from qd.parallel import PopulationSharding
from qd.tasks.base import Evaluation

ScoringFn = Callable[[Any, jax.Array], Evaluation]


@struct.dataclass
class MAPElitesState:
    """Everything that changes during a run (a pytree; checkpoint it with :mod:`qd.checkpoint`).

    Attributes:
        archive: the archive.
        emitter_state: the emitter's state pytree.
        key: PRNG key for the next iteration.
        iteration: ``int32`` scalar, the last iteration done: ``0`` once the initial batch is in the archive,
            ``-1`` while it is pending (lazy initialisation, see the module docstring).
        num_evaluations: ``int32`` scalar, candidates evaluated so far.
        initial_genotypes: the initial batch (pytree, leading axis ``B``) of a lazy initialisation, which
            iteration 0 evaluates; kept afterwards (unused) so that the state has one fixed structure.
            None after an eager initialisation.
    """

    archive: Archive
    emitter_state: Any
    key: jax.Array
    iteration: jax.Array
    num_evaluations: jax.Array
    initial_genotypes: Any = None

    @property
    def pending(self) -> bool:
        """Whether the initial batch still waits to be evaluated (reads one scalar from the device)."""
        return self.initial_genotypes is not None and int(self.iteration) < 0


class MAPElites:
    """The MAP-Elites algorithm.

    Args:
        emitter: an object with ``batch_size``, ``init(key, archive)``, ``ask(state, archive, key)`` and
            ``tell(state, archive, genotypes, fitnesses, descriptors, add_result)`` (see ``emitters``).
        evaluate: ``evaluate(genotypes, key) -> Evaluation``, pure and jittable (a task's ``evaluate``);
            may be None when only :meth:`ask` / :meth:`tell` are used.
        metrics_fn: ``archive -> dict of scalars`` computed after each iteration.
        compiler_options: XLA options for the programs that evaluate (``jax.jit(compiler_options=...)``), e.g.
            a task's ``compiler_options`` (see :mod:`qd.xla_options`); None: XLA's defaults.
        devices: split each batch's evaluation over these devices (``"all"``, a count, or a list of
            ``jax.Device``; see :mod:`qd.parallel`); the rest of the state is replicated on them. None
            (default): one device.

    Raises:
        ValueError: ``devices`` names more devices than there are.

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
    ):
        self.emitter = emitter
        self.population = PopulationSharding(devices)
        self.evaluate = None if evaluate is None else self.population.shard(evaluate)
        self.metrics_fn = metrics_fn
        self._init = jax.jit(self._init_impl)
        self._init_lazy = jax.jit(self._init_lazy_impl)
        self._init_and_evaluate = jax.jit(self._init_and_evaluate_impl, compiler_options=compiler_options)
        self._scan = jax.jit(self._scan_impl, static_argnums=1, donate_argnums=0, compiler_options=compiler_options)
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

    def _init_lazy_impl(self, archive, genotypes, key):
        # The emitter state built on the empty archive only fixes the structure; iteration 0 replaces it.
        state = MAPElitesState(
            archive=archive,
            emitter_state=self.emitter.init(key, archive),
            key=key,
            iteration=jnp.full((), -1, jnp.int32),
            num_evaluations=jnp.zeros((), jnp.int32),
            initial_genotypes=genotypes,
        )
        return state, self._metrics(state)

    def init(
        self, archive: Archive, initial_genotypes: Any, key: jax.Array, lazy: Optional[bool] = None
    ) -> Tuple[MAPElitesState, Dict]:
        """Start a run from ``initial_genotypes`` (pytree, leading axis ``N``).

        Args:
            archive: an empty (or pre-filled) archive.
            initial_genotypes: the initial batch.
            key: PRNG key of the run.
            lazy: True: keep the batch in the state for iteration 0 to evaluate (the evaluation is then
                compiled once, inside the iteration loop); False: evaluate and add it now, in a program of
                its own. None (default): lazy when the batch has the shape of the emitter's proposals.

        Returns:
            ``(state, metrics)``; after a lazy initialisation the metrics are those of the unchanged
            archive with ``iteration == -1``, and the initial batch's metrics come with iteration 0.

        Raises:
            ValueError: no ``evaluate`` function was given; ``lazy=True`` with a batch whose structure, shapes
                or dtypes differ from the emitter's proposals; a batch that does not fit the archive.
        """
        if self.evaluate is None:
            raise ValueError("MAPElites.init needs an evaluate function; use init_with_evaluation")
        matches = self._matches_proposals(archive, initial_genotypes, key)
        if lazy and not matches:
            raise ValueError(
                "lazy initialisation needs an initial batch shaped like the emitter's proposals "
                f"(batch size {self.emitter.batch_size}, same pytree structure and dtypes)"
            )
        if matches if lazy is None else lazy:
            state, metrics = self._init_lazy(archive, initial_genotypes, key)
        else:
            state, metrics = self._init_and_evaluate(archive, initial_genotypes, key)
        return self.population.place(state), metrics

    def _matches_proposals(self, archive, genotypes, key) -> bool:
        """Whether ``genotypes`` has the structure, shapes and dtypes of ``emitter.ask`` (nothing runs)."""
        emitter_state = jax.eval_shape(self.emitter.init, key, archive)
        proposal = jax.eval_shape(self.emitter.ask, emitter_state, archive, key)
        given = jax.eval_shape(lambda g: g, genotypes)
        same = lambda a, b: a.shape == b.shape and a.dtype == b.dtype
        return jax.tree_util.tree_structure(proposal) == jax.tree_util.tree_structure(given) and all(
            jax.tree_util.tree_leaves(jax.tree_util.tree_map(same, proposal, given))
        )

    def _init_and_evaluate_impl(self, archive, genotypes, key):
        k_eval, key = jax.random.split(key)
        return self._init_impl(archive, genotypes, self.evaluate(genotypes, k_eval), key)

    def init_with_evaluation(
        self, archive: Archive, genotypes: Any, evaluation: Evaluation, key: jax.Array
    ) -> Tuple[MAPElitesState, Dict]:
        """Like an eager :meth:`init` with scores computed by the caller (for evaluations outside JAX).

        Uses the same key schedule as ``init(..., lazy=False)``, so both give the same run for the same scores.
        """
        _, key = jax.random.split(key)
        state, metrics = self._init(archive, genotypes, _as_evaluation(evaluation), key)
        return self.population.place(state), metrics

    # ---------------------------------------------------------------------------------------- #
    def _propose(self, state: MAPElitesState, key: jax.Array) -> Any:
        ask = lambda: self.emitter.ask(state.emitter_state, state.archive, key)
        if state.initial_genotypes is None:
            return ask()
        return jax.lax.cond(state.iteration < 0, lambda: state.initial_genotypes, ask)

    def _apply(self, state, genotypes, evaluation, key, k_emitter):
        archive, result = state.archive.add(
            genotypes, evaluation.descriptors, evaluation.fitnesses, evaluation.extras
        )

        def tell():
            return self.emitter.tell(
                state.emitter_state, archive, genotypes, evaluation.fitnesses, evaluation.descriptors, result
            )

        if state.initial_genotypes is None:
            emitter_state = tell()
        else:  # iteration 0 of a lazy initialisation starts the emitter on the filled archive
            emitter_state = jax.lax.cond(state.iteration < 0, lambda: self.emitter.init(k_emitter, archive), tell)
        state = state.replace(
            archive=archive,
            emitter_state=emitter_state,
            key=key,
            iteration=state.iteration + 1,
            num_evaluations=state.num_evaluations + evaluation.fitnesses.shape[0],
        )
        return state, self._metrics(state)

    def step(self, state: MAPElitesState) -> Tuple[MAPElitesState, Dict]:
        """One iteration (pure; jit it or use :meth:`scan`). Returns ``(state, metrics)``.

        On a state whose initial batch is pending, the iteration evaluates that batch (iteration 0).
        """
        key, k_ask, k_eval = jax.random.split(state.key, 3)
        genotypes = self._propose(state, k_ask)
        evaluation = self.evaluate(genotypes, k_eval)
        return self._apply(state, genotypes, evaluation, key, k_ask)

    def _scan_impl(self, state, num_iterations):
        return jax.lax.scan(lambda s, _: self.step(s), state, None, length=num_iterations)

    def scan(self, state: MAPElitesState, num_iterations: int) -> Tuple[MAPElitesState, Dict]:
        """Run ``num_iterations`` iterations in one compiled ``lax.scan`` (the initial batch first if pending).

        One program is compiled per distinct ``num_iterations``. The input ``state`` is donated (its buffers
        are reused): use only the returned state afterwards. With several ``devices`` the state is first
        placed on them (a no-op when it already is; a state loaded from a checkpoint is not), so that every
        call sees the same placement and nothing recompiles.

        Returns:
            ``(state, metrics)`` where each metric has shape ``(num_iterations,)``.

        Raises:
            ValueError: no evaluate function, or ``num_iterations < 1``.
        """
        if self.evaluate is None:
            raise ValueError("MAPElites.scan needs an evaluate function")
        if int(num_iterations) < 1:
            raise ValueError(f"num_iterations must be positive; got {num_iterations}")
        return self._scan(self.population.place(state), int(num_iterations))

    def run(
        self,
        state: MAPElitesState,
        num_iterations: int,
        chunk_size: int = 50,
        callback: Optional[Callable[[MAPElitesState, Dict[str, np.ndarray]], None]] = None,
    ) -> Tuple[MAPElitesState, Dict[str, np.ndarray]]:
        """Run ``num_iterations`` iterations in compiled chunks of at most ``chunk_size``.

        A pending initial batch is evaluated first, as iteration 0 and a chunk of its own, in addition to the
        ``num_iterations``. After each chunk, ``callback(state, chunk_metrics)`` runs on the host (progress,
        checkpoints). One program is compiled per distinct chunk length: with ``chunk_size=1`` (the choice
        for expensive evaluations such as Brax rollouts, where a host call per iteration costs nothing) a
        single program runs every iteration, the initial batch included.

        Returns:
            ``(state, metrics)`` with every metric a numpy array of shape ``(num_iterations,)``, or
            ``(num_iterations + 1,)`` with iteration 0 first when the initial batch was pending.
        """
        pending = state.pending
        first = 1 if pending else None
        return run_in_chunks(self.scan, state, int(num_iterations) + pending, chunk_size, callback, first)

    # ---------------------------------------------------------------------------------------- #
    def _ask_impl(self, state):
        # Same key schedule as ``step``; ``tell`` splits the key again and advances it.
        _, k_ask, _ = jax.random.split(state.key, 3)
        return self._propose(state, k_ask)

    def ask(self, state: MAPElitesState) -> Tuple[Any, MAPElitesState]:
        """Propose a batch for evaluation outside JAX: ``(genotypes, state)``; pass both to :meth:`tell`.

        The state is returned unchanged (asking twice proposes the same batch); :meth:`tell` advances it.
        A pending initial batch is proposed first.
        """
        return self._ask(state), state

    def _tell_impl(self, state, genotypes, evaluation):
        key, k_ask, _ = jax.random.split(state.key, 3)
        return self._apply(state, genotypes, evaluation, key, k_ask)

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
