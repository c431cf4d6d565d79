"""qd.learned.autoencoders: shapes and architectures of the STAX / TAXONS / MLP autoencoders, fast ==
plain, the BatchNorm path, that training reduces the loss, and reconstruction_error."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from qd.learned.autoencoders import (
    ConvAutoencoder,
    MLPAutoencoder,
    reconstruction_error,
    stax_autoencoder,
    taxons_autoencoder,
)


BUILDERS = {"stax": stax_autoencoder, "taxons": taxons_autoencoder}


def _discs(n=16, size=64, radius=7.0, seed=0):
    """``n`` RGB images of a coloured disc at different positions, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    imgs = np.zeros((n, size, size, 3), np.float32)
    for k in range(n):
        cy, cx = rng.uniform(radius + 2, size - radius - 2, size=2)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2).astype(np.float32)
        imgs[k] = disc[..., None] * np.array([0.9, 0.6, 0.3], np.float32)
    return jnp.asarray(imgs)


DISCS = _discs(16)

# Compiling dominates these tests' time on a CPU, so every compiled function is built once per model
# and implementation, and shared by the tests (one batch shape: the 16 disc images).


@functools.lru_cache(maxsize=None)
def _model(name, impl="fast"):
    return BUILDERS[name](impl=impl)


@functools.lru_cache(maxsize=None)
def _variables(name):
    """Initial variables (the same for both implementations)."""
    return jax.jit(_model(name).init)(jax.random.PRNGKey(0), DISCS[:1])


@functools.lru_cache(maxsize=None)
def _loss_grad(name, impl):
    """Jitted ``(params, extra, x) -> ((loss, (recon, z, new_extra)), grads)``, train mode."""
    model = _model(name, impl)

    def loss(params, extra, x):
        if extra:
            (recon, z), new = model.apply({"params": params, **extra}, x, train=True, mutable=list(extra))
        else:
            recon, z = model.apply({"params": params}, x, train=True)
            new = extra
        return jnp.mean(reconstruction_error(x, recon)), (recon, z, dict(new))

    return jax.jit(jax.value_and_grad(loss, has_aux=True))


@functools.lru_cache(maxsize=None)
def _eval(name):
    """Jitted eval-mode ``(variables, x) -> ((recon, z), collections)``, fast impl."""
    model = _model(name)
    return jax.jit(lambda v, x: model.apply(v, x, mutable=[k for k in v if k != "params"]))


def _split(variables):
    variables = dict(variables)
    return variables.pop("params"), variables


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _close(a, b, rel=1e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(np.abs(b).max(), 1e-30)
    err = np.abs(a - b).max()
    assert err <= rel * scale, f"max error {err:.3g} > {rel:g} x scale {scale:.3g}"


def test_reconstruction_error_hand_made():
    a = np.zeros((3, 2, 2), np.float32)
    b = np.zeros((3, 2, 2), np.float32)
    b[0] = 1.0  # all four entries off by 1
    b[1, 0, 0] = 2.0  # one entry off by 2 -> 4 / 4
    b[2, 1, 1] = -0.5  # 0.25 / 4
    err = reconstruction_error(a, b)
    assert err.shape == (3,) and err.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(err), [1.0, 1.0, 0.0625], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(reconstruction_error(np.ones((2, 5)), np.zeros((2, 5)))), [1.0, 1.0])
    with pytest.raises(ValueError, match="shapes"):
        reconstruction_error(np.zeros((2, 3)), np.zeros((2, 4)))


