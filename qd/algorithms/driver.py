"""The algorithm protocol, and the driver that runs any algorithm written to it.

An algorithm is an object that holds only static configuration, with pure, jittable methods on its state
``S`` (a ``flax.struct`` pytree). ``B`` candidates per batch, ``N`` in the initial batch, ``d`` descriptor
dimensions; genotypes are pytrees of arrays with that leading axis::

    init(key, *setup, **setup_kw) -> (S, genotypes (N, ...))   # the state before anything is evaluated,
                                                                 # and the initial batch to evaluate
    ask(S, key) -> (genotypes (B, ...), S)                       # fixed B, structure and dtypes
    tell(S, genotypes, evaluation, key) -> S                     # evaluation: qd.Evaluation, (B,), (B, d)
    archive(S) -> Archive                                        # the archive of record (QD metrics)
    tell_initial(S, genotypes, evaluation, key) -> S             # optional: take an initial batch of any N,
                                                                 #   in a program of its own (default: tell)
    evaluation_descriptor_dim(S) -> int or None                  # optional: the d of evaluate's descriptors
                                                                 #   (default the archive's; None: any, for
                                                                 #   learned spaces that replace them)
    metrics(S) -> {name: scalar}                                 # optional: the algorithm's own metrics
    phases, phase(S) -> int32, plan(S, key) -> S                 # optional: iterations of several kinds
                                                                 #   (see "Phased algorithms" below)

:class:`Driver` composes ``ask -> evaluate -> tell -> metrics`` and owns everything around it, once for
all algorithms: the compiled ``lax.scan`` in chunks with a host callback between them (:meth:`Driver.run`),
the lazy initial batch, population sharding over devices, the task's compiler options, donation (and the
clear error for a reused state), the checks of what ``evaluate`` returns, host-side :meth:`Driver.ask` /
:meth:`Driver.tell` for evaluations outside JAX, and several seeds as one program
(:meth:`Driver.init_seeds`, :meth:`Driver.scan_seeds`, :meth:`Driver.run_seeds`).

Metrics (a dict of scalars per iteration, the same for every algorithm):

- the archive of record's QD metrics, ``metrics_fn(algorithm.archive(S))`` (default
  :func:`qd.metrics.archive_metrics`: ``qd_score``, ``coverage``, ``max_fitness``, ``mean_fitness``,
  ``num_elites``);
- with a ``ground_truth`` (:class:`qd.metrics.GroundTruth`), the exploration metrics over every agent
  evaluated so far: ``gt_coverage``, ``uniformity``, ``reward_areas_found``, ``best_reward_area_<i>``
  (:func:`qd.metrics.exploration_metrics`);
- ``algorithm.metrics(S)``;
- ``num_evaluations`` (int32, candidates evaluated so far) and ``iteration`` (int32: ``0`` once the
  initial batch is in, ``-1`` while it is pending).

Key schedule. ``algorithm.init`` gets ``fold_in(key, 0)`` of the run's key. A lazy start's loop starts from
the run's key itself; an eager start splits it into ``k_eval, rest`` and ``rest`` into ``k_tell, k_run``
(evaluates with ``k_eval``, tells with ``k_tell``, the loop starts from ``k_run``). Every iteration splits
the state's key into ``key, k_ask, k_eval, k_tell``: ``ask`` gets ``k_ask``, ``evaluate`` ``k_eval``,
``tell`` ``k_tell``, and ``key`` is the next state's. Host-side :meth:`Driver.ask` / :meth:`Driver.tell`
use the same split, so they make the same run as :meth:`Driver.scan`. (For MAP-Elites this is the schedule
it had before the driver: the same seed gives the same archive.)

Lazy initial batch. When the initial batch has the structure, shapes and dtypes of ``ask``'s proposals,
``init`` does not evaluate it: it waits in the state (``initial_genotypes``) and iteration 0 of the loop
evaluates it in place of ``ask`` (a ``lax.cond`` on the batch only) and gives it to ``tell``, so an algorithm
whose first batch is special keeps that in its state (MAP-Elites: ``started``) and ``tell_initial`` serves
only eager starts. The evaluation then exists only in the loop program: with chunks of one iteration
(Brax), one program runs the whole run.

Phased algorithms. An algorithm whose iterations are not all alike (SERENE: a novelty-search generation of
200 evaluations, or one emitter step of 12) lists them in ``phases``, a tuple of :class:`Phase`, and says
which one the next iteration runs with ``phase(S) -> () int32`` (an index into ``phases``). Each iteration
is then one ``lax.switch`` over the phases: phase ``i`` asks ``ask(S, key) -> (genotypes (B_i, ...), S,
counted (B_i,) bool)`` with its own static ``B_i``, the driver evaluates them, and ``tell(S, genotypes,
evaluation, counted, key) -> S`` takes them; then the optional ``plan(S, key) -> S`` decides what the next
iteration does (it runs after every iteration whatever its phase, so it is compiled once). Only the ``counted`` rows are evaluations (the others are
padding of a partly used batch: they are evaluated but not counted, and no metric sees them); the
ground-truth coverage sees only the counted rows of phases with ``explores=True`` (SERENE's coverage is the
exploration process's), the per-area rewards every counted row. A phase with ``ask=None`` evaluates nothing
(a finished run). A phased algorithm starts eagerly (``tell_initial``) and its plain ``ask`` / ``tell`` serve
only the shape checks of ``init``; host-side :meth:`Driver.ask` / :meth:`Driver.tell` are not available for it.
Under ``jax.vmap`` the switch would run every phase's branch and keep one; :meth:`Driver.scan_seeds` runs
each phase only when some seed is in it (``_phased_step_seeds``).

A new algorithm is its state, its ``init`` / ``ask`` / ``tell`` / ``archive``, its docstring and its tests::

    @struct.dataclass
    class HillState:
        archive: Archive

    class GaussianHillClimbing:
        '''Mutate uniformly drawn elites (Gaussian, ``sigma``); ``B = batch_size``.'''

        def __init__(self, batch_size: int, sigma: float = 0.1):
            self.batch_size, self.sigma = batch_size, sigma

        def init(self, key, archive, initial_genotypes):
            return HillState(archive), initial_genotypes

        def ask(self, state, key):
            k_pick, k_noise = jax.random.split(key)
            parents = state.archive.sample(k_pick, self.batch_size).genotypes     # (B, D)
            return parents + self.sigma * jax.random.normal(k_noise, parents.shape), state

        def tell(self, state, genotypes, evaluation, key):
            archive, _ = state.archive.add(genotypes, evaluation.descriptors, evaluation.fitnesses)
            return state.replace(archive=archive)

        def archive(self, state):
            return state.archive

    driver = Driver(GaussianHillClimbing(256), task.evaluate)
    state, _ = driver.init(archive, task.initial_genotypes(k1, 256), k2)   # setup..., key
    state, metrics = driver.run(state, 100)                                # iteration 0, then 100
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.algorithms.checks import batch_size, check_not_consumed, checked_evaluate, checked_evaluation, function_name
from qd.algorithms.chunks import run_in_chunks
from qd.archives.base import Archive
from qd.metrics import ExplorationStats, GroundTruth, archive_metrics, exploration_metrics, exploration_observe
from qd.parallel import PopulationSharding
from qd.tasks.base import Evaluation

_CALLS = "run/scan/tell"


class Phase(NamedTuple):
    """One kind of iteration of a phased algorithm (module docstring, "Phased algorithms").

    Attributes:
        name: a short name (``"explore"``).
        ask: ``(S, key) -> (genotypes (B, ...), S, counted (B,) bool)``, or None for an iteration that
            evaluates nothing.
        tell: ``(S, genotypes, evaluation, counted, key) -> S``.
        explores: whether the ground-truth coverage counts this phase's agents.
    """

    name: str
    ask: Optional[Callable] = None
    tell: Optional[Callable] = None
    explores: bool = True


@struct.dataclass
class RunState:
    """The state of a run (a pytree; checkpoint it with :mod:`qd.checkpoint`).

    Attributes of the algorithm's state read through (``state.archive`` is ``state.algo.archive``).

    Attributes:
        algo: the algorithm's state ``S``.
        key: PRNG key of the next iteration.
        iteration: ``int32`` scalar, the last iteration done: ``0`` once the initial batch is in, ``-1``
            while it is pending (``(S,)`` for several seeds).
        num_evaluations: ``int32`` scalar, candidates evaluated so far.
        exploration: ground-truth statistics of every evaluated agent, or None (no ground truth).
        initial_genotypes: the initial batch of a lazy start (evaluated by iteration 0, then kept, unused,
            so that the state keeps one structure); None after an eager start.
    """

    algo: Any
    key: jax.Array
    iteration: jax.Array
    num_evaluations: jax.Array
    exploration: Optional[ExplorationStats] = None
    initial_genotypes: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "algo"), name)

    @property
    def pending(self) -> bool:
        """Whether the initial batch still waits to be evaluated (reads the iteration from the device)."""
        return self.initial_genotypes is not None and bool(np.any(np.asarray(self.iteration) < 0))


def _init_key(key: jax.Array) -> jax.Array:
    """The key ``algorithm.init`` gets (a stream of its own: the loop splits ``key`` itself)."""
    return jax.random.fold_in(key, 0)


def _eager_keys(key: jax.Array) -> Tuple[jax.Array, jax.Array, jax.Array]:
    """``(k_eval, k_tell, k_run)`` of an eager start."""
    k_eval, rest = jax.random.split(key)
    k_tell, k_run = jax.random.split(rest)
    return k_eval, k_tell, k_run


def _leading(tree: Any) -> int:
    return int(jax.tree_util.tree_leaves(tree)[0].shape[0])


def _same_shapes(a: Any, b: Any) -> bool:
    same = lambda x, y: x.shape == y.shape and x.dtype == y.dtype
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and all(
        jax.tree_util.tree_leaves(jax.tree_util.tree_map(same, a, b))
    )


def _unbatched(tree: Any, axes: Any) -> Any:
    """Shapes of one seed's slice of ``tree`` (``axes`` 0) or ``tree`` itself (``axes`` None)."""
    if axes is None:
        return tree
    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), tree)


