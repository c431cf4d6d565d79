"""An autoencoder that learns a behaviour space: its state, its encoding of stored observations, and its
training on a padded fixed-capacity dataset, each one compiled program.

A learned behaviour space (TAXONS, AURORA, STAX) has three parts, here :class:`Autoencoder`'s:

- a **model**: a flax module ``model(inputs, train) -> (reconstructions, latents)`` (see
  :mod:`qd.learned.autoencoders`), with optional BatchNorm statistics;
- a **render** function from the compact *source* an archive stores for each agent (a sparse task's
  ``final_state``, a Brax task's subsampled trajectory) to the model's inputs (a 64x64 image, a vector).
  Stores keep sources, never images: 16k slots x 64x64x3 float32 would be 800 MB, a curling final state is
  a few floats. Images exist only inside a minibatch or an encoding chunk;
- the **training** settings: Adam (``optax.adam``), minibatches, epochs, validation split, early stopping.

Everything is pure and jittable on fixed shapes, so an algorithm trains inside its ``tell`` (under a
``lax.cond`` on its schedule) and a whole run stays one ``lax.scan``:

- :class:`PaddedDataset`: sources with a leading capacity ``N`` and a validity ``mask (N,)``. The number of
  minibatches per epoch is computed from ``sum(mask)`` at run time (a ``fori_loop`` with a dynamic trip
  count), so a dataset that grows inside its capacity never recompiles and an epoch costs what its valid
  rows cost, not its capacity. Host code that builds datasets of growing size pads them to a capacity
  *bucket* (:func:`bucket_capacity`, powers of two): one program per bucket.
- :meth:`Autoencoder.train`: ``epochs`` passes (or up to ``epochs`` with early stopping), each over a fresh
  random order of the training rows, in minibatches of ``batch_size`` (the last one partial: its loss is the
  mean over its valid rows, as PyTorch's ``DataLoader`` without ``drop_last``). With
  ``validation_fraction > 0`` a random share of the valid rows (STAX: 20%, drawn once per training) is held
  out; with ``patience > 0`` training stops after ``patience`` consecutive epochs whose validation loss
  rose (STAX: the 4th consecutive increase, at most 100 epochs). The final parameters are those of the last
  epoch run (STAX keeps them too, it does not restore the best epoch).
- :meth:`Autoencoder.encode`: latents ``(N, L)`` and surprise ``(N,)`` (the per-sample reconstruction error,
  :func:`per_sample_error`) in chunks of ``encode_chunk`` rows, so memory is
  bounded whatever ``N``; :meth:`Autoencoder.encode_valid` encodes only the valid rows of a masked store
  (its cost follows the fill, not the capacity) and leaves zeros elsewhere.

Loss: the mean over a minibatch of the per-sample mean squared error, the TAXONS / STAX loss (their surprise
is the same per-sample error). With BatchNorm (the TAXONS AE) training uses the minibatch statistics and
updates the running averages, encoding uses the running averages (PyTorch's ``train()`` / ``eval()``).
A partial last minibatch is filled up with copies of a real row (weight 0 in the loss; they do count in
BatchNorm's minibatch statistics); rows outside the mask are never read.

Shapes: ``N`` rows (capacity), ``L`` latent dimensions, ``B`` the minibatch size.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

Render = Callable[[Any], jax.Array]


# --------------------------------------------------------------------------------------------- #
# Datasets
# --------------------------------------------------------------------------------------------- #
@struct.dataclass
class PaddedDataset:
    """Observation sources with a fixed capacity and a validity mask (a pytree).

    Attributes:
        sources: pytree of arrays with leading axis ``N`` (the capacity).
        mask: ``(N,) bool``, which rows hold data.
    """

    sources: Any
    mask: jax.Array

    @property
    def capacity(self) -> int:
        """``N``, the number of rows (valid or not)."""
        return int(self.mask.shape[0])

    @property
    def count(self) -> jax.Array:
        """``int32`` scalar: the number of valid rows."""
        return jnp.sum(self.mask, dtype=jnp.int32)


def bucket_capacity(n: int, minimum: int = 256) -> int:
    """The capacity bucket of a dataset of ``n`` rows: the smallest power of two ``>= max(n, minimum)``.

    Raises:
        ValueError: ``n < 0`` or ``minimum < 1``.
    """
    if int(n) < 0 or int(minimum) < 1:
        raise ValueError(f"bucket_capacity: need n >= 0 and minimum >= 1; got n={n}, minimum={minimum}")
    size = max(int(n), int(minimum))
    return 1 << (size - 1).bit_length()


def padded_dataset(sources: Any, mask: Optional[Any] = None, capacity: Optional[int] = None) -> PaddedDataset:
    """``sources`` (leading axis ``n``) padded with zero rows to ``capacity`` (default: its bucket,
    :func:`bucket_capacity`); ``mask`` (``(n,) bool``, default all valid) is padded with False.

    Raises:
        ValueError: leaves with different leading axes, a mask of another length, ``capacity < n``.
    """
    leaves = jax.tree_util.tree_leaves(sources)
    if not leaves:
        raise ValueError("padded_dataset: sources has no arrays")
    n = int(leaves[0].shape[0])
    if any(int(x.shape[0]) != n for x in leaves):
        raise ValueError(f"padded_dataset: source leaves disagree on the number of rows: {[x.shape for x in leaves]}")
    mask = jnp.ones((n,), bool) if mask is None else jnp.asarray(mask, bool)
    if mask.shape != (n,):
        raise ValueError(f"padded_dataset: mask must have shape ({n},); got {tuple(mask.shape)}")
    capacity = bucket_capacity(n) if capacity is None else int(capacity)
    if capacity < n:
        raise ValueError(f"padded_dataset: capacity {capacity} is below the {n} rows given")
    pad = capacity - n
    grow = lambda x: jnp.concatenate([jnp.asarray(x), jnp.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else jnp.asarray(x)
    return PaddedDataset(jax.tree_util.tree_map(grow, sources), jnp.concatenate([mask, jnp.zeros((pad,), bool)]))


def concatenate_datasets(*datasets: PaddedDataset) -> PaddedDataset:
    """Rows of several datasets (same source structure) one after the other: capacity = the sum."""
    sources = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *[d.sources for d in datasets])
    return PaddedDataset(sources, jnp.concatenate([d.mask for d in datasets]))


def per_sample_error(inputs: jax.Array, reconstructions: jax.Array) -> jax.Array:
    """``(B,) float32``: each sample's mean squared error over its non-batch axes (the TAXONS / STAX loss
    and surprise; :func:`qd.learned.autoencoders.reconstruction_error` is the same function)."""
    diff = jnp.asarray(reconstructions, jnp.float32) - jnp.asarray(inputs, jnp.float32)
    return jnp.mean(diff * diff, axis=tuple(range(1, diff.ndim)))


def _gather(tree: Any, index: jax.Array) -> Any:
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def valid_first(mask: jax.Array, key: Optional[jax.Array] = None) -> jax.Array:
    """``(N,) int32`` row indices with the valid rows first (in random order with ``key``, in index order
    without), then the others."""
    n = mask.shape[0]
    score = jnp.arange(n, dtype=jnp.float32) / n if key is None else jax.random.uniform(key, (n,))
    return jnp.argsort(jnp.where(mask, score, 2.0)).astype(jnp.int32)


# --------------------------------------------------------------------------------------------- #
# The autoencoder's state
# --------------------------------------------------------------------------------------------- #
@struct.dataclass
class AEState:
    """A learned space's parameters and training record (a pytree: checkpointed with the run).

    Attributes:
        params: the model's parameters.
        batch_stats: BatchNorm running statistics, or None for a model without BatchNorm.
        opt_state: the Adam state (kept across trainings).
        num_trainings: ``int32``, trainings done.
        loss: ``float32``, the last training's mean training loss over its last epoch (NaN before any).
        validation_loss: ``float32``, its validation loss after the last epoch (NaN without validation).
        epochs: ``int32``, epochs the last training ran.
    """

    params: Any
    batch_stats: Any
    opt_state: Any
    num_trainings: jax.Array
    loss: jax.Array
    validation_loss: jax.Array
    epochs: jax.Array


def ae_metrics(ae: "AEState") -> dict:
    """A learned space's training record as metrics: ``ae_loss`` / ``ae_validation_loss`` (float32, the last
    training's; NaN before any, or without validation), ``ae_trainings`` and ``ae_epochs`` (int32)."""
    return {"ae_loss": ae.loss, "ae_validation_loss": ae.validation_loss, "ae_trainings": ae.num_trainings,
            "ae_epochs": ae.epochs}


