"""The environment protocol our rollouts use, and the Brax adapter.

Rollouts only call ``env.reset(key)`` and ``env.step(state, action)`` on state pytrees that have ``obs``,
``reward`` and ``done`` fields (as ``brax.envs.Env`` / ``brax.envs.State``), plus two task-supplied
functions of a state: the per-step fitness term and the per-state descriptor signal. Anything with that
shape drops in: Brax's ``PipelineEnv`` on any backend, MJX-based environments (MuJoCo Playground's
``MjxEnv`` has the same ``reset``/``step``/``obs``/``reward``/``done``), or a hand-written JAX environment
(the tests use one).

Brax 0.14 says its own pipelines are in maintenance mode; nothing outside this folder imports Brax, and
nothing in :mod:`qd.tasks.brax.rollout` depends on Brax.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Protocol, Sequence

import jax
import jax.numpy as jnp

State = Any
StateFn = Callable[[State], jax.Array]

# Physics backends of ``brax.envs`` (``PipelineEnv``); see ``qd.tasks.brax.tasks.DEFAULT_BACKEND`` for the
# measured speeds behind the default.
BACKENDS = ("spring", "positional", "generalized", "mjx")


def check_backend(backend: str) -> None:
    """Raises ``ValueError`` naming the accepted values unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; accepted: {', '.join(BACKENDS)}")


class Environment(Protocol):
    """What a rollout needs from an environment (``brax.envs.Env`` satisfies it).

    Attributes:
        observation_size: ``O``, length of ``state.obs``.
        action_size: ``A``, length of an action; actions are in ``[-1, 1]``.
    """

    observation_size: int
    action_size: int

    def reset(self, key: jax.Array) -> State:
        """Initial state (a pytree with ``obs (O,)``, ``reward ()``, ``done ()``); pure and jittable."""
        ...

    def step(self, state: State, action: jax.Array) -> State:
        """Next state after ``action (A,)``; pure and jittable. ``done`` is 1.0 once the episode ended."""
        ...


def _import_brax(module: str):
    """``importlib.import_module(module)``, a Brax module. The first import of Brax imports
    ``mujoco.mjx.warp``, which prints "Failed to import warp: ..." and "Failed to import mujoco_warp: ..." to
    stdout when the optional ``warp`` package is absent (CPU installs); what that import prints goes to the
    ``qd`` logger at debug level instead."""
    import contextlib
    import importlib
    import io
    import logging
    import sys

    if module in sys.modules:
        return sys.modules[module]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        imported = importlib.import_module(module)
    for line in printed.getvalue().splitlines():
        logging.getLogger("qd").debug("import %s printed: %s", module, line)
    return imported


def make_brax_env(base_env: str, backend: str, contacts: bool, **env_kwargs: Any):
    """A ``brax.envs`` environment (no wrappers: no episode limit, no auto-reset).

    Args:
        base_env: ``"hopper"``, ``"walker2d"``, ``"halfcheetah"``, ``"ant"``, ``"humanoid"``, ...
        backend: one of :data:`BACKENDS`.
        contacts: keep the contact set in the pipeline state (Brax's ``debug=True``), which the feet-contact
            descriptors read.
        env_kwargs: passed to the environment's constructor (e.g. ``healthy_z_range``).

    Raises:
        ValueError: unknown environment or backend.
    """
    check_backend(backend)
    envs = _import_brax("brax.envs")._envs  # name -> class; the public get_environment does the same lookup
    if base_env not in envs:
        raise ValueError(f"unknown brax environment {base_env!r}; accepted: {', '.join(sorted(envs))}")
    return envs[base_env](backend=backend, debug=contacts, **env_kwargs)


def link_indices(env: Any, names: Sequence[str]) -> list:
    """Indices of the named links (bodies) in a Brax system, in the order of ``names``.

    Raises:
        ValueError: a name is not a link of the system.
    """
    links = list(env.sys.link_names)
    missing = [n for n in names if n not in links]
    if missing:
        raise ValueError(f"links {missing} not in the system; links: {links}")
    return [links.index(n) for n in names]


def feet_contact_fn(feet: Sequence[int]) -> StateFn:
    """``state -> (F,) float32``: 1.0 for each foot link in contact (penetration ``dist <= 0``) with anything.

    Reads ``state.pipeline_state.contact`` (``link_idx[1]`` is the second link of each contact pair, as
    Brax orders them with the floor first), so the environment must keep contacts (``contacts=True``).
    Same definition as QDax 0.5's ``FeetContactWrapper``.
    """
    feet = jnp.asarray(feet, jnp.int32)

    def fn(state):
        contact = state.pipeline_state.contact
        touching = (contact.link_idx[1][None, :] == feet[:, None]) & (contact.dist[None, :] <= 0.0)
        return jnp.any(touching, axis=1).astype(jnp.float32)

    return fn


def link_xy_fn(link: int) -> StateFn:
    """``state -> (2,) float32``: world x-y position of link ``link`` (its frame origin)."""

    def fn(state):
        return state.pipeline_state.x.pos[link, :2]

    return fn


def reward_fn(minus_metric: str = None) -> StateFn:
    """``state -> () float32``: ``state.reward``, minus ``state.metrics[minus_metric]`` if given."""

    def fn(state):
        if minus_metric is None:
            return state.reward
        return state.reward - state.metrics[minus_metric]

    return fn


def load_mjcf_system(path: str, backend: str, replacements: Optional[Dict[str, Any]] = None):
    """A Brax ``System`` from an MJCF file (``brax.io.mjcf.load``), for custom environments.

    Args:
        path: the MJCF (MuJoCo XML) file.
        backend: one of :data:`BACKENDS` (checked here, before anything is loaded).
        replacements: ``System.tree_replace`` updates, e.g. ``{"opt.timestep": 0.005}``.

    Raises:
        ValueError: unknown backend.
    """
    check_backend(backend)
    mjcf = _import_brax("brax.io.mjcf")

    system = mjcf.load(path)
    return system.tree_replace(replacements) if replacements else system


def pipeline_module(backend: str):
    """Brax's physics pipeline of ``backend`` (a module with ``init(sys, q, qd)`` and ``step(sys, state, act)``).

    Raises:
        ValueError: unknown backend.
    """
    check_backend(backend)
    import importlib

    return importlib.import_module(f"brax.{backend}.pipeline")
