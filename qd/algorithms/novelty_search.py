"""Novelty search (Lehman & Stanley 2011, "Abandoning objectives: evolution through the search for novelty
alone") as run by SERENE / STAX.

One generation of :class:`NoveltySearchAlgorithm` (``P`` parents, ``O = P * c`` offspring), as ``ask`` and
``tell`` of the protocol of :mod:`qd.algorithms.driver`:

1. ``ask``: each parent makes ``c`` children (default 2): ``genome + N(0, sigma^2)`` (sigma 0.05), clipped to
   the genotype bounds;
2. the driver evaluates the offspring, and every evaluated agent updates the ground-truth exploration
   statistics (:func:`qd.metrics.exploration_update`: 50x50 coverage, uniformity, reward per area);
3. ``tell``: the optional **reward archive** (SERENE's ``R``) stores the offspring with a positive reward,
   and joins the novelty reference set, pushing the search away from reward areas already found;
4. novelty of ``P u O``: mean distance to the ``k`` (15) nearest neighbours in the reference set
   ``P u O u A (u R)``, each agent's own slot excluded (not "drop the first neighbour", see
   :mod:`qd.novelty`);
5. the novelty archive ``A`` (an :class:`qd.UnstructuredArchive`, with whatever insertion policy it was
   created with: SERENE/STAX use ``"random"`` with 5 per generation) receives the offspring, with their
   novelty against the full reference set;
6. (mu + lambda) survival: the ``P`` most novel of ``P u O`` become the next parents; with
   ``survival="nsga2"``, the ``P`` best of ``P u O`` by NSGA-II's non-dominated sort and crowding distance on
   (novelty, reward) (Deb et al. 2002; the NSGA-II baseline of the SERENE / STAX code, :func:`qd.selection.nsga2_select`).

The initial population (``P``, not ``O``, so it cannot wait for the loop) is evaluated by ``init``
(``tell_initial``). :class:`NoveltySearch` is the algorithm on the :class:`~qd.algorithms.driver.Driver`. The
novelty archive's own fill is ``novelty_archive_fill``, never "coverage" (a novelty archive of 16k slots
filled 5 per generation is 1.5% full when the ground truth is 92% covered).

Tasks must put ``"gt_descriptor"`` (``(B, 2)``) and ``"reward_area"`` (``(B,)``) in ``Evaluation.extras``
for the exploration metrics (the sparse tasks do); otherwise the descriptor and "no area" are used.
Genotypes are arrays or pytrees with a leading batch axis.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.algorithms.checks import check_clip, check_positive, check_positive_int
from qd.algorithms.driver import Driver
from qd.archives.base import Archive
from qd.metrics import GroundTruth, archive_metrics
from qd.novelty import DEFAULT_K, knn_novelty
from qd.selection import nsga2_select, truncation_selection

SURVIVAL = ("novelty", "nsga2")
from qd.tasks.base import Evaluation


@struct.dataclass
class NoveltySearchState:
    """Novelty search's own state (a pytree).

    Attributes:
        population: genotypes of the ``P`` parents.
        descriptors: ``(P, d)`` their behaviour descriptors.
        fitnesses: ``(P,)`` their rewards.
        archive: the novelty archive ``A`` (:class:`qd.UnstructuredArchive`), the archive of record.
        reward_archive: the reward archive ``R`` or None.
    """

    population: Any
    descriptors: jax.Array
    fitnesses: jax.Array
    archive: Archive
    reward_archive: Optional[Archive]


def novelty_archive_metrics(archive: Archive) -> Dict[str, jax.Array]:
    """:func:`qd.metrics.archive_metrics` of a novelty archive, with its fill under honest names instead of
    ``coverage``: ``novelty_archive_size`` (int32, agents stored), ``novelty_archive_fill`` (float32,
    size / capacity) and ``novelty_archive_overflow`` (int32, candidates dropped because it was full; 0 for
    archives that do not count them)."""
    metrics = dict(archive_metrics(archive))
    del metrics["coverage"]
    size = archive.num_elites
    metrics["novelty_archive_size"] = size
    metrics["novelty_archive_fill"] = (size / archive.capacity).astype(jnp.float32)
    overflow = getattr(archive, "num_overflow", None)
    metrics["novelty_archive_overflow"] = jnp.zeros((), jnp.int32) if overflow is None else overflow
    return metrics


def archive_extras(archive: Archive, evaluation: Evaluation) -> Any:
    """What ``archive`` stores of the evaluation's extras: None when it stores none; the entries of its dict
    when both are dicts (an evaluation may carry more than an archive keeps); else all of them."""
    if archive.extras is None:
        return None
    extras = evaluation.extras
    if isinstance(archive.extras, dict) and isinstance(extras, dict):
        return {k: extras[k] for k in archive.extras}
    return extras


def _add_rewarding(reward_archive: Archive, genotypes: Any, evaluation: Evaluation) -> Archive:
    # Non-rewarding agents get a -inf fitness, which every archive rejects.
    fit = jnp.where(evaluation.fitnesses > 0, evaluation.fitnesses, -jnp.inf)
    extras = archive_extras(reward_archive, evaluation)
    reward_archive, _ = reward_archive.add(
        genotypes, evaluation.descriptors, fit, extras, novelty=jnp.full(fit.shape, jnp.inf)
    )
    return reward_archive


class NoveltySearchAlgorithm:
    """(mu + lambda) novelty search as ``init`` / ``ask`` / ``tell`` (see the module docstring).

    Args:
        offspring_per_parent: ``c`` (2 in SERENE: 100 parents, 200 evaluations per generation).
        sigma: Gaussian mutation standard deviation (0.05).
        genotype_bounds: ``(low, high)`` clip of every gene, or None (SERENE: ``(-5, 5)``).
        num_neighbors: ``k`` of the novelty (15).
        survival: ``"novelty"`` (the ``P`` most novel) or ``"nsga2"`` (NSGA-II on novelty and reward).

    Raises:
        ValueError: ``offspring_per_parent`` or ``num_neighbors`` is not a positive integer; ``sigma`` is not
            positive and finite; ``genotype_bounds`` is not None nor ``(low, high)`` with ``low < high``; an
            unknown ``survival``.
    """

    def __init__(self, offspring_per_parent: int = 2, sigma: float = 0.05,
                 genotype_bounds: Optional[Tuple[float, float]] = (-5.0, 5.0), num_neighbors: int = DEFAULT_K,
                 survival: str = "novelty"):
        if survival not in SURVIVAL:
            raise ValueError(f"NoveltySearch: survival must be one of {SURVIVAL}; got {survival!r}")
        self.survival = survival
        self.offspring_per_parent = check_positive_int("NoveltySearch: offspring_per_parent", offspring_per_parent)
        self.sigma = check_positive("NoveltySearch: sigma", sigma)
        self.genotype_bounds = check_clip("NoveltySearch: genotype_bounds", genotype_bounds)
        self.num_neighbors = check_positive_int("NoveltySearch: num_neighbors", num_neighbors)

    def init(self, key: jax.Array, archive: Archive, initial_genotypes: Any,
             reward_archive: Optional[Archive] = None) -> Tuple[NoveltySearchState, Any]:
        """``(state, initial_genotypes)``: the population ``(P, ...)`` with placeholder scores (``tell_initial``
        sets them), the empty novelty archive and the optional reward archive."""
        leaves = jax.tree_util.tree_leaves(initial_genotypes)
        p = int(leaves[0].shape[0]) if leaves and leaves[0].ndim else 0
        state = NoveltySearchState(
            population=initial_genotypes,
            descriptors=jnp.zeros((p, archive.descriptor_dim), jnp.float32),
            fitnesses=jnp.zeros((p,), jnp.float32),
            archive=archive,
            reward_archive=reward_archive,
        )
        return state, initial_genotypes

    def tell_initial(self, state: NoveltySearchState, genotypes: Any, evaluation: Evaluation,
                     key: jax.Array) -> NoveltySearchState:
        """The evaluated initial population becomes the parents; its rewarding agents go to ``R``."""
        reward_archive = state.reward_archive
        if reward_archive is not None:
            reward_archive = _add_rewarding(reward_archive, genotypes, evaluation)
        return state.replace(population=genotypes, descriptors=evaluation.descriptors, fitnesses=evaluation.fitnesses,
                             reward_archive=reward_archive)

    def ask(self, state: NoveltySearchState, key: jax.Array) -> Tuple[Any, NoveltySearchState]:
        """``O = P * c`` mutated children, parent-major (parent ``i``'s children are rows ``i*c .. i*c+c-1``)."""
        parents = jax.tree_util.tree_map(lambda x: jnp.repeat(x, self.offspring_per_parent, axis=0), state.population)
        leaves, treedef = jax.tree_util.tree_flatten(parents)
        keys = jax.random.split(key, len(leaves))
        children = [x + self.sigma * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
        if self.genotype_bounds is not None:
            low, high = self.genotype_bounds
            children = [jnp.clip(x, low, high) for x in children]
        return jax.tree_util.tree_unflatten(treedef, children), state

    def _novelty(self, state: NoveltySearchState, desc: jax.Array, reward_archive: Optional[Archive]) -> jax.Array:
        """Novelty ``(P + O,)`` of ``desc`` against ``P u O u A (u R)``, each agent's own row excluded."""
        refs, masks = [desc, state.archive.descriptors], [jnp.ones((desc.shape[0],), bool), state.archive.filled]
        if reward_archive is not None:
            refs.append(reward_archive.descriptors)
            masks.append(reward_archive.filled)
        return knn_novelty(desc, jnp.concatenate(refs), jnp.concatenate(masks), self.num_neighbors,
                           exclude=jnp.arange(desc.shape[0], dtype=jnp.int32))

    def tell(self, state: NoveltySearchState, offspring: Any, evaluation: Evaluation, key: jax.Array) -> NoveltySearchState:
        """Reward archive, novelty, novelty archive (``key`` for its insertion policy), (mu + lambda) survival."""
        return self.generation(state, offspring, evaluation, key)[0]

    def generation(self, state: NoveltySearchState, offspring: Any, evaluation: Evaluation, key: jax.Array,
                   select: Optional[Callable[[jax.Array, jax.Array], jax.Array]] = None) -> Tuple[NoveltySearchState, jax.Array]:
        """:meth:`tell`, also returning the survivors: ``(state, survivors (P,) int32)``, indices into
        ``P u O`` (parents first, then the offspring in batch order).

        ``select(novelty (P + O,), rewards (P + O,)) -> (P,) int32`` replaces the survival rule (STAX selects
        by surprise, or by NSGA-II on novelty and surprise)."""
        reward_archive = state.reward_archive
        if reward_archive is not None:
            reward_archive = _add_rewarding(reward_archive, offspring, evaluation)
        pop_size = state.descriptors.shape[0]
        desc = jnp.concatenate([state.descriptors, evaluation.descriptors])
        novelty = self._novelty(state, desc, reward_archive)
        extras = archive_extras(state.archive, evaluation)
        archive, _ = state.archive.add(offspring, evaluation.descriptors, evaluation.fitnesses, extras,
                                       novelty=novelty[pop_size:], key=key)
        everyone = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), state.population, offspring)
        fit = jnp.concatenate([state.fitnesses, evaluation.fitnesses])
        if select is not None:
            survivors = select(novelty, fit)
        elif self.survival == "nsga2":
            objectives = jnp.nan_to_num(jnp.stack([novelty, fit.astype(jnp.float32)], axis=1), nan=-3e38, posinf=3e38, neginf=-3e38)
            survivors = nsga2_select(objectives, pop_size)
        else:
            survivors = truncation_selection(novelty, pop_size)
        return NoveltySearchState(
            population=jax.tree_util.tree_map(lambda x: x[survivors], everyone),
            descriptors=desc[survivors],
            fitnesses=fit[survivors],
            archive=archive,
            reward_archive=reward_archive,
        ), survivors

    def archive(self, state: NoveltySearchState) -> Archive:
        """The novelty archive ``A``."""
        return state.archive

    def metrics(self, state: NoveltySearchState) -> Dict[str, jax.Array]:
        """``mean_population_fitness`` (float32), and ``reward_archive_size`` (int32) with a reward archive."""
        metrics = {"mean_population_fitness": jnp.mean(state.fitnesses)}
        if state.reward_archive is not None:
            metrics["reward_archive_size"] = state.reward_archive.num_elites
        return metrics


