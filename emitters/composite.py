"""Split one batch between several emitters."""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from emitters.base import Emitter, check_members


@struct.dataclass
class CompositeEmitter(Emitter):
    """Runs several emitters side by side; its batch is their batches concatenated in order.

    ``tell`` gives each emitter back exactly the slice of the batch it produced (and the matching slice of
    the ``AddResult``). Build it with :meth:`create`.

    Attributes:
        emitters: static tuple of emitters (each with ``batch_size``, ``init``, ``ask`` and ``tell``).
        batch_size: the sum of the members' batch sizes.

    Raises:
        ValueError: no member; a member that is not an emitter or whose ``batch_size`` is not a positive
            integer; ``batch_size`` given and different from the members' sum; ``clip`` given (each member
            clips its own proposals).
    """

    emitters: Tuple[Emitter, ...] = struct.field(pytree_node=False, default=())

    def __post_init__(self):
        super().__post_init__()
        members = check_members("CompositeEmitter", self.emitters, "CompositeEmitter needs at least one emitter")
        total = sum(int(e.batch_size) for e in members)
        if self.batch_size != total:
            raise ValueError(
                f"CompositeEmitter: batch_size={self.batch_size} but the members' batch sizes sum to {total}; "
                "build it with CompositeEmitter.create(*emitters)"
            )
        if self.clip is not None:
            raise ValueError("CompositeEmitter: clip is not applied to the members' proposals; give each member its clip")
        object.__setattr__(self, "emitters", members)

    @classmethod
    def create(cls, *emitters: Emitter) -> "CompositeEmitter":
        """Compose ``emitters``; ``batch_size`` is the sum of theirs.

        Raises:
            ValueError: if no emitter is given, or a member is not an emitter (see the class).
        """
        if not emitters:
            raise ValueError("CompositeEmitter needs at least one emitter")
        # Members are checked by __post_init__; a bad one must not make the sum fail first.
        sizes = [getattr(e, "batch_size", None) for e in emitters]
        total = sum(int(b) for b in sizes if isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b > 0)
        return cls(batch_size=max(total, 1), emitters=tuple(emitters))

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
