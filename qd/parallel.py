"""Evaluating a batch on several devices at once: one shard of the population per device.

On a CPU, XLA runs one program on one device, and a Brax rollout (a long loop of small kernels) keeps
about 1.6 of 2 cores busy. Exposing each core as its own JAX CPU device (:func:`use_cpu_cores`) and
splitting the population over them (:func:`shard_evaluation`) runs the shards concurrently: MAP-Elites
on ``walker2d_uni`` (batch 128) ran 33k environment steps/s on one device and 59k on two, in the same
run of ``benchmarks/brax_throughput.py --compare`` on a 2-core CPU. On a machine with several GPUs the
same wrapper splits the population over the GPUs.

Algorithms take a ``devices`` argument (:class:`PopulationSharding` does the work): use it rather than
wrapping an evaluation yourself, since the algorithm must also place its state on the devices.

Only the evaluation is split. Everything else in an iteration (variation, archive insertion, metrics)
is small and runs replicated on every device, so the archive never has to be gathered or moved. The
cost is memory: each device holds a copy of the state, archive included (on a CPU, ``n`` copies in host
memory: 23 MB each for 1024 cells of 5.6k-parameter policies, but 2.2 GB for 10^5 cells of them; pick
the number of devices accordingly).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from qd.tasks.base import Evaluation

AXIS = "population"

EvaluateFn = Callable[[Any, jax.Array], Evaluation]


def use_cpu_cores(num_devices: Optional[int] = None) -> int:
    """Expose the host's CPU cores as ``num_devices`` JAX CPU devices (``jax_num_cpu_devices``).

    Call it right after importing JAX, before anything runs (building a Brax task does): JAX fixes its
    devices when it first computes. A later call changes nothing (JAX refuses): it warns if the count
    differs and returns the current one. Other code is unaffected: arrays are still placed on the first
    device unless a program is sharded.

    Args:
        num_devices: number of CPU devices; default ``os.cpu_count()``.

    Returns:
        The number of CPU devices JAX will use (or uses).

    Raises:
        ValueError: ``num_devices`` is not a positive integer.
    """
    n = (os.cpu_count() or 1) if num_devices is None else num_devices
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"num_devices must be a positive integer; got {num_devices!r}")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # JAX already computed something: its CPU devices are fixed
        current = len(jax.devices("cpu"))
        if current != n:
            warnings.warn(
                f"use_cpu_cores({n}) came after JAX started computing; JAX keeps its {current} CPU device(s). "
                "Call it right after importing JAX.",
                stacklevel=2,
            )
        return current
    return n


def resolve_devices(devices: Any = "all") -> list:
    """The devices a ``devices`` option names: ``"all"`` (every local device of the default backend),
    a count ``n`` (the first ``n`` of them), or a sequence of ``jax.Device``.

    Raises:
        ValueError: an unknown value, or more devices than there are.
    """
    local = jax.local_devices()
    if isinstance(devices, str):
        if devices != "all":
            raise ValueError(f"devices must be 'all', a positive integer or a list of devices; got {devices!r}")
        return list(local)
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(local):
            raise ValueError(
                f"asked for {devices} devices; this machine has {len(local)} "
                f"({local[0].platform}; on a CPU, qd.parallel.use_cpu_cores() exposes one device per core)"
            )
        return list(local[: int(devices)])
    if isinstance(devices, Sequence) and devices and all(isinstance(d, jax.Device) for d in devices):
        return list(devices)
    raise ValueError(f"devices must be 'all', a positive integer or a list of devices; got {devices!r}")


def _mesh(devices: list) -> Mesh:
    """A one-axis mesh (axis :data:`AXIS`) over ``devices``."""
    return Mesh(np.asarray(devices), (AXIS,))


def shard_evaluation(evaluate: EvaluateFn, devices: Any = "all") -> EvaluateFn:
    """``evaluate(genotypes, key) -> Evaluation`` with the batch split evenly over ``devices``.

    Each of the ``n`` devices evaluates ``ceil(B / n)`` consecutive genotypes (``shard_map`` over a
    one-axis mesh); the fitnesses ``(B,)``, descriptors ``(B, d)`` and extras (leading axis ``B``) come
    back in the original order. A batch that does not divide evenly is padded with copies of its first
    genotype, whose scores are dropped. Shard ``i`` is given ``jax.random.fold_in(key, i)``, so a
    stochastic task's draws differ between shards (and depend on ``n``); a deterministic one gives the
    same scores as ``evaluate`` (up to float rounding of differently sized vectorised kernels).

    Works inside ``jit`` (the enclosing program becomes a multi-device program whose other parts run
    replicated) and outside it. With one device, ``evaluate`` is returned unchanged.

    Args:
        evaluate: a pure, jittable batch evaluation (a task's ``evaluate``).
        devices: see :func:`resolve_devices`.

    Raises:
        ValueError: see :func:`resolve_devices`; the batch's leaves disagree on ``B`` (at trace time).
    """
    devices = resolve_devices(devices)
    n = len(devices)
    if n == 1:
        return evaluate
    mesh = _mesh(devices)

    def per_shard(genotypes, key):
        return evaluate(genotypes, jax.random.fold_in(key, jax.lax.axis_index(AXIS)))

    spec = PartitionSpec(AXIS)
    # check_vma=False: loop carries that start replicated (a rollout's running sums) and become
    # per-shard inside the loop are fine here; the check would reject them.
    sharded = jax.shard_map(per_shard, mesh=mesh, in_specs=(spec, PartitionSpec()), out_specs=spec, check_vma=False)

    def wrapped(genotypes: Any, key: jax.Array) -> Evaluation:
        sizes = {int(leaf.shape[0]) for leaf in jax.tree_util.tree_leaves(genotypes)}
        if len(sizes) != 1:
            raise ValueError(f"genotype leaves disagree on the batch size: {sorted(sizes)}")
        (batch,) = sizes
        pad = -batch % n
        if pad:
            genotypes = jax.tree_util.tree_map(
                lambda x: jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]), genotypes
            )
        evaluation = sharded(genotypes, key)
        if pad:
            evaluation = jax.tree_util.tree_map(lambda x: x[:batch], evaluation)
        return evaluation

    return wrapped


class PopulationSharding:
    """The devices an algorithm spreads its population over: :meth:`shard` splits evaluations,
    :meth:`place` replicates the rest of the state.

    Placing the state matters: a program's inputs decide where it runs, and a state that sits on one
    device would make the first call compile a program that the second call (whose state now sits on
    every device) has to compile again.

    Args:
        devices: None or one device: nothing is split and nothing is moved; else see :func:`resolve_devices`.

    Raises:
        ValueError: see :func:`resolve_devices`.
    """

    def __init__(self, devices: Any = None):
        self.devices = None if devices is None else resolve_devices(devices)
        if self.devices is not None and len(self.devices) == 1:
            self.devices = None
        self._replicated = None
        if self.devices is not None:
            self._replicated = NamedSharding(_mesh(self.devices), PartitionSpec())

    @property
    def num_devices(self) -> int:
        """Number of devices the population is split over (1: not split)."""
        return 1 if self.devices is None else len(self.devices)

    def shard(self, evaluate: EvaluateFn) -> EvaluateFn:
        """:func:`shard_evaluation` over these devices (``evaluate`` itself with one device)."""
        return evaluate if self.devices is None else shard_evaluation(evaluate, self.devices)

    def place(self, tree: Any) -> Any:
        """``tree`` replicated on every device (unchanged with one device; no copy when already there)."""
        return tree if self._replicated is None else jax.device_put(tree, self._replicated)
