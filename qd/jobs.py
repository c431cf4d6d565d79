"""What builders produce and share: :class:`Job` (a configured algorithm), :class:`BuildContext` (what a
builder is given) and helpers on the task (genotype template, descriptor bounds, devices).

Part of the composition layer; imports no concrete component (those are in :mod:`qd.components`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

from qd.options import ConfigError


@dataclasses.dataclass
class Job:
    """A configured algorithm, ready to run.

    Attributes:
        config: the resolved config.
        task: the task object.
        init: ``key -> (state, metrics)``; the state is a pytree (checkpointed as such). ``metrics["iteration"]``
            is 0, or -1 when the initial batch is left for the first scanned iteration to evaluate.
        scan: ``(state, n) -> (state, metrics)``, ``n`` compiled iterations; metrics have shape ``(n,)``.
        archive_of: ``state -> Archive`` (the repertoire to save and plot).
        artifacts: optional ``(state, run_dir) -> None`` writing the algorithm's own files at the end of a
            run, before the run directory's plots are drawn (a learned space's latent projection and
            reconstructions; SERENE's ``reward_archive.npz``).
        descriptor_names: the archive's descriptor axes when they are not the task's (a learned space's
            ``latent 1``, ...), or None.
        driver: the :class:`qd.algorithms.driver.Driver` that ``init`` and ``scan`` run, or None; with
            ``init_args`` it lets several seeds run as one vmapped program (:mod:`qd.bench`).
        init_args: ``key -> tuple``, the arguments of ``driver.init`` for a run key (the setup, then the
            algorithm's key): ``init(key) == driver.init(*init_args(key))``. The config's ``seed`` may enter
            the setup (a CVT archive's centroids, an archive's PRNG key); nothing else of the driver depends
            on it, so jobs built for several seeds share one driver's compiled programs.
        budget: evaluations of a budget-driven run (SERENE): the run is as many chunks as it takes for the
            state's ``num_evaluations`` (an ``int32`` scalar: the state is a
            :class:`qd.algorithms.driver.RunState`) to reach it, and ``iterations`` is not used
            (:func:`qd.runner.run`). None (every other algorithm): ``iterations`` iterations.
    """

    config: Dict[str, Any]
    task: Any
    init: Callable[[Any], Tuple[Any, Dict[str, Any]]]
    scan: Callable[[Any, int], Tuple[Any, Dict[str, Any]]]
    archive_of: Callable[[Any], Any]
    artifacts: Optional[Callable[[Any, str], None]] = None
    descriptor_names: Optional[List[str]] = None
    budget: Optional[int] = None
    driver: Any = None
    init_args: Optional[Callable[[Any], Tuple[Any, ...]]] = None


def driver_job(config: Dict[str, Any], task: Any, driver: Any, init_args: Callable[[Any], Tuple[Any, ...]],
               archive_of: Callable[[Any], Any], **fields: Any) -> Job:
    """The :class:`Job` of a driver: ``init(key) = driver.init(*init_args(key))``, ``scan = driver.scan``;
    ``fields``: the other :class:`Job` attributes (``artifacts``, ``descriptor_names``, ``budget``)."""
    return Job(config=config, task=task, init=lambda key: driver.init(*init_args(key)), scan=driver.scan,
               archive_of=archive_of, driver=driver, init_args=init_args, **fields)


@dataclasses.dataclass
class BuildContext:
    """What a builder is given besides its own configuration.

    Attributes:
        config: the resolved run config (``batch_size``, ``seed``, ``devices``... and every section).
        task: the task object.
        registries: ``{kind: qd.registry.Registry}`` the config was resolved with.
    """

    config: Dict[str, Any]
    task: Any
    registries: Dict[str, Any]

    def component(self, kind: str, section: Dict[str, Any]):
        """``(component, typed config)`` of a resolved section ``{name: ..., option: value, ...}``."""
        component = self.registries[kind].get(section["name"])
        return component, component.config.model_validate({k: v for k, v in section.items() if k != "name"})

    def archive(self) -> Any:
        """The empty archive of the config's ``archive`` section."""
        component, cfg = self.component("archive", self.config["archive"])
        return _checked_build(f"--archive {component.name}", component.build, cfg, self)

    def emitter(self) -> Any:
        """The config's emitters under its scheduler, as one emitter of ``batch_size`` candidates."""
        members: List[Callable[[int], Any]] = []
        for section in self.config["emitter"]:
            component, cfg = self.component("emitter", section)
            members.append(
                lambda b, c=component, g=cfg: _checked_build(f"--emitter {c.name}", c.build, g, self, b)
            )
        component, cfg = self.component("scheduler", self.config["scheduler"])
        return _checked_build(f"--scheduler {component.name}", component.build, cfg, self, members)


