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

from qd.algorithms.checks import batch_size, check_not_consumed, checked_evaluate, checked_evaluation, function_name
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

    Metrics (``init``, ``step``, ``tell``: a dict of scalars; ``scan`` / ``run``: one value per iteration),
    with the default ``metrics_fn`` (:func:`qd.archive_metrics` of the archive):

    - ``qd_score`` (float32): sum over elites of ``fitness - qd_offset``;
    - ``coverage`` (float32 in ``[0, 1]``): filled cells / cells of the archive (its own grid or
      centroids, not a ground-truth grid);
    - ``max_fitness``, ``mean_fitness`` (float32): over the elites (``-inf`` and ``0`` when empty);
    - ``num_elites`` (int32);
    - ``num_evaluations`` (int32): candidates evaluated so far, the initial batch included;
    - ``iteration`` (int32): iterations done (``0`` after the initial batch, ``-1`` while it is pending).

    A custom ``metrics_fn`` replaces the first five; ``num_evaluations`` and ``iteration`` are always there.

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
    ):
        for attr in ("batch_size", "init", "ask", "tell"):
            if not hasattr(emitter, attr):
                raise TypeError(f"MAPElites: the emitter {emitter!r} has no {attr!r}; see the emitters package")
        if evaluate is not None and not callable(evaluate):
            raise TypeError(f"MAPElites: evaluate must be a function (genotypes, key) -> Evaluation; got {evaluate!r}")
        self.emitter = emitter
        self.population = PopulationSharding(devices)
        self._source = None if evaluate is None else f"the evaluate function {function_name(evaluate)}"
        self.evaluate = None if evaluate is None else self.population.shard(checked_evaluate(evaluate))
        self.metrics_fn = metrics_fn
        self._init = jax.jit(self._init_impl)
        self._init_lazy = jax.jit(self._init_lazy_impl)
        self._init_and_evaluate = jax.jit(self._init_and_evaluate_impl, compiler_options=compiler_options)
        self._scan = jax.jit(self._scan_impl, static_argnums=1, donate_argnums=0, compiler_options=compiler_options)
        self._ask = jax.jit(self._ask_impl)
        self._tell = jax.jit(self._tell_impl, donate_argnums=0)

    # ---------------------------------------------------------------------------------------- #
    def _evaluate(self, genotypes, key, archive) -> Evaluation:
        """``self.evaluate`` with its output checked against the batch and the archive's ``d`` (trace time)."""
        batch = int(jax.tree_util.tree_leaves(genotypes)[0].shape[0])
        return checked_evaluation(self.evaluate(genotypes, key), batch, archive.descriptor_dim, self._source)

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
            ValueError: no ``evaluate`` function was given; an empty batch (leading axis 0) or leaves with
                different leading axes; ``lazy=True`` with a batch whose structure, shapes or dtypes differ
                from the emitter's proposals; a batch that does not fit the archive; (when the batch is
                evaluated: at once, or at iteration 0 of a lazy start) ``evaluate``'s fitnesses are not
                ``(N,)`` or its descriptors not ``(N, d)`` with the archive's ``d``.
            TypeError: ``evaluate`` returns something other than a :class:`qd.Evaluation`.
        """
        if self.evaluate is None:
            raise ValueError("MAPElites.init needs an evaluate function; use init_with_evaluation")
        batch_size(initial_genotypes, "MAPElites.init")
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
        return self._init_impl(archive, genotypes, self._evaluate(genotypes, k_eval, archive), key)

    def init_with_evaluation(
        self, archive: Archive, genotypes: Any, evaluation: Evaluation, key: jax.Array
    ) -> Tuple[MAPElitesState, Dict]:
        """Like an eager :meth:`init` with scores computed by the caller (for evaluations outside JAX).

        Uses the same key schedule as ``init(..., lazy=False)``, so both give the same run for the same scores.

        Args:
            archive: an empty (or pre-filled) archive with ``d`` descriptor dimensions.
            genotypes: pytree, leading axis ``N >= 1``.
            evaluation: their scores, a :class:`qd.Evaluation` with fitnesses ``(N,)`` and descriptors
                ``(N, d)`` (arrays or numpy; cast to float32).
            key: PRNG key of the run.

        Raises:
            ValueError: an empty batch or leaves with different leading axes; scores of the wrong shape.
            TypeError: ``evaluation`` is not a :class:`qd.Evaluation`.
        """
        batch = batch_size(genotypes, "MAPElites.init_with_evaluation", "genotypes")
        evaluation = checked_evaluation(
            evaluation, batch, archive.descriptor_dim, "MAPElites.init_with_evaluation: the evaluation given"
        )
        _, key = jax.random.split(key)
        state, metrics = self._init(archive, genotypes, evaluation, key)
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
        evaluation = self._evaluate(genotypes, k_eval, state.archive)
        return self._apply(state, genotypes, evaluation, key, k_ask)

    def _scan_impl(self, state, num_iterations):
        return jax.lax.scan(lambda s, _: self.step(s), state, None, length=num_iterations)

    def scan(self, state: MAPElitesState, num_iterations: int) -> Tuple[MAPElitesState, Dict]:
        """Run ``num_iterations`` iterations in one compiled ``lax.scan`` (the initial batch first if pending).

        One program is compiled per distinct ``num_iterations``. The input ``state`` is consumed: its buffers
        are donated to the returned state, so use only the returned state afterwards (passing the old one
        again raises ``ValueError``; copy it first, ``jax.tree_util.tree_map(jnp.copy, state)``, to keep
        it). With several ``devices`` the state is first placed on them (a no-op when it already is; a
        state loaded from a checkpoint is not), so that every call sees the same placement and nothing
        recompiles.

        Returns:
            ``(state, metrics)`` where each metric has shape ``(num_iterations,)`` (keys: see the class).

        Raises:
            ValueError: no evaluate function; ``num_iterations < 1``; ``state`` was consumed by an earlier
                ``run`` / ``scan`` / ``tell``; (at trace time) ``evaluate``'s fitnesses are not ``(B,)`` or its
                descriptors not ``(B, d)`` with the archive's ``d``.
            TypeError: (at trace time) ``evaluate`` returns something other than a :class:`qd.Evaluation`.
        """
        if self.evaluate is None:
            raise ValueError("MAPElites.scan needs an evaluate function")
        if int(num_iterations) < 1:
            raise ValueError(f"num_iterations must be positive; got {num_iterations}")
        check_not_consumed(state, "MAPElites.scan", _CALLS)
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

        The input ``state`` is consumed (its buffers are donated, as in :meth:`scan`): continue from the
        returned state.

        Returns:
            ``(state, metrics)`` with every metric a numpy array of shape ``(num_iterations,)``, or
            ``(num_iterations + 1,)`` with iteration 0 first when the initial batch was pending.

        Raises:
            ValueError: as :meth:`scan` (a consumed ``state`` among them); ``chunk_size < 1``.
        """
        check_not_consumed(state, "MAPElites.run", _CALLS)
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

        Raises:
            ValueError: ``state`` was consumed by an earlier ``run`` / ``scan`` / ``tell``.
        """
        check_not_consumed(state, "MAPElites.ask", _CALLS)
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

        Args:
            state: the state :meth:`ask` returned; consumed (its buffers are donated).
            genotypes: the batch :meth:`ask` proposed (pytree, leading axis ``B``).
            fitnesses: ``(B,)`` real numbers (array, numpy or list; cast to float32).
            descriptors: ``(B, d)`` with the archive's ``d``.
            extras: per-candidate pytree (leading axis ``B``) when the archive stores extras, else None.

        Returns:
            ``(state, metrics)``.

        Raises:
            ValueError: ``state`` was consumed by an earlier ``run`` / ``scan`` / ``tell``; an empty batch or
                genotype leaves with different leading axes; scores whose shapes do not match the batch and
                the archive.
        """
        check_not_consumed(state, "MAPElites.tell", _CALLS)
        batch = batch_size(genotypes, "MAPElites.tell", "genotypes")
        evaluation = checked_evaluation(
            Evaluation(fitnesses, descriptors, extras), batch, state.archive.descriptor_dim,
            "MAPElites.tell: the scores given",
        )
        return self._tell(state, genotypes, evaluation)


_CALLS = "run/scan/tell"