def test_stax_architecture_and_shapes():
    v = _variables("stax")
    assert set(v) == {"params"}
    p = v["params"]
    assert _count(p) == 156_189
    assert [p[f"enc_convs_{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 3, 32), (4, 4, 32, 64), (4, 4, 64, 32), (4, 4, 32, 16)
    ]
    assert [p[f"dec_convs_{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 16, 32), (4, 4, 32, 64), (4, 4, 64, 32), (4, 4, 32, 3)
    ]
    assert all("bias" in layer for layer in p.values())
    assert p["latent"]["kernel"].shape == (256, 10) and p["dec_dense_0"]["kernel"].shape == (10, 256)
    (recon, z), _ = _eval("stax")(v, DISCS)
    assert recon.shape == (16, 64, 64, 3) and z.shape == (16, 10)
    assert recon.dtype == jnp.float32 and z.dtype == jnp.float32
    assert float(recon.min()) >= 0.0  # ReLU output
    assert float(z.min()) >= -1.7581  # SELU latent: > -scale * alpha
    m = _model("stax")
    _close(m.apply(v, DISCS[:2], method="encode"), z[:2])
    _close(m.apply(v, z[:2], method="decode"), recon[:2])
    v4 = jax.eval_shape(stax_autoencoder(latent_dim=4).init, jax.random.PRNGKey(0), DISCS[:1])
    assert v4["params"]["latent"]["kernel"].shape == (256, 4)


def test_taxons_architecture_and_shapes():
    v = _variables("taxons")
    p, stats = v["params"], v["batch_stats"]
    assert _count(p) == 1_991_680
    bns = ("enc_bns", "dec_bns", "start_bn")
    assert all("bias" not in p[k] for k in p if not k.startswith(bns))  # no biases but BatchNorm's
    assert [p[f"enc_convs_{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 3, 32), (4, 4, 32, 128), (4, 4, 128, 128), (4, 4, 128, 64)
    ]
    assert [p[f"dec_convs_{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 32, 64), (4, 4, 64, 32), (4, 4, 32, 32), (4, 4, 32, 3)
    ]
    assert [p[f"enc_dense_{i}"]["kernel"].shape for i in range(2)] == [(1024, 1024), (1024, 256)]
    assert p["latent"]["kernel"].shape == (256, 10)
    assert [p[f"dec_dense_{i}"]["kernel"].shape for i in range(2)] == [(10, 256), (256, 512)]
    assert set(stats) == {f"enc_bns_{i}" for i in range(4)} | {"start_bn"} | {f"dec_bns_{i}" for i in range(3)}
    assert stats["start_bn"]["mean"].shape == (32,) and stats["enc_bns_1"]["var"].shape == (128,)
    (recon, z), _ = _eval("taxons")(v, DISCS)
    assert recon.shape == (16, 64, 64, 3) and z.shape == (16, 10)
    m = _model("taxons")
    _close(m.apply(v, DISCS[:2], method="encode"), z[:2])
    _close(m.apply(v, z[:2], method="decode"), recon[:2])


def test_mlp_autoencoder_shapes():
    m = MLPAutoencoder(7)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 7)), jnp.float32)
    v = m.init(jax.random.PRNGKey(0), x)
    recon, z = m.apply(v, x)
    assert recon.shape == (5, 7) and z.shape == (5, 10)
    # 7->64->32->10->32->64->7, with biases
    assert _count(v) == (7 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10) + (10 * 32 + 32) + (32 * 64 + 64) + (64 * 7 + 7)
    assert m.apply(v, z, method="decode").shape == (5, 7)
    assert MLPAutoencoder(7, hidden=(16,), latent_dim=3).apply(
        MLPAutoencoder(7, hidden=(16,), latent_dim=3).init(jax.random.PRNGKey(0), x), x
    )[1].shape == (5, 3)
    with pytest.raises(ValueError, match="7"):
        m.apply(v, jnp.zeros((5, 6)))


def test_conv_autoencoder_config_errors():
    with pytest.raises(ValueError, match="prod"):
        jax.eval_shape(ConvAutoencoder(decoder_dense=(100,)).init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))


