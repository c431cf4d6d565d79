"""The papers' strided convolutions, and exact fast formulations of them for XLA:CPU.

The TAXONS (Paolo et al., ICRA 2020) and STAX autoencoders are built from two PyTorch layers only:

- ``Conv2d(kernel_size=4, stride=2, padding=1)``: halves the height and width (:class:`ConvDown`);
- ``ConvTranspose2d(kernel_size=4, stride=2, padding=1)``: doubles them (:class:`ConvUp`).

Both modules here compute exactly those layers' functions, on NHWC arrays (flax's layout), with the
same parameters whichever implementation runs:

- ``kernel``: ``(4, 4, Cin, Cout)``, float32; for :class:`ConvDown` ``kernel[a, b, i, o]`` is PyTorch's
  ``weight[o, i, a, b]``, for :class:`ConvUp` it is PyTorch's ``ConvTranspose2d.weight[i, o, a, b]``
  (no flip in either case);
- ``bias``: ``(Cout,)``, float32 (when ``use_bias``).

Why a second ("fast") implementation: on XLA:CPU a convolution of a zero-dilated input (``lhs_dilation``
> 1) is slow: it is the forward pass of flax's transposed convolution, and the input gradient of a
stride-2 convolution. Measured with flax on jax 0.10, batch 128, 2 CPU cores, the STAX autoencoder
trained at about 60 images/s while its encoder's forward pass alone ran at about 3,300 images/s; the
heaviest decoder layer's forward + backward pass took about 1 s of each 1.2-1.5 s step. Both layers'
passes can be written *exactly* with operations XLA:CPU runs fast: the stride-2 convolution's forward
and kernel gradient (XLA's own, measured fast), stride-1 convolutions, and pure data movement
(pads, reshapes, transposes, slices). ``impl="fast"`` is a ``jax.custom_vjp`` that uses them:

- the transposed convolution (ConvUp's forward, ConvDown's input gradient) in sub-pixel form.
  PyTorch's ``ConvTranspose2d(k=4, s=2, p=1)`` is ``out[o] = sum_{o = 2 i + a - 1} x[i] w[a]``, so an
  even output row ``2 m`` sees ``x[m] w[1] + x[m - 1] w[3]`` and an odd one ``2 m + 1`` sees
  ``x[m + 1] w[0] + x[m] w[2]``: four 2x2 "phase" convolutions (one per output parity in height and
  width) of the 1-padded input. They run as ONE stride-1 2x2 convolution into ``4 * Cout`` channels
  over ``(H + 1) x (W + 1)`` positions, each phase read at its own offset, then interleaved
  (``_conv_up_sub2x2``; measured faster than a 3x3 window with the unused taps zero, ``_conv_up_sub3x3``,
  or four separate convolutions, ``_conv_up_phases``);
- the stride-2 convolution (ConvDown's forward, ConvUp's input gradient): XLA's own strided
  convolution, or, below 8 input channels (the RGB input layer), the same as space-to-depth of the
  1-padded input followed by a 2x2 stride-1 convolution of ``4 * Cin`` channels (``_conv_down_s2d``:
  ``out[i] = sum_a xpad[2 i + a] w[a]`` and ``a = 2 d + p`` give ``out[i] = sum_{d, p} s2d(xpad)[i + d, p]
  w[2 d + p]``), measured faster there;
- the kernel gradients: the strided convolution's as 16 matrix products, one per kernel tap (ConvUp's is
  the same contraction with the roles of input and output cotangent exchanged). XLA's own convolution for
  it is fast at the top level but 20-100x slower inside a loop body (jax-ml/jax#12868), and the
  autoencoders train inside one (:mod:`qd.learned.training`).

Differentiating the sub-pixel or space-to-depth forms with plain autodiff (``impl="sub3x3"``,
``"sub2x2"``, ``"phases"``, ``"s2d"``, kept for comparison and tests) is exact too but slower: XLA:CPU
ran some of their kernel gradients (notably of the 2x2 form over ``(H + 1) x (W + 1)``) an order of
magnitude slower than the strided convolution's.

"Exact" means: the same products of the same numbers, summed in a different order, so results agree to
float32 rounding (about 1e-6 relative), for the outputs and for the gradients with respect to the
inputs, the kernel and the bias (``tests/test_learned_layers.py`` checks it, and checks the plain
:class:`ConvUp` against a brute-force scatter-add of the transposed convolution's definition).

``impl="plain"`` is what flax's own layers compute:

- :class:`ConvDown`: ``nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))`` with
  ``kernel`` as its kernel;
- :class:`ConvUp`: ``nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
  transpose_kernel=True)`` with kernel ``kernel.transpose(0, 1, 3, 2)``, or, the same,
  ``transpose_kernel=False`` with kernel ``kernel[::-1, ::-1]``. (``lax.conv_transpose`` pads the
  2-dilated input by ``k - 1 - p = 2`` on each side: ``2 H - 1 + 4 - 4 + 1 = 2 H`` output rows.)
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Array = Any

_DN = ("NHWC", "HWIO", "NHWC")

__all__ = ["ConvDown", "ConvUp", "conv_down", "conv_up", "CONV_DOWN_IMPLS", "CONV_UP_IMPLS"]


def _conv(x, k, padding="VALID"):
    return lax.conv_general_dilated(x, k, (1, 1), padding, dimension_numbers=_DN)


# --------------------------------------------------------------------------------------------------
# ConvDown: PyTorch Conv2d(k=4, s=2, p=1)
# --------------------------------------------------------------------------------------------------


def _conv_down_plain(x, kernel):
    return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN)


def space_to_depth(x):
    """``(B, H, W, C) -> (B, H/2, W/2, 4 C)``: channel index ``(p * 2 + q) * C + c`` holds ``x[2 i + p, 2 j + q, c]``."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // 2, w // 2, 4 * c)


