"""Neuroevolution tasks on Brax: ``hopper_uni``, ``walker2d_uni``, ``halfcheetah_uni``, ``ant_uni``,
``ant_omni``, ``humanoid_omni``.

Definitions (QDax 0.5's ``qdax.tasks.brax.v2``, so results compare; Brax 0.14 environments):

- ``*_uni`` (Cully et al. 2015 "Robots that can adapt like animals"; QDax's ``FeetContactWrapper`` and
  ``get_feet_contact_proportion``): descriptor = for each foot, the fraction of the valid steps ``t`` at
  which that foot link touches anything (a contact with penetration ``dist <= 0`` in state ``s_t``), one
  dimension per foot, in ``[0, 1]``; fitness = the environment's reward (forward velocity + healthy
  reward - control cost, Brax's definition for each robot) summed over the valid steps.
  Feet: hopper ``foot``; walker2d ``foot``, ``foot_left``; halfcheetah ``bfoot``, ``ffoot``; ant the four
  lower-leg links (unnamed in Brax 0.14's ``ant.xml``: link indices 2, 4, 6, 8; QDax 0.5 looks them up
  by the old names ``"$ Body 4"`` etc., which no longer exist, so its ``ant_uni`` finds no foot on
  Brax 0.14).
- ``*_omni`` (QDax's ``XYPositionWrapper``, ``NoForwardRewardWrapper`` and ``get_final_xy_position``):
  descriptor = x-y position of the torso in the state of the last valid step, clipped to
  ``[-30, 30]^2`` (metres); fitness = the reward minus its forward term (``reward_forward`` for ant,
  ``reward_linvel`` for humanoid), i.e. survival reward - control cost (- contact cost for ant, zero with
  Brax's default ``use_contact_forces=False``), summed over the valid steps.

Episodes start from one fixed state (``env.reset`` with ``reset_seed``, QDax's ``deterministic=True``);
``stochastic_reset=True`` resets every candidate with its own key drawn from ``evaluate``'s key instead. An
episode ends after ``episode_length`` steps or when the environment reports ``done`` (the robot fell);
nothing after that counts (see :mod:`.rollout`).

What is reproducible:

- By default (``batch_invariant=False``) the population is rolled out in lock step (``vmap``, the fast
  way). A whole run is reproducible from its seed and config (same software and hardware), but one elite
  re-evaluated in another batch (another batch size, another shard size over devices, or alone, as
  ``qd replay`` does) is not: the vectorised kernels round differently for each batch shape, and float32
  locomotion is chaotic, so ``1e-7`` differences grow into another gait (an ``ant_uni`` policy scored 30.3
  in a batch of 8 and 4.8 alone, same key; see :mod:`qd.tasks.brax.replay`).
- With ``batch_invariant=True`` the candidates are rolled out one after the other (``lax.map`` of the
  single-episode rollout, :meth:`BraxTask.episode_stats`), so a candidate's score (and descriptor) is
  bitwise the same in any batch, any shard size, alone, and in ``qd replay`` (which computes its return with
  the same function), for the same start state (with ``stochastic_reset`` the start depends on the
  candidate's key, i.e. on its place in the batch). Measured cost (``benchmarks/brax_batch_invariance.py``,
  hopper_uni, 300 steps, MLP (64, 64), ``evaluate`` jitted, 2-core CPU shared with other work, jax 0.10,
  brax 0.14.2): 1.65x (batch 8), 1.62x (64), 2.17x (256) the time of the default (an earlier run, under
  other load: 1.7x, 2.1x, 3.1x); the cost grows with the batch. On a GPU the cost is far larger (not
  measured): the batch is the parallelism there, and one episode at a time leaves most of it idle.

QD-score offset: ``qd_offset = -reward_offset * episode_length``, with QDax's per-step offsets (hopper 0.9,
walker2d 1.413, halfcheetah 9.231, ant_uni 3.24, ant_omni 3.0, humanoid_omni 0.0). For the omni tasks
they are true lower bounds of the per-step fitness term; for the uni tasks the forward-velocity term is
unbounded below in principle and QDax determined them experimentally, so a fitness can (rarely) fall
below the offset.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.tasks.base import Evaluation
from qd.tasks.brax import env as env_lib
from qd.tasks.brax.policy import MLPPolicy, check_policy_config, init_policies
from qd.tasks.brax.rollout import RolloutStats, batched_rollout, rollout, sample_times, trajectory
from qd.xla_options import fast_compile_options

# Default physics backend, measured with ``benchmarks/brax_backends.py`` (walker2d_uni, batch 128,
# episode 100, MLP (64, 64), our rollout, 2-core CPU shared with other work, jax 0.10.2, brax 0.14.2):
#   spring 22.6k env steps/s (compile 46 s), positional 5.0k (52 s), generalized 4.6k (39 s), mjx 2.4k (49 s).
DEFAULT_BACKEND = "spring"


@dataclasses.dataclass(frozen=True)
class TaskDefinition:
    """Static description of a named task (see the module docstring for the definitions).

    Attributes:
        base_env: Brax environment name.
        descriptor: ``"feet_contact"`` or ``"final_xy"``.
        links: foot link names (``feet_contact``) or the torso's name (``final_xy``).
        link_indices: link indices used instead of names when the links are unnamed (ant's feet).
        minus_metric: reward metric subtracted from the reward (omni: the forward term).
        reward_offset: QDax's per-step fitness offset (``qd_offset = -reward_offset * episode_length``).
        xy_bounds: descriptor bounds of ``final_xy`` tasks.
    """

    base_env: str
    descriptor: str
    links: Tuple[str, ...] = ()
    link_indices: Tuple[int, ...] = ()
    minus_metric: Optional[str] = None
    reward_offset: float = 0.0
    xy_bounds: Tuple[float, float] = (-30.0, 30.0)


DEFINITIONS: Dict[str, TaskDefinition] = {
    "hopper_uni": TaskDefinition("hopper", "feet_contact", ("foot",), reward_offset=0.9),
    "walker2d_uni": TaskDefinition("walker2d", "feet_contact", ("foot", "foot_left"), reward_offset=1.413),
    "halfcheetah_uni": TaskDefinition("halfcheetah", "feet_contact", ("bfoot", "ffoot"), reward_offset=9.231),
    "ant_uni": TaskDefinition("ant", "feet_contact", link_indices=(2, 4, 6, 8), reward_offset=3.24),
    "ant_omni": TaskDefinition("ant", "final_xy", ("torso",), minus_metric="reward_forward", reward_offset=3.0),
    "humanoid_omni": TaskDefinition(
        "humanoid", "final_xy", ("torso",), minus_metric="reward_linvel", reward_offset=0.0
    ),
}

TASK_NAMES = tuple(DEFINITIONS)


@struct.dataclass
class BraxTask:
    """A Brax neuroevolution task following :class:`qd.tasks.base.Task`. Build it with :func:`make_task`.

    Genotypes are :class:`~qd.tasks.brax.policy.MLPPolicy` parameter pytrees with a leading axis ``B``.

    Attributes (all static):
        name: task name (a key of :data:`DEFINITIONS`).
        env: the environment (follows :class:`~qd.tasks.brax.env.Environment`).
        policy: the flax policy module.
        episode_length: ``T``, maximum steps per episode.
        descriptor_kind: ``"feet_contact"`` (reduced by mean) or ``"final_xy"`` (last valid state).
        descriptor_links: link indices the descriptor reads.
        minus_metric: reward metric subtracted from the reward, or None.
        reward_offset: per-step fitness offset (QD-score).
        xy_bounds: ``(low, high)`` clip of ``final_xy`` descriptors.
        reset_seed: seed of the fixed initial state.
        stochastic_reset: reset each candidate with its own key instead.
        batch_invariant: roll candidates out one after the other, so scores do not depend on the batch
            (module docstring: what it guarantees and costs).
        backend: Brax physics backend name (informational; the env was built with it).
        trajectory_samples: ``S``; when positive, ``evaluate`` adds ``extras["trajectory"]``, ``(B, S, 3)
            float32``: the torso's (root body, link 0) world x, y, z in metres at the ``S`` steps of
            :func:`~qd.tasks.brax.rollout.sample_times` (``ceil(linspace(0, T - 1, S + 1)[1:])``, read from
            the state ``s_t`` the action is taken in, as the descriptors: with ``S = 1`` the state the
            ``final_xy`` descriptor reads); an episode that ended earlier repeats its last valid state. Only an
            ``(S, 3)`` buffer per candidate is carried by the rollout; 0 (the default): no extras, the same
            program as without the option.
    """

    name: str = struct.field(pytree_node=False)
    env: Any = struct.field(pytree_node=False)
    policy: MLPPolicy = struct.field(pytree_node=False)
    episode_length: int = struct.field(pytree_node=False)
    descriptor_kind: str = struct.field(pytree_node=False)
    descriptor_links: Tuple[int, ...] = struct.field(pytree_node=False)
    minus_metric: Optional[str] = struct.field(pytree_node=False, default=None)
    reward_offset: float = struct.field(pytree_node=False, default=0.0)
    xy_bounds: Tuple[float, float] = struct.field(pytree_node=False, default=(-30.0, 30.0))
    reset_seed: int = struct.field(pytree_node=False, default=0)
    stochastic_reset: bool = struct.field(pytree_node=False, default=False)
    backend: str = struct.field(pytree_node=False, default=DEFAULT_BACKEND)
    batch_invariant: bool = struct.field(pytree_node=False, default=False)
    trajectory_samples: int = struct.field(pytree_node=False, default=0)

    def __post_init__(self):
        s = self.trajectory_samples
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"trajectory_samples must be a non-negative integer; got {s!r}")

    def with_trajectory_samples(self, samples: int) -> "BraxTask":
        """A copy of this task whose ``evaluate`` records ``samples`` torso positions per episode (0: none).

        Raises:
            ValueError: ``samples`` is not a non-negative integer.
        """
        return self.replace(trajectory_samples=samples)

    # ------------------------------------------------------------------------------------------ #
    @property
    def descriptor_dim(self) -> int:
        """``d``: number of feet (uni) or 2 (omni)."""
        return len(self.descriptor_links) if self.descriptor_kind == "feet_contact" else 2

    @property
    def descriptor_bounds(self) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        """``([0]*F, [1]*F)`` for feet contact, ``((-30, -30), (30, 30))`` (metres) for final x-y."""
        if self.descriptor_kind == "feet_contact":
            return (0.0,) * self.descriptor_dim, (1.0,) * self.descriptor_dim
        lo, hi = self.xy_bounds
        return (lo, lo), (hi, hi)

    @property
    def descriptor_names(self) -> Tuple[str, ...]:
        """Axis labels, one per descriptor dimension: ``"<foot> contact fraction"`` for each foot (uni; the
        foot link's name in Brax's model; ant's unnamed lower legs by the leg bodies of ``ant.xml``:
        ``front_left_leg``, ``front_right_leg``, ``back_leg``, ``right_back_leg``), ``("final torso x (m)",
        "final torso y (m)")`` (omni)."""
        if self.descriptor_kind == "final_xy":
            return ("final torso x (m)", "final torso y (m)")
        feet = {
            "hopper_uni": ("foot",),
            "walker2d_uni": ("foot", "foot_left"),
            "halfcheetah_uni": ("back foot (bfoot)", "front foot (ffoot)"),
            "ant_uni": ("front_left_leg foot", "front_right_leg foot", "back_leg foot", "right_back_leg foot"),
        }.get(self.name, tuple(f"foot {i + 1}" for i in range(self.descriptor_dim)))
        return tuple(f"{foot} contact fraction" for foot in feet)

    @property
    def qd_offset(self) -> float:
        """``-reward_offset * episode_length`` (see the module docstring)."""
        return -float(self.reward_offset) * self.episode_length

    @property
    def compiler_options(self):
        """XLA options for programs that roll this task out (:func:`qd.xla_options.fast_compile_options`)."""
        return fast_compile_options()

    @property
    def genotype_bounds(self) -> None:
        """Policy parameters are unbounded (emitters do not clip)."""
        return None

    @functools.cached_property
    def observation_size(self) -> int:
        """``O``, the observation length. Read from shapes, once per task (tracing ``reset`` takes 0.5-1 s):
        Brax's own ``observation_size`` runs ``reset`` eagerly, op by op (about 15 s and 0.5 GB of compiled
        snippets for walker2d on a 2-core CPU)."""
        return int(jax.eval_shape(self.env.reset, jax.random.PRNGKey(0)).obs.shape[-1])

    @property
    def action_size(self) -> int:
        return int(self.env.action_size)

    # ------------------------------------------------------------------------------------------ #
    def step_reward(self, state) -> jax.Array:
        """Per-step fitness term of a state (after the step)."""
        return env_lib.reward_fn(self.minus_metric)(state)

    def state_descriptor(self, state) -> jax.Array:
        """Per-state descriptor signal: ``(F,)`` feet contacts or ``(2,)`` clipped torso x-y."""
        if self.descriptor_kind == "feet_contact":
            return env_lib.feet_contact_fn(self.descriptor_links)(state)
        lo, hi = self.xy_bounds
        return jnp.clip(env_lib.link_xy_fn(self.descriptor_links[0])(state), lo, hi)

    def initial_genotypes(self, key: jax.Array, n: int) -> Any:
        """``n`` freshly initialised policies (pytree, leading axis ``n``), via ``vmap`` of ``init``.

        Raises:
            ValueError: ``n < 1``.
        """
        if int(n) < 1:
            raise ValueError(f"n must be a positive integer; got {n}")
        return init_policies(self.policy, key, int(n), self.observation_size)

    def genotype_template(self) -> Any:
        """Shapes/dtypes of one genotype (``jax.ShapeDtypeStruct`` pytree; nothing is computed)."""
        shapes = jax.eval_shape(lambda k: self.initial_genotypes(k, 1), jax.random.PRNGKey(0))
        return jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape[1:], s.dtype), shapes)

    def init_state(self, key: Optional[jax.Array] = None):
        """The fixed initial state (or, given ``key``, the one ``env.reset(key)`` draws)."""
        if key is None:
            key = jax.random.PRNGKey(self.reset_seed)
        return self.env.reset(key)

    def _check(self, genotypes) -> int:
        template = self.genotype_template()
        t_leaves, t_def = jax.tree_util.tree_flatten(template)
        leaves, treedef = jax.tree_util.tree_flatten(genotypes)
        if treedef != t_def:
            raise ValueError(
                f"{self.name}: genotypes must be MLPPolicy parameter pytrees {t_def}; got structure {treedef}"
            )
        batch = None
        for leaf, t in zip(leaves, t_leaves):
            shape = tuple(getattr(leaf, "shape", ()))
            if len(shape) != len(t.shape) + 1 or shape[1:] != t.shape:
                raise ValueError(
                    f"{self.name}: genotype leaf of shape {shape} does not match (batch,) + {t.shape}"
                )
            if batch is None:
                batch = shape[0]
            elif shape[0] != batch:
                raise ValueError(f"{self.name}: genotype leaves disagree on the batch size ({batch} vs {shape[0]})")
        return batch

    @property
    def _reduction(self) -> str:
        return "mean" if self.descriptor_kind == "feet_contact" else "last"

    def _sampling(self) -> Dict[str, Any]:
        """The rollout's sample arguments (none when ``trajectory_samples`` is 0)."""
        if not self.trajectory_samples:
            return {}
        return dict(sample_fn=torso_xyz, sample_times=sample_times(self.episode_length, self.trajectory_samples))

    def episode_stats(self, genotype: Any, key: Optional[jax.Array] = None) -> RolloutStats:
        """One policy's episode alone (no batch axis on ``genotype``): fitness ``()``, descriptor ``(d,)``,
        steps ``()``. The start is the fixed state, or ``env.reset(key)`` with ``stochastic_reset``.

        This is the function that ``batch_invariant`` evaluation maps over the candidates and that
        :func:`qd.tasks.brax.replay.replay_episode` scores its episode with, so with ``batch_invariant`` a
        replayed return equals the archived fitness bitwise.
        """
        init = self.init_state(key if self.stochastic_reset else None)
        return rollout(
            self.env,
            self.policy.apply,
            genotype,
            init,
            self.episode_length,
            self.step_reward,
            self.state_descriptor,
            reduction=self._reduction,
            **self._sampling(),
        )

    def rollout_stats(self, genotypes: Any, key: jax.Array) -> RolloutStats:
        """Fitness ``(B,)``, descriptor ``(B, d)`` and valid step count ``(B,) int32`` of each genotype.

        Default: all ``B`` episodes in lock step (:func:`~qd.tasks.brax.rollout.batched_rollout`, ``vmap``
        over the population). With ``batch_invariant``: :meth:`episode_stats` of each candidate, one after
        the other (``lax.map``), so that no candidate's result depends on ``B`` or on the others; with
        ``stochastic_reset`` candidate ``i`` then starts from ``env.reset(jax.random.split(key, B)[i])``, as
        in the default mode.

        Raises:
            ValueError: genotypes that are not a batch of this task's policy parameters (checked on
                shapes, before anything is traced further).
        """
        batch = self._check(genotypes)
        if self.batch_invariant:
            keys = jax.random.split(key, batch) if self.stochastic_reset else None
            return jax.lax.map(lambda x: self.episode_stats(*x), (genotypes, keys))
        if self.stochastic_reset:
            init = jax.vmap(self.env.reset)(jax.random.split(key, batch))
        else:
            init = self.init_state()
        return batched_rollout(
            self.env,
            self.policy.apply,
            genotypes,
            init,
            self.episode_length,
            self.step_reward,
            self.state_descriptor,
            reduction=self._reduction,
            batched_init=self.stochastic_reset,
            **self._sampling(),
        )

    def evaluate(self, genotypes: Any, key: jax.Array) -> Evaluation:
        """Score ``B`` policies: fitness ``(B,) float32``, descriptor ``(B, d) float32``; no extras, or with
        ``trajectory_samples = S > 0`` ``extras = {"trajectory": (B, S, 3) float32}`` (torso x, y, z).

        Pure and jittable; deterministic for a given ``key`` and batch (and independent of the key unless
        ``stochastic_reset``). A whole run is reproducible. By default a candidate's score depends on the
        batch it is evaluated in: the vectorised rollout rounds differently for other batch (or shard)
        sizes, and locomotion is chaotic in float32, so the same policy can score very differently alone
        (:mod:`qd.tasks.brax.replay`). With ``batch_invariant`` it does not (bitwise, also against
        ``qd replay``), at 1.6-3x the CPU time and far more on a GPU (module docstring).

        Raises:
            ValueError: see :meth:`rollout_stats`.
        """
        stats = self.rollout_stats(genotypes, key)
        if stats.samples is not None:
            return Evaluation(fitnesses=stats.fitness, descriptors=stats.descriptor, extras={"trajectory": stats.samples})
        return Evaluation(fitnesses=stats.fitness, descriptors=stats.descriptor)

    def episode(self, genotype: Any, key: Optional[jax.Array] = None):
        """Every state of one policy's episode (no leading batch axis on ``genotype``): for replay.

        Returns:
            ``(states, steps)``: stacked states ``s_0 .. s_T`` (leading axis ``T + 1``) and the number of
            valid steps; the episode to show is ``s_0 .. s_steps``.
        """
        init = self.init_state(key if self.stochastic_reset else None)
        return trajectory(self.env, self.policy.apply, genotype, init, self.episode_length)


