"""The autoencoders of TAXONS and STAX (Paolo et al.), configurable, in flax.linen; an MLP autoencoder.

Images are NHWC float32 in [0, 1], ``(B, 64, 64, 3)``; latents ``(B, latent_dim)`` float32. Every model
has ``__call__(x, train=False) -> (reconstructions, latents)``, ``encode(x, train=False) -> latents`` and
``decode(latents, train=False) -> reconstructions`` (call them with ``model.apply(variables, x,
method="encode")``). Loss and surprise are :func:`reconstruction_error`, the per-sample mean squared
error (TAXONS ``core/metrics/ae.py``, STAX ``core/auto_encoders/ae.py``; the training loss is its batch
mean).

The two convolutional architectures (``/work/shared/design/sparse_reward_qd.md`` sections 1.1, 1.4):

- :func:`stax_autoencoder` (STAX ``ConvAE``): Conv 3->32->64->32->16 (k4 s2 p1, bias, SELU after each),
  flatten 256 -> Dense latent + SELU; Dense latent->256 + SELU, reshape 4x4x16, ConvT 16->32->64->32->3
  (k4 s2 p1, bias), SELU after each but the last, ReLU output. 156,189 parameters at latent 10.
- :func:`taxons_autoencoder` (ICRA 2020 TAXONS ``ConvAE``, ``feature_size=10``): Conv
  3->32->128->128->64 (k4 s2 p1, no bias), each followed by SELU then BatchNorm; flatten 1024 -> Dense
  1024 -> Dense 256 -> Dense latent, each followed by SELU, no bias; Dense latent->256->512 (no bias,
  SELU after each), reshape 4x4x32, BatchNorm, ConvT 32->64->32->32->3 (k4 s2 p1, no bias), each but
  the last followed by SELU then BatchNorm, ReLU output. 1,991,680 parameters at latent 10 (plus 1,024
  BatchNorm running statistics).

Departures from the PyTorch originals, all deliberate and none changing the function class:

- Layout NHWC instead of NCHW: the flatten before the first Dense layer orders the 256 (1024) features
  (H, W, C) instead of (C, H, W), and the decoder's reshape fills (H, W, C); both are fixed permutations
  of a Dense layer's inputs / outputs, so the same functions are representable and training from scratch
  is unaffected.
- Initialisation: flax's defaults (``lecun_normal`` kernels, the SELU-matched one, zero biases), not
  PyTorch's ``kaiming_uniform(a=sqrt(5))`` / uniform biases.
- BatchNorm: flax ``momentum=0.9`` (the running average keeps 0.9 of the old value) equals PyTorch's
  ``momentum=0.1``; ``epsilon=1e-5`` as PyTorch's. ``train=True`` normalises with the batch statistics
  (biased variance, as PyTorch does for normalising) and updates ``batch_stats`` (apply with
  ``mutable=["batch_stats"]``); ``train=False`` uses the running averages. PyTorch updates its running
  variance with the *unbiased* batch variance, flax with the biased one (a factor n/(n-1) on the
  running variance only, n = batch x H x W >= 2048 here).
- The decoder's Dense layers in TAXONS: the notes give "FC 10 -> 256 -> 512" without naming their
  activation; SELU after each is used here, as every other hidden layer of that network has.

The convolutions are :class:`qd.learned.layers.ConvDown` / :class:`~qd.learned.layers.ConvUp`;
``impl="fast"`` (default) and ``impl="plain"`` compute the same function from the same parameters
(``impl="fast"`` trains about 4-10x faster on XLA:CPU, ``benchmarks/ae_speed.py``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from qd.learned.layers import ConvDown, ConvUp

Array = Any

__all__ = [
    "ConvAutoencoder",
    "MLPAutoencoder",
    "stax_autoencoder",
    "taxons_autoencoder",
    "reconstruction_error",
]


def reconstruction_error(inputs, reconstructions):
    """``(B, ...) , (B, ...) -> (B,)`` float32: the mean over all non-batch axes of the squared error.

    TAXONS' and STAX's loss (its batch mean) and surprise (per sample).
    """
    inputs = jnp.asarray(inputs, jnp.float32)
    reconstructions = jnp.asarray(reconstructions, jnp.float32)
    if inputs.shape != reconstructions.shape:
        raise ValueError(
            f"reconstruction_error: shapes differ: inputs {inputs.shape}, reconstructions {reconstructions.shape}"
        )
    if inputs.ndim < 1:
        raise ValueError("reconstruction_error: inputs need a batch axis")
    d = inputs - reconstructions
    return jnp.mean(d * d, axis=tuple(range(1, inputs.ndim)))


def _batch_norm():
    return nn.BatchNorm(momentum=0.9, epsilon=1e-5)


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder of k4 s2 p1 (transposed) convolutions, for NHWC images.

    Encoder: ``ConvDown`` for each of ``encoder_features`` (activation ``nn.selu`` after each, then
    BatchNorm if ``batch_norm``), flatten, ``Dense`` for each of ``encoder_dense`` (+ SELU), then
    ``Dense(latent_dim)`` followed by ``latent_activation`` (None: linear).

    Decoder: ``Dense`` for each of ``decoder_dense`` (+ SELU; the last width must be
    ``prod(decoder_start)``; None means one layer of that width), reshape to ``decoder_start`` (H, W, C)
    (then BatchNorm if ``batch_norm``), ``ConvUp`` for each of ``decoder_features`` (SELU, then BatchNorm
    if ``batch_norm``, after each but the last), ``output_activation`` on the last.

    Shapes: images ``(B, H, W, Cin)`` with H and W divisible by ``2 ** len(encoder_features)``; latents
    ``(B, latent_dim)``; reconstructions ``(B, h 2^n, w 2^n, decoder_features[-1])`` with ``(h, w) =
    decoder_start[:2]`` and ``n = len(decoder_features)``. Everything float32. ``use_bias`` applies to
    every convolution and Dense layer. ``impl`` selects the convolutions' implementation ("fast" or
    "plain", the same function and parameters, :mod:`qd.learned.layers`).
    """

    encoder_features: Sequence[int] = (32, 64, 32, 16)
    encoder_dense: Sequence[int] = ()
    latent_dim: int = 10
    decoder_dense: Optional[Sequence[int]] = None
    decoder_start: Sequence[int] = (4, 4, 16)
    decoder_features: Sequence[int] = (32, 64, 32, 3)
    use_bias: bool = True
    batch_norm: bool = False
    impl: str = "fast"
    latent_activation: Optional[Callable] = nn.selu
    output_activation: Optional[Callable] = nn.relu

    def setup(self):
        start = tuple(int(s) for s in self.decoder_start)
        if len(start) != 3:
            raise ValueError(f"ConvAutoencoder: decoder_start must be (H, W, C), got {self.decoder_start!r}")
        dec_dense = (math.prod(start),) if self.decoder_dense is None else tuple(self.decoder_dense)
        if not dec_dense or dec_dense[-1] != math.prod(start):
            raise ValueError(
                f"ConvAutoencoder: the last decoder_dense width must be prod(decoder_start) = {math.prod(start)}, "
                f"got decoder_dense={self.decoder_dense!r}"
            )
        if not self.decoder_features:
            raise ValueError("ConvAutoencoder: decoder_features must not be empty")
        b = self.use_bias
        self.enc_convs = [ConvDown(f, use_bias=b, impl=self.impl) for f in self.encoder_features]
        self.enc_dense = [nn.Dense(f, use_bias=b) for f in self.encoder_dense]
        self.latent = nn.Dense(self.latent_dim, use_bias=b)
        self.dec_dense = [nn.Dense(f, use_bias=b) for f in dec_dense]
        self.dec_convs = [ConvUp(f, use_bias=b, impl=self.impl) for f in self.decoder_features]
        if self.batch_norm:
            self.enc_bns = [_batch_norm() for _ in self.encoder_features]
            self.start_bn = _batch_norm()
            self.dec_bns = [_batch_norm() for _ in self.decoder_features[:-1]]
        self._start = start

    def encode(self, images, train: bool = False):
        """``(B, H, W, C)`` float32 images -> ``(B, latent_dim)`` float32 latents."""
        x = jnp.asarray(images, jnp.float32)
        if x.ndim != 4:
            raise ValueError(f"ConvAutoencoder.encode: expected NHWC images (B, H, W, C), got shape {x.shape}")
        for i, conv in enumerate(self.enc_convs):
            x = nn.selu(conv(x))
            if self.batch_norm:
                x = self.enc_bns[i](x, use_running_average=not train)
        x = x.reshape(x.shape[0], -1)
        for dense in self.enc_dense:
            x = nn.selu(dense(x))
        z = self.latent(x)
        return z if self.latent_activation is None else self.latent_activation(z)

    def decode(self, latents, train: bool = False):
        """``(B, latent_dim)`` float32 latents -> ``(B, H, W, decoder_features[-1])`` reconstructions."""
        x = jnp.asarray(latents, jnp.float32)
        for dense in self.dec_dense:
            x = nn.selu(dense(x))
        x = x.reshape((x.shape[0],) + self._start)
        if self.batch_norm:
            x = self.start_bn(x, use_running_average=not train)
        last = len(self.dec_convs) - 1
        for i, conv in enumerate(self.dec_convs):
            x = conv(x)
            if i < last:
                x = nn.selu(x)
                if self.batch_norm:
                    x = self.dec_bns[i](x, use_running_average=not train)
        return x if self.output_activation is None else self.output_activation(x)

    def __call__(self, images, train: bool = False):
        """``(B, H, W, C)`` images -> ``(reconstructions (B, H', W', C'), latents (B, latent_dim))``."""
        z = self.encode(images, train)
        return self.decode(z, train), z