def depth_to_space(y, c):
    """Inverse of :func:`space_to_depth`: ``(B, H, W, 4 c) -> (B, 2 H, 2 W, c)``."""
    b, h, w, _ = y.shape
    y = y.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, 2 * h, 2 * w, c)


def _conv_down_s2d(x, kernel):
    cin, cout = kernel.shape[2], kernel.shape[3]
    xs = space_to_depth(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))
    # kernel[2 d + p, 2 e + q, i, o] -> k2[d, e, (p, q, i), o]
    k2 = kernel.reshape(2, 2, 2, 2, cin, cout).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * cin, cout)
    return _conv(xs, k2)





# --------------------------------------------------------------------------------------------------
# ConvUp: PyTorch ConvTranspose2d(k=4, s=2, p=1)
# --------------------------------------------------------------------------------------------------


def _conv_up_plain(x, kernel):
    return lax.conv_transpose(
        x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)), dimension_numbers=_DN
    )


# Taps of the 1-D phase kernels, indexed [parity][tap] -> index into the 4-tap kernel (or None: zero).
# With xpad = x padded by 1: out[2 m] = xpad[m] w[3] + xpad[m + 1] w[1];
#                             out[2 m + 1] = xpad[m + 1] w[2] + xpad[m + 2] w[0].
_TAPS3 = ((3, 1, None), (None, 2, 0))  # 3-tap window starting at xpad[m]
_TAPS2 = ((3, 1), (2, 0))  # 2-tap window: parity 0 starts at xpad[m], parity 1 at xpad[m + 1]


def _phase_kernel(kernel, taps_h, taps_w):
    """``(len(taps_h), len(taps_w), Cin, Cout)`` kernel, zero where a tap is None."""
    zero = jnp.zeros(kernel.shape[2:], kernel.dtype)
    rows = [
        jnp.stack([zero if (a is None or b is None) else kernel[a, b] for b in taps_w])
        for a in taps_h
    ]
    return jnp.stack(rows)


def _conv_up_sub3x3(x, kernel):
    cin, cout = kernel.shape[2], kernel.shape[3]
    # k3[t, u, i, (p, q, o)]
    k3 = jnp.stack(
        [jnp.stack([_phase_kernel(kernel, _TAPS3[p], _TAPS3[q]) for q in (0, 1)], axis=3) for p in (0, 1)],
        axis=3,
    ).reshape(3, 3, cin, 4 * cout)
    y = _conv(x, k3, ((1, 1), (1, 1)))
    return depth_to_space(y, cout)


def _conv_up_sub2x2(x, kernel):
    b, h, w, cin = x.shape
    cout = kernel.shape[3]
    k2 = jnp.stack(
        [jnp.stack([_phase_kernel(kernel, _TAPS2[p], _TAPS2[q]) for q in (0, 1)], axis=3) for p in (0, 1)],
        axis=3,
    ).reshape(2, 2, cin, 4 * cout)
    y = _conv(x, k2, ((1, 1), (1, 1)))  # (B, H + 1, W + 1, 4 Cout)
    y = y.reshape(b, h + 1, w + 1, 2, 2, cout)
    phases = [[y[:, p : p + h, q : q + w, p, q] for q in (0, 1)] for p in (0, 1)]
    # out[:, 2 m + p, 2 n + q] = phases[p][q][:, m, n]
    out = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # (B, H, 2, W, 2, Cout)
    return out.reshape(b, 2 * h, 2 * w, cout)