class NoveltySearch(Driver):
    """(mu + lambda) novelty search (:class:`NoveltySearchAlgorithm`) on the :class:`~qd.algorithms.driver.Driver`.

    Args:
        evaluate: ``evaluate(genotypes, key) -> Evaluation`` (pure, jittable).
        ground_truth_bounds: ``(lower, upper)`` of the 2-D ground-truth grid (the task's descriptor bounds).
        num_reward_areas: ``A``, the number of reward areas tracked by the metrics.
        offspring_per_parent, sigma, genotype_bounds, num_neighbors, survival: see :class:`NoveltySearchAlgorithm`.
        coverage_resolution: cells per side of the ground-truth grid (50).
        compiler_options: XLA options for the programs that evaluate (e.g. a task's ``compiler_options``, see
            :mod:`qd.xla_options`); None: XLA's defaults.
        devices: split each generation's evaluation over these devices, the rest of the state replicated on
            them (see :mod:`qd.parallel`); None: one device.

    ``init(archive, initial_genotypes, key, reward_archive=None)`` evaluates the initial population ``(P, ...)``
    (SERENE: 100 of ``N(0, 1)`` clipped) in a program of its own; ``archive`` is an empty novelty archive (any
    archive accepting ``add(..., novelty=...)``, normally a :class:`qd.UnstructuredArchive`), ``reward_archive``
    an optional empty :class:`qd.UnstructuredArchive` for SERENE's rewarding agents (fitness > 0). Then
    ``run`` / ``scan`` / ``step`` / ``ask`` / ``tell`` as on every :class:`~qd.algorithms.driver.Driver`;
    ``init_with_evaluation(archive, initial_genotypes, evaluation, key)`` for evaluations outside JAX.

    Metrics (``init`` / ``step``: a dict of scalars; ``scan`` / ``run``: one value per generation):

    - ``gt_coverage`` (float32 in ``[0, 1]``): cells of the ``coverage_resolution``-squared ground-truth grid
      reached by any agent evaluated so far (the exploration measure to compare methods by);
    - ``uniformity`` (float32), ``reward_areas_found`` (int32), ``best_reward_area_<i>`` (float32, one per
      reward area ``i < num_reward_areas``): see :func:`qd.metrics.exploration_metrics`;
    - the novelty archive's ``qd_score``, ``max_fitness``, ``mean_fitness``, ``num_elites``, and instead of a
      coverage (:func:`novelty_archive_metrics`): ``novelty_archive_size`` (int32), ``novelty_archive_fill``
      (float32 in ``[0, 1]``, how full ``A`` is; not a coverage of anything), ``novelty_archive_overflow``
      (int32);
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
        survival: str = "novelty",
        coverage_resolution: int = 50,
        compiler_options: Optional[Dict[str, Any]] = None,
        devices: Any = None,
    ):
        algorithm = NoveltySearchAlgorithm(offspring_per_parent, sigma, genotype_bounds, num_neighbors, survival)
        truth = GroundTruth.create(ground_truth_bounds, num_reward_areas, coverage_resolution, "NoveltySearch")
        if not callable(evaluate):
            raise TypeError(f"NoveltySearch: evaluate must be a function (genotypes, key) -> Evaluation; got {evaluate!r}")
        super().__init__(algorithm, evaluate, metrics_fn=novelty_archive_metrics, ground_truth=truth,
                         compiler_options=compiler_options, devices=devices)