def stax_autoencoder(latent_dim: int = 10, impl: str = "fast") -> ConvAutoencoder:
    """The STAX ``ConvAE`` (no BatchNorm, biases, SELU latent, ReLU output): 64x64x3 images.

    156,189 parameters at ``latent_dim=10`` (encoder 77,978 + decoder 78,211).
    """
    return ConvAutoencoder(
        encoder_features=(32, 64, 32, 16),
        encoder_dense=(),
        latent_dim=latent_dim,
        decoder_dense=(256,),
        decoder_start=(4, 4, 16),
        decoder_features=(32, 64, 32, 3),
        use_bias=True,
        batch_norm=False,
        impl=impl,
        latent_activation=nn.selu,
        output_activation=nn.relu,
    )


def taxons_autoencoder(latent_dim: int = 10, impl: str = "fast") -> ConvAutoencoder:
    """The ICRA 2020 TAXONS ``ConvAE`` (no biases, SELU then BatchNorm, SELU latent, ReLU output).

    1,991,680 parameters at ``latent_dim=10`` (encoder 1,774,272), plus BatchNorm running statistics (``batch_stats``).
    Apply with ``mutable=["batch_stats"]`` when ``train=True``.
    """
    return ConvAutoencoder(
        encoder_features=(32, 128, 128, 64),
        encoder_dense=(1024, 256),
        latent_dim=latent_dim,
        decoder_dense=(256, 512),
        decoder_start=(4, 4, 32),
        decoder_features=(64, 32, 32, 3),
        use_bias=False,
        batch_norm=True,
        impl=impl,
        latent_activation=nn.selu,
        output_activation=nn.relu,
    )


