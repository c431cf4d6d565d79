"""Novelty search (Lehman & Stanley 2011) as run by SERENE / STAX, and the random-search floor.

One generation of :class:`NoveltySearch` (all on device, jittable; ``P`` parents, ``O = P * c`` offspring):

1. each parent makes ``c`` children (default 2): ``genome + N(0, sigma^2)`` (sigma 0.05), clipped to the
   genotype bounds;
2. evaluate the offspring; every evaluated agent updates the ground-truth exploration statistics
   (:func:`qd.metrics.exploration_update`: 50x50 coverage, uniformity, reward per area);
3. optional **reward archive** (SERENE's ``R``): offspring with a positive reward are stored in it, and it
   joins the novelty reference set, pushing the search away from reward areas already found;
4. novelty of ``P u O``: mean distance to the ``k`` (15) nearest neighbours in the reference set
   ``P u O u A (u R)``, each agent's own slot excluded (not "drop the first neighbour", see
   :mod:`qd.novelty`);
5. the novelty archive ``A`` (an :class:`qd.UnstructuredArchive`, with whatever insertion policy it was
   created with: SERENE/STAX use ``"random"`` with 5 per generation) receives the offspring, with their
   novelty against the full reference set;
6. (mu + lambda) survival: the ``P`` most novel of ``P u O`` become the next parents.

:meth:`NoveltySearch.scan` runs generations in one ``lax.scan``; :meth:`NoveltySearch.run` calls it in
chunks; both consume (donate) their input state. The metric keys of each algorithm are listed in its class
docstring: the exploration is measured on the ground truth (``gt_coverage``, ...), and the novelty archive's
own fill is ``novelty_archive_fill``, never "coverage" (a novelty archive of 16k slots filled 5 per
generation is 1.5% full when the ground truth is 92% covered).

Tasks must put ``"gt_descriptor"`` (``(B, 2)``) and ``"reward_area"`` (``(B,)``) in ``Evaluation.extras``
for the exploration metrics (the sparse tasks do); otherwise the descriptor and "no area" are used.
Genotypes are arrays or pytrees with a leading batch axis.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.algorithms.checks import (
    batch_size,
    check_clip,
    check_not_consumed,
    check_positive,
    check_positive_int,
    checked_evaluate,
    checked_evaluation,
    function_name,
)
from qd.algorithms.chunks import run_in_chunks
from qd.archives.base import Archive
from qd.metrics import ExplorationStats, archive_metrics, exploration_init, exploration_metrics, exploration_update
from qd.novelty import DEFAULT_K, knn_novelty
from qd.parallel import PopulationSharding
from qd.selection import truncation_selection
from qd.tasks.base import Evaluation


def _batch_size(tree) -> int:
    return int(jax.tree_util.tree_leaves(tree)[0].shape[0])


def _checked_evaluate(evaluate: Any, where: str) -> Tuple[Callable, str]:
    if not callable(evaluate):
        raise TypeError(f"{where}: evaluate must be a function (genotypes, key) -> Evaluation; got {evaluate!r}")
    return checked_evaluate(evaluate), f"the evaluate function {function_name(evaluate)}"


def _check_reward_areas(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{where}: num_reward_areas must be an integer >= 0; got {value!r}")
    return int(value)


def _ground_truth(evaluation: Evaluation):
    extras = evaluation.extras if isinstance(evaluation.extras, dict) else {}
    gt = extras.get("gt_descriptor", evaluation.descriptors)
    area = extras.get("reward_area", jnp.full(evaluation.fitnesses.shape, -1, jnp.int32))
    return gt, area


@struct.dataclass
class NoveltySearchState:
    """Everything that changes during a novelty search run (a pytree).

    Attributes:
        population: genotypes of the ``P`` parents.
        descriptors: ``(P, d)`` their behaviour descriptors.
        fitnesses: ``(P,)`` their rewards.
        archive: the novelty archive ``A`` (:class:`qd.UnstructuredArchive`).
        reward_archive: the reward archive ``R`` or None.
        exploration: ground-truth statistics of every evaluated agent.
        key, iteration (generations done), num_evaluations.
    """

    population: Any
    descriptors: jax.Array
    fitnesses: jax.Array
    archive: Archive
    reward_archive: Optional[Archive]
    exploration: ExplorationStats
    key: jax.Array
    iteration: jax.Array
    num_evaluations: jax.Array


class NoveltySearch:
    """(mu + lambda) novelty search.

    Args:
        evaluate: ``evaluate(genotypes, key) -> Evaluation`` (pure, jittable).
        ground_truth_bounds: ``(lower, upper)`` of the 2-D ground-truth grid (the task's descriptor bounds).
        num_reward_areas: ``A``, the number of reward areas tracked by the metrics.
        offspring_per_parent: ``c`` (2 in SERENE: 100 parents, 200 evaluations per generation).
        sigma: Gaussian mutation standard deviation (0.05).
        genotype_bounds: ``(low, high)`` clip of every gene, or None (SERENE: ``(-5, 5)``).
        num_neighbors: ``k`` of the novelty (15).
        coverage_resolution: cells per side of the ground-truth grid (50).
        compiler_options: XLA options for the programs that evaluate (e.g. a task's ``compiler_options``, see
            :mod:`qd.xla_options`); None: XLA's defaults.
        devices: split each generation's evaluation over these devices, the rest of the state replicated on
            them (see :class:`qd.MAPElites` and :mod:`qd.parallel`); None: one device.

    Metrics (``init`` / ``step``: a dict of scalars; ``scan`` / ``run``: one value per generation):

    - ``gt_coverage`` (float32 in ``[0, 1]``): cells of the ``coverage_resolution``-squared ground-truth grid
      reached by any agent evaluated so far (the exploration measure to compare methods by);
    - ``uniformity`` (float32), ``reward_areas_found`` (int32), ``best_reward_area_<i>`` (float32, one per
      reward area ``i < num_reward_areas``): see :func:`qd.metrics.exploration_metrics`;
    - ``novelty_archive_size`` (int32): agents stored in the novelty archive ``A``;
    - ``novelty_archive_fill`` (float32 in ``[0, 1]``): ``novelty_archive_size / capacity`` (how full ``A``
      is; not a coverage of anything);
    - ``novelty_archive_overflow`` (int32): candidates ``A`` dropped because it was full (0 for archives
      that do not count them);
    - ``reward_archive_size`` (int32), only with a reward archive;
    - ``mean_population_fitness`` (float32): mean reward of the ``P`` parents;
    - ``num_evaluations`` (int32): agents evaluated so far, the initial population included;
    - ``iteration`` (int32): generations done (0 after ``init``).

    Raises:
        ValueError: ``offspring_per_parent``, ``num_neighbors`` or ``coverage_resolution`` is not a positive
            integer; ``sigma`` is not positive and finite; ``genotype_bounds`` is not None nor ``(low, high)``
            with ``low < high``; ``num_reward_areas < 0``; ``ground_truth_bounds`` is not 2-D.
        TypeError: ``evaluate`` is not callable.

    Example::

        task = Curling()
        archive = UnstructuredArchive.create(jnp.zeros(task.num_params), 12_800, 2, policy="random")
        ns = NoveltySearch(task.evaluate, task.descriptor_bounds, task.num_reward_areas, genotype_bounds=(-5, 5))
        state, _ = ns.init(archive, task.initial_genotypes(k1, 100), k2)
        state, metrics = ns.run(state, 500)
    """

    def __init__(
        self,
        evaluate: Callable[[Any, jax.Array], Evaluation],
        ground_truth_bounds: Tuple[Sequence[float], Sequence[float]],
        num_reward_areas: int,
        offspring_per_parent: int = 2,
        sigma: float = 0.05,
        genotype_bounds: Optional[Tuple[float, float]] = (-5.0, 5.0),
        num_neighbors: int = DEFAULT_K,
        coverage_resolution: int = 50,
        compiler_options: Optional[Dict[str, Any]] = None,
        devices: Any = None,
    ):
        where = "NoveltySearch"
        self.offspring_per_parent = check_positive_int("NoveltySearch: offspring_per_parent", offspring_per_parent)
        self.sigma = check_positive("NoveltySearch: sigma", sigma)
        self.genotype_bounds = check_clip("NoveltySearch: genotype_bounds", genotype_bounds)
        self.num_neighbors = check_positive_int("NoveltySearch: num_neighbors", num_neighbors)
        self.coverage_resolution = check_positive_int("NoveltySearch: coverage_resolution", coverage_resolution)
        self.num_reward_areas = _check_reward_areas(where, num_reward_areas)
        checked, self._source = _checked_evaluate(evaluate, where)
        self.population = PopulationSharding(devices)
        self.evaluate = self.population.shard(checked)
        self.gt_lower, self.gt_upper = tuple(ground_truth_bounds[0]), tuple(ground_truth_bounds[1])
        exploration_init(self.gt_lower, self.gt_upper, self.num_reward_areas, self.coverage_resolution)  # checks
        self._init = jax.jit(self._init_impl, compiler_options=compiler_options)
        self._scan = jax.jit(self._scan_impl, static_argnums=1, donate_argnums=0, compiler_options=compiler_options)

    # ---------------------------------------------------------------------------------------- #
    def _evaluate(self, genotypes, key, archive) -> Evaluation:
        return checked_evaluation(self.evaluate(genotypes, key), _batch_size(genotypes), archive.descriptor_dim, self._source)

    def _metrics(self, state: NoveltySearchState) -> Dict[str, jax.Array]:
        metrics = dict(exploration_metrics(state.exploration))
        size = state.archive.num_elites
        metrics["novelty_archive_size"] = size
        metrics["novelty_archive_fill"] = (size / state.archive.capacity).astype(jnp.float32)
        overflow = getattr(state.archive, "num_overflow", None)
        metrics["novelty_archive_overflow"] = jnp.zeros((), jnp.int32) if overflow is None else overflow
        if state.reward_archive is not None:
            metrics["reward_archive_size"] = state.reward_archive.num_elites
        metrics["mean_population_fitness"] = jnp.mean(state.fitnesses)
        metrics["num_evaluations"] = state.num_evaluations
        metrics["iteration"] = state.iteration
        return metrics

    def _init_impl(self, archive, reward_archive, genotypes, key):
        k_eval, key = jax.random.split(key)
        evaluation = self._evaluate(genotypes, k_eval, archive)
        gt, area = _ground_truth(evaluation)
        stats = exploration_init(self.gt_lower, self.gt_upper, self.num_reward_areas, self.coverage_resolution)
        stats = exploration_update(stats, gt, evaluation.fitnesses, area)
        if reward_archive is not None:
            reward_archive = self._add_rewarding(reward_archive, genotypes, evaluation)
        state = NoveltySearchState(
            population=genotypes,
            descriptors=evaluation.descriptors.astype(jnp.float32),
            fitnesses=evaluation.fitnesses.astype(jnp.float32),
            archive=archive,
            reward_archive=reward_archive,
            exploration=stats,
            key=key,
            iteration=jnp.zeros((), jnp.int32),
            num_evaluations=jnp.asarray(_batch_size(genotypes), jnp.int32),
        )
        return state, self._metrics(state)

    def init(
        self, archive: Archive, initial_genotypes: Any, key: jax.Array, reward_archive: Optional[Archive] = None
    ) -> Tuple[NoveltySearchState, Dict]:
        """Evaluate the initial population (``P`` genotypes; SERENE: 100 of ``N(0, 1)`` clipped).

        Args:
            archive: an empty novelty archive (any archive accepting ``add(..., novelty=...)``; normally a
                :class:`qd.UnstructuredArchive`).
            initial_genotypes: pytree with leading axis ``P``.
            key: PRNG key.
            reward_archive: optional second reference set (SERENE's reward archive), an empty
                :class:`qd.UnstructuredArchive`; rewarding agents are stored in it (fitness > 0).

        Returns:
            ``(state, metrics)`` (keys: see the class docstring).

        Raises:
            ValueError: an empty population (leading axis 0) or leaves with different leading axes; (at trace
                time) ``evaluate``'s fitnesses are not ``(P,)`` or its descriptors not ``(P, d)`` with the
                archive's ``d``.
            TypeError: (at trace time) ``evaluate`` returns something other than a :class:`qd.Evaluation`.
        """
        batch_size(initial_genotypes, "NoveltySearch.init")
        state, metrics = self._init(archive, reward_archive, initial_genotypes, key)
        return self.population.place(state), metrics

    @staticmethod
    def _add_rewarding(reward_archive, genotypes, evaluation):
        # Non-rewarding agents get a -inf fitness, which every archive rejects.
        fit = jnp.where(evaluation.fitnesses > 0, evaluation.fitnesses, -jnp.inf)
        batch = fit.shape[0]
        reward_archive, _ = reward_archive.add(
            genotypes, evaluation.descriptors, fit, evaluation.extras if reward_archive.extras is not None else None,
            novelty=jnp.full((batch,), jnp.inf),
        )
        return reward_archive

    # ---------------------------------------------------------------------------------------- #
    def step(self, state: NoveltySearchState) -> Tuple[NoveltySearchState, Dict]:
        """One generation (pure; see the module docstring). Returns ``(state, metrics)``."""
        key, k_mut, k_eval, k_arch = jax.random.split(state.key, 4)
        c = self.offspring_per_parent
        parents = jax.tree_util.tree_map(lambda x: jnp.repeat(x, c, axis=0), state.population)
        leaves, treedef = jax.tree_util.tree_flatten(parents)
        keys = jax.random.split(k_mut, len(leaves))
        children = [x + self.sigma * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
        if self.genotype_bounds is not None:
            low, high = self.genotype_bounds
            children = [jnp.clip(x, low, high) for x in children]
        offspring = jax.tree_util.tree_unflatten(treedef, children)

        evaluation = self._evaluate(offspring, k_eval, state.archive)
        gt, area = _ground_truth(evaluation)
        stats = exploration_update(state.exploration, gt, evaluation.fitnesses, area)
        reward_archive = state.reward_archive
        if reward_archive is not None:
            reward_archive = self._add_rewarding(reward_archive, offspring, evaluation)

        # Novelty of P u O against P u O u A (u R); each agent's own row is excluded.
        pop_size = state.descriptors.shape[0]
        desc = jnp.concatenate([state.descriptors, evaluation.descriptors.astype(jnp.float32)])
        refs = [desc, state.archive.descriptors]
        masks = [jnp.ones((desc.shape[0],), bool), state.archive.filled]
        if reward_archive is not None:
            refs.append(reward_archive.descriptors)
            masks.append(reward_archive.filled)
        novelty = knn_novelty(
            desc,
            jnp.concatenate(refs),
            jnp.concatenate(masks),
            self.num_neighbors,
            exclude=jnp.arange(desc.shape[0], dtype=jnp.int32),
        )
        archive, _ = state.archive.add(
            offspring,
            evaluation.descriptors,
            evaluation.fitnesses,
            evaluation.extras if state.archive.extras is not None else None,
            novelty=novelty[pop_size:],
            key=k_arch,
        )

        survivors = truncation_selection(novelty, pop_size)
        everyone = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), state.population, offspring)
        fit = jnp.concatenate([state.fitnesses, evaluation.fitnesses.astype(jnp.float32)])
        state = state.replace(
            population=jax.tree_util.tree_map(lambda x: x[survivors], everyone),
            descriptors=desc[survivors],
            fitnesses=fit[survivors],
            archive=archive,
            reward_archive=reward_archive,
            exploration=stats,
            key=key,
            iteration=state.iteration + 1,
            num_evaluations=state.num_evaluations + evaluation.fitnesses.shape[0],
        )
        return state, self._metrics(state)

    def _scan_impl(self, state, num_iterations):
        return jax.lax.scan(lambda s, _: self.step(s), state, None, length=num_iterations)

    def scan(self, state: NoveltySearchState, num_iterations: int) -> Tuple[NoveltySearchState, Dict]:
        """``num_iterations`` generations in one compiled ``lax.scan``.

        The input ``state`` is consumed: its buffers are donated to the returned state, so continue from the
        returned one (copy it first, ``jax.tree_util.tree_map(jnp.copy, state)``, to keep it).

        Returns:
            ``(state, metrics)``, each metric of shape ``(num_iterations,)`` (keys: see the class docstring).

        Raises:
            ValueError: ``num_iterations < 1``; ``state`` was consumed by an earlier ``run`` / ``scan``.
        """
        if int(num_iterations) < 1:
            raise ValueError(f"num_iterations must be positive; got {num_iterations}")
        check_not_consumed(state, "NoveltySearch.scan")
        return self._scan(self.population.place(state), int(num_iterations))

    def run(self, state, num_iterations: int, chunk_size: int = 50, callback=None):
        """Generations in compiled chunks; ``callback(state, chunk_metrics)`` between chunks.

        The input ``state`` is consumed (donated, as in :meth:`scan`): continue from the returned state.

        Returns:
            ``(state, metrics)`` with numpy arrays of shape ``(num_iterations,)``.

        Raises:
            ValueError: as :meth:`scan`; ``chunk_size < 1``.
        """
        check_not_consumed(state, "NoveltySearch.run")
        return run_in_chunks(self.scan, state, num_iterations, chunk_size, callback)


# ============================================================================================= #
@struct.dataclass
class RandomSearchState:
    """State of :class:`RandomSearch`: an archive every batch is offered to, and exploration statistics."""

    archive: Archive
    exploration: ExplorationStats
    key: jax.Array
    iteration: jax.Array
    num_evaluations: jax.Array


class RandomSearch:
    """Random search, the floor of every exploration comparison: each generation evaluates ``batch_size``
    fresh random genotypes (``sample(key, n)``, e.g. a task's ``initial_genotypes``), offers them to an
    archive (any: a grid on the ground truth gives the usual picture) and updates the exploration metrics.

    Args:
        evaluate: the task's evaluation.
        sample: ``sample(key, n) -> genotypes`` (pytree, leading axis ``n``).
        batch_size: ``B``, evaluations per generation (a positive integer).
        ground_truth_bounds, num_reward_areas, coverage_resolution, compiler_options, devices: as in
            :class:`NoveltySearch`.

    Metrics (``init`` / ``step``: a dict of scalars; ``scan`` / ``run``: one value per generation):

    - the QD metrics of the archive every agent is offered to, with the names and meanings they have in
      :class:`qd.MAPElites`: ``qd_score``, ``coverage`` (filled cells / cells of *that* archive: equal to
      ``gt_coverage`` only for a ``coverage_resolution``-squared grid over the ground-truth bounds of a task
      whose descriptor is the ground truth), ``max_fitness``, ``mean_fitness``, ``num_elites``;
    - ``gt_coverage``, ``uniformity``, ``reward_areas_found``, ``best_reward_area_<i>``: as in
      :class:`NoveltySearch` (every agent evaluated so far, on the ground-truth grid);
    - ``num_evaluations`` (int32): ``B * (iteration + 1)``; ``iteration`` (int32): generations done after
      ``init`` (which evaluates generation 0).

    Raises:
        ValueError: ``batch_size`` or ``coverage_resolution`` is not a positive integer; ``num_reward_areas < 0``;
            ``ground_truth_bounds`` is not 2-D.
        TypeError: ``evaluate`` or ``sample`` is not callable.
    """

    def __init__(
        self, evaluate, sample, batch_size, ground_truth_bounds, num_reward_areas, coverage_resolution=50,
        compiler_options=None, devices=None,
    ):
        where = "RandomSearch"
        self.batch_size = check_positive_int("RandomSearch: batch_size", batch_size)
        self.coverage_resolution = check_positive_int("RandomSearch: coverage_resolution", coverage_resolution)
        self.num_reward_areas = _check_reward_areas(where, num_reward_areas)
        if not callable(sample):
            raise TypeError(f"RandomSearch: sample must be a function (key, n) -> genotypes; got {sample!r}")
        checked, self._source = _checked_evaluate(evaluate, where)
        self.population = PopulationSharding(devices)
        self.evaluate, self.sample = self.population.shard(checked), sample
        self._sample_source = f"RandomSearch: the output of sample {function_name(sample)}(key, {self.batch_size})"
        self.gt_lower, self.gt_upper = tuple(ground_truth_bounds[0]), tuple(ground_truth_bounds[1])
        exploration_init(self.gt_lower, self.gt_upper, self.num_reward_areas, self.coverage_resolution)  # checks
        self._init = jax.jit(self._init_impl, compiler_options=compiler_options)
        self._scan = jax.jit(self._scan_impl, static_argnums=1, donate_argnums=0, compiler_options=compiler_options)

    def _metrics(self, state):
        metrics = dict(archive_metrics(state.archive))
        metrics.update(exploration_metrics(state.exploration))
        metrics["num_evaluations"] = state.num_evaluations
        metrics["iteration"] = state.iteration
        return metrics

    def _generation(self, archive, stats, key):
        k_sample, k_eval = jax.random.split(key)
        genotypes = self.sample(k_sample, self.batch_size)
        got = batch_size(genotypes, self._sample_source, "it")
        if got != self.batch_size:
            raise ValueError(f"{self._sample_source} has batch size {got}; expected batch_size={self.batch_size}")
        evaluation = checked_evaluation(
            self.evaluate(genotypes, k_eval), self.batch_size, archive.descriptor_dim, self._source
        )
        gt, area = _ground_truth(evaluation)
        stats = exploration_update(stats, gt, evaluation.fitnesses, area)
        extras = evaluation.extras if archive.extras is not None else None
        archive, _ = archive.add(genotypes, evaluation.descriptors, evaluation.fitnesses, extras)
        return archive, stats

    def _init_impl(self, archive, key):
        key, k_gen = jax.random.split(key)
        stats = exploration_init(self.gt_lower, self.gt_upper, self.num_reward_areas, self.coverage_resolution)
        archive, stats = self._generation(archive, stats, k_gen)
        state = RandomSearchState(archive, stats, key, jnp.zeros((), jnp.int32), jnp.asarray(self.batch_size, jnp.int32))
        return state, self._metrics(state)

    def init(self, archive: Archive, key: jax.Array):
        """Evaluate a first random batch of ``batch_size`` (generation 0). Returns ``(state, metrics)``.

        Raises:
            ValueError: (at trace time) ``sample`` returns a batch other than ``(batch_size, ...)``, or
                ``evaluate``'s fitnesses are not ``(B,)`` or its descriptors not ``(B, d)`` with the
                archive's ``d``.
            TypeError: (at trace time) ``evaluate`` returns something other than a :class:`qd.Evaluation`.
        """
        state, metrics = self._init(archive, key)
        return self.population.place(state), metrics

    def step(self, state: RandomSearchState):
        """One generation of ``batch_size`` random evaluations. Returns ``(state, metrics)``."""
        key, k_gen = jax.random.split(state.key)
        archive, stats = self._generation(state.archive, state.exploration, k_gen)
        state = state.replace(
            archive=archive,
            exploration=stats,
            key=key,
            iteration=state.iteration + 1,
            num_evaluations=state.num_evaluations + self.batch_size,
        )
        return state, self._metrics(state)

    def _scan_impl(self, state, num_iterations):
        return jax.lax.scan(lambda s, _: self.step(s), state, None, length=num_iterations)

    def scan(self, state, num_iterations: int):
        """``num_iterations`` generations in one compiled ``lax.scan``; the input state is consumed (donated):
        continue from the returned one.

        Returns:
            ``(state, metrics)``, each metric of shape ``(num_iterations,)``.

        Raises:
            ValueError: ``num_iterations < 1``; ``state`` was consumed by an earlier ``run`` / ``scan``.
        """
        if int(num_iterations) < 1:
            raise ValueError(f"num_iterations must be positive; got {num_iterations}")
        check_not_consumed(state, "RandomSearch.scan")
        return self._scan(self.population.place(state), int(num_iterations))

    def run(self, state, num_iterations: int, chunk_size: int = 50, callback=None):
        """Generations in compiled chunks (see :meth:`NoveltySearch.run`); the input state is consumed."""
        check_not_consumed(state, "RandomSearch.run")
        return run_in_chunks(self.scan, state, num_iterations, chunk_size, callback)
