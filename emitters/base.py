"""The emitter interface: pure ``init`` / ``ask`` / ``tell`` on an immutable state (evosax-style).

An emitter proposes a batch of ``batch_size`` genotypes from an archive, and learns from what the archive
did with them through :class:`qd.AddResult`. Emitters see archives only through their public interface
(``sample``, ``best``, the stored arrays and queries): never an archive's internals.

Emitters are frozen dataclasses whose fields are static configuration, so they can be closed over in
jitted code; everything that changes lives in the state they return.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd import AddResult, Archive
from qd import options as checks  # the configuration checks (no algorithm imported)

Genotype = Any


@struct.dataclass
class Emitter:
    """Base class. Subclasses set ``batch_size`` and implement ``ask`` (and ``init``/``tell`` if stateful).

    Configuration is checked at construction (subclasses' ``__post_init__`` call this one first).

    Attributes:
        batch_size: static number ``B`` of genotypes produced by each ``ask`` (a positive integer).
        clip: static ``(low, high)`` bounds applied to every produced gene, or None; ``low < high``, either
            may be infinite (``(0.0, inf)``); stored as a tuple of two floats.

    Raises:
        ValueError: ``batch_size`` is not a positive integer; ``clip`` is not None nor a pair of numbers
            (not NaN) with ``low < high`` (``clip=1.0``, ``clip=(1, 0)``).
    """

    batch_size: int = struct.field(pytree_node=False, default=64)
    clip: Optional[Tuple[float, float]] = struct.field(pytree_node=False, default=None)

    def __post_init__(self):
        name = type(self).__name__
        # Frozen dataclass: normalise in place (a hashable tuple of floats, a plain int).
        object.__setattr__(self, "batch_size", checks.check_positive_int(f"{name}: batch_size", self.batch_size))
        object.__setattr__(self, "clip", checks.check_clip(f"{name}: clip", self.clip))

    def init(self, key: jax.Array, archive: Archive) -> Any:
        """The initial emitter state (None for stateless emitters)."""
        return None

    def ask(self, state: Any, archive: Archive, key: jax.Array) -> Genotype:
        """``batch_size`` new genotypes (pytree, leading axis ``B``)."""
        raise NotImplementedError

    def tell(
        self,
        state: Any,
        archive: Archive,
        genotypes: Genotype,
        fitnesses: jax.Array,
        descriptors: jax.Array,
        add_result: AddResult,
    ) -> Any:
        """Update the state from the scores ``(B,)``, ``(B, d)`` and the archive's ``AddResult``."""
        return state

    def _clip(self, genotypes: Genotype) -> Genotype:
        if self.clip is None:
            return genotypes
        low, high = self.clip
        return jax.tree_util.tree_map(lambda g: jnp.clip(g, low, high), genotypes)


def check_members(owner: str, members: Any, empty_message: str) -> Tuple["Emitter", ...]:
    """The members of a multi-emitter (composite, scheduler) as a tuple, checked on the host.

    Args:
        owner: the class name, for the messages.
        members: a tuple or list of emitters.
        empty_message: the message when there is no member.

    Raises:
        ValueError: not a tuple/list, no member, a member that is not an emitter instance (with
            ``batch_size``, ``init``, ``ask``, ``tell``), or a member whose ``batch_size`` is not a positive integer.
    """
    if not isinstance(members, (list, tuple)):
        raise ValueError(f"{owner}: emitters must be a tuple of emitters; got {members!r}")
    members = tuple(members)
    if not members:
        raise ValueError(empty_message)
    for i, e in enumerate(members):
        if isinstance(e, type) or not all(hasattr(e, a) for a in ("batch_size", "init", "ask", "tell")):
            raise ValueError(
                f"{owner}: member {i} ({e!r}) is not an emitter (an instance with batch_size, init, ask and tell)"
            )
        checks.check_positive_int(f"{owner}: member {i} ({type(e).__name__}) batch_size", e.batch_size)
    return members


def check_positive(name: str, value: float) -> float:
    """``value`` as a float; raises ``ValueError`` unless it is a positive, finite number (host-side check)."""
    return checks.check_positive(name, value)
