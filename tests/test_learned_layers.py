"""qd.learned.layers: ConvDown / ConvUp are PyTorch's k4 s2 p1 conv / transposed conv, and every
implementation ("fast", the other exact formulations) equals "plain" in value and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd.learned import layers as L
from qd.learned.layers import ConvDown, ConvUp


def _rand(rng, *shape):
    return rng.normal(size=shape).astype(np.float32)


def _brute_conv_down(x, w, b):
    """PyTorch Conv2d(k=4, s=2, p=1) by its definition (NHWC, kernel (4, 4, Cin, Cout)), float64."""
    n, h, wd, _ = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h // 2, wd // 2, w.shape[3]))
    for i in range(h // 2):
        for j in range(wd // 2):
            out[:, i, j] = np.einsum("nabc,abco->no", xp[:, 2 * i : 2 * i + 4, 2 * j : 2 * j + 4], w)
    return out + b


def _brute_conv_up(x, w, b):
    """PyTorch ConvTranspose2d(k=4, s=2, p=1) by its definition: scatter-add x[i, j] w[a, b] to output
    pixel (2 i + a - 1, 2 j + b - 1), dropping what falls outside the 2H x 2W output. float64."""
    n, h, wd, _ = x.shape
    full = np.zeros((n, 2 * h + 2, 2 * wd + 2, w.shape[3]))
    for i in range(h):
        for j in range(wd):
            for a in range(4):
                for c in range(4):
                    full[:, 2 * i + a, 2 * j + c] += x[:, i, j].astype(np.float64) @ w[a, c]
    return full[:, 1:-1, 1:-1] + b


def _close(a, b, rel=1e-5):
    """|a - b| <= rel * scale, with scale the largest |b| (float32 rounding of sums of products)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(np.abs(b).max(), 1e-30)
    err = np.abs(a - b).max()
    assert err <= rel * scale, f"max error {err:.3g} > {rel:g} x scale {scale:.3g}"


def test_conv_up_plain_is_pytorch_transposed_conv():
    rng = np.random.default_rng(0)
    x, w, b = _rand(rng, 2, 3, 5, 3), _rand(rng, 4, 4, 3, 2), _rand(rng, 2)
    ref = _brute_conv_up(x, w, b)
    y = ConvUp(2, impl="plain").apply({"params": {"kernel": w, "bias": b}}, x)
    assert y.shape == (2, 6, 10, 2)
    _close(y, ref)
    # ... which is flax's ConvTranspose with PyTorch's padding, either kernel convention
    t = nn.ConvTranspose(2, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)), transpose_kernel=True)
    _close(t.apply({"params": {"kernel": w.transpose(0, 1, 3, 2), "bias": b}}, x), ref)
    f = nn.ConvTranspose(2, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)), transpose_kernel=False)
    _close(f.apply({"params": {"kernel": w[::-1, ::-1], "bias": b}}, x), ref)
    # and the brute force itself is not trivially matched: a flipped kernel gives something else
    wrong = ConvUp(2, impl="plain").apply({"params": {"kernel": w[::-1, ::-1], "bias": b}}, x)
    assert np.abs(np.asarray(wrong) - ref).max() > 1e-2


def test_conv_down_plain_is_pytorch_conv():
    rng = np.random.default_rng(1)
    x, w, b = _rand(rng, 2, 6, 4, 3), _rand(rng, 4, 4, 3, 5), _rand(rng, 5)
    ref = _brute_conv_down(x, w, b)
    y = ConvDown(5, impl="plain").apply({"params": {"kernel": w, "bias": b}}, x)
    assert y.shape == (2, 3, 2, 5)
    _close(y, ref)
    c = nn.Conv(5, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))
    _close(c.apply({"params": {"kernel": w, "bias": b}}, x), ref)


def _value_and_grads(module, params, x, cot):
    def loss(params, x):
        return jnp.sum(module.apply({"params": params}, x) * cot)

    y = module.apply({"params": params}, x)
    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
    return y, gp, gx


# (B, H, W, Cin, Cout): several channel counts; odd and even sizes (ConvDown needs even H, W; its
# output may be odd)
DOWN_CASES = [(2, 4, 4, 1, 1), (3, 6, 10, 3, 5), (1, 8, 6, 16, 9), (2, 10, 2, 4, 2)]
UP_CASES = [(2, 1, 1, 1, 1), (3, 3, 5, 3, 5), (1, 4, 4, 16, 2), (2, 5, 2, 2, 9)]


# "fast" on every case; the other exact formulations (kept for benchmarking) on one case each
DOWN_PARAMS = [("fast", c) for c in DOWN_CASES] + [
    (k, DOWN_CASES[1]) for k in L.CONV_DOWN_IMPLS if k not in ("plain", "fast")
]
UP_PARAMS = [("fast", c) for c in UP_CASES] + [(k, UP_CASES[1]) for k in L.CONV_UP_IMPLS if k not in ("plain", "fast")]