def _conv_up_phases(x, kernel):
    b, h, w, cin = x.shape
    cout = kernel.shape[3]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    phases = [
        [
            _conv(xp[:, p : p + h + 1, q : q + w + 1], _phase_kernel(kernel, _TAPS2[p], _TAPS2[q]))
            for q in (0, 1)
        ]
        for p in (0, 1)
    ]
    out = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)
    return out.reshape(b, 2 * h, 2 * w, cout)


# --------------------------------------------------------------------------------------------------
# "fast": custom VJPs that use, for every pass, the formulation XLA:CPU runs fastest
# --------------------------------------------------------------------------------------------------
#
# Three primitives (x: input, w: kernel (4, 4, Cin, Cout), g: output cotangent):
#   A(x, w)  = the stride-2 convolution (ConvDown), XLA's own: fast on XLA:CPU;
#   T(x, w)  = the transposed convolution (ConvUp), in the sub-pixel 2x2 form: fast;
#   K(x, g)  = sum over batch and positions of patch(x) (x) g, the kernel gradient of A, XLA's own
#              (a window-dilated convolution; measured as fast as or faster than im2col matmuls).
# Both layers' passes are made of them:
#   ConvDown: y = A(x, w),  dx = T(g, w^T),  dw = K(x, g)
#   ConvUp:   y = T(x, w),  dx = A(g, w^T),  dw = K(g, x)^T
# where ^T swaps the kernel's channel axes. (The slow passes avoided: XLA's transposed convolution, a
# convolution of a zero-dilated input, used by autodiff for A's input gradient and T's plain forward.)

_SMALL_CIN = 8  # below this many input channels, A's forward runs faster in the space-to-depth form


def _a(x, w):
    return _conv_down_s2d(x, w) if x.shape[-1] < _SMALL_CIN else _conv_down_plain(x, w)


def _k(x, g, w_shape):
    """The strided convolution's kernel gradient, ``dw[a, b, i, o] = sum_{n, y, x} xpad[n, 2 y + a, 2 x + b, i]
    g[n, y, x, o]``, as 16 matrix products (one per tap) of a strided slice of the 1-padded input with the
    cotangent. XLA:CPU computes this contraction fast as a convolution outside loops but 20-100x slower
    inside a ``while`` / ``scan`` body (jax-ml/jax#12868; measured: STAX AE gradient 0.36 s -> 16 s for 3
    steps), and a training runs inside one; matrix products are fast in both places."""
    _, h, w, _ = g.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    taps = [[jnp.einsum("nhwi,nhwo->io", xp[:, a : a + 2 * h : 2, b : b + 2 * w : 2, :], g,
                        precision=lax.Precision.HIGHEST) for b in range(4)] for a in range(4)]
    return jnp.stack([jnp.stack(row) for row in taps]).astype(x.dtype).reshape(w_shape)


def _swap(w):
    return w.transpose(0, 1, 3, 2)


@jax.custom_vjp
def _conv_down_fast(x, w):
    return _a(x, w)


def _conv_down_fast_fwd(x, w):
    return _a(x, w), (x, w)


def _conv_down_fast_bwd(res, g):
    x, w = res
    return _conv_up_sub2x2(g, _swap(w)), _k(x, g, w.shape)


_conv_down_fast.defvjp(_conv_down_fast_fwd, _conv_down_fast_bwd)


@jax.custom_vjp
def _conv_up_fast(x, w):
    return _conv_up_sub2x2(x, w)


def _conv_up_fast_fwd(x, w):
    return _conv_up_sub2x2(x, w), (x, w)


def _conv_up_fast_bwd(res, g):
    x, w = res
    return _a(g, _swap(w)), _swap(_k(g, x, _swap(w).shape))


_conv_up_fast.defvjp(_conv_up_fast_fwd, _conv_up_fast_bwd)


CONV_DOWN_IMPLS: dict[str, Callable] = {
    "plain": _conv_down_plain,
    "s2d": _conv_down_s2d,
    "fast": _conv_down_fast,
}

CONV_UP_IMPLS: dict[str, Callable] = {
    "plain": _conv_up_plain,
    "sub3x3": _conv_up_sub3x3,
    "sub2x2": _conv_up_sub2x2,
    "phases": _conv_up_phases,
    "fast": _conv_up_fast,
}


# --------------------------------------------------------------------------------------------------
# Functional forms and modules
# --------------------------------------------------------------------------------------------------


def _check(x, kernel, name, need_even):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected NHWC input (B, H, W, C), got shape {tuple(x.shape)}")
    if x.shape[-1] != kernel.shape[2]:
        raise ValueError(
            f"{name}: input has {x.shape[-1]} channels, kernel {tuple(kernel.shape)} expects {kernel.shape[2]}"
        )
    if need_even and (x.shape[1] % 2 or x.shape[2] % 2):
        raise ValueError(
            f"{name}: height and width must be even for a k4 s2 p1 convolution, got input shape {tuple(x.shape)}"
        )


