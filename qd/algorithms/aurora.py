"""AURORA (Cully, GECCO 2019, "Autonomous skill discovery with quality-diversity and unsupervised
descriptors"; Grillotti & Cully, IEEE TEVC 2022, "Unsupervised behavior discovery with quality-diversity
optimization"): MAP-Elites in a learned descriptor space, as ``init`` / ``ask`` / ``tell`` of the
protocol of :mod:`qd.algorithms.driver`.

The repertoire is an :class:`qd.archives.UnstructuredContainer` in the latent space of an autoencoder
(:mod:`qd.learned`) trained online on what the agents did (a sparse task's final-state image, a Brax
task's subsampled torso trajectory). One iteration:

1. ``ask``: the emitter's proposal (any emitter of the ``emitters`` package: Gaussian, iso+line, CMA-ME...),
   from the container's elites;
2. the driver evaluates it; ``extras[source_key]`` is each agent's source;
3. ``tell``: descriptors = latent codes of the sources; the container takes the batch (an elite farther
   than ``l`` from every other, or fitter than the one it is close to); the emitter learns from the
   ``AddResult``;
4. on the training schedule (after generations ``train_every``, then at doubling intervals: 10, 30, 70,
   150, ... by default) the encoder trains on the sources of the container's elites and of the batch
   (early stopping on a 20% validation split), then **every stored descriptor is recomputed** and the
   container rebuilt in the new space, with ``l`` re-set for the new scale (:func:`threshold_for_size`: the
   nearest-neighbour distance that about ``target_size`` of the elites exceed);
5. every ``csc_every`` generations (10), container-size control moves ``l`` so that the number of elites
   approaches ``target_size`` (:func:`qd.archives.container_size_control`; by default the paper's
   multiplicative rule ``l <- l (1 + K (N - target))``, with ``K = 0.1 / target``) and rebuilds the container.

The first batch (lazy or eager) first trains the encoder on its own sources and sets the initial ``l`` from
their latents (:func:`threshold_for_size`), as QDax's ``AURORA.init`` and the authors' code train first.

Departures, on purpose: the container has a fixed capacity (``num_overflow`` counts what a full container
dropped; the authors' is unbounded); ``l`` is re-set after each training from the nearest-neighbour
distances in the new space (the authors' ``initialise_l``, a principal-axes volume, collapses to 0 when a
young latent space is flat along one axis, and the latent scale changes from one training to the next);
the size control's gain is relative to the target (``K = 0.1 / target``: +10% of ``l`` per control at twice
the target; the paper's ``K = 5e-6`` moves ``l`` by a fraction of a percent at targets of 10^3); the
training schedule's doubling interval is this library's choice. Emitter
states hold no descriptors (they learn from ``AddResult``), so the refresh is the container's rebuild.

Shapes: ``B`` candidates, ``C`` container slots, ``L`` latent dimensions.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.algorithms.checks import check_positive_int
from qd.algorithms.driver import Driver
from qd.archives.base import Archive
from qd.archives.container import CSC_RULES, container_size_control, two_nearest
from qd.learned.sources import evaluation_sources, stored_extras
from qd.learned.training import AEState, Autoencoder, PaddedDataset, ae_metrics, concatenate_datasets
from qd.metrics import GroundTruth, archive_metrics
from qd.tasks.base import Evaluation


@struct.dataclass
class AuroraState:
    """AURORA's state (a pytree).

    Attributes:
        container: the repertoire (:class:`qd.archives.UnstructuredContainer`, storing each elite's source).
        emitter_state: the emitter's state.
        ae: the encoder's parameters and training record.
        started: ``bool``, whether the first batch was told.
        generation: ``int32``, batches told after the first.
        next_training: ``int32``, the generation after which the encoder trains next.
        interval: ``int32``, the current training interval, in generations.
        csc_error: ``float32``, the size controller's last error ``N - target``.
    """

    container: Archive
    emitter_state: Any
    ae: AEState
    started: jax.Array
    generation: jax.Array
    next_training: jax.Array
    interval: jax.Array
    csc_error: jax.Array


def threshold_for_size(latents: jax.Array, mask: jax.Array, target_size: int) -> jax.Array:
    """A distance threshold ``l`` under which about ``target_size`` of these points would be elites: the
    ``1 - target / N`` quantile of their nearest-neighbour distances (``N`` valid points; the smallest
    distance when ``N <= target``). ``float32`` scalar.

    Args:
        latents: ``(N, L)`` float32, finite where ``mask``.
        mask: ``(N,) bool``, the points that count.
        target_size: the target number of elites.
    """
    _, _, d2 = two_nearest(latents, latents, mask)  # each point is its own nearest: d2 is its neighbour's
    nearest = jnp.sort(jnp.where(mask & jnp.isfinite(d2), jnp.sqrt(d2), jnp.inf))
    count = jnp.maximum(jnp.sum(mask & jnp.isfinite(d2)), 1)
    quantile = jnp.clip(1.0 - target_size / count, 0.0, 1.0)
    index = jnp.floor(quantile * (count - 1)).astype(jnp.int32)
    return jnp.where(jnp.isfinite(nearest[index]), nearest[index], 0.0).astype(jnp.float32)


def aurora_metrics(container: Archive) -> Dict[str, jax.Array]:
    """:func:`qd.metrics.archive_metrics` of the container without its fill fraction (not a coverage of
    anything), plus ``container_l`` (float32, the distance threshold), ``container_overflow`` (int32) and
    ``container_rebuild_lost`` (int32, elites lost when the container was rebuilt)."""
    metrics = dict(archive_metrics(container))
    del metrics["coverage"]
    metrics["container_l"] = container.l
    metrics["container_overflow"] = container.num_overflow
    metrics["container_rebuild_lost"] = container.num_rebuild_lost
    return metrics


class AuroraAlgorithm:
    """AURORA as ``init`` / ``ask`` / ``tell`` (see the module docstring).

    Args:
        emitter: an emitter of the ``emitters`` package (``batch_size``, ``init``, ``ask``, ``tell``).
        autoencoder: the learned space (:class:`qd.learned.Autoencoder`).
        target_size: the number of elites the size control aims at.
        source_key: the ``Evaluation.extras`` entry holding each agent's source (``"final_state"``).
        train_every: the first training comes after this many generations; the interval then doubles.
        max_epochs, validation_fraction, patience: each training's epochs (at most, with early stopping).
        csc_every: generations between two size controls (10).
        csc_rule: ``"aurora"`` (``l <- l (1 + K e)``) or ``"qdax"`` (a PD controller), see
            :func:`qd.archives.container_size_control`.
        csc_gain: the controller gain (None: ``0.1 / target_size`` for ``"aurora"``, QDax's ``1e-5`` for
            ``"qdax"``).

    The container given to ``init`` must store ``extras`` holding ``source_key``.

    Raises:
        TypeError: ``emitter`` lacks ``batch_size`` / ``init`` / ``ask`` / ``tell``.
        ValueError: non-positive counts, an unknown ``csc_rule``, a bad validation split or patience.
    """

    # Under ``vmap`` over seeds the training ``lax.cond`` would train every generation (see TaxonsAlgorithm).
    vmap_seeds = False

    def __init__(self, emitter: Any, autoencoder: Autoencoder, target_size: int = 1024, source_key: str = "final_state",
                 train_every: int = 10, max_epochs: int = 20, validation_fraction: float = 0.2, patience: int = 4,
                 csc_every: int = 10, csc_rule: str = "aurora", csc_gain: Optional[float] = None):
        for attr in ("batch_size", "init", "ask", "tell"):
            if not hasattr(emitter, attr):
                raise TypeError(f"AURORA: the emitter {emitter!r} has no {attr!r}; see the emitters package")
        for name, value in (("target_size", target_size), ("train_every", train_every), ("max_epochs", max_epochs),
                            ("csc_every", csc_every)):
            check_positive_int(f"AURORA: {name}", value)
        if csc_rule not in CSC_RULES:
            raise ValueError(f"AURORA: csc_rule must be one of {CSC_RULES}; got {csc_rule!r}")
        if not 0.0 <= float(validation_fraction) < 1.0:
            raise ValueError(f"AURORA: validation_fraction must be in [0, 1); got {validation_fraction}")
        if int(patience) < 0 or (int(patience) > 0 and validation_fraction <= 0):
            raise ValueError("AURORA: patience must be >= 0, and > 0 only with a validation split")
        self.emitter = emitter
        self.autoencoder = autoencoder
        self.target_size = int(target_size)
        self.source_key = source_key
        self.train_every = int(train_every)
        self.max_epochs = int(max_epochs)
        self.validation_fraction = float(validation_fraction)
        self.patience = int(patience)
        self.csc_every = int(csc_every)
        self.csc_rule = csc_rule
        self.csc_gain = (0.1 / self.target_size if csc_rule == "aurora" else None) if csc_gain is None else float(csc_gain)

    # ----------------------------------------------------------------------------------------- #
    def latent_dim(self, source_template: Any) -> int:
        """``L`` for one unbatched source (computed abstractly)."""
        return self.autoencoder.descriptor_dim(source_template)

    def evaluation_descriptor_dim(self, state: AuroraState) -> None:
        """None: the task's descriptors are not used (the ground truth stays in the extras, for metrics)."""
        return None

    def _sources(self, evaluation: Evaluation) -> Any:
        return evaluation_sources(evaluation, self.source_key, "AURORA")

    def _stored_extras(self, container: Archive, evaluation: Evaluation) -> Any:
        return stored_extras(container, evaluation, "AURORA")

    # ----------------------------------------------------------------------------------------- #
    def init(self, key: jax.Array, container: Archive, initial_genotypes: Any) -> Tuple[AuroraState, Any]:
        """``(state, initial_genotypes)``: the empty container, a fresh encoder, an emitter state (its
        structure only: the first ``tell`` starts it on the filled container), the schedule's counters."""
        if not isinstance(container.extras, dict) or self.source_key not in container.extras:
            raise ValueError(f"AURORA: the container must store extras with {self.source_key!r} (each elite's source)")
        k_ae, k_emitter = jax.random.split(key)
        one = jax.tree_util.tree_map(lambda x: x[:1], container.extras[self.source_key])
        state = AuroraState(
            container=container, emitter_state=self.emitter.init(k_emitter, container),
            ae=self.autoencoder.init(k_ae, one), started=jnp.zeros((), bool), generation=jnp.zeros((), jnp.int32),
            next_training=jnp.asarray(self.train_every, jnp.int32), interval=jnp.asarray(self.train_every, jnp.int32),
            csc_error=jnp.zeros((), jnp.float32),
        )
        return state, initial_genotypes

    def ask(self, state: AuroraState, key: jax.Array) -> Tuple[Any, AuroraState]:
        """The emitter's proposal ``(B, ...)`` from the container; the state is unchanged."""
        return self.emitter.ask(state.emitter_state, state.container, key), state

    def tell(self, state: AuroraState, genotypes: Any, evaluation: Evaluation, key: jax.Array) -> AuroraState:
        """The first batch trains the encoder and sets ``l``; every batch is encoded and added, the emitter
        learns; then training (with the refresh) and size control on their schedules."""
        k_first, k_train, k_emitter = jax.random.split(key, 3)
        sources = self._sources(evaluation)
        batch = PaddedDataset(sources, jnp.ones((evaluation.fitnesses.shape[0],), bool))
        ae, l_value = jax.lax.cond(state.started, lambda: (state.ae, state.container.l),
                                   lambda: self._first_training(state.ae, batch, k_first))
        descriptors, _ = self.autoencoder.encode(ae, sources)
        container, result = state.container.replace(l=l_value).add(
            genotypes, descriptors, evaluation.fitnesses, self._stored_extras(state.container, evaluation))
        learn = lambda: self.emitter.tell(state.emitter_state, container, genotypes, evaluation.fitnesses, descriptors, result)
        emitter_state = jax.lax.cond(state.started, learn, lambda: self.emitter.init(k_emitter, container))
        generation = state.generation + state.started.astype(jnp.int32)
        state = state.replace(container=container, emitter_state=emitter_state, ae=ae, started=jnp.ones((), bool),
                              generation=generation)
        train = lambda s: self._train_and_refresh(s, batch, k_train)
        state = jax.lax.cond(generation == state.next_training, train, lambda s: s, state)
        return jax.lax.cond((generation > 0) & (generation % self.csc_every == 0), self._size_control, lambda s: s, state)

    def tell_initial(self, state: AuroraState, genotypes: Any, evaluation: Evaluation, key: jax.Array) -> AuroraState:
        """An initial batch of any size (an eager start): as :meth:`tell`."""
        return self.tell(state, genotypes, evaluation, key)

    def archive(self, state: AuroraState) -> Archive:
        """The container."""
        return state.container

    # ----------------------------------------------------------------------------------------- #
    def _fit(self, ae: AEState, dataset: PaddedDataset, key: jax.Array) -> AEState:
        return self.autoencoder.train(ae, dataset, key, self.max_epochs, self.validation_fraction, self.patience)

    def _first_training(self, ae: AEState, batch: PaddedDataset, key: jax.Array) -> Tuple[AEState, jax.Array]:
        ae = self._fit(ae, batch, key)
        latents, _ = self.autoencoder.encode(ae, batch.sources)
        return ae, threshold_for_size(latents, batch.mask, self.target_size)

    def _train_and_refresh(self, state: AuroraState, batch: PaddedDataset, key: jax.Array) -> AuroraState:
        container = state.container
        stored = PaddedDataset(container.extras[self.source_key], container.filled)
        ae = self._fit(state.ae, concatenate_datasets(stored, batch), key)
        state = state.replace(ae=ae, next_training=state.next_training + 2 * state.interval, interval=2 * state.interval)
        return self.refresh(state)

    def stores(self, state: AuroraState) -> Dict[str, Tuple[Any, jax.Array]]:
        """Every store of descriptors that depend on the encoder, ``{name: (sources, mask)}``: the container
        (the emitter states hold none)."""
        return {"container": (state.container.extras[self.source_key], state.container.filled)}

    def refresh(self, state: AuroraState) -> AuroraState:
        """Recompute the container's descriptors with the current encoder, re-initialise ``l`` for the new
        latent scale and rebuild the container in the new space."""
        sources, mask = self.stores(state)["container"]
        latents, _ = self.autoencoder.encode_valid(state.ae, sources, mask)
        l_value = threshold_for_size(latents, mask, self.target_size)
        return state.replace(container=state.container.rebuild(latents, l=l_value))

    def _size_control(self, state: AuroraState) -> AuroraState:
        container, error = container_size_control(state.container, self.target_size, state.csc_error, self.csc_gain,
                                                  rule=self.csc_rule)
        return state.replace(container=container, csc_error=error)

    def metrics(self, state: AuroraState) -> Dict[str, jax.Array]:
        """``ae_loss`` / ``ae_validation_loss`` (float32, the last training's), ``ae_trainings`` and
        ``ae_epochs`` (int32)."""
        return ae_metrics(state.ae)


class Aurora(Driver):
    """AURORA (:class:`AuroraAlgorithm`) on the :class:`~qd.algorithms.driver.Driver`.

    Args:
        emitter, autoencoder, **options: see :class:`AuroraAlgorithm`.
        evaluate: ``evaluate(genotypes, key) -> Evaluation`` with ``extras[source_key]``.
        ground_truth: a :class:`qd.metrics.GroundTruth` for the exploration metrics (the sparse tasks:
            ``GroundTruth.of_task(task)``), or None.
        compiler_options, devices: as :class:`qd.algorithms.MAPElites`.

    ``init(container, initial_genotypes, key)``; then ``run`` / ``scan`` / ``step`` / ``ask`` / ``tell``.
    Metrics: :func:`aurora_metrics` of the container (``qd_score``, ``max_fitness``, ``mean_fitness``,
    ``num_elites``, ``container_l``, ``container_overflow``, ``container_rebuild_lost``), the AE's
    (:meth:`AuroraAlgorithm.metrics`), the exploration metrics with a ground truth, ``num_evaluations``,
    ``iteration``.
    """

    def __init__(self, emitter: Any, autoencoder: Autoencoder, evaluate: Callable[[Any, jax.Array], Evaluation],
                 ground_truth: Optional[GroundTruth] = None, compiler_options: Optional[Dict[str, Any]] = None,
                 devices: Any = None, **options: Any):
        super().__init__(AuroraAlgorithm(emitter, autoencoder, **options), evaluate, metrics_fn=aurora_metrics,
                         ground_truth=ground_truth, compiler_options=compiler_options, devices=devices)
