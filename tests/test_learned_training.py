"""qd.learned.training: padded datasets, one compiled training per capacity bucket, masked encoding."""

import jax
import jax.numpy as jnp
import flax.linen as nn
import numpy as np
import pytest

from qd.learned.training import (
    Autoencoder, PaddedDataset, bucket_capacity, concatenate_datasets, padded_dataset, per_sample_error, valid_first,
)


class TinyAE(nn.Module):
    """A small dense autoencoder on vectors (fast to compile and train)."""

    @nn.compact
    def __call__(self, x, train=False):
        z = nn.Dense(3)(nn.selu(nn.Dense(16)(x)))
        return nn.Dense(x.shape[-1])(nn.selu(nn.Dense(16)(z))), z


def _data(n, seed=0):
    # 8-D points on a 3-D linear subspace: an autoencoder with a 3-D code can learn them.
    z = jax.random.normal(jax.random.PRNGKey(seed), (n, 3))
    return z @ jax.random.normal(jax.random.PRNGKey(99), (3, 8))


def test_bucket_capacity_and_padding():
    assert [bucket_capacity(n) for n in (0, 1, 256, 257, 1000)] == [256, 256, 256, 512, 1024]
    assert bucket_capacity(5, minimum=4) == 8
    ds = padded_dataset({"x": jnp.ones((300, 2))})
    assert ds.capacity == 512 and int(ds.count) == 300
    assert bool(ds.mask[299]) and not bool(ds.mask[300]) and float(ds.sources["x"][300:].sum()) == 0
    both = concatenate_datasets(ds, padded_dataset({"x": jnp.ones((3, 2))}, capacity=4))
    assert both.capacity == 516 and int(both.count) == 303
    with pytest.raises(ValueError, match="capacity 2 is below the 3 rows"):
        padded_dataset(jnp.ones((3, 2)), capacity=2)
    with pytest.raises(ValueError, match="mask must have shape"):
        padded_dataset(jnp.ones((3, 2)), mask=jnp.ones((4,), bool))


def test_valid_first_puts_the_valid_rows_first():
    mask = jnp.array([False, True, False, True, True])
    np.testing.assert_array_equal(valid_first(mask), [1, 3, 4, 0, 2])
    shuffled = np.asarray(valid_first(mask, jax.random.PRNGKey(3)))
    assert sorted(shuffled[:3]) == [1, 3, 4] and sorted(shuffled[3:]) == [0, 2]


def test_training_lowers_the_loss_and_counts():
    ae = Autoencoder(TinyAE(), batch_size=32, learning_rate=3e-3)
    data = _data(300)
    state = ae.init(jax.random.PRNGKey(0), data[:2])
    before = float(jnp.mean(ae.encode(state, data)[1]))
    trained = jax.jit(ae.train, static_argnums=(3,))(state, padded_dataset(data), jax.random.PRNGKey(1), 40)
    after = float(jnp.mean(ae.encode(trained, data)[1]))
    assert after < 0.2 * before, (before, after)
    assert int(trained.num_trainings) == 1 and int(trained.epochs) == 40 and np.isfinite(float(trained.loss))
    assert np.isnan(float(trained.validation_loss))  # no validation split


def test_padding_rows_never_reach_the_training():
    ae = Autoencoder(TinyAE(), batch_size=32)
    data = _data(100)
    state = ae.init(jax.random.PRNGKey(0), data[:2])
    clean = padded_dataset(data, capacity=256)
    dirty = clean.replace(sources=clean.sources.at[100:].set(jnp.nan))  # garbage in the padding
    train = jax.jit(ae.train, static_argnums=(3,))
    a = train(state, clean, jax.random.PRNGKey(1), 3)
    b = train(state, dirty, jax.random.PRNGKey(1), 3)
    for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_array_equal(x, y)


def test_a_growing_dataset_compiles_once_per_bucket():
    ae = Autoencoder(TinyAE(), batch_size=32)
    data = _data(700)
    state = ae.init(jax.random.PRNGKey(0), data[:2])
    calls = []
    train = jax.jit(lambda s, d, k: (calls.append(d.capacity), ae.train(s, d, k, 2))[1])  # traced once per shape
    for n in (260, 300, 511, 512):  # one bucket: 512
        state = train(state, padded_dataset(data[:n]), jax.random.PRNGKey(n))
    assert calls == [512]
    state = train(state, padded_dataset(data[:700]), jax.random.PRNGKey(0))  # the next bucket compiles
    assert calls == [512, 1024] and int(state.num_trainings) == 5
    # Epoch cost follows the rows, not the capacity: the losses were computed over the valid rows only.
    assert np.isfinite(float(state.loss))


def test_validation_split_and_early_stopping():
    data = _data(200)
    ae = Autoencoder(TinyAE(), batch_size=16, learning_rate=0.5)  # a step size that diverges: validation rises
    state = ae.init(jax.random.PRNGKey(0), data[:2])
    train = jax.jit(ae.train, static_argnums=(3, 4, 5))
    stopped = train(state, padded_dataset(data), jax.random.PRNGKey(1), 60, 0.2, 2)
    assert 2 <= int(stopped.epochs) < 60 and np.isfinite(float(stopped.validation_loss))
    full = train(state, padded_dataset(data), jax.random.PRNGKey(1), 60, 0.2, 0)  # no patience: every epoch
    assert int(full.epochs) == 60
    with pytest.raises(ValueError, match="patience"):
        ae.train(state, padded_dataset(data), jax.random.PRNGKey(1), 5, 0.0, 3)
    with pytest.raises(ValueError, match="validation_fraction"):
        ae.train(state, padded_dataset(data), jax.random.PRNGKey(1), 5, 1.0)


def test_encoding_in_chunks_and_of_valid_rows_only():
    ae = Autoencoder(TinyAE(), encode_chunk=7)
    data = _data(30)
    state = ae.init(jax.random.PRNGKey(0), data[:2])
    whole_z, whole_e = ae.encode_batch(state, data)
    z, e = jax.jit(ae.encode)(state, data)
    np.testing.assert_allclose(z, whole_z, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(e, per_sample_error(data, ae.model.apply({"params": state.params}, data)[0]), rtol=1e-6)
    mask = jnp.arange(30) % 3 == 0
    vz, ve = jax.jit(ae.encode_valid)(state, data, mask)
    np.testing.assert_allclose(vz[mask], whole_z[mask], rtol=1e-6, atol=1e-6)
    assert float(jnp.abs(vz[~mask]).sum()) == 0 and float(jnp.abs(ve[~mask]).sum()) == 0


def test_several_views_per_source_concatenate_latents_and_sum_errors():
    ae1 = Autoencoder(TinyAE())
    ae3 = Autoencoder(TinyAE(), frames=3)
    data = _data(12).reshape(4, 3, 8)  # 4 sources of 3 views each
    state = ae1.init(jax.random.PRNGKey(0), data[0])
    z, e = ae3.encode(state, data)
    z1, e1 = ae1.encode(state, data.reshape(12, 8))
    np.testing.assert_allclose(z, z1.reshape(4, 9), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(e, e1.reshape(4, 3).sum(axis=1), rtol=1e-6)
    trained = jax.jit(ae3.train, static_argnums=(3,))(state, padded_dataset(data), jax.random.PRNGKey(1), 2)
    assert np.isfinite(float(trained.loss))
