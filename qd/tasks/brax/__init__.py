"""Neuroevolution on Brax: MLP policies, streaming rollouts and the QD locomotion tasks.

The only package of the project that imports Brax (lazily: ``import qd.tasks.brax`` is cheap until a task
is built).

- :func:`make_task` builds ``hopper_uni``, ``walker2d_uni``, ``halfcheetah_uni``, ``ant_uni``,
  ``ant_omni``, ``humanoid_omni`` (definitions in :mod:`qd.tasks.brax.tasks`).
- :func:`rollout` / :func:`batched_rollout`: ``lax.scan`` over time, ``vmap`` over policies, done mask.
- :class:`Environment`: the reset/step protocol environments follow (Brax, MJX, hand-written).
- :func:`enable_compilation_cache`: JAX's persistent compilation cache in a user cache folder.
- :func:`replay_html`: an elite's episode as an HTML page (Brax's renderer).
"""

from qd.cache import default_cache_dir, enable_compilation_cache
from qd.tasks.brax.env import BACKENDS, Environment
from qd.tasks.brax.replay import episode_states, replay_html
from qd.tasks.brax.policy import MLPPolicy, init_policies, num_parameters
from qd.tasks.brax.rollout import RolloutStats, batched_rollout, rollout, trajectory
from qd.tasks.brax.tasks import DEFAULT_BACKEND, DEFINITIONS, TASK_NAMES, BraxTask, make_task

__all__ = [
    "BACKENDS",
    "BraxTask",
    "DEFAULT_BACKEND",
    "DEFINITIONS",
    "Environment",
    "MLPPolicy",
    "RolloutStats",
    "TASK_NAMES",
    "batched_rollout",
    "default_cache_dir",
    "enable_compilation_cache",
    "init_policies",
    "make_task",
    "num_parameters",
    "replay_html",
    "episode_states",
    "rollout",
    "trajectory",
]