class MLPAutoencoder(nn.Module):
    """Dense autoencoder for vectors: ``(B, n) -> ((B, n) reconstructions, (B, latent_dim) latents)``.

    Encoder: ``Dense(h)`` + SELU for each ``h`` of ``hidden`` (default ``(64, 32)``), then
    ``Dense(latent_dim)`` (default 10) followed by ``latent_activation`` (default None: linear). Decoder:
    the mirror image (``hidden`` reversed, SELU), then a linear ``Dense(input_dim)``. float32.
    ``input_dim`` (``n``) is required, so that :meth:`decode` can run on its own; inputs of another width
    raise ValueError.
    """

    input_dim: int
    hidden: Sequence[int] = (64, 32)
    latent_dim: int = 10
    latent_activation: Optional[Callable] = None

    def setup(self):
        self.enc_dense = [nn.Dense(h) for h in self.hidden]
        self.latent = nn.Dense(self.latent_dim)
        self.dec_dense = [nn.Dense(h) for h in reversed(tuple(self.hidden))]
        self.output = nn.Dense(self.input_dim)

    def encode(self, x, train: bool = False):
        """``(B, n) -> (B, latent_dim)``."""
        x = jnp.asarray(x, jnp.float32)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"MLPAutoencoder: expected (B, {self.input_dim}) inputs, got shape {x.shape}")
        for dense in self.enc_dense:
            x = nn.selu(dense(x))
        z = self.latent(x)
        return z if self.latent_activation is None else self.latent_activation(z)

    def decode(self, z, train: bool = False):
        """``(B, latent_dim) -> (B, n)``."""
        z = jnp.asarray(z, jnp.float32)
        for dense in self.dec_dense:
            z = nn.selu(dense(z))
        return self.output(z)

    def __call__(self, x, train: bool = False):
        """``(B, n) -> ((B, n) reconstructions, (B, latent_dim) latents)``."""
        z = self.encode(x, train)
        return self.decode(z, train), z
