"""Autoencoder training and encoding speed: the STAX and TAXONS AEs, ``impl="fast"`` vs ``"plain"``.

Each figure is images per second at steady state:

- trained images/s: one jitted Adam step (lr 1e-3) on the batch mean of the per-sample MSE
  (:func:`qd.learned.autoencoders.reconstruction_error`), ``--batch-size`` images (128) of 64x64x3;
  compiled and warmed up untimed, then ``--steps`` steps timed with ``block_until_ready`` (the
  parameters are donated and fed back, as in a real training loop);
- encode images/s: the jitted ``encode`` of one batch.

The machine this project runs on has 2 shared CPU cores and other work running, so the measurements
alternate plain and fast for ``--rounds`` rounds and report medians (and the per-round ratios' median as
the speedup). ``training_images_per_s`` and ``encode_images_per_s`` are importable for other benchmarks.

Results (jax 0.10.2, flax 0.12.8, XLA:CPU, 2 CPU cores shared with other work, load average 3-4
during the run; ``python benchmarks/ae_speed.py --steps 3 --rounds 3``, batch 128; medians of 3
alternating rounds, the speedup is the median of the per-round ratios):

    model    plain train   fast train  speedup  plain encode  fast encode   (images/s)
    STAX            69.4        306.7    4.38x        2949.3       4128.6   (rounds: 4.24x, 4.38x, 5.09x)
    TAXONS          78.3        180.1    2.30x        1224.9       1185.1   (rounds: 1.97x, 2.30x, 2.69x)

After the kernel gradients became per-tap matrix products (qd.learned.layers ``_k``: XLA's kernel-gradient
convolution is 20-100x slower inside a loop body, where the library trains), same command, quiet machine:

    STAX           111.5        529.0    4.74x        3154.9       4999.0
    TAXONS         139.1        335.3    2.39x        1640.1       1619.5

(inside ``Autoencoder.train``'s loop, where the plain layers fall to 7 images/s, see benchmarks/learned_bd.py).

STAX reaches the 4x target; TAXONS does not. Why: ``impl="fast"`` removes XLA:CPU's slow
zero-dilated convolutions (the transposed convolutions' forward passes and the strided convolutions'
input gradients). In STAX those were nearly the whole step (its heaviest decoder layer's forward +
backward went from ~1 s to ~0.04-0.1 s). TAXONS' step is dominated by its wide encoder (32->128->128
channels): the strided convolutions' forward passes and kernel gradients, about 4.3 GFLOP each per
batch, which "plain" already runs on XLA's fast path, so there is little left to win without doing
those FLOPs faster. Earlier single-round runs under similar load: STAX 3.4x (352 vs 104 img/s) and
4.7x (346 vs 73). The plain figures vary most from run to run (61-121 img/s for STAX).

Per-layer measurements behind the choice of formulations (batch 128, forward + backward, ms, noisy):
the heaviest STAX layer (ConvUp 64->32, 16x16 -> 32x32): plain 1030-1160, sub-pixel 3x3 by autodiff
104-138, four 2x2 phase convolutions by autodiff 184, sub-pixel 2x2 by autodiff 880 (its kernel
gradient is slow), the custom VJP ("fast") 95-123; its passes alone: forward (2x2 sub-pixel) 8-19,
input gradient (strided conv) 10, kernel gradient 19-33. For ConvDown the space-to-depth form
differentiated by autodiff was *slower* than plain except for 3 input channels (its kernel gradient
ran 2-4x slower than XLA's strided one), hence the custom VJP; im2col / per-tap matmul kernel
gradients were 2-3x slower than XLA's.

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from qd.learned.autoencoders import (  # noqa: E402
    reconstruction_error,
    stax_autoencoder,
    taxons_autoencoder,
)


def _images(batch_size, shape, seed):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(0.0, 1.0, size=(batch_size,) + tuple(shape)), jnp.float32)


def make_train_step(model, optimizer):
    """``step(params, extra, opt_state, images) -> (params, extra, opt_state, loss)``, jitted.

    ``extra`` holds the model's non-parameter collections (``batch_stats``), updated in train mode.
    """

    def loss_fn(params, extra, images):
        variables = {"params": params, **extra}
        if extra:
            (recon, _), new_extra = model.apply(variables, images, train=True, mutable=list(extra))
        else:
            recon, _ = model.apply(variables, images, train=True)
            new_extra = extra
        return jnp.mean(reconstruction_error(images, recon)), dict(new_extra)

    def step(params, extra, opt_state, images):
        (loss, new_extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, extra, images)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_extra, opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1, 2))


def training_images_per_s(model, batch_size=128, steps=5, seed=0, image_shape=(64, 64, 3), warmup=1):
    """Images/s of Adam (lr 1e-3) training steps of ``model`` on random images, at steady state.

    Compiles and runs ``warmup`` steps untimed, then times ``steps`` steps (block_until_ready at the
    end). Returns ``batch_size * steps / seconds``.
    """
    images = _images(batch_size, image_shape, seed)
    variables = dict(model.init(jax.random.PRNGKey(seed), images[:1]))
    params = variables.pop("params")
    extra = variables
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)
    step = make_train_step(model, optimizer)
    for _ in range(max(1, warmup)):
        params, extra, opt_state, loss = step(params, extra, opt_state, images)
    jax.block_until_ready(loss)
    t0 = time.perf_counter()
    for _ in range(steps):
        params, extra, opt_state, loss = step(params, extra, opt_state, images)
    jax.block_until_ready((params, loss))
    return batch_size * steps / (time.perf_counter() - t0)


def encode_images_per_s(model, batch_size=128, steps=5, seed=0, image_shape=(64, 64, 3)):
    """Images/s of the jitted ``encode`` (``train=False``) of ``model`` on one batch, at steady state."""
    images = _images(batch_size, image_shape, seed)
    variables = model.init(jax.random.PRNGKey(seed), images[:1])
    enc = jax.jit(lambda v, x: model.apply(v, x, method="encode"))
    jax.block_until_ready(enc(variables, images))
    t0 = time.perf_counter()
    for _ in range(steps):
        out = enc(variables, images)
    jax.block_until_ready(out)
    return batch_size * steps / (time.perf_counter() - t0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating plain/fast rounds (medians)")
    parser.add_argument("--quick", action="store_true", help="batch 32, 2 steps, 1 round")
    parser.add_argument("--models", default="stax,taxons")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.steps, args.rounds = 32, 2, 1

    builders = {"stax": stax_autoencoder, "taxons": taxons_autoencoder}
    result = {}
    rows = []
    for name in args.models.split(","):
        build = builders[name]
        fig = {"plain": [], "fast": []}
        enc = {"plain": [], "fast": []}
        for r in range(args.rounds):
            order = ("plain", "fast") if r % 2 == 0 else ("fast", "plain")
            for impl in order:
                model = build(impl=impl)
                fig[impl].append(training_images_per_s(model, args.batch_size, args.steps, seed=r))
                enc[impl].append(encode_images_per_s(model, args.batch_size, max(args.steps, 5), seed=r))
                print(
                    f"  {name:6s} round {r} {impl:5s}: train {fig[impl][-1]:8.1f} img/s, encode {enc[impl][-1]:8.1f} img/s",
                    flush=True,
                )
        ratios = [f / p for f, p in zip(fig["fast"], fig["plain"])]
        med = {k: statistics.median(v) for k, v in fig.items()}
        emed = {k: statistics.median(v) for k, v in enc.items()}
        result[f"{name}_fast_images_per_s"] = round(med["fast"], 1)
        result[f"{name}_plain_images_per_s"] = round(med["plain"], 1)
        result[f"{name}_speedup"] = round(statistics.median(ratios), 2)
        result[f"{name}_encode_images_per_s"] = round(emed["fast"], 1)
        result[f"{name}_plain_encode_images_per_s"] = round(emed["plain"], 1)
        rows.append((name, med["plain"], med["fast"], statistics.median(ratios), emed["plain"], emed["fast"]))

    print()
    print(f"batch {args.batch_size}, {args.steps} timed steps x {args.rounds} rounds (medians), jax {jax.__version__}")
    print(f"{'model':8s} {'plain train':>12s} {'fast train':>12s} {'speedup':>8s} {'plain enc':>10s} {'fast enc':>10s}  (images/s)")
    for name, p, f, s, ep, ef in rows:
        print(f"{name:8s} {p:12.1f} {f:12.1f} {s:7.2f}x {ep:10.1f} {ef:10.1f}")
    result.update(batch_size=args.batch_size, steps=args.steps, rounds=args.rounds)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