def conv_down(x, kernel, bias=None, impl="fast"):
    """PyTorch ``Conv2d(k=4, s=2, p=1)`` on NHWC: ``(B, H, W, Cin), (4, 4, Cin, Cout) -> (B, H/2, W/2, Cout)``."""
    _check(x, kernel, "conv_down", True)
    y = CONV_DOWN_IMPLS[impl](x, kernel)
    return y if bias is None else y + bias


def conv_up(x, kernel, bias=None, impl="fast"):
    """PyTorch ``ConvTranspose2d(k=4, s=2, p=1)`` on NHWC: ``(B, H, W, Cin), (4, 4, Cin, Cout) -> (B, 2H, 2W, Cout)``."""
    _check(x, kernel, "conv_up", False)
    y = CONV_UP_IMPLS[impl](x, kernel)
    return y if bias is None else y + bias


class ConvDown(nn.Module):
    """PyTorch ``Conv2d(Cin, features, kernel_size=4, stride=2, padding=1)``, NHWC.

    ``(B, H, W, Cin) -> (B, H/2, W/2, features)``, float32; H and W must be even (ValueError naming the
    shape otherwise). Parameters ``kernel (4, 4, Cin, features)`` (``kernel[a, b, i, o]`` = PyTorch
    ``weight[o, i, a, b]``) and ``bias (features,)``, the same for every ``impl``:

    - ``"fast"`` (default): a custom VJP; forward = XLA's strided convolution (space-to-depth + 2x2
      stride-1 convolution below 8 input channels), input gradient = the sub-pixel transposed
      convolution, kernel gradient = XLA's (exact; no zero-dilated convolution, slow on XLA:CPU);
    - ``"s2d"``: space-to-depth + 2x2 stride-1 convolution, differentiated by autodiff;
    - ``"plain"``: ``lax.conv_general_dilated`` with stride 2, what ``nn.Conv(features, (4, 4),
      strides=(2, 2), padding=((1, 1), (1, 1)))`` computes.

    ``kernel_init`` defaults to flax's ``lecun_normal`` (fan-in ``16 Cin``), ``bias_init`` to zeros.
    """

    features: int
    use_bias: bool = True
    impl: str = "fast"
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        if self.impl not in CONV_DOWN_IMPLS:
            raise ValueError(f"ConvDown: impl must be one of {sorted(CONV_DOWN_IMPLS)}, got {self.impl!r}")
        x = jnp.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"ConvDown: expected NHWC input (B, H, W, C), got shape {tuple(x.shape)}")
        kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32) if self.use_bias else None
        return conv_down(x, kernel, bias, self.impl)


class ConvUp(nn.Module):
    """PyTorch ``ConvTranspose2d(Cin, features, kernel_size=4, stride=2, padding=1)``, NHWC.

    ``(B, H, W, Cin) -> (B, 2H, 2W, features)``, float32, any H and W. Parameters
    ``kernel (4, 4, Cin, features)`` (``kernel[a, b, i, o]`` = PyTorch ``weight[i, o, a, b]``) and
    ``bias (features,)``, the same for every ``impl``:

    - ``"fast"`` (default): a custom VJP; forward = sub-pixel form, one stride-1 2x2 convolution of the
      1-padded input into ``4 * features`` channels (the four output-parity phases), interleaved;
      input gradient = XLA's strided convolution of the cotangent; kernel gradient = XLA's strided
      convolution kernel gradient with input and cotangent exchanged (exact);
    - ``"sub3x3"``, ``"sub2x2"``, ``"phases"``: sub-pixel layouts differentiated by autodiff (see the
      module docstring);
    - ``"plain"``: ``lax.conv_transpose`` as ``nn.ConvTranspose(features, (4, 4), strides=(2, 2),
      padding=((2, 2), (2, 2)), transpose_kernel=True)`` computes with kernel
      ``kernel.transpose(0, 1, 3, 2)``.

    ``kernel_init`` defaults to flax's ``lecun_normal`` (as ``nn.ConvTranspose``; fan-in ``16 Cin``),
    ``bias_init`` to zeros.
    """

    features: int
    use_bias: bool = True
    impl: str = "fast"
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        if self.impl not in CONV_UP_IMPLS:
            raise ValueError(f"ConvUp: impl must be one of {sorted(CONV_UP_IMPLS)}, got {self.impl!r}")
        x = jnp.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"ConvUp: expected NHWC input (B, H, W, C), got shape {tuple(x.shape)}")
        kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", self.bias_init, (self.features,), jnp.float32) if self.use_bias else None
        return conv_up(x, kernel, bias, self.impl)