@pytest.mark.parametrize("name", ["stax", "taxons"])
def test_fast_equals_plain(name):
    """Same parameters, same images: equal latents, reconstructions, loss and gradients of the mean
    reconstruction loss (train mode, so TAXONS normalises with batch statistics)."""
    params, extra = _split(_variables(name))
    (l1, (r1, z1, s1)), g1 = _loss_grad(name, "fast")(params, extra, DISCS)
    (l0, (r0, z0, s0)), g0 = _loss_grad(name, "plain")(params, extra, DISCS)
    _close(z1, z0)
    _close(r1, r0)
    _close(l1, l0)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s0)):
        _close(a, b)
    paths = jax.tree.leaves_with_path(g1)
    assert len(paths) == len(jax.tree.leaves(g0))
    # float32 rounding of a gradient that passes through ~10 layers: absolute errors of about 1e-6 of
    # the largest gradient entry anywhere (small leaves, e.g. the STAX decoder kernels at 5e-3 of
    # it, see that as a relative 1e-4), so the bound is 1e-4 of each leaf's scale + 1e-5 of the global one
    overall = max(float(np.abs(np.asarray(b)).max()) for b in jax.tree.leaves(g0))
    for (path, a), b in zip(paths, jax.tree.leaves(g0)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = np.abs(b).max()
        assert scale > 0, path
        err = np.abs(a - b).max()
        assert err <= 1e-4 * scale + 1e-5 * overall, (jax.tree_util.keystr(path), err, scale, overall)


def test_batch_norm_train_updates_stats_eval_does_not():
    v = _variables("taxons")
    params, extra = _split(v)
    (_, (r_train, _, upd)), _ = _loss_grad("taxons", "fast")(params, extra, DISCS)
    changed = jax.tree.map(lambda a, b: bool(np.abs(np.asarray(a) - np.asarray(b)).max() > 0), upd, extra)
    assert all(jax.tree.leaves(changed))
    # momentum 0.9 (PyTorch's 0.1): new mean = 0.9 * 0 + 0.1 * batch mean of the first BN's inputs
    feats = _model("taxons").apply(v, DISCS, method=lambda mdl, x: jax.nn.selu(mdl.enc_convs[0](x)))
    _close(upd["batch_stats"]["enc_bns_0"]["mean"], 0.1 * jnp.mean(feats, axis=(0, 1, 2)))
    (r_eval, _), same = _eval("taxons")(v, DISCS)
    for a, b in zip(jax.tree.leaves(same["batch_stats"]), jax.tree.leaves(v["batch_stats"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # train=True normalises with batch statistics, train=False with the (initial) running ones
    assert np.abs(np.asarray(r_train) - np.asarray(r_eval)).max() > 1e-3


def _adam_loop(loss_grad, params, extra, x, steps, lr):
    opt = optax.adam(lr)
    state = opt.init(params)

    @jax.jit
    def update(params, state, grads):
        upd, state = opt.update(grads, state, params)
        return optax.apply_updates(params, upd), state

    losses = []
    for _ in range(steps):
        (loss, (_, _, extra)), grads = loss_grad(params, extra, x)
        params, state = update(params, state, grads)
        losses.append(float(loss))
    return losses, params, extra


@pytest.mark.parametrize("name", ["stax", "taxons"])
def test_conv_autoencoders_learn(name):
    """30 Adam steps (lr 1e-3) on 16 disc images at least halve the loss (measured: to ~10% or less)."""
    params, extra = _split(_variables(name))
    losses, params, extra = _adam_loop(_loss_grad(name, "fast"), params, extra, DISCS, 30, 1e-3)
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])
    (recon, _), _ = _eval(name)({"params": params, **extra}, DISCS)  # eval mode, running statistics
    assert float(jnp.mean(reconstruction_error(DISCS, recon))) < losses[0]


def test_mlp_autoencoder_learns():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 12))
    x = jnp.asarray(rng.normal(size=(64, 3)) @ basis, jnp.float32)  # rank-3 data
    model = MLPAutoencoder(12)
    params = model.init(jax.random.PRNGKey(0), x)["params"]

    def loss(params, extra, x):
        recon, z = model.apply({"params": params}, x)
        return jnp.mean(reconstruction_error(x, recon)), (recon, z, extra)

    losses, params, _ = _adam_loop(jax.jit(jax.value_and_grad(loss, has_aux=True)), params, {}, x, 60, 3e-3)
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])