class Autoencoder:
    """A model, how sources become its inputs, and how it is trained (static configuration only).

    Args:
        model: a flax linen module, ``model.apply(variables, inputs, train=...) -> (reconstructions,
            latents (B, L))`` (:mod:`qd.learned.autoencoders`); BatchNorm statistics in the
            ``"batch_stats"`` collection.
        render: ``sources (B, ...) -> inputs (B, ...)``, batched (a sparse task's ``render``); None: the
            sources are the inputs.
        learning_rate: Adam's step size (TAXONS / STAX: 1e-3).
        batch_size: minibatch size (128).
        encode_chunk: rows encoded at a time (bounds the memory of rendered images).
        frames: views per source (STAX's ``samples_per_traj``, "multi"): with ``frames = S > 1`` every source
            leaf has a second axis ``S`` (``(B, S, ...)``, e.g. a sparse task's ``extras["trajectory_states"]``),
            each view is rendered and encoded on its own, the descriptor is the concatenation of the ``S``
            latents (``(B, S L)``) and the surprise (and the training loss) the sum of the ``S`` errors.

    Raises:
        ValueError: a non-positive ``learning_rate``, ``batch_size``, ``encode_chunk`` or ``frames``.
    """

    def __init__(self, model: Any, render: Optional[Render] = None, learning_rate: float = 1e-3,
                 batch_size: int = 128, encode_chunk: int = 256, frames: int = 1):
        if not (np.isfinite(learning_rate) and learning_rate > 0):
            raise ValueError(f"Autoencoder: learning_rate must be positive; got {learning_rate}")
        if int(batch_size) < 1 or int(encode_chunk) < 1 or int(frames) < 1:
            raise ValueError(f"Autoencoder: batch_size, encode_chunk and frames must be positive; got {batch_size}, "
                             f"{encode_chunk}, {frames}")
        self.frames = int(frames)
        self.model = model
        self.render = render
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.encode_chunk = int(encode_chunk)
        self.optimizer = optax.adam(self.learning_rate)

    # ----------------------------------------------------------------------------------------- #
    def inputs(self, sources: Any) -> jax.Array:
        """The model's inputs for a batch of sources (rendered, as float32): ``(B S, ...)`` with ``frames = S``."""
        if self.frames > 1:  # every view is one input
            sources = jax.tree_util.tree_map(lambda v: v.reshape((v.shape[0] * v.shape[1],) + v.shape[2:]), sources)
        x = sources if self.render is None else self.render(sources)
        return jnp.asarray(x, jnp.float32)

    def init(self, key: jax.Array, example_sources: Any) -> AEState:
        """Fresh parameters and Adam state, from a batch of example sources (shapes only matter)."""
        variables = self.model.init(key, self.inputs(example_sources), train=False)
        params = variables["params"]
        return AEState(
            params=params,
            batch_stats=variables.get("batch_stats"),
            opt_state=self.optimizer.init(params),
            num_trainings=jnp.zeros((), jnp.int32),
            loss=jnp.full((), jnp.nan, jnp.float32),
            validation_loss=jnp.full((), jnp.nan, jnp.float32),
            epochs=jnp.zeros((), jnp.int32),
        )

    def descriptor_dim(self, source_template: Any) -> int:
        """The descriptor size for one unbatched source: ``L`` (``S L`` with ``frames = S``), computed
        abstractly (nothing is initialised or run)."""
        one = jax.tree_util.tree_map(lambda x: jnp.zeros((1,) + tuple(x.shape), x.dtype), source_template)
        state = jax.eval_shape(self.init, jax.random.PRNGKey(0), one)
        return int(jax.eval_shape(self.encode_batch, state, one)[0].shape[1])

    def _variables(self, params: Any, batch_stats: Any) -> dict:
        return {"params": params} if batch_stats is None else {"params": params, "batch_stats": batch_stats}

    def _errors(self, params, batch_stats, x, train: bool):
        """``(per-source error (B,), latents (B, S L), new batch_stats)`` of inputs ``x (B S, ...)``."""
        variables = self._variables(params, batch_stats)
        if train and batch_stats is not None:
            (recon, latents), updated = self.model.apply(variables, x, train=True, mutable=["batch_stats"])
            batch_stats = updated["batch_stats"]
        else:
            recon, latents = self.model.apply(variables, x, train=train)
        errors = per_sample_error(x, recon)
        if self.frames > 1:
            n = errors.shape[0] // self.frames
            errors, latents = errors.reshape(n, self.frames).sum(axis=1), latents.reshape(n, -1)
        return errors, latents, batch_stats

    # ----------------------------------------------------------------------------------------- #
    # Encoding
    # ----------------------------------------------------------------------------------------- #
    def encode_batch(self, state: AEState, sources: Any) -> Tuple[jax.Array, jax.Array]:
        """``(latents (B, L) float32, surprise (B,) float32)`` of one batch, all at once."""
        errors, latents, _ = self._errors(state.params, state.batch_stats, self.inputs(sources), train=False)
        return latents.astype(jnp.float32), errors.astype(jnp.float32)

    def encode(self, state: AEState, sources: Any) -> Tuple[jax.Array, jax.Array]:
        """``(latents (N, L), surprise (N,))`` of every row, ``encode_chunk`` rows at a time."""
        n = int(jax.tree_util.tree_leaves(sources)[0].shape[0])
        return self._encode_rows(state, sources, jnp.arange(n, dtype=jnp.int32), jnp.asarray(n, jnp.int32))

    def encode_valid(self, state: AEState, sources: Any, mask: jax.Array) -> Tuple[jax.Array, jax.Array]:
        """``(latents (N, L), surprise (N,))`` of the rows where ``mask`` holds, zeros elsewhere; only
        ``ceil(sum(mask) / encode_chunk)`` chunks are computed."""
        return self._encode_rows(state, sources, valid_first(mask), jnp.sum(mask, dtype=jnp.int32))

    def _encode_rows(self, state, sources, order, count):
        """Encode rows ``order[:count]`` (in chunks; the rest of the outputs stay zero)."""
        n = order.shape[0]
        chunk = min(self.encode_chunk, n)
        latent_shape = jax.eval_shape(lambda s: self.encode_batch(state, s), _gather(sources, order[:chunk]))
        latents = jnp.zeros((n, latent_shape[0].shape[1]), jnp.float32)
        surprise = jnp.zeros((n,), jnp.float32)
        padded = jnp.concatenate([order, jnp.full((chunk,), n, jnp.int32)])  # n: out of range, dropped

        def body(c, carry):
            latents, surprise = carry
            rows = jax.lax.dynamic_slice(padded, (c * chunk,), (chunk,))
            valid = (c * chunk + jnp.arange(chunk)) < count
            rows = jnp.where(valid, rows, n)
            z, e = self.encode_batch(state, _gather(sources, jnp.where(valid, rows, order[0])))
            return latents.at[rows].set(z, mode="drop"), surprise.at[rows].set(e, mode="drop")

        num_chunks = (count + chunk - 1) // chunk
        return jax.lax.fori_loop(0, num_chunks, body, (latents, surprise))

    def reconstruct(self, state: AEState, sources: Any) -> Tuple[jax.Array, jax.Array]:
        """``(inputs, reconstructions)`` of one batch of sources (for pictures; eval mode)."""
        x = self.inputs(sources)
        recon, _ = self.model.apply(self._variables(state.params, state.batch_stats), x, train=False)
        return x, recon

    # ----------------------------------------------------------------------------------------- #
    # Training
    # ----------------------------------------------------------------------------------------- #
    def train(
        self,
        state: AEState,
        dataset: PaddedDataset,
        key: jax.Array,
        epochs: int,
        validation_fraction: float = 0.0,
        patience: int = 0,
    ) -> AEState:
        """Train on the valid rows of ``dataset`` (pure, jittable; see the module docstring).

        Args:
            state: the current parameters and Adam state.
            dataset: the sources to learn from (their rows where ``mask`` holds).
            key: PRNG key (split, order of the rows in every epoch).
            epochs: static, the number of epochs (with ``patience``: the most).
            validation_fraction: static, the share of valid rows held out for validation (0: none).
            patience: static, stop after this many consecutive rises of the validation loss (0: never;
                needs ``validation_fraction > 0``).

        Returns:
            The new state: parameters, Adam state and BatchNorm statistics after training,
            ``num_trainings + 1``, and the training / validation losses of the last epoch and the epochs run.

        Raises:
            ValueError: ``epochs < 1``, ``validation_fraction`` outside ``[0, 1)``, ``patience < 0`` or
                ``patience > 0`` without validation.
        """
        epochs, patience = int(epochs), int(patience)
        if epochs < 1:
            raise ValueError(f"Autoencoder.train: epochs must be positive; got {epochs}")
        if not 0.0 <= float(validation_fraction) < 1.0:
            raise ValueError(f"Autoencoder.train: validation_fraction must be in [0, 1); got {validation_fraction}")
        if patience < 0 or (patience > 0 and validation_fraction <= 0):
            raise ValueError("Autoencoder.train: patience must be >= 0, and > 0 only with a validation split")
        n = dataset.capacity
        k_split, k_epochs = jax.random.split(key)
        count = dataset.count
        num_val = jnp.floor(count.astype(jnp.float32) * float(validation_fraction)).astype(jnp.int32)
        rank = jnp.zeros((n,), jnp.int32).at[valid_first(dataset.mask, k_split)].set(jnp.arange(n, dtype=jnp.int32))
        is_val = dataset.mask & (rank < num_val)
        is_train = dataset.mask & ~is_val
        val_rows = valid_first(is_val)

        def epoch(carry):
            i, params, stats, opt, prev_val, rises, _, _ = carry
            order = valid_first(is_train, jax.random.fold_in(k_epochs, i))
            params, stats, opt, loss = self._epoch(params, stats, opt, dataset.sources, order, count - num_val)
            val = (self._mean_error(params, stats, dataset.sources, val_rows, num_val) if validation_fraction > 0
                   else jnp.full((), jnp.nan, jnp.float32))
            rises = jnp.where(val > prev_val, rises + 1, 0)
            return i + 1, params, stats, opt, val, rises, loss, val

        def more(carry):
            i, rises = carry[0], carry[5]
            return (i < epochs) & ((patience == 0) | (rises < patience))

        nan = jnp.full((), jnp.nan, jnp.float32)
        init = (jnp.zeros((), jnp.int32), state.params, state.batch_stats, state.opt_state, jnp.full((), jnp.inf),
                jnp.zeros((), jnp.int32), nan, nan)
        i, params, stats, opt, _, _, loss, val = jax.lax.while_loop(more, epoch, init)
        return AEState(params=params, batch_stats=stats, opt_state=opt, num_trainings=state.num_trainings + 1,
                       loss=jnp.asarray(loss, jnp.float32), validation_loss=jnp.asarray(val, jnp.float32), epochs=i)

    def _epoch(self, params, stats, opt, sources, order, count):
        """One pass over rows ``order[:count]`` in minibatches: ``(params, stats, opt, mean loss)``."""
        size = self.batch_size
        padded = jnp.concatenate([order, jnp.zeros((size,), jnp.int32)])

        def loss_fn(params, stats, x, weight):
            errors, _, stats = self._errors(params, stats, x, train=True)
            return jnp.sum(errors * weight) / jnp.maximum(jnp.sum(weight), 1.0), stats

        def body(b, carry):
            params, stats, opt, total = carry
            rows = jax.lax.dynamic_slice(padded, (b * size,), (size,))
            valid = (b * size + jnp.arange(size)) < count
            weight = valid.astype(jnp.float32)
            x = self.inputs(_gather(sources, jnp.where(valid, rows, order[0])))  # pad with a real row, never padding
            (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, weight)
            updates, opt = self.optimizer.update(grads, opt, params)
            return optax.apply_updates(params, updates), stats, opt, total + loss * jnp.sum(weight)

        num_batches = (count + size - 1) // size
        params, stats, opt, total = jax.lax.fori_loop(0, num_batches, body, (params, stats, opt, jnp.zeros((), jnp.float32)))
        return params, stats, opt, jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)

    def _mean_error(self, params, stats, sources, rows, count):
        """Mean reconstruction error (eval mode) over rows ``rows[:count]``."""
        size = self.batch_size
        padded = jnp.concatenate([rows, jnp.zeros((size,), jnp.int32)])

        def body(b, total):
            chunk = jax.lax.dynamic_slice(padded, (b * size,), (size,))
            valid = (b * size + jnp.arange(size)) < count
            chunk = jnp.where(valid, chunk, rows[0])
            errors, _, _ = self._errors(params, stats, self.inputs(_gather(sources, chunk)), train=False)
            weight = valid.astype(jnp.float32)
            return total + jnp.sum(errors * weight)

        total = jax.lax.fori_loop(0, (count + size - 1) // size, body, jnp.zeros((), jnp.float32))
        return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)
