"""Random search, the floor of every exploration comparison: each generation evaluates fresh random genotypes.

:class:`RandomSearchAlgorithm` is written to the protocol of :mod:`qd.algorithms.driver` (``ask`` draws
``sample(key, B)``, ``tell`` offers the batch to an archive); :class:`RandomSearch` is it on the
:class:`~qd.algorithms.driver.Driver`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import jax
from flax import struct

from qd.algorithms.checks import batch_size, check_positive_int, function_name
from qd.algorithms.driver import Driver
from qd.archives.base import Archive
from qd.metrics import GroundTruth
from qd.tasks.base import Evaluation


@struct.dataclass
class RandomSearchState:
    """Random search's own state: the archive every batch is offered to (the archive of record)."""

    archive: Archive


class RandomSearchAlgorithm:
    """Random search as ``init`` / ``ask`` / ``tell``.

    Args:
        sample: ``sample(key, n) -> genotypes`` (pytree, leading axis ``n``), e.g. a task's ``initial_genotypes``.
        batch_size: ``B``, evaluations per generation (a positive integer).

    Raises:
        ValueError: ``batch_size`` is not a positive integer; (at trace time) ``sample`` returns a batch other
            than ``(batch_size, ...)``.
        TypeError: ``sample`` is not callable.
    """

    def __init__(self, sample: Callable[[jax.Array, int], Any], batch_size: int):
        self.batch_size = check_positive_int("RandomSearch: batch_size", batch_size)
        if not callable(sample):
            raise TypeError(f"RandomSearch: sample must be a function (key, n) -> genotypes; got {sample!r}")
        self.sample = sample
        self._source = f"RandomSearch: the output of sample {function_name(sample)}(key, {self.batch_size})"

    def _draw(self, key: jax.Array) -> Any:
        genotypes = self.sample(key, self.batch_size)
        got = batch_size(genotypes, self._source, "it")
        if got != self.batch_size:
            raise ValueError(f"{self._source} has batch size {got}; expected batch_size={self.batch_size}")
        return genotypes

    def init(self, key: jax.Array, archive: Archive) -> Tuple[RandomSearchState, Any]:
        """``(state, genotypes)``: the archive as given, and a first random batch ``(B, ...)`` (generation 0)."""
        return RandomSearchState(archive), self._draw(key)

    def ask(self, state: RandomSearchState, key: jax.Array) -> Tuple[Any, RandomSearchState]:
        """``sample(key, B)``."""
        return self._draw(key), state

    def tell(self, state: RandomSearchState, genotypes: Any, evaluation: Evaluation, key: jax.Array) -> RandomSearchState:
        """Offer the batch to the archive."""
        extras = evaluation.extras if state.archive.extras is not None else None
        archive, _ = state.archive.add(genotypes, evaluation.descriptors, evaluation.fitnesses, extras)
        return RandomSearchState(archive)

    def archive(self, state: RandomSearchState) -> Archive:
        """The archive every agent is offered to."""
        return state.archive


class RandomSearch(Driver):
    """Random search (:class:`RandomSearchAlgorithm`) on the :class:`~qd.algorithms.driver.Driver`: each generation
    evaluates ``batch_size`` fresh ``sample(key, batch_size)`` genotypes, offers them to an archive (any: a grid
    on the ground truth gives the usual picture) and updates the exploration metrics.

    Args:
        evaluate: the task's evaluation.
        sample: ``sample(key, n) -> genotypes`` (pytree, leading axis ``n``, e.g. a task's ``initial_genotypes``).
        batch_size: ``B``, evaluations per generation (a positive integer).
        ground_truth_bounds, num_reward_areas, coverage_resolution, compiler_options, devices: as in
            :class:`qd.algorithms.NoveltySearch`.

    ``init(archive, key, lazy=None)`` draws generation 0; it waits in the state and the first iteration of
    the loop evaluates it (iteration 0; ``lazy=False`` evaluates it at once).

    Metrics (``init`` / ``step``: a dict of scalars; ``scan`` / ``run``: one value per generation):

    - the QD metrics of the archive every agent is offered to, with the names and meanings they have in
      :class:`qd.MAPElites`: ``qd_score``, ``coverage`` (filled cells / cells of *that* archive: equal to
      ``gt_coverage`` only for a ``coverage_resolution``-squared grid over the ground-truth bounds of a task
      whose descriptor is the ground truth), ``max_fitness``, ``mean_fitness``, ``num_elites``;
    - ``gt_coverage``, ``uniformity``, ``reward_areas_found``, ``best_reward_area_<i>``: as in
      :class:`qd.algorithms.NoveltySearch` (every agent evaluated so far, on the ground-truth grid);
    - ``num_evaluations`` (int32): ``B * (iteration + 1)``; ``iteration`` (int32): generations done
      (0 once generation 0 is in, -1 while it is pending).

    Raises:
        ValueError: ``batch_size`` or ``coverage_resolution`` is not a positive integer; ``num_reward_areas < 0``;
            ``ground_truth_bounds`` is not 2-D.
        TypeError: ``evaluate`` or ``sample`` is not callable.
    """

    def __init__(
        self,
        evaluate: Callable[[Any, jax.Array], Evaluation],
        sample: Callable[[jax.Array, int], Any],
        batch_size: int,
        ground_truth_bounds: Tuple[Sequence[float], Sequence[float]],
        num_reward_areas: int,
        coverage_resolution: int = 50,
        compiler_options: Optional[Dict[str, Any]] = None,
        devices: Any = None,
    ):
        algorithm = RandomSearchAlgorithm(sample, batch_size)
        truth = GroundTruth.create(ground_truth_bounds, num_reward_areas, coverage_resolution, "RandomSearch")
        if not callable(evaluate):
            raise TypeError(f"RandomSearch: evaluate must be a function (genotypes, key) -> Evaluation; got {evaluate!r}")
        super().__init__(algorithm, evaluate, ground_truth=truth, compiler_options=compiler_options, devices=devices)
