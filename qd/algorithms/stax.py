"""STAX (Paolo, Coninx, Laflaquière & Doncieux, Evolutionary Computation 2023, "Discovering and exploiting
sparse rewards in a learned behavior space"; arXiv 2111.01919): SERENE whose behaviour descriptor is learned
online, as in TAXONS.

Everything of :mod:`qd.algorithms.serene` holds (budget chunks, novelty search with the reward archive in its
reference set, candidate emitters, bootstrap, Pareto choice, stagnation, faithful / parallel modes), with
these changes (the STAX code, GPaolo/STAX ``core/evolvers/serene_taxons.py``, ``core/searcher.py``):

- **Descriptors** are the latent codes of an autoencoder (:class:`qd.learned.Autoencoder`; the STAX
  convolutional AE by default, :func:`qd.learned.stax_autoencoder`) on each agent's *source* (the task's
  ``extras[source_key]``, e.g. a sparse task's final state, rendered to a 64x64 image in JAX; several frames
  per trajectory with an autoencoder of ``frames > 1``). Novelty, candidate priorities and the emitters'
  Pareto choice all run in that learned space. *Surprise* is the reconstruction error (summed over frames).
- **Population selection** (``selection``): ``"mixed"`` (STAX) picks novelty or surprise uniformly at random
  each generation; ``"nsga2"`` (STAX-P, the variant the STAX paper's plots call STAX) keeps the ``P`` best of
  ``P u O`` by NSGA-II's non-dominated sort and crowding distance on (novelty, surprise); ``"novelty"`` keeps
  the most novel (with ``train=False``: STAX-NT, novelty in the space of an untrained encoder).
- **Training** after exploration chunks 1, 3, 6, 10, ... (the interval grows by one chunk after each
  training; exploitation chunks do not count), on the sources of ``A u P u O u R``, 20% held out for
  validation, up to 100 epochs of minibatches of ``batch_size`` (128), stopping at the 4th consecutive rise of
  the validation loss (:meth:`qd.learned.Autoencoder.train`).
- **Refresh.** After each training every stored descriptor is recomputed (:meth:`StaxAlgorithm.refresh`
  through the one list :meth:`StaxAlgorithm.stores`): the parents (and their surprise), the last offspring,
  the novelty archive, the reward archive, the waiting candidates, the emitters' ancestors and their novelty
  candidates.

Departures, on purpose: the images are rendered in JAX from the stored source, not captured and resized; an
emitter's "most novel so far" is kept as a novelty value, which a training does not recompute (the
original re-encodes that agent but compares with its old novelty too); the ``-sm_exp`` and ``reset_ae``
flags of the STAX code are not offered.

Both archives must store ``extras`` holding ``source_key`` (the sources are re-encoded from there).
:class:`Stax` is the algorithm on the :class:`~qd.algorithms.driver.Driver`.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.algorithms.checks import check_positive_int
from qd.algorithms.driver import Driver
from qd.algorithms.novelty_search import novelty_archive_metrics
from qd.algorithms.serene import EMPTY, EXPLORE, RESERVOIR, SereneAlgorithm, SereneState
from qd.archives.base import Archive
from qd.learned.sources import evaluation_sources
from qd.learned.training import AEState, Autoencoder, PaddedDataset, ae_metrics, concatenate_datasets
from qd.metrics import GroundTruth
from qd.selection import nsga2_select, truncation_selection
from qd.tasks.base import Evaluation

SELECTIONS = ("mixed", "nsga2", "novelty")
# name -> (selection, train)
VARIANTS: Dict[str, Tuple[str, bool]] = {
    "stax": ("mixed", True),
    "stax_p": ("nsga2", True),
    "stax_nt": ("novelty", False),
}
SURPRISE_KEY = "surprise"  # where ``_describe`` leaves the batch's surprise, in the evaluation's extras


@struct.dataclass
class StaxState(SereneState):
    """:class:`~qd.algorithms.serene.SereneState` plus the learned space.

    Attributes:
        ae: the encoder's parameters and training record.
        surprise: ``(P,) float32`` the parents' reconstruction errors.
        chunks_since_training: ``() int32`` exploration chunks since the last training.
        interval: ``() int32`` exploration chunks between this training and the next (1, 2, 3, ...).
    """

    ae: AEState = None
    surprise: jax.Array = None
    chunks_since_training: jax.Array = None
    interval: jax.Array = None


class StaxAlgorithm(SereneAlgorithm):
    """STAX / STAX-P / STAX-NT (module docstring) as a phased algorithm of the driver protocol.

    Args:
        emitter, budget: as :class:`~qd.algorithms.serene.SereneAlgorithm`.
        autoencoder: the learned space (:class:`qd.learned.Autoencoder`).
        selection: ``"mixed"`` (STAX), ``"nsga2"`` (STAX-P) or ``"novelty"``.
        train: whether the encoder learns (False: STAX-NT).
        source_key: the ``Evaluation.extras`` entry holding each agent's source (``"final_state"``).
        max_epochs, validation_fraction, patience: training (100, 0.2, 4).
        **serene: the other keywords of :class:`~qd.algorithms.serene.SereneAlgorithm`.

    Raises:
        ValueError: an unknown ``selection``; ``max_epochs`` not positive; ``validation_fraction`` outside
            ``[0, 1)``; ``patience > 0`` without validation; what SERENE raises.
        TypeError: ``autoencoder`` is not a :class:`qd.learned.Autoencoder`.
    """

    def __init__(self, emitter: Any, budget: int, autoencoder: Autoencoder, selection: str = "nsga2", train: bool = True,
                 source_key: str = "final_state", max_epochs: int = 100, validation_fraction: float = 0.2,
                 patience: int = 4, **serene: Any):
        super().__init__(emitter, budget, **serene)
        if not isinstance(autoencoder, Autoencoder):
            raise TypeError(f"STAX: autoencoder must be a qd.learned.Autoencoder; got {autoencoder!r}")
        if selection not in SELECTIONS:
            raise ValueError(f"STAX: selection must be one of {SELECTIONS}; got {selection!r}")
        check_positive_int("STAX: max_epochs", max_epochs)
        if not 0.0 <= float(validation_fraction) < 1.0:
            raise ValueError(f"STAX: validation_fraction must be in [0, 1); got {validation_fraction}")
        if int(patience) < 0 or (int(patience) > 0 and validation_fraction <= 0):
            raise ValueError("STAX: patience must be >= 0, and > 0 only with a validation split")
        self.autoencoder = autoencoder
        self.selection = selection
        self.trains = bool(train)
        self.source_key = source_key
        self.max_epochs = int(max_epochs)
        self.validation_fraction = float(validation_fraction)
        self.patience = int(patience)

    # ----------------------------------------------------------------------------------------- #
    def descriptor_dim(self, source_template: Any) -> int:
        """``L``, the latent size (times the frames) for one unbatched source."""
        return self.autoencoder.descriptor_dim(source_template)

    def evaluation_descriptor_dim(self, state: StaxState) -> None:
        """None: the task's descriptors are replaced (the ground truth stays in the extras, for metrics)."""
        return None

    def init(self, key: jax.Array, archive: Archive, initial_genotypes: jax.Array,
             reward_archive: Archive) -> Tuple[StaxState, jax.Array]:
        """SERENE's stores, sized for the latent space, and a fresh encoder (``key``).

        Raises:
            ValueError: an archive that does not store ``extras[source_key]``; what SERENE's ``init`` raises.
        """
        for name, a in (("novelty archive", archive), ("reward archive", reward_archive)):
            if a is None or a.extras is None or self.source_key not in a.extras:
                raise ValueError(f"STAX: the {name} must store extras with {self.source_key!r} (the sources to re-encode)")
        base, genotypes = super().init(key, archive, initial_genotypes, reward_archive)
        source_template = jax.tree_util.tree_map(lambda x: x[:1], archive.extras[self.source_key])
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(SereneState)}
        p = genotypes.shape[0]
        state = StaxState(**fields, ae=self.autoencoder.init(key, source_template), surprise=jnp.zeros((p,), jnp.float32),
                          chunks_since_training=jnp.zeros((), jnp.int32), interval=jnp.ones((), jnp.int32))
        return state, genotypes

    # ----------------------------------------------------------------------------------------- #
    # SERENE's hooks
    # ----------------------------------------------------------------------------------------- #
    def _describe(self, state: StaxState, genotypes: jax.Array, evaluation: Evaluation, key: jax.Array) -> Evaluation:
        """Latent descriptors of the batch's sources; their surprise goes to ``extras["surprise"]``."""
        sources = evaluation_sources(evaluation, self.source_key, "STAX")
        latents, surprise = self.autoencoder.encode(state.ae, sources)
        return evaluation.replace(descriptors=latents, extras={**evaluation.extras, SURPRISE_KEY: surprise})

    def _selector(self, state: StaxState, evaluation: Evaluation, key: jax.Array) -> Optional[Callable]:
        if self.selection == "novelty":
            return None
        p = state.surprise.shape[0]
        surprise = jnp.concatenate([state.surprise, evaluation.extras[SURPRISE_KEY]])
        if self.selection == "nsga2":
            def select(novelty, rewards):
                objectives = jnp.stack([novelty, surprise], axis=1)
                return nsga2_select(jnp.nan_to_num(objectives, nan=-3e38, posinf=3e38, neginf=-3e38), p)
            return select
        use_surprise = jax.random.bernoulli(key, 0.5)
        return lambda novelty, rewards: truncation_selection(jnp.where(use_surprise, surprise, novelty), p)

    def _survived(self, state: StaxState, survivors: jax.Array, evaluation: Evaluation, initial: bool = False) -> StaxState:
        surprise = evaluation.extras[SURPRISE_KEY]
        if not initial:
            surprise = jnp.concatenate([state.surprise, surprise])[survivors]
        return state.replace(surprise=surprise)

    def _after_chunk(self, state: StaxState, key: jax.Array) -> StaxState:
        """After exploration chunks 1, 3, 6, 10, ...: train the encoder, then refresh every store."""
        if not self.trains:
            return state
        explored = state.phase == EXPLORE
        count = state.chunks_since_training + explored.astype(jnp.int32)
        due = explored & (count >= state.interval)
        state = state.replace(chunks_since_training=jnp.where(due, 0, count).astype(jnp.int32),
                              interval=(state.interval + due.astype(jnp.int32)).astype(jnp.int32))
        return jax.lax.cond(due, lambda s: self._train_and_refresh(s, key), lambda s: s, state)

    # ----------------------------------------------------------------------------------------- #
    # Training and refresh
    # ----------------------------------------------------------------------------------------- #
    def training_data(self, state: StaxState) -> PaddedDataset:
        """The sources of ``A u P u O u R`` (the STAX code's ``train_on_reward=True``)."""
        k = self.source_key
        a, r = state.ns.archive, state.ns.reward_archive
        p = state.surprise.shape[0]
        o = state.offspring.fitnesses.shape[0]
        return concatenate_datasets(
            PaddedDataset(a.extras[k], a.filled),
            PaddedDataset(state.population_extras[k], jnp.ones((p,), bool)),
            PaddedDataset(state.offspring.extras[k], jnp.broadcast_to(state.offspring_valid, (o,))),
            PaddedDataset(r.extras[k], r.filled),
        )

    def _train_and_refresh(self, state: StaxState, key: jax.Array) -> StaxState:
        ae = self.autoencoder.train(state.ae, self.training_data(state), key, self.max_epochs, self.validation_fraction,
                                    self.patience)
        return self.refresh(state.replace(ae=ae))

    def stores(self, state: StaxState) -> Dict[str, Tuple[Any, jax.Array]]:
        """Every store of descriptors that depend on the encoder: ``{name: (sources (N, ...), mask (N,))}``, the
        one list :meth:`refresh` goes through (the emitters' reservoirs flattened, ``S * 5`` rows)."""
        k = self.source_key
        slots = state.slots
        live = slots.status != EMPTY
        p = state.surprise.shape[0]
        o = state.offspring.fitnesses.shape[0]
        kept = (jnp.arange(RESERVOIR)[None, :] < jnp.minimum(slots.seen, RESERVOIR)[:, None]) & live[:, None]
        flat = lambda x: x.reshape((-1,) + x.shape[2:])
        return {
            "population": (state.population_extras[k], jnp.ones((p,), bool)),
            "offspring": (state.offspring.extras[k], jnp.broadcast_to(state.offspring_valid, (o,))),
            "archive": (state.ns.archive.extras[k], state.ns.archive.filled),
            "reward_archive": (state.ns.reward_archive.extras[k], state.ns.reward_archive.filled),
            "candidates": (state.candidates.agents.extras[k], state.candidates.valid),
            "ancestors": (slots.ancestor.extras[k], live),
            "novelty_candidates": (jax.tree_util.tree_map(flat, slots.reservoir.extras[k]), kept.reshape(-1)),
        }

    def refresh(self, state: StaxState) -> StaxState:
        """Recompute every stored descriptor (:meth:`stores`) and the parents' surprise with the current encoder."""
        stores = self.stores(state)
        # One encoding of every store's valid rows together (one compiled loop, not one per store).
        sizes = [int(mask.shape[0]) for _, mask in stores.values()]
        sources = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *[src for src, _ in stores.values()])
        latents, surprise = self.autoencoder.encode_valid(state.ae, sources, jnp.concatenate([m for _, m in stores.values()]))
        ends = list(itertools.accumulate(sizes))
        new = {name: (latents[end - size:end], surprise[end - size:end]) for name, size, end in zip(stores, sizes, ends)}
        ns, slots, cand = state.ns, state.slots, state.candidates
        s = slots.status.shape[0]
        reservoir = new["novelty_candidates"][0].reshape((s, RESERVOIR, -1))
        return state.replace(
            ns=ns.replace(descriptors=new["population"][0],
                          archive=ns.archive.replace(descriptors=new["archive"][0]),
                          reward_archive=ns.reward_archive.replace(descriptors=new["reward_archive"][0])),
            surprise=new["population"][1],
            offspring=state.offspring.replace(descriptors=new["offspring"][0]),
            candidates=cand.replace(agents=cand.agents.replace(descriptors=new["candidates"][0])),
            slots=slots.replace(ancestor=slots.ancestor.replace(descriptors=new["ancestors"][0]),
                                reservoir=slots.reservoir.replace(descriptors=reservoir)),
        )

    # ----------------------------------------------------------------------------------------- #
    def metrics(self, state: StaxState) -> Dict[str, jax.Array]:
        """SERENE's metrics plus ``mean_surprise`` (parents), ``ae_loss`` / ``ae_validation_loss`` (float32, the
        last training's, NaN before any), ``ae_trainings`` and ``ae_epochs`` (int32)."""
        out = super().metrics(state)
        out["mean_surprise"] = jnp.mean(state.surprise)
        out.update(ae_metrics(state.ae))
        return out