@pytest.mark.parametrize("impl,case", DOWN_PARAMS)
def test_conv_down_impls_equal_plain(impl, case):
    bsz, h, w, cin, cout = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = jnp.asarray(_rand(rng, bsz, h, w, cin))
    fast, plain = ConvDown(cout, impl=impl), ConvDown(cout, impl="plain")
    params = fast.init(jax.random.PRNGKey(0), x)["params"]
    params = {"kernel": params["kernel"], "bias": jnp.asarray(_rand(rng, cout))}
    assert jax.tree.map(jnp.shape, plain.init(jax.random.PRNGKey(0), x)["params"]) == jax.tree.map(jnp.shape, params)
    cot = jnp.asarray(_rand(rng, bsz, h // 2, w // 2, cout))
    y1, gp1, gx1 = _value_and_grads(fast, params, x, cot)
    y0, gp0, gx0 = _value_and_grads(plain, params, x, cot)
    assert y1.shape == (bsz, h // 2, w // 2, cout) and y1.dtype == jnp.float32
    _close(y1, y0)
    _close(gx1, gx0)
    _close(gp1["kernel"], gp0["kernel"])
    _close(gp1["bias"], gp0["bias"])


@pytest.mark.parametrize("impl,case", UP_PARAMS)
def test_conv_up_impls_equal_plain(impl, case):
    bsz, h, w, cin, cout = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = jnp.asarray(_rand(rng, bsz, h, w, cin))
    fast, plain = ConvUp(cout, impl=impl), ConvUp(cout, impl="plain")
    params = fast.init(jax.random.PRNGKey(0), x)["params"]
    params = {"kernel": params["kernel"], "bias": jnp.asarray(_rand(rng, cout))}
    assert jax.tree.map(jnp.shape, plain.init(jax.random.PRNGKey(0), x)["params"]) == jax.tree.map(jnp.shape, params)
    cot = jnp.asarray(_rand(rng, bsz, 2 * h, 2 * w, cout))
    y1, gp1, gx1 = _value_and_grads(fast, params, x, cot)
    y0, gp0, gx0 = _value_and_grads(plain, params, x, cot)
    assert y1.shape == (bsz, 2 * h, 2 * w, cout) and y1.dtype == jnp.float32
    _close(y1, y0)
    _close(gx1, gx0)
    _close(gp1["kernel"], gp0["kernel"])
    _close(gp1["bias"], gp0["bias"])


def test_fast_matches_brute_force_and_default_impl_is_fast():
    rng = np.random.default_rng(2)
    x, w, b = _rand(rng, 2, 4, 6, 3), _rand(rng, 4, 4, 3, 4), _rand(rng, 4)
    p = {"params": {"kernel": w, "bias": b}}
    assert ConvUp(4).impl == "fast" and ConvDown(4).impl == "fast"
    _close(ConvUp(4).apply(p, x), _brute_conv_up(x, w, b))
    _close(ConvDown(4).apply(p, x), _brute_conv_down(x, w, b))


def _lhs_dilations(jaxpr):
    """The lhs_dilation of every conv_general_dilated in a (closed) jaxpr, sub-jaxprs included."""
    out = []

    def walk(jp):
        for eqn in jp.eqns:
            if eqn.primitive.name == "conv_general_dilated":
                out.append(tuple(eqn.params["lhs_dilation"]))
            for v in eqn.params.values():
                for sub in v if isinstance(v, (list, tuple)) else [v]:
                    if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)
                    elif hasattr(sub, "eqns"):
                        walk(sub)

    walk(jaxpr.jaxpr)
    return out


@pytest.mark.parametrize("layer", [ConvDown, ConvUp])
def test_fast_gradients_have_no_transposed_convolution(layer):
    """The point of "fast": neither its forward nor its backward pass convolves a zero-dilated input
    (XLA:CPU's slow path); "plain"'s backward (or forward) does."""
    x = jnp.ones((2, 8, 8, 3))

    def grad_jaxpr(impl):
        m = layer(4, impl=impl)
        params = m.init(jax.random.PRNGKey(0), x)["params"]
        return jax.make_jaxpr(jax.grad(lambda p, x: jnp.sum(m.apply({"params": p}, x) ** 2), argnums=(0, 1)))(
            params, x
        )

    fast = _lhs_dilations(grad_jaxpr("fast"))
    plain = _lhs_dilations(grad_jaxpr("plain"))
    assert fast and all(d == (1, 1) for d in fast), fast
    assert any(d != (1, 1) for d in plain), plain


@pytest.mark.parametrize("impl", ["fast", "plain"])
def test_bad_shapes_raise(impl):
    with pytest.raises(ValueError, match=r"\(2, 5, 4, 3\)"):
        ConvDown(4, impl=impl).init(jax.random.PRNGKey(0), jnp.zeros((2, 5, 4, 3)))
    with pytest.raises(ValueError, match=r"\(1, 4, 7, 3\)"):
        ConvDown(4, impl=impl).init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 7, 3)))
    for layer in (ConvDown, ConvUp):
        with pytest.raises(ValueError, match="NHWC"):
            layer(4, impl=impl).init(jax.random.PRNGKey(0), jnp.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="impl"):
        ConvUp(4, impl="nope").init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 3)))


def test_no_bias():
    x = jnp.ones((1, 4, 4, 2))
    for layer in (ConvDown, ConvUp):
        params = layer(3, use_bias=False).init(jax.random.PRNGKey(0), x)["params"]
        assert set(params) == {"kernel"} and params["kernel"].shape == (4, 4, 2, 3)