def make_task(
    name: str,
    episode_length: int = 1000,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "relu",
    backend: str = DEFAULT_BACKEND,
    reset_seed: int = 0,
    stochastic_reset: bool = False,
    xy_bounds: Optional[Tuple[float, float]] = None,
    env_kwargs: Optional[Dict[str, Any]] = None,
    batch_invariant: bool = False,
    trajectory_samples: int = 0,
) -> BraxTask:
    """Build a named Brax task. Everything is checked here, on the host, before anything compiles.

    Args:
        name: one of :data:`TASK_NAMES`.
        episode_length: ``T`` (steps; QDax's papers use 250 or 1000).
        hidden_sizes: hidden layer widths of the MLP policy.
        activation: hidden activation (``relu``, QDax's default, or ``tanh``, ``elu``, ``swish``).
        backend: Brax physics backend (:data:`~qd.tasks.brax.env.BACKENDS`; default :data:`DEFAULT_BACKEND`).
        reset_seed: seed of the fixed initial state.
        stochastic_reset: draw each candidate's initial state from ``evaluate``'s key.
        xy_bounds: ``(low, high)`` of the omni tasks' descriptor box (default ``(-30, 30)``).
        env_kwargs: extra constructor options of the Brax environment (e.g. ``healthy_z_range``).
        batch_invariant: evaluate candidates one after the other, so that a score does not depend on the
            batch (or shard) it is computed in and ``qd replay`` reproduces it bitwise; costs 1.6-3x
            the CPU time, far more on a GPU (module docstring). On the command line:
            ``--task-option batch_invariant=true``.
        trajectory_samples: ``S``, torso positions recorded per episode into ``extras["trajectory"]``
            (:class:`BraxTask`; e.g. for AURORA); 0 (the default): none. ``--task-option trajectory_samples=5``.

    Raises:
        ValueError: unknown name or backend, non-positive episode length, bad policy options or bounds,
            ``batch_invariant`` not a bool, ``trajectory_samples`` not a non-negative integer.
    """
    if name not in DEFINITIONS:
        raise ValueError(f"unknown brax task {name!r}; accepted: {', '.join(TASK_NAMES)}")
    if isinstance(episode_length, bool) or not isinstance(episode_length, int) or episode_length < 1:
        raise ValueError(f"episode_length must be a positive integer; got {episode_length!r}")
    env_lib.check_backend(backend)
    if isinstance(trajectory_samples, (bool, np.bool_)) or not isinstance(trajectory_samples, (int, np.integer)) or trajectory_samples < 0:
        raise ValueError(f"trajectory_samples must be a non-negative integer; got {trajectory_samples!r}")
    if not isinstance(batch_invariant, (bool, np.bool_)):
        raise ValueError(f"batch_invariant must be true or false; got {batch_invariant!r}")
    hidden = check_policy_config(hidden_sizes, activation)
    definition = DEFINITIONS[name]
    if xy_bounds is None:
        xy_bounds = definition.xy_bounds
    xy_bounds = tuple(float(v) for v in xy_bounds)
    if len(xy_bounds) != 2 or not xy_bounds[0] < xy_bounds[1]:
        raise ValueError(f"xy_bounds must be (low, high) with low < high; got {xy_bounds!r}")
    env = env_lib.make_brax_env(
        definition.base_env, backend, contacts=definition.descriptor == "feet_contact", **(env_kwargs or {})
    )
    links = definition.link_indices or tuple(env_lib.link_indices(env, definition.links))
    return BraxTask(
        name=name,
        env=env,
        policy=MLPPolicy(action_size=int(env.action_size), hidden_sizes=hidden, activation=activation),
        episode_length=episode_length,
        descriptor_kind=definition.descriptor,
        descriptor_links=tuple(int(i) for i in links),
        minus_metric=definition.minus_metric,
        reward_offset=definition.reward_offset,
        xy_bounds=xy_bounds,
        reset_seed=int(reset_seed),
        stochastic_reset=bool(stochastic_reset),
        backend=backend,
        batch_invariant=bool(batch_invariant),
        trajectory_samples=int(trajectory_samples),
    )


def torso_xyz(state) -> jax.Array:
    """``(3,) float32``: world x, y, z (metres) of the root body (link 0, ``torso`` in every task here)."""
    return state.pipeline_state.x.pos[0, :3].astype(jnp.float32)