class Stax(Driver):
    """STAX (:class:`StaxAlgorithm`) on the :class:`~qd.algorithms.driver.Driver`.

    Args:
        evaluate: ``evaluate(genotypes, key) -> Evaluation`` with ``extras[source_key]`` and, for the metrics,
            ``extras["gt_descriptor"]`` / ``extras["reward_area"]`` (the sparse tasks return all three).
        ground_truth_bounds, num_reward_areas: as :class:`~qd.algorithms.serene.Serene`.
        emitter, budget, autoencoder, and the keywords of :class:`StaxAlgorithm`.
        coverage_resolution, compiler_options, devices: as :class:`~qd.algorithms.serene.Serene`.

    ``init(archive, initial_genotypes, reward_archive, key)`` then ``scan`` / ``run`` until
    ``metrics["phase"] == 2``. Both archives store ``extras`` with the source (``extras_template(task,
    ("final_state", ...))``) and have the latent dimension :meth:`StaxAlgorithm.descriptor_dim`.

    Example::

        task = Curling()
        ae = Autoencoder(stax_autoencoder(), render=task.render)
        stax = Stax(task.evaluate, task.descriptor_bounds, task.num_reward_areas, FitnessEmitter(), 100_000, ae)
        template = extras_template(task, keys=("final_state", "gt_descriptor"))
        a = UnstructuredArchive.create(jnp.zeros(task.num_params), 16_384, 10, policy="random", extras_template=template)
        r = UnstructuredArchive.create(jnp.zeros(task.num_params), 16_384, 10, threshold=0.0, extras_template=template)
        state, _ = stax.init(a, task.initial_genotypes(k1, 100), r, k2)
    """

    def __init__(self, evaluate: Callable[[Any, jax.Array], Evaluation], ground_truth_bounds: Tuple[Sequence[float], Sequence[float]],
                 num_reward_areas: int, emitter: Any, budget: int, autoencoder: Autoencoder, *, coverage_resolution: int = 50,
                 compiler_options: Optional[Dict[str, Any]] = None, devices: Any = None, **kwargs: Any):
        algorithm = StaxAlgorithm(emitter, budget, autoencoder, num_reward_areas=num_reward_areas, **kwargs)
        truth = GroundTruth.create(ground_truth_bounds, num_reward_areas, coverage_resolution, "STAX")
        if not callable(evaluate):
            raise TypeError(f"STAX: evaluate must be a function (genotypes, key) -> Evaluation; got {evaluate!r}")
        super().__init__(algorithm, evaluate, metrics_fn=novelty_archive_metrics, ground_truth=truth,
                         compiler_options=compiler_options, devices=devices)