class Driver:
    """Runs an algorithm of the protocol in the module docstring: ``ask -> evaluate -> tell -> metrics``.

    Args:
        algorithm: an object with ``init``, ``ask``, ``tell`` and ``archive`` (see the module docstring).
        evaluate: ``evaluate(genotypes, key) -> Evaluation`` with fitnesses ``(B,)`` and descriptors
            ``(B, d)``, pure and jittable (a task's ``evaluate``); None when only :meth:`ask` /
            :meth:`tell` are used.
        metrics_fn: ``archive -> {name: scalar}``, the QD metrics of the archive of record.
        ground_truth: a :class:`qd.metrics.GroundTruth` for the exploration metrics (e.g.
            ``GroundTruth.of_task(task)``), or None.
        compiler_options: XLA options of the programs that evaluate (``jax.jit(compiler_options=...)``), e.g.
            a task's ``compiler_options`` (see :mod:`qd.xla_options`); None: XLA's defaults.
        devices: split each batch's evaluation over these devices (``"all"``, a count, or a list of
            ``jax.Device``; see :mod:`qd.parallel`); the rest of the state is replicated on them. None: one.

    Raises:
        TypeError: ``algorithm`` lacks ``init`` / ``ask`` / ``tell`` / ``archive``; ``evaluate`` is not callable.
        ValueError: ``devices`` names more devices than there are.
    """

    def __init__(
        self,
        algorithm: Any,
        evaluate: Optional[Callable[[Any, jax.Array], Evaluation]] = None,
        *,
        metrics_fn: Callable[[Archive], Dict[str, jax.Array]] = archive_metrics,
        ground_truth: Optional[GroundTruth] = None,
        compiler_options: Optional[Dict[str, Any]] = None,
        devices: Any = None,
    ):
        self.name = type(algorithm).__name__ if type(self) is Driver else type(self).__name__
        for attr in ("init", "ask", "tell", "archive"):
            if not callable(getattr(algorithm, attr, None)):
                raise TypeError(f"{self.name}: the algorithm {algorithm!r} has no {attr!r} method (see qd.algorithms.driver)")
        if evaluate is not None and not callable(evaluate):
            raise TypeError(f"{self.name}: evaluate must be a function (genotypes, key) -> Evaluation; got {evaluate!r}")
        self.algorithm = algorithm
        self._phased = getattr(algorithm, "phases", None) is not None
        if self._phased and not callable(getattr(algorithm, "phase", None)):
            raise TypeError(f"{self.name}: the algorithm {algorithm!r} has phases but no phase(S) method")
        self.metrics_fn = metrics_fn
        self.ground_truth = ground_truth
        self.population = PopulationSharding(devices)
        self._source = None if evaluate is None else f"the evaluate function {function_name(evaluate)}"
        self.evaluate = None if evaluate is None else self.population.shard(checked_evaluate(evaluate))
        jit = lambda f, **kw: jax.jit(f, **kw)
        self._init_lazy = jit(self._init_lazy_impl)
        self._init_and_evaluate = jit(self._init_and_evaluate_impl, compiler_options=compiler_options)
        self._init_given = jit(self._init_given_impl)
        self._scan = jit(self._scan_impl, static_argnums=1, donate_argnums=0, compiler_options=compiler_options)
        self._ask = jit(self._ask_impl)
        self._tell = jit(self._tell_impl, donate_argnums=0)
        self._init_seeds = jit(self._init_seeds_impl, static_argnums=(2, 3, 4), compiler_options=compiler_options)
        self._scan_seeds = jit(self._scan_seeds_impl, static_argnums=1, donate_argnums=0, compiler_options=compiler_options)

    # ------------------------------------------------------------------------------------------ #
    # The step, as data
    # ------------------------------------------------------------------------------------------ #
    def _descriptor_dim(self, algo: Any) -> Optional[int]:
        """The ``d`` expected of ``evaluate``'s descriptors: the archive's, or what the algorithm's optional
        ``evaluation_descriptor_dim(S)`` says (None: any; learned descriptor spaces replace the task's)."""
        expected = getattr(self.algorithm, "evaluation_descriptor_dim", None)
        return self.algorithm.archive(algo).descriptor_dim if expected is None else expected(algo)

    def _evaluate(self, genotypes: Any, key: jax.Array, algo: Any) -> Evaluation:
        """``evaluate`` with its output checked against the batch and the archive's ``d`` (at trace time)."""
        d = self._descriptor_dim(algo)
        return checked_evaluation(self.evaluate(genotypes, key), _leading(genotypes), d, self._source)

    def _tell_initial(self, algo, genotypes, evaluation, key):
        tell = getattr(self.algorithm, "tell_initial", self.algorithm.tell)
        return tell(algo, genotypes, evaluation, key)

    def _metrics(self, state: RunState) -> Dict[str, jax.Array]:
        metrics = dict(self.metrics_fn(self.algorithm.archive(state.algo)))
        if state.exploration is not None:
            metrics.update(exploration_metrics(state.exploration))
        own = getattr(self.algorithm, "metrics", None)
        if own is not None:
            metrics.update(own(state.algo))
        metrics["num_evaluations"] = state.num_evaluations
        metrics["iteration"] = state.iteration
        return metrics

    def _observed(self, state: RunState, evaluation: Evaluation) -> Optional[ExplorationStats]:
        return None if state.exploration is None else exploration_observe(state.exploration, evaluation)

    @staticmethod
    def _first(state: RunState) -> Any:
        """Whether this iteration takes the pending initial batch: False (static) after an eager start."""
        return False if state.initial_genotypes is None else state.iteration < 0

    def _propose(self, state: RunState, key: jax.Array, first: Any) -> Tuple[Any, Any]:
        ask = lambda: self.algorithm.ask(state.algo, key)
        if first is False:
            return ask()
        return jax.lax.cond(first, lambda: (state.initial_genotypes, state.algo), ask)

    def _take(self, state, algo, genotypes, evaluation, key, k_tell) -> Tuple[RunState, Dict]:
        # A lazy start's initial batch is told by ``tell`` too: no cond on the (large) algorithm state here.
        state = state.replace(
            algo=self.algorithm.tell(algo, genotypes, evaluation, k_tell),
            key=key,
            iteration=state.iteration + 1,
            num_evaluations=state.num_evaluations + evaluation.fitnesses.shape[0],
            exploration=self._observed(state, evaluation),
        )
        return state, self._metrics(state)

    def _phase_branch(self, phase: Phase, keys):
        key, k_ask, k_eval, k_tell = keys

        def branch(state: RunState) -> RunState:
            if phase.ask is None:
                return state.replace(key=key, iteration=state.iteration + 1)
            genotypes, algo, counted = phase.ask(state.algo, k_ask)
            evaluation = self._evaluate(genotypes, k_eval, algo)
            algo = phase.tell(algo, genotypes, evaluation, counted, k_tell)
            exploration = None
            if state.exploration is not None:
                coverage = counted if phase.explores else jnp.zeros_like(counted)
                exploration = exploration_observe(state.exploration, evaluation, coverage_mask=coverage, counted=counted)
            return state.replace(algo=algo, key=key, iteration=state.iteration + 1, exploration=exploration,
                                 num_evaluations=state.num_evaluations + jnp.sum(counted, dtype=jnp.int32))

        return branch

    def _phase_index(self, state: RunState) -> jax.Array:
        return jnp.clip(self.algorithm.phase(state.algo), 0, len(self.algorithm.phases) - 1)

    def _planned(self, state: RunState, keys: jax.Array) -> RunState:
        plan = getattr(self.algorithm, "plan", None)
        if plan is None:
            return state
        return state.replace(algo=plan(state.algo, jax.random.fold_in(keys[3], 1)))

    def _phased_step(self, state: RunState) -> Tuple[RunState, Dict]:
        keys = jax.random.split(state.key, 4)
        branches = [self._phase_branch(p, keys) for p in self.algorithm.phases]
        state = jax.lax.switch(self._phase_index(state), branches, state)
        state = self._planned(state, keys)  # after the switch: compiled once, not once per phase
        return state, self._metrics(state)

    def _phased_step_seeds(self, states: RunState) -> Tuple[RunState, Dict]:
        """:meth:`_phased_step` of ``S`` seeds at once, each running its own phase. ``jax.vmap`` of the switch
        would run every phase's branch for every seed and keep one (SERENE: a 200-evaluation novelty generation
        in every 12-evaluation emitter step); here each phase runs, vmapped over all seeds, only when some seed
        is in it (a ``lax.cond`` on ``any``), and only those seeds keep its result. Per seed the computation is
        the switch's branch, so the runs equal the separate ones."""
        keys = jax.vmap(lambda k: jax.random.split(k, 4))(states.key)
        index = jax.vmap(self._phase_index)(states)
        for i, phase in enumerate(self.algorithm.phases):
            def run(s, i=i, phase=phase):
                new = jax.vmap(lambda st, ks: self._phase_branch(phase, ks)(st))(s, keys)
                mine = index == i
                keep = lambda a, b: jnp.where(mine.reshape(mine.shape + (1,) * (a.ndim - 1)), a, b)
                return jax.tree_util.tree_map(keep, new, s)

            states = jax.lax.cond(jnp.any(index == i), run, lambda s: s, states)
        states = jax.vmap(self._planned)(states, keys)
        return states, jax.vmap(self._metrics)(states)

    def _step(self, state: RunState, first: Any) -> Tuple[RunState, Dict]:
        if self._phased:
            return self._phased_step(state)
        key, k_ask, k_eval, k_tell = jax.random.split(state.key, 4)
        genotypes, algo = self._propose(state, k_ask, first)
        evaluation = self._evaluate(genotypes, k_eval, algo)
        return self._take(state, algo, genotypes, evaluation, key, k_tell)

    def step(self, state: RunState) -> Tuple[RunState, Dict]:
        """One iteration, pure (jit it, or use :meth:`scan`): ``(state, metrics)``. On a state whose initial
        batch is pending, the iteration evaluates that batch (iteration 0)."""
        return self._step(state, self._first(state))

    # ------------------------------------------------------------------------------------------ #
    # Starting a run
    # ------------------------------------------------------------------------------------------ #
    def _run_state(self, algo, key, iteration, evaluations, pending=None) -> RunState:
        return RunState(
            algo=algo,
            key=key,
            iteration=jnp.asarray(iteration, jnp.int32),
            num_evaluations=jnp.asarray(evaluations, jnp.int32),
            exploration=None if self.ground_truth is None else self.ground_truth.init(),
            initial_genotypes=pending,
        )

    def _init_lazy_impl(self, key, args, kwargs):
        algo, genotypes = self.algorithm.init(_init_key(key), *args, **kwargs)
        state = self._run_state(algo, key, -1, 0, pending=genotypes)
        return state, self._metrics(state)

    def _start(self, algo, genotypes, evaluation, k_tell, k_run):
        state = self._run_state(self._tell_initial(algo, genotypes, evaluation, k_tell), k_run, 0, _leading(genotypes))
        state = state.replace(exploration=self._observed(state, evaluation))
        return state, self._metrics(state)

    def _init_and_evaluate_impl(self, key, args, kwargs):
        algo, genotypes = self.algorithm.init(_init_key(key), *args, **kwargs)
        k_eval, k_tell, k_run = _eager_keys(key)
        return self._start(algo, genotypes, self._evaluate(genotypes, k_eval, algo), k_tell, k_run)

    def _init_given_impl(self, key, args, kwargs, evaluation):
        algo, genotypes = self.algorithm.init(_init_key(key), *args, **kwargs)
        _, k_tell, k_run = _eager_keys(key)
        return self._start(algo, genotypes, evaluation, k_tell, k_run)

    def _initial_batch(self, key, args, kwargs, where: str, name: str = "initial_genotypes") -> Tuple[int, bool, int]:
        """``(N, lazy possible, d)`` of what ``algorithm.init`` returns (traced, nothing compiles).

        Raises:
            ValueError: an empty initial batch, or leaves that disagree on ``N``.
        """
        def shapes(key, args, kwargs):
            algo, genotypes = self.algorithm.init(key, *args, **kwargs)
            proposal, _ = self.algorithm.ask(algo, key)
            d = self._descriptor_dim(algo)
            return genotypes, proposal, None if d is None else jnp.zeros((d,))

        genotypes, proposal, d = jax.eval_shape(shapes, key, tuple(args), kwargs)
        return batch_size(genotypes, where, name), _same_shapes(genotypes, proposal), None if d is None else int(d.shape[0])

    def _lazy(self, lazy: Optional[bool], matches: bool, where: str) -> bool:
        if self._phased:
            if lazy:
                raise ValueError(f"{where}: a phased algorithm starts eagerly (lazy=True is not available)")
            matches, lazy = False, False
        if lazy and not matches:
            raise ValueError(
                f"{where}: lazy initialisation needs an initial batch shaped like the algorithm's proposals "
                "(ask's batch size, pytree structure and dtypes)"
            )
        lazy = matches if lazy is None else bool(lazy)
        if not lazy and self.evaluate is None:
            raise ValueError(f"{where} needs an evaluate function to evaluate the initial batch; use init_with_evaluation")
        return lazy

    def init(self, *args: Any, lazy: Optional[bool] = None, **kwargs: Any) -> Tuple[RunState, Dict]:
        """Start a run: ``init(*setup, key, lazy=None, **setup_kw)``, the algorithm's setup then the run's key
        (for MAP-Elites ``init(archive, initial_genotypes, key)``).

        Args:
            args: what ``algorithm.init`` takes after its key, then the PRNG key of the run.
            lazy: True: keep the initial batch for iteration 0 to evaluate (compiled once, in the loop);
                False: evaluate and tell it now, in a program of its own. None: lazy when the batch is
                shaped like ``ask``'s proposals.
            kwargs: keyword arguments of ``algorithm.init``.

        Returns:
            ``(state, metrics)``; after a lazy start the metrics are those of the untouched state with
            ``iteration == -1``, and the initial batch's come with iteration 0.

        Raises:
            ValueError: an empty initial batch (leading axis 0) or leaves with different leading axes;
                ``lazy=True`` with a batch not shaped like the proposals; an eager start without ``evaluate``;
                (when the batch is evaluated) ``evaluate``'s fitnesses are not ``(N,)`` or its descriptors
                not ``(N, d)`` with the archive's ``d``.
            TypeError: ``evaluate`` returns something other than a :class:`qd.Evaluation`.
        """
        *args, key = args
        where = f"{self.name}.init"
        _, matches, _ = self._initial_batch(key, args, kwargs, where)
        impl = self._init_lazy if self._lazy(lazy, matches, where) else self._init_and_evaluate
        state, metrics = impl(key, tuple(args), kwargs)
        return self.population.place(state), metrics

    def init_with_evaluation(self, *args: Any, **kwargs: Any) -> Tuple[RunState, Dict]:
        """An eager start with the initial batch's scores computed by the caller (evaluations outside JAX):
        ``init_with_evaluation(*setup, evaluation, key, **setup_kw)`` (MAP-Elites:
        ``(archive, genotypes, evaluation, key)``); the same key schedule as ``init(..., lazy=False)``.

        Args:
            args: ``algorithm.init``'s setup; then a :class:`qd.Evaluation` of the initial batch (fitnesses
                ``(N,)``, descriptors ``(N, d)``; arrays or numpy, cast to float32); then the run's key.

        Raises:
            ValueError: an empty initial batch or leaves with different leading axes; scores of the wrong shape.
            TypeError: ``evaluation`` is not a :class:`qd.Evaluation`.
        """
        *args, evaluation, key = args
        where = f"{self.name}.init_with_evaluation"
        n, _, d = self._initial_batch(key, args, kwargs, where, "genotypes")
        evaluation = checked_evaluation(evaluation, n, d, f"{where}: the evaluation given")
        state, metrics = self._init_given(key, tuple(args), kwargs, evaluation)
        return self.population.place(state), metrics

    # ------------------------------------------------------------------------------------------ #
    # The loop
    # ------------------------------------------------------------------------------------------ #
    def _scan_impl(self, state, num_iterations):
        return jax.lax.scan(lambda s, _: self._step(s, self._first(s)), state, None, length=num_iterations)

    def _check_loop(self, state, num_iterations, where: str) -> int:
        if self.evaluate is None:
            raise ValueError(f"{where} needs an evaluate function")
        if int(num_iterations) < 1:
            raise ValueError(f"num_iterations must be positive; got {num_iterations}")
        check_not_consumed(state, where, _CALLS)
        return int(num_iterations)

    def scan(self, state: RunState, num_iterations: int) -> Tuple[RunState, Dict]:
        """``num_iterations`` iterations in one compiled ``lax.scan`` (the pending initial batch first).

        One program is compiled per distinct ``num_iterations``. The input ``state`` is consumed: its buffers
        are donated to the returned state (copy it first, ``jax.tree_util.tree_map(jnp.copy, state)``, to
        keep it). With several ``devices`` the state is first placed on them (a no-op when it already is),
        so that every call sees the same placement and nothing recompiles.

        Returns:
            ``(state, metrics)``, each metric of shape ``(num_iterations,)``.

        Raises:
            ValueError: no evaluate function; ``num_iterations < 1``; ``state`` was consumed by an earlier
                run / scan / tell; (at trace time) ``evaluate``'s fitnesses are not ``(B,)`` or its
                descriptors not ``(B, d)`` with the archive's ``d``.
            TypeError: (at trace time) ``evaluate`` returns something other than a :class:`qd.Evaluation`.
        """
        n = self._check_loop(state, num_iterations, f"{self.name}.scan")
        return self._scan(self.population.place(state), n)

    def program_key(self, state: RunState, num_iterations: int, seeds: bool = False) -> str:
        """A fingerprint of the program :meth:`scan` (``seeds``: :meth:`scan_seeds`) compiles for ``state``
        and ``num_iterations``: a hash of its lowered text and of the state's structure.

        Two drivers with the same key compile the same program: either runs the other's states. Settings that
        live in the state (SERENE's phase scheduler rule) leave the key unchanged, so ``qd bench`` runs such
        configurations with one compiled program. Costs a trace and a lowering, not a compilation (a later
        :meth:`scan` of the same arguments reuses the trace).

        Raises:
            ValueError: as :meth:`scan`.
        """
        n = self._check_loop(state, num_iterations, f"{self.name}.program_key")
        program = self._scan_seeds if seeds else self._scan
        text = program.lower(self.population.place(state), n).as_text()
        structure = str(jax.tree_util.tree_structure(state))
        return hashlib.sha256((text + structure).encode()).hexdigest()

    def run(
        self,
        state: RunState,
        num_iterations: int,
        chunk_size: int = 50,
        callback: Optional[Callable[[RunState, Dict[str, np.ndarray]], None]] = None,
    ) -> Tuple[RunState, Dict[str, np.ndarray]]:
        """``num_iterations`` iterations in compiled chunks of at most ``chunk_size``, and
        ``callback(state, chunk_metrics)`` on the host after each chunk (progress, checkpoints).

        A pending initial batch is evaluated first, as iteration 0 and a chunk of its own, in addition to the
        ``num_iterations``. One program is compiled per distinct chunk length: with ``chunk_size=1`` one
        program runs every iteration, the initial batch included. The input ``state`` is consumed (as in
        :meth:`scan`): continue from the returned state.

        Returns:
            ``(state, metrics)``, every metric a numpy array of shape ``(num_iterations,)``, or
            ``(num_iterations + 1,)`` with iteration 0 first when the initial batch was pending.

        Raises:
            ValueError: as :meth:`scan`; ``chunk_size < 1``.
        """
        check_not_consumed(state, f"{self.name}.run", _CALLS)
        pending = state.pending
        first = 1 if pending else None
        return run_in_chunks(self.scan, state, int(num_iterations) + pending, chunk_size, callback, first)

    # ------------------------------------------------------------------------------------------ #
    # Evaluations outside JAX
    # ------------------------------------------------------------------------------------------ #
    def _host_side(self, where: str) -> None:
        if self._phased:
            raise ValueError(f"{where}: host-side ask/tell is not available for a phased algorithm "
                             f"({type(self.algorithm).__name__}); use run or scan")

    def _ask_impl(self, state):
        _, k_ask, _, _ = jax.random.split(state.key, 4)
        genotypes, algo = self._propose(state, k_ask, self._first(state))
        return genotypes, state.replace(algo=algo)

    def ask(self, state: RunState) -> Tuple[Any, RunState]:
        """Propose a batch for evaluation outside JAX: ``(genotypes (B, ...), state)``; pass both to :meth:`tell`.

        A pending initial batch is proposed first. The key is not advanced (:meth:`tell` advances it), so
        asking again proposes the same batch. The input state is not consumed (the returned one is a new
        copy, so host code that ignores it keeps working); :meth:`tell` consumes the one it is given.

        Raises:
            ValueError: ``state`` was consumed by an earlier run / scan / tell.
        """
        check_not_consumed(state, f"{self.name}.ask", _CALLS)
        self._host_side(f"{self.name}.ask")
        return self._ask(self.population.place(state))

    def _tell_impl(self, state, genotypes, evaluation):
        key, _, _, k_tell = jax.random.split(state.key, 4)
        return self._take(state, state.algo, genotypes, evaluation, key, k_tell)

    def tell(
        self, state: RunState, genotypes: Any, fitnesses: Any, descriptors: Any = None, extras: Any = None
    ) -> Tuple[RunState, Dict]:
        """Take the scores of the batch :meth:`ask` proposed: ``tell(state, genotypes, evaluation)`` or
        ``tell(state, genotypes, fitnesses, descriptors, extras=None)``.

        Args:
            state: the state :meth:`ask` returned; consumed (its buffers are donated).
            genotypes: the batch :meth:`ask` proposed (pytree, leading axis ``B``).
            fitnesses: a :class:`qd.Evaluation`, or ``(B,)`` real numbers (array, numpy or list; float32).
            descriptors: ``(B, d)`` with the archive's ``d`` (when ``fitnesses`` is not an Evaluation).
            extras: per-candidate pytree (leading axis ``B``), e.g. ``gt_descriptor`` / ``reward_area``.

        Returns:
            ``(state, metrics)``.

        Raises:
            ValueError: ``state`` was consumed; an empty batch or genotype leaves with different leading axes;
                scores whose shapes do not match the batch and the archive.
        """
        where = f"{self.name}.tell"
        check_not_consumed(state, where, _CALLS)
        self._host_side(where)
        n = batch_size(genotypes, where, "genotypes")
        evaluation = fitnesses if descriptors is None else Evaluation(fitnesses, descriptors, extras)
        evaluation = checked_evaluation(evaluation, n, self._descriptor_dim(state.algo), f"{where}: the scores given")
        return self._tell(state, genotypes, evaluation)

    # ------------------------------------------------------------------------------------------ #
    # Several seeds, one program
    # ------------------------------------------------------------------------------------------ #
    def _init_seeds_impl(self, keys, args, lazy, seed_axes, kw_names, *kw_values):
        kwargs = dict(zip(kw_names, kw_values))
        one = self._init_lazy_impl if lazy else self._init_and_evaluate_impl
        return jax.vmap(lambda k, a: one(k, a, kwargs), in_axes=(0, seed_axes))(keys, args)

    def init_seeds(
        self, *args: Any, seed_axes: Optional[Sequence[Optional[int]]] = None, lazy: Optional[bool] = None, **kwargs: Any
    ) -> Tuple[RunState, Dict]:
        """Start ``S`` runs of one configuration as one program: ``init_seeds(*setup, keys, ...)``, with
        ``keys`` of shape ``(S,)``; run ``s`` is ``init(*setup_s, keys[s])``.

        Args:
            args: ``algorithm.init``'s setup, then the keys ``(S,)``.
            seed_axes: for each setup argument, ``0`` when it holds one value per seed (leading axis ``S``,
                e.g. each seed's initial genotypes ``(S, N, ...)``), None when all seeds share it (default:
                all shared).
            lazy: as in :meth:`init`.
            kwargs: keyword arguments of ``algorithm.init``, shared by all seeds.

        Returns:
            ``(states, metrics)``: every leaf with a leading axis ``S``.

        Raises:
            ValueError: as :meth:`init`; ``seed_axes`` of another length than the setup.
        """
        *args, keys = args
        axes = tuple(seed_axes) if seed_axes is not None else (None,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"{self.name}.init_seeds: seed_axes has {len(axes)} entries for {len(args)} setup arguments")
        where = f"{self.name}.init_seeds"
        one = tuple(_unbatched(a, ax) for a, ax in zip(args, axes))
        _, matches, _ = self._initial_batch(_unbatched(keys, 0), one, kwargs, where)
        lazy = self._lazy(lazy, matches, where)
        names = tuple(sorted(kwargs))
        states, metrics = self._init_seeds(keys, tuple(args), lazy, axes, names, *(kwargs[k] for k in names))
        return self.population.place(states), metrics

    def _scan_seeds_impl(self, states, num_iterations):
        def body(s, _):
            if self._phased:
                return self._phased_step_seeds(s)
            first = False if s.initial_genotypes is None else s.iteration[0] < 0  # every seed at one iteration
            return jax.vmap(self._step, in_axes=(0, None))(s, first)

        states, metrics = jax.lax.scan(body, states, None, length=num_iterations)
        return states, jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), metrics)

    def scan_seeds(self, states: RunState, num_iterations: int) -> Tuple[RunState, Dict]:
        """:meth:`scan` of the ``S`` runs :meth:`init_seeds` started, as one program (``jax.vmap`` of the step).

        Returns:
            ``(states, metrics)``, each metric of shape ``(S, num_iterations)``.

        Raises:
            ValueError: as :meth:`scan`.
        """
        n = self._check_loop(states, num_iterations, f"{self.name}.scan_seeds")
        return self._scan_seeds(self.population.place(states), n)

    def run_seeds(
        self, states: RunState, num_iterations: int, chunk_size: int = 50, callback: Optional[Callable] = None
    ) -> Tuple[RunState, Dict[str, np.ndarray]]:
        """:meth:`run` of the ``S`` runs :meth:`init_seeds` started: compiled chunks of :meth:`scan_seeds`,
        ``callback(states, chunk_metrics)`` between them.

        Returns:
            ``(states, metrics)``, each metric a numpy array ``(S, num_iterations)`` (``+ 1``, iteration 0
            first, when the initial batches were pending).

        Raises:
            ValueError: as :meth:`scan`; ``chunk_size < 1``.
        """
        check_not_consumed(states, f"{self.name}.run_seeds", _CALLS)
        pending = states.pending
        first = 1 if pending else None
        return run_in_chunks(self.scan_seeds, states, int(num_iterations) + pending, chunk_size, callback, first, axis=1)
