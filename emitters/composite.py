"""Split one batch between several emitters."""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
from flax import struct

from emitters.base import Emitter


@struct.dataclass
class CompositeEmitter(Emitter):
    """Runs several emitters side by side; its batch is their batches concatenated in order.

    ``tell`` gives each emitter back exactly the slice of the batch it produced (and the matching slice of
    the ``AddResult``). Build it with :meth:`create`.

    Attributes:
        emitters: static tuple of emitters.
    """

    emitters: Tuple[Emitter, ...] = struct.field(pytree_node=False, default=())

    @classmethod
    def create(cls, *emitters: Emitter) -> "CompositeEmitter":
        """Compose ``emitters``; ``batch_size`` is the sum of theirs.

        Raises:
            ValueError: if no emitter is given.
        """
        if not emitters:
            raise ValueError("CompositeEmitter needs at least one emitter")
        return cls(batch_size=sum(e.batch_size for e in emitters), emitters=tuple(emitters))

    def _slices(self):
        start = 0
        for e in self.emitters:
            yield e, slice(start, start + e.batch_size)
            start += e.batch_size

    def init(self, key, archive):
        keys = jax.random.split(key, len(self.emitters))
        return tuple(e.init(k, archive) for e, k in zip(self.emitters, keys))

    def ask(self, state, archive, key):
        keys = jax.random.split(key, len(self.emitters))
        parts = [e.ask(s, archive, k) for e, s, k in zip(self.emitters, state, keys)]
        return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0), *parts)

    def tell(self, state, archive, genotypes, fitnesses, descriptors, add_result):
        new_states = []
        for (e, sl), s in zip(self._slices(), state):
            take = lambda x: x[sl]
            new_states.append(
                e.tell(
                    s,
                    archive,
                    jax.tree_util.tree_map(take, genotypes),
                    fitnesses[sl],
                    descriptors[sl],
                    jax.tree_util.tree_map(take, add_result),
                )
            )
        return tuple(new_states)
