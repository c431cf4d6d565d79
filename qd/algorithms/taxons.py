"""TAXONS (Paolo et al., ICRA 2020, "Unsupervised learning and exploration of reachable outcome space"),
its variants TAXO-N, TAXO-S and NT, and the paper's baselines PS, RBD and IBD, as ``init`` / ``ask`` /
``tell`` of the protocol of :mod:`qd.algorithms.driver`.

TAXONS ("Task Agnostic eXploration of Outcome spaces through Novelty and Surprise") is novelty search whose
behaviour descriptor is *learned*: an autoencoder (:mod:`qd.learned`) is trained online on images of the
final state of each episode; the descriptor is the latent code, novelty is measured in latent space, and
*surprise* is the reconstruction error. Nobody designs the descriptor.

The default is the STAX repository's re-implementation (the baseline of the STAX paper), on the SERENE
novelty-search skeleton of :class:`qd.algorithms.NoveltySearchAlgorithm` (``P`` parents, ``c`` = 2 children
each, 200 evaluations per generation at ``P`` = 100). One generation:

1. ``ask``: each parent makes ``c`` children, ``genome + N(0, sigma^2)`` (0.05), clipped to ``[-5, 5]``;
2. the driver evaluates them; the task's ``extras[source_key]`` (a sparse task's ``final_state``) is each
   agent's *source*, the compact state its image is rendered from;
3. ``tell``: descriptors of the offspring (latents of the rendered sources) and their surprise;
4. novelty of ``P u O``: mean distance to the ``k`` (15) nearest neighbours in ``P u O u A (u R)``, each
   agent's own slot excluded (:mod:`qd.novelty`);
5. the generation's criterion: ``"mixed"`` (TAXONS) novelty or surprise, uniformly at random;
   ``"novelty"`` (TAXO-N); ``"surprise"`` (TAXO-S);
6. the novelty archive ``A`` receives 5 offspring: drawn at random (STAX repository, ``insertion="random"``)
   or the 5 best by the criterion (the ICRA code, ``insertion="top"``);
7. (mu + lambda) survival: the ``P`` best of ``P u O`` by the criterion;
8. the encoder is trained on its schedule, then **every stored descriptor is recomputed** (:meth:`refresh`:
   population, archive, reward archive, with the population's surprise; nothing else caches one).

Training schedules (``schedule``):

- ``"stax"`` (default, the STAX repository's): after exploration chunks 1, 3, 6, 10, ... of
  ``chunk_generations`` generations (5: a chunk of 1000 evaluations), so trainings come at a growing
  interval; on every source of ``A u P u O (u R)``, 20% held out for validation, up to 100 epochs, stopping
  at the 4th consecutive rise of the validation loss.
- ``"icra"`` (the ICRA code's): every 30 generations, 5 epochs, on the sources of the last 30 generations'
  offspring plus the archive's; no validation.

Variants (``descriptor``, ``criterion``, ``train``):

- TAXONS ``("latent", "mixed", True)``, TAXO-N ``("latent", "novelty", True)``, TAXO-S
  ``("latent", "surprise", True)``, NT ``("latent", "novelty", False)``: novelty in the space of an
  untrained encoder;
- the baselines: PS ``"genotype"`` (the flat genome is the descriptor), RBD ``"random"`` (a descriptor of
  ``random_dim`` (10) ``N(0, 1)`` numbers drawn once per agent), IBD ``"image"`` (the rendered 64x64x3 image,
  flattened): novelty only, nothing trained.

Departures from the originals, on purpose:

- ICRA TAXONS mutates its population of 100 in place (100 evaluations per generation; the 5 worst replaced
  by copies of the 5 best) and re-evaluates unchanged agents; here every variant runs on the SERENE / STAX
  skeleton (as the STAX paper's TAXONS baseline does). The ICRA loop's other differences are options:
  ``insertion="top"``, ``warmup_generations=30`` (novelty only at first) and ``schedule="icra"``.
- Self-exclusion in the novelty: the agent's own slot, not "the first neighbour" (see :mod:`qd.novelty`).
- Images are rendered in JAX from the final state (:meth:`qd.tasks.sparse.common.SparseTask.render`), not
  captured from a pygame window and resized; the arm is drawn on curling.
- STAX's TAXONS has no reward archive; one may be given (it joins the novelty reference set, as in SERENE).

Shapes: ``P`` parents, ``O = c P`` offspring, ``L`` descriptor dimensions, ``C`` archive slots.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.algorithms.checks import check_positive_int
from qd.algorithms.driver import Driver
from qd.algorithms.novelty_search import NoveltySearchAlgorithm, novelty_archive_metrics
from qd.archives.base import Archive
from qd.learned.sources import evaluation_sources, stored_extras
from qd.learned.training import AEState, Autoencoder, PaddedDataset, ae_metrics, concatenate_datasets
from qd.metrics import GroundTruth
from qd.novelty import DEFAULT_K, knn_novelty
from qd.selection import truncation_selection
from qd.tasks.base import Evaluation

DESCRIPTORS = ("latent", "genotype", "random", "image")
CRITERIA = ("mixed", "novelty", "surprise")
SCHEDULES = ("stax", "icra")
INSERTIONS = ("random", "top")

# The variants of the TAXONS paper: name -> (descriptor, criterion, train).
VARIANTS: Dict[str, Tuple[str, str, bool]] = {
    "taxons": ("latent", "mixed", True),
    "taxo_n": ("latent", "novelty", True),
    "taxo_s": ("latent", "surprise", True),
    "nt": ("latent", "novelty", False),
    "ps": ("genotype", "novelty", False),
    "rbd": ("random", "novelty", False),
    "ibd": ("image", "novelty", False),
}


@struct.dataclass
class TaxonsState:
    """TAXONS' state (a pytree).

    Attributes:
        population: genotypes of the ``P`` parents.
        sources: the parents' sources (pytree, leading axis ``P``).
        descriptors: ``(P, L)`` their descriptors.
        surprise: ``(P,)`` their reconstruction errors (zeros without an encoder).
        fitnesses: ``(P,)`` their rewards.
        archive: the novelty archive ``A`` (stores each agent's source in ``extras``).
        reward_archive: the reward archive ``R`` or None.
        ae: the encoder's parameters and training record, or None (PS, RBD, IBD).
        recent: the ``"icra"`` schedule's sources of the recent offspring (a ring of ``train_every`` generations),
            or None.
        generation: ``int32``, generations told since the initial population.
        next_training: ``int32``, the generation after which the encoder trains next.
        interval: ``int32``, the ``"stax"`` schedule's current interval, in chunks.
        used_surprise: ``bool``, whether the last generation selected by surprise.
    """

    population: Any
    sources: Any
    descriptors: jax.Array
    surprise: jax.Array
    fitnesses: jax.Array
    archive: Archive
    reward_archive: Optional[Archive]
    ae: Optional[AEState]
    recent: Optional[PaddedDataset]
    generation: jax.Array
    next_training: jax.Array
    interval: jax.Array
    used_surprise: jax.Array


def _rows(tree: Any) -> int:
    return int(jax.tree_util.tree_leaves(tree)[0].shape[0])


def _concat(*trees: Any) -> Any:
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *trees)


class TaxonsAlgorithm(NoveltySearchAlgorithm):
    """TAXONS and its variants as ``init`` / ``ask`` / ``tell`` (see the module docstring).

    Args:
        autoencoder: the learned space (:class:`qd.learned.Autoencoder`: model, render, Adam settings);
            required for ``descriptor="latent"``, and its ``render`` serves ``"image"``.
        descriptor: ``"latent"``, ``"genotype"``, ``"random"`` or ``"image"``.
        criterion: ``"mixed"``, ``"novelty"`` or ``"surprise"`` (``"surprise"`` and ``"mixed"`` need
            ``"latent"``).
        train: whether the encoder learns (False: NT).
        source_key: the ``Evaluation.extras`` entry holding each agent's source (``"final_state"``).
        schedule: ``"stax"`` or ``"icra"``.
        chunk_generations: ``"stax"``: generations per exploration chunk (5).
        max_epochs, validation_fraction, patience: ``"stax"`` training (100, 0.2, 4).
        train_every, epochs: ``"icra"`` training (every 30 generations, 5 epochs).
        warmup_generations: generations that select by novelty only (ICRA: 30; STAX: 0).
        random_dim: descriptor size of ``"random"`` (10).
        offspring_per_parent, sigma, genotype_bounds, num_neighbors: as
            :class:`qd.algorithms.NoveltySearchAlgorithm`.

    The novelty archive (``init``'s ``archive``) must store ``extras`` holding at least ``source_key`` (the
    sources are re-encoded from there); its insertion policy is ``"random"`` (5 random offspring) or
    ``"most_novel"`` (the 5 best by the generation's criterion: ``insertion="top"``), and its descriptor
    dimension is :meth:`descriptor_dim`.

    Raises:
        ValueError: an unknown ``descriptor`` / ``criterion`` / ``schedule``; ``"latent"`` or ``"image"``
            without an autoencoder (or its render); a surprise criterion without an encoder; non-positive
            counts; ``validation_fraction`` outside ``[0, 1)``; ``patience > 0`` without validation.
    """

    # Under ``vmap`` over seeds the training ``lax.cond`` would train every generation: qd.bench runs the seeds
    # of a learned space one after another (qd.bench.execute.vmappable).
    vmap_seeds = False

    def __init__(
        self,
        autoencoder: Optional[Autoencoder] = None,
        descriptor: str = "latent",
        criterion: str = "mixed",
        train: bool = True,
        source_key: str = "final_state",
        schedule: str = "stax",
        chunk_generations: int = 5,
        max_epochs: int = 100,
        validation_fraction: float = 0.2,
        patience: int = 4,
        train_every: int = 30,
        epochs: int = 5,
        warmup_generations: int = 0,
        random_dim: int = 10,
        offspring_per_parent: int = 2,
        sigma: float = 0.05,
        genotype_bounds: Optional[Tuple[float, float]] = (-5.0, 5.0),
        num_neighbors: int = DEFAULT_K,
    ):
        super().__init__(offspring_per_parent, sigma, genotype_bounds, num_neighbors)
        for name, value, allowed in (("descriptor", descriptor, DESCRIPTORS), ("criterion", criterion, CRITERIA),
                                     ("schedule", schedule, SCHEDULES)):
            if value not in allowed:
                raise ValueError(f"TAXONS: {name} must be one of {allowed}; got {value!r}")
        if descriptor == "latent" and autoencoder is None:
            raise ValueError("TAXONS: descriptor 'latent' needs an autoencoder")
        if descriptor == "image" and (autoencoder is None or autoencoder.render is None):
            raise ValueError("TAXONS: descriptor 'image' needs an autoencoder whose render draws the images")
        if criterion != "novelty" and descriptor != "latent":
            raise ValueError(f"TAXONS: criterion {criterion!r} needs the surprise of an encoder (descriptor 'latent')")
        for name, value in (("chunk_generations", chunk_generations), ("max_epochs", max_epochs),
                            ("train_every", train_every), ("epochs", epochs), ("random_dim", random_dim)):
            check_positive_int(f"TAXONS: {name}", value)
        if int(warmup_generations) < 0:
            raise ValueError(f"TAXONS: warmup_generations must be >= 0; got {warmup_generations}")
        if not 0.0 <= float(validation_fraction) < 1.0:
            raise ValueError(f"TAXONS: validation_fraction must be in [0, 1); got {validation_fraction}")
        if int(patience) < 0 or (int(patience) > 0 and validation_fraction <= 0):
            raise ValueError("TAXONS: patience must be >= 0, and > 0 only with a validation split")
        self.autoencoder = autoencoder
        self.descriptor = descriptor
        self.criterion = criterion
        self.trains = bool(train) and descriptor == "latent"
        self.source_key = source_key
        self.schedule = schedule
        self.chunk_generations = int(chunk_generations)
        self.max_epochs = int(max_epochs)
        self.validation_fraction = float(validation_fraction)
        self.patience = int(patience)
        self.train_every = int(train_every)
        self.epochs = int(epochs)
        self.warmup_generations = int(warmup_generations)
        self.random_dim = int(random_dim)

    # ----------------------------------------------------------------------------------------- #
    # Descriptors
    # ----------------------------------------------------------------------------------------- #
    def descriptor_dim(self, genotype_template: Any, source_template: Any) -> int:
        """``L`` for one unbatched genotype and source (computed abstractly)."""
        if self.descriptor == "genotype":
            return int(sum(x.size for x in jax.tree_util.tree_leaves(genotype_template)))
        if self.descriptor == "random":
            return self.random_dim
        one = jax.tree_util.tree_map(lambda x: jnp.zeros((1,) + tuple(x.shape), x.dtype), source_template)
        if self.descriptor == "image":
            return int(jax.eval_shape(self.autoencoder.inputs, one).size)
        return self.autoencoder.descriptor_dim(source_template)

    def evaluation_descriptor_dim(self, state: TaxonsState) -> None:
        """None: the task's descriptors are not used (the ground truth stays in the extras, for metrics)."""
        return None

    def _describe(self, state_ae, genotypes, sources, key) -> Tuple[jax.Array, jax.Array]:
        """``(descriptors (N, L), surprise (N,))`` of a batch."""
        n = _rows(genotypes)
        zeros = jnp.zeros((n,), jnp.float32)
        if self.descriptor == "latent":
            return self.autoencoder.encode(state_ae, sources)
        if self.descriptor == "genotype":
            flat = [x.reshape(n, -1) for x in jax.tree_util.tree_leaves(genotypes)]
            return jnp.concatenate(flat, axis=1).astype(jnp.float32), zeros
        if self.descriptor == "random":
            return jax.random.normal(key, (n, self.random_dim), jnp.float32), zeros
        return self.autoencoder.inputs(sources).reshape(n, -1), zeros

    def _sources(self, evaluation: Evaluation) -> Any:
        return evaluation_sources(evaluation, self.source_key, "TAXONS")

    def _archive_extras(self, archive: Archive, evaluation: Evaluation) -> Any:
        return stored_extras(archive, evaluation, "TAXONS")

    # ----------------------------------------------------------------------------------------- #
    # Protocol
    # ----------------------------------------------------------------------------------------- #
    def init(self, key: jax.Array, archive: Archive, initial_genotypes: Any,
             reward_archive: Optional[Archive] = None) -> Tuple[TaxonsState, Any]:
        """``(state, initial_genotypes)``: placeholders for the population (``tell_initial`` fills them),
        the empty archives, a fresh encoder (``init``'s key) and the schedule's counters."""
        if archive.extras is None or self.source_key not in archive.extras:
            raise ValueError(f"TAXONS: the novelty archive must store extras with {self.source_key!r} (see TaxonsAlgorithm)")
        p = _rows(initial_genotypes)
        source_template = jax.tree_util.tree_map(lambda x: x[0], archive.extras[self.source_key])
        sources = jax.tree_util.tree_map(lambda x: jnp.zeros((p,) + x.shape, x.dtype), source_template)
        ae = None
        if self.descriptor == "latent":
            ae = self.autoencoder.init(key, jax.tree_util.tree_map(lambda x: x[:1], sources))
        recent = None
        if self.trains and self.schedule == "icra":
            size = self.train_every * p * self.offspring_per_parent
            recent = PaddedDataset(jax.tree_util.tree_map(lambda x: jnp.zeros((size,) + x.shape, x.dtype), source_template),
                                   jnp.zeros((size,), bool))
        first = self.chunk_generations if self.schedule == "stax" else self.train_every
        state = TaxonsState(
            population=initial_genotypes,
            sources=sources,
            descriptors=jnp.zeros((p, archive.descriptor_dim), jnp.float32),
            surprise=jnp.zeros((p,), jnp.float32),
            fitnesses=jnp.zeros((p,), jnp.float32),
            archive=archive,
            reward_archive=reward_archive,
            ae=ae,
            recent=recent,
            generation=jnp.zeros((), jnp.int32),
            next_training=jnp.asarray(first, jnp.int32),
            interval=jnp.ones((), jnp.int32),
            used_surprise=jnp.zeros((), bool),
        )
        return state, initial_genotypes

    def tell_initial(self, state: TaxonsState, genotypes: Any, evaluation: Evaluation, key: jax.Array) -> TaxonsState:
        """The evaluated initial population becomes the parents (described by the untrained encoder); its
        rewarding agents go to ``R``."""
        sources = self._sources(evaluation)
        descriptors, surprise = self._describe(state.ae, genotypes, sources, key)
        reward_archive = state.reward_archive
        if reward_archive is not None:
            reward_archive = self._add_rewarding(reward_archive, genotypes, evaluation, descriptors)
        return state.replace(population=genotypes, sources=sources, descriptors=descriptors, surprise=surprise,
                             fitnesses=evaluation.fitnesses, reward_archive=reward_archive)

    def _add_rewarding(self, reward_archive, genotypes, evaluation, descriptors):
        """Store the rewarding agents (fitness > 0) in ``R``, with their descriptors in this space."""
        fit = jnp.where(evaluation.fitnesses > 0, evaluation.fitnesses, -jnp.inf)  # -inf: rejected by every archive
        extras = None if reward_archive.extras is None else self._archive_extras(reward_archive, evaluation)
        reward_archive, _ = reward_archive.add(genotypes, descriptors, fit, extras, novelty=jnp.full(fit.shape, jnp.inf))
        return reward_archive

    def tell(self, state: TaxonsState, offspring: Any, evaluation: Evaluation, key: jax.Array) -> TaxonsState:
        """Describe the offspring, select by the generation's criterion, archive, then train on schedule and
        refresh every stored descriptor."""
        k_describe, k_criterion, k_archive, k_train = jax.random.split(key, 4)
        sources = self._sources(evaluation)
        desc_o, surprise_o = self._describe(state.ae, offspring, sources, k_describe)
        reward_archive = state.reward_archive
        if reward_archive is not None:
            reward_archive = self._add_rewarding(reward_archive, offspring, evaluation, desc_o)

        pop_size = state.descriptors.shape[0]
        desc = jnp.concatenate([state.descriptors, desc_o])
        surprise = jnp.concatenate([state.surprise, surprise_o])
        novelty = self._novelty(state, desc, reward_archive)
        use_surprise = self._use_surprise(state.generation, k_criterion)
        score = jnp.where(use_surprise, surprise, novelty)

        archive, _ = state.archive.add(offspring, desc_o, evaluation.fitnesses,
                                       self._archive_extras(state.archive, evaluation), novelty=score[pop_size:],
                                       key=k_archive)
        everyone = _concat(state.population, offspring)
        every_source = _concat(state.sources, sources)
        survivors = truncation_selection(score, pop_size)
        pick = lambda tree: jax.tree_util.tree_map(lambda x: x[survivors], tree)
        fit = jnp.concatenate([state.fitnesses, evaluation.fitnesses])
        generation = state.generation + 1
        recent = state.recent
        if recent is not None:
            recent = self._remember(recent, sources, state.generation)
        state = state.replace(
            population=pick(everyone), sources=pick(every_source), descriptors=desc[survivors],
            surprise=surprise[survivors], fitnesses=fit[survivors], archive=archive, reward_archive=reward_archive,
            recent=recent, generation=generation, used_surprise=use_surprise,
        )
        if not self.trains:
            return state
        train = lambda s: self._train_and_refresh(s, self._training_data(s, every_source), k_train)
        return jax.lax.cond(generation == state.next_training, train, lambda s: s, state)

    def _use_surprise(self, generation: jax.Array, key: jax.Array) -> jax.Array:
        if self.criterion == "novelty":
            return jnp.zeros((), bool)
        if self.criterion == "surprise":
            return jnp.ones((), bool)
        coin = jax.random.bernoulli(key, 0.5)
        return coin & (generation >= self.warmup_generations)

    # ----------------------------------------------------------------------------------------- #
    # Training and refresh
    # ----------------------------------------------------------------------------------------- #
    def _remember(self, recent: PaddedDataset, sources: Any, generation: jax.Array) -> PaddedDataset:
        """Write this generation's offspring sources into the ``"icra"`` ring of recent generations."""
        o = _rows(sources)
        start = jnp.mod(generation, self.train_every) * o
        put = lambda buf, x: jax.lax.dynamic_update_slice_in_dim(buf, x.astype(buf.dtype), start, axis=0)
        return PaddedDataset(jax.tree_util.tree_map(put, recent.sources, sources),
                             jax.lax.dynamic_update_slice_in_dim(recent.mask, jnp.ones((o,), bool), start, axis=0))

    def _training_data(self, state: TaxonsState, generation_sources: Any) -> PaddedDataset:
        """What the schedule trains on: ``"stax"``: ``A u P u O (u R)``; ``"icra"``: recent offspring and ``A``."""
        archive = PaddedDataset(state.archive.extras[self.source_key], state.archive.filled)
        if self.schedule == "icra":
            return concatenate_datasets(state.recent, archive)
        parts = [archive, PaddedDataset(generation_sources, jnp.ones((_rows(generation_sources),), bool))]
        if state.reward_archive is not None and state.reward_archive.extras is not None \
                and self.source_key in state.reward_archive.extras:
            parts.append(PaddedDataset(state.reward_archive.extras[self.source_key], state.reward_archive.filled))
        return concatenate_datasets(*parts)

    def _train_and_refresh(self, state: TaxonsState, dataset: PaddedDataset, key: jax.Array) -> TaxonsState:
        if self.schedule == "stax":
            ae = self.autoencoder.train(state.ae, dataset, key, self.max_epochs, self.validation_fraction, self.patience)
            interval = state.interval + 1
            next_training = state.next_training + interval * self.chunk_generations
        else:
            ae = self.autoencoder.train(state.ae, dataset, key, self.epochs)
            interval = state.interval
            next_training = state.next_training + self.train_every
        recent = None if state.recent is None else state.recent.replace(mask=jnp.zeros_like(state.recent.mask))
        state = state.replace(ae=ae, interval=interval, next_training=next_training, recent=recent)
        return self.refresh(state)

    def stores(self, state: TaxonsState) -> Dict[str, Tuple[Any, jax.Array]]:
        """Every store of descriptors that depend on the encoder: ``{name: (sources, mask)}`` (the one list
        :meth:`refresh` goes through; tests check it against a fresh encoding of each)."""
        stores = {
            "population": (state.sources, jnp.ones((state.descriptors.shape[0],), bool)),
            "archive": (state.archive.extras[self.source_key], state.archive.filled),
        }
        r = state.reward_archive
        if r is not None and r.extras is not None and self.source_key in r.extras:
            stores["reward_archive"] = (r.extras[self.source_key], r.filled)
        return stores

    def refresh(self, state: TaxonsState) -> TaxonsState:
        """Recompute every stored descriptor (and the population's surprise) with the current encoder."""
        stores = self.stores(state)
        updated = {name: self.autoencoder.encode_valid(state.ae, sources, mask) for name, (sources, mask) in stores.items()}
        desc, surprise = updated["population"]
        state = state.replace(descriptors=desc, surprise=surprise,
                              archive=state.archive.replace(descriptors=updated["archive"][0]))
        if "reward_archive" in updated:
            state = state.replace(reward_archive=state.reward_archive.replace(descriptors=updated["reward_archive"][0]))
        return state

    # ----------------------------------------------------------------------------------------- #
    def metrics(self, state: TaxonsState) -> Dict[str, jax.Array]:
        """``mean_population_fitness``, ``used_surprise`` (1.0 when the last generation selected by surprise),
        with an encoder ``mean_surprise`` (population), ``ae_loss`` / ``ae_validation_loss`` (float32, the
        last training's, NaN before any), ``ae_trainings`` and ``ae_epochs`` (int32), and
        ``reward_archive_size`` with a reward archive."""
        metrics = super().metrics(state)
        metrics["used_surprise"] = state.used_surprise.astype(jnp.float32)
        if state.ae is not None:
            metrics["mean_surprise"] = jnp.mean(state.surprise)
            metrics.update(ae_metrics(state.ae))
        return metrics


class Taxons(Driver):
    """TAXONS and its variants (:class:`TaxonsAlgorithm`) on the :class:`~qd.algorithms.driver.Driver`.

    Args:
        evaluate: ``evaluate(genotypes, key) -> Evaluation`` with ``extras[source_key]`` (each agent's source)
            and, for the exploration metrics, ``extras["gt_descriptor"]`` / ``extras["reward_area"]`` (the
            sparse tasks return all three).
        ground_truth_bounds: ``(lower, upper)`` of the 2-D ground-truth grid.
        num_reward_areas: the reward areas tracked by the metrics.
        autoencoder, **options: see :class:`TaxonsAlgorithm`.
        coverage_resolution, compiler_options, devices: as :class:`qd.algorithms.NoveltySearch`.

    ``init(archive, initial_genotypes, key, reward_archive=None)`` evaluates the initial population; then
    ``run`` / ``scan`` / ``step`` / ``ask`` / ``tell``. Metrics: those of :class:`qd.algorithms.NoveltySearch`
    plus :meth:`TaxonsAlgorithm.metrics`'.

    Example::

        task = Curling()
        ae = Autoencoder(stax_autoencoder(), render=task.render)
        taxons = Taxons(task.evaluate, task.descriptor_bounds, task.num_reward_areas, ae)  # TAXONS, STAX schedule
        template = extras_template(task, keys=("final_state", "gt_descriptor"))       # qd.tasks.base
        archive = UnstructuredArchive.create(jnp.zeros(task.num_params), 16_384, 10, policy="random",
                                             num_per_batch=5, extras_template=template)
        state, _ = taxons.init(archive, task.initial_genotypes(k1, 100), k2)     # 100 parents, 200 per generation
        state, metrics = taxons.run(state, 500)
    """

    def __init__(
        self,
        evaluate: Callable[[Any, jax.Array], Evaluation],
        ground_truth_bounds: Tuple[Sequence[float], Sequence[float]],
        num_reward_areas: int,
        autoencoder: Optional[Autoencoder] = None,
        coverage_resolution: int = 50,
        compiler_options: Optional[Dict[str, Any]] = None,
        devices: Any = None,
        **options: Any,
    ):
        algorithm = TaxonsAlgorithm(autoencoder, **options)
        truth = GroundTruth.create(ground_truth_bounds, num_reward_areas, coverage_resolution, "Taxons")
        if not callable(evaluate):
            raise TypeError(f"Taxons: evaluate must be a function (genotypes, key) -> Evaluation; got {evaluate!r}")
        super().__init__(algorithm, evaluate, metrics_fn=novelty_archive_metrics, ground_truth=truth,
                         compiler_options=compiler_options, devices=devices)