def _checked_build(what: str, build: Callable[..., Any], *args: Any) -> Any:
    try:
        return build(*args)
    except ConfigError:
        raise
    except ValueError as e:  # a component's own host-side check: one line naming the component
        raise ConfigError(f"{what}: {' '.join(str(e).split())}") from None


def genotype_template(task: Any) -> Any:
    """One zero genotype with the task's structure (computed abstractly: nothing runs)."""
    import jax
    import jax.numpy as jnp

    shapes = jax.eval_shape(lambda key: task.initial_genotypes(key, 1), jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape[1:], s.dtype), shapes)


def flat_genotype_dim(ctx: BuildContext, what: str, hint: str = "use iso_line or gaussian on policy networks") -> int:
    """``D`` of a task whose genotype is one vector ``(D,)`` (traced: nothing runs).

    Args:
        ctx: the build context (its task and config).
        what: the flag the message names (``"--emitter cma_me_imp"``).
        hint: the message's last clause, what to do instead.

    Raises:
        ConfigError: a genotype that is a pytree of several arrays or not one-dimensional (CMA-ES needs flat
            genotypes: a full covariance over a policy network's parameters does not fit in memory anyway).
    """
    import jax

    key = jax.ShapeDtypeStruct((2,), jax.numpy.uint32)  # a raw PRNG key's shape: traced, nothing runs
    batch = jax.eval_shape(lambda k: ctx.task.initial_genotypes(k, 1), key)
    leaves = jax.tree_util.tree_leaves(batch)
    if len(leaves) != 1 or leaves[0].ndim != 2 or batch is not leaves[0]:
        shapes = ", ".join(str(tuple(leaf.shape[1:])) for leaf in leaves[:4]) + (", ..." if len(leaves) > 4 else "")
        raise ConfigError(
            f"{what} needs a flat genotype (one vector); task {ctx.config['task']!r} has {len(leaves)} "
            f"array(s) of shapes {shapes}; {hint}"
        )
    return int(leaves[0].shape[1])


def genotype_clip(task: Any) -> Optional[Tuple[float, float]]:
    """The task's ``genotype_bounds`` as floats, or None."""
    clip = getattr(task, "genotype_bounds", None)
    return None if clip is None else (float(clip[0]), float(clip[1]))


def descriptor_bounds(lower: Any, upper: Any, task: Any, task_name: str = "") -> Tuple[List[float], List[float]]:
    """``lower``/``upper`` (None: the task's), checked for length against the task's descriptor.

    Raises:
        ConfigError: bounds of the wrong length, or lower >= upper.
    """
    task_lower, task_upper = task.descriptor_bounds
    d = len(task_lower)
    lower = list(lower) if lower is not None else list(task_lower)
    upper = list(upper) if upper is not None else list(task_upper)
    for name, value in (("lower", lower), ("upper", upper)):
        if len(value) != d:
            raise ConfigError(f"--{name}: task {task_name!r} has {d} descriptor dimensions; got {len(value)} values")
    if any(lo >= hi for lo, hi in zip(lower, upper)):
        raise ConfigError(f"--lower/--upper: each lower bound must be below its upper bound; got {lower}, {upper}")
    return lower, upper


def checked_devices(config: Dict[str, Any]) -> Any:
    """The config's ``devices``, checked against this machine's devices.

    Raises:
        ConfigError: more devices than there are.
    """
    from qd.parallel import resolve_devices

    try:
        resolve_devices(config["devices"])
    except ValueError as e:
        raise ConfigError(f"--devices: {e}") from None
    return config["devices"]
