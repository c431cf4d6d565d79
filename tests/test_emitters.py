"""Emitters: the distributions they sample from and the composite's batch split."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from emitters import CompositeEmitter, Emitter, GaussianEmitter, IsoLineEmitter
from qd import NEW, GridArchive


def archive_with(genotypes, descriptors):
    genotypes = jnp.asarray(genotypes, jnp.float32)
    archive = GridArchive.create(jnp.zeros(genotypes.shape[1]), 10, (0.0,), (1.0,))
    archive, _ = archive.add(genotypes, jnp.asarray(descriptors, jnp.float32), jnp.zeros(len(genotypes)))
    return archive


def test_gaussian_mutation_statistics_and_clip():
    archive = archive_with([[1.0, -2.0, 0.5]], [[0.5]])
    emitter = GaussianEmitter(batch_size=20_000, sigma=0.3)
    children = np.asarray(emitter.ask(None, archive, jax.random.key(0)))
    np.testing.assert_allclose(children.mean(0), [1.0, -2.0, 0.5], atol=0.01)
    np.testing.assert_allclose(children.std(0), 0.3, atol=0.01)
    clipped = np.asarray(GaussianEmitter(batch_size=1000, sigma=5.0, clip=(-1.0, 1.0)).ask(None, archive, jax.random.key(1)))
    assert clipped.min() >= -1.0 and clipped.max() <= 1.0


def test_isoline_children_lie_along_the_line_between_elites():
    x, y = np.array([0.0, 0.0]), np.array([1.0, 2.0])
    archive = archive_with([x, y], [[0.15], [0.85]])
    emitter = IsoLineEmitter(batch_size=20_000, iso_sigma=1e-4, line_sigma=0.5)
    children = np.asarray(emitter.ask(None, archive, jax.random.key(0)))
    # Each child is a parent plus a multiple of +-(y - x), plus tiny isotropic noise: orthogonal part ~ 0.
    direction = (y - x) / np.linalg.norm(y - x)
    rel = np.where(np.linalg.norm(children - x, axis=1, keepdims=True) < np.linalg.norm(children - y, axis=1, keepdims=True), children - x, children - y)
    orthogonal = rel - (rel @ direction)[:, None] * direction
    assert np.abs(orthogonal).max() < 1e-3
    along = np.abs(rel @ direction)
    # Half the pairs are (x, x) or (y, y) (no line move); the others move by |N(0, 0.5)| * |y - x|, which
    # exceeds 0.05 with probability 0.96: about 48% of the children move along the line.
    assert 0.43 < np.mean(along > 0.05) < 0.53


def test_isoline_on_pytree_genotypes_shares_the_line_coefficient():
    template = {"a": jnp.zeros(2), "b": jnp.zeros((1, 2))}
    archive = GridArchive.create(template, 2, (0.0,), (1.0,))
    genotypes = {"a": jnp.asarray([[0.0, 0.0], [1.0, 1.0]]), "b": jnp.asarray([[[0.0, 0.0]], [[2.0, 2.0]]])}
    archive, _ = archive.add(genotypes, jnp.asarray([[0.25], [0.75]]), jnp.zeros(2))
    children = IsoLineEmitter(batch_size=512, iso_sigma=1e-6, line_sigma=0.5).ask(None, archive, jax.random.key(2))
    a, b = np.asarray(children["a"]), np.asarray(children["b"])[:, 0]
    # Leaf b's parents are 2x leaf a's, so with one shared coefficient b - 2a stays at 0.
    np.testing.assert_allclose(b - 2 * a, 0.0, atol=1e-4)


@struct.dataclass
class Recorder(Emitter):
    """Asks for constant genotypes ``value`` and records the fitness sum it is told about."""

    value: float = struct.field(pytree_node=False, default=0.0)

    def init(self, key, archive):
        return jnp.zeros(())

    def ask(self, state, archive, key):
        return jnp.full((self.batch_size, 1), self.value)

    def tell(self, state, archive, genotypes, fitnesses, descriptors, add_result):
        # The slice must be ours: all genotypes equal our value.
        ok = jnp.all(genotypes == self.value) & (genotypes.shape[0] == self.batch_size)
        return jnp.where(ok, state + fitnesses.sum() + add_result.cell.sum(), jnp.nan)


def test_composite_splits_batch_and_tells_each_its_slice():
    composite = CompositeEmitter.create(Recorder(batch_size=2, value=1.0), Recorder(batch_size=3, value=2.0))
    assert composite.batch_size == 5
    archive = GridArchive.create(jnp.zeros(1), 4, (0.0,), (1.0,))
    state = composite.init(jax.random.key(0), archive)
    genotypes = composite.ask(state, archive, jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(genotypes)[:, 0], [1, 1, 2, 2, 2])
    fitnesses = jnp.asarray([1.0, 2.0, 10.0, 20.0, 30.0])
    archive, result = archive.add(genotypes, jnp.full((5, 1), 0.9), fitnesses)
    state = composite.tell(state, archive, genotypes, fitnesses, jnp.zeros((5, 1)), result)
    assert float(state[0]) == 3.0 + 6.0 and float(state[1]) == 60.0 + 9.0
    with pytest.raises(ValueError):
        CompositeEmitter.create()


def test_emitter_configuration_errors():
    with pytest.raises(ValueError, match="sigma must be positive"):
        GaussianEmitter(sigma=0.0)
    with pytest.raises(ValueError, match="line_sigma must be positive"):
        IsoLineEmitter(line_sigma=-1.0)
