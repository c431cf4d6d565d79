"""qd.learned.autoencoders: shapes and architectures of the STAX / TAXONS / MLP autoencoders, fast ==
plain, the BatchNorm path, that training reduces the loss, and reconstruction_error."""

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


def _count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def _close(a, b, rel=1e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(np.abs(b).max(), 1e-30)
    err = np.abs(a - b).max()
    assert err <= rel * scale, f"max error {err:.3g} > {rel:g} x scale {scale:.3g}"


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
    m = stax_autoencoder()
    x = _discs(2)
    v = m.init(jax.random.PRNGKey(0), x)
    assert set(v) == {"params"}
    p = v["params"]
    assert _count(p) == 156_189
    assert [p[f"enc_convs_{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 3, 32), (4, 4, 32, 64), (4, 4, 64, 32), (4, 4, 32, 16)
    ]
    assert [p[f"dec_convs_{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 16, 32), (4, 4, 32, 64), (4, 4, 64, 32), (4, 4, 32, 3)
    ]
    assert p["latent"]["kernel"].shape == (256, 10) and p["dec_dense_0"]["kernel"].shape == (10, 256)
    recon, z = m.apply(v, x)
    assert recon.shape == (2, 64, 64, 3) and z.shape == (2, 10)
    assert recon.dtype == jnp.float32 and z.dtype == jnp.float32
    assert float(recon.min()) >= 0.0  # ReLU output
    assert float(z.min()) >= -1.7581  # SELU latent: > -scale * alpha
    _close(m.apply(v, x, method="encode"), z)
    _close(m.apply(v, z, method="decode"), recon)
    assert stax_autoencoder(latent_dim=4).apply(
        stax_autoencoder(latent_dim=4).init(jax.random.PRNGKey(0), x), x, method="encode"
    ).shape == (2, 4)


def test_taxons_architecture_and_shapes():
    m = taxons_autoencoder()
    x = _discs(2)
    v = m.init(jax.random.PRNGKey(0), x)
    p, stats = v["params"], v["batch_stats"]
    assert _count(p) == 1_991_680
    assert all("bias" not in p[k] for k in p if not k.startswith(("enc_bns", "dec_bns", "start_bn")))
    assert [p[f"enc_convs_{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 3, 32), (4, 4, 32, 128), (4, 4, 128, 128), (4, 4, 128, 64)
    ]
    assert [p[f"dec_convs_{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 32, 64), (4, 4, 64, 32), (4, 4, 32, 32), (4, 4, 32, 3)
    ]
    assert [p[f"enc_dense_{i}"]["kernel"].shape for i in range(2)] == [(1024, 1024), (1024, 256)]
    assert [p[f"dec_dense_{i}"]["kernel"].shape for i in range(2)] == [(10, 256), (256, 512)]
    assert set(stats) == {"enc_bns_0", "enc_bns_1", "enc_bns_2", "enc_bns_3", "start_bn", "dec_bns_0", "dec_bns_1", "dec_bns_2"}
    recon, z = m.apply(v, x)
    assert recon.shape == (2, 64, 64, 3) and z.shape == (2, 10)
    assert m.apply(v, x, method="encode").shape == (2, 10)
    assert m.apply(v, z, method="decode").shape == (2, 64, 64, 3)


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
        ConvAutoencoder(decoder_dense=(100,)).init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))


def _loss_and_grads(model, variables, x, train):
    params = variables["params"]
    extra = {k: v for k, v in variables.items() if k != "params"}

    def loss(params):
        if train and extra:
            (recon, z), _ = model.apply({"params": params, **extra}, x, train=True, mutable=list(extra))
        else:
            recon, z = model.apply({"params": params, **extra}, x, train=train)
        return jnp.mean(reconstruction_error(x, recon)), (recon, z)

    (l, (recon, z)), g = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    return l, recon, z, g


@pytest.mark.parametrize("build,train", [(stax_autoencoder, False), (taxons_autoencoder, True), (taxons_autoencoder, False)])
def test_fast_equals_plain(build, train):
    x = _discs(3, seed=1) + 0.05 * jax.random.uniform(jax.random.PRNGKey(3), (3, 64, 64, 3))
    fast, plain = build(impl="fast"), build(impl="plain")
    v = fast.init(jax.random.PRNGKey(1), x)
    assert jax.tree.map(jnp.shape, v) == jax.tree.map(jnp.shape, plain.init(jax.random.PRNGKey(1), x))
    l1, r1, z1, g1 = _loss_and_grads(fast, v, x, train)
    l0, r0, z0, g0 = _loss_and_grads(plain, v, x, train)
    _close(z1, z0)
    _close(r1, r0)
    _close(l1, l0)
    flat1, flat0 = jax.tree.leaves_with_path(g1), jax.tree.leaves(g0)
    for (path, a), b in zip(flat1, flat0):
        assert np.abs(np.asarray(b)).max() > 0, path
        # each gradient against its own scale; 1e-4 as the loss passes through ~10 layers
        _close(a, b, rel=1e-4)


def test_batch_norm_train_updates_stats_eval_does_not():
    m = taxons_autoencoder()
    x = _discs(4, seed=2)
    v = m.init(jax.random.PRNGKey(0), x)
    (_, _), upd = m.apply(v, x, train=True, mutable=["batch_stats"])
    changed = jax.tree.map(lambda a, b: bool(np.abs(np.asarray(a) - np.asarray(b)).max() > 0), upd["batch_stats"], v["batch_stats"])
    assert all(jax.tree.leaves(changed))
    # momentum 0.9: new mean = 0.9 * 0 + 0.1 * batch mean of the first BN's inputs
    feats = m.apply(v, x, method=lambda mdl, x: jax.nn.selu(mdl.enc_convs[0](x)))
    _close(upd["batch_stats"]["enc_bns_0"]["mean"], 0.1 * jnp.mean(feats, axis=(0, 1, 2)))
    (_, _), same = m.apply(v, x, train=False, mutable=["batch_stats"])
    for a, b in zip(jax.tree.leaves(same["batch_stats"]), jax.tree.leaves(v["batch_stats"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # train=True normalises with batch statistics, train=False with the (initial) running ones
    r_train, _ = m.apply(v, x, train=True, mutable=["batch_stats"])[0]
    r_eval, _ = m.apply(v, x, train=False)
    assert np.abs(np.asarray(r_train) - np.asarray(r_eval)).max() > 1e-3


def _train(model, x, steps, lr=1e-3):
    variables = dict(model.init(jax.random.PRNGKey(0), x))
    params = variables.pop("params")
    extra = variables
    opt = optax.adam(lr)
    state = opt.init(params)

    def loss_fn(params, extra):
        if extra:
            (recon, _), new = model.apply({"params": params, **extra}, x, train=True, mutable=list(extra))
        else:
            recon, _ = model.apply({"params": params}, x, train=True)
            new = extra
        return jnp.mean(reconstruction_error(x, recon)), dict(new)

    @jax.jit
    def step(params, extra, state):
        (loss, extra), g = jax.value_and_grad(loss_fn, has_aux=True)(params, extra)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), extra, state, loss

    losses = []
    for _ in range(steps):
        params, extra, state, loss = step(params, extra, state)
        losses.append(float(loss))
    eval_recon, _ = model.apply({"params": params, **extra}, x)
    return losses, float(jnp.mean(reconstruction_error(x, eval_recon)))


@pytest.mark.parametrize("build", [stax_autoencoder, taxons_autoencoder])
def test_conv_autoencoders_learn(build):
    x = _discs(16)
    losses, _ = _train(build(), x, steps=40)
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_mlp_autoencoder_learns():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 12))
    x = jnp.asarray(rng.normal(size=(64, 3)) @ basis, jnp.float32)  # rank-3 data
    losses, final = _train(MLPAutoencoder(12), x, steps=60, lr=3e-3)
    assert losses[-1] < 0.5 * losses[0] and final < 0.5 * losses[0], (losses[0], losses[-1], final)
