"""AntMaze (SERENE's ``AntObstacles-v0``; Paolo et al., "Sparse Reward Exploration via Novelty Search and
Emitters", GECCO 2021, and STAX, Paolo et al. 2021): the ant of the MuJoCo benchmarks in a 70 m x 70 m walled
arena, rewarded only if its torso ends the episode in one of two distant goal areas.

The model is SERENE's ``ant_obstaclesbig2.xml`` (adapted by its authors from the MLSH code, github.com/openai/mlsh),
converted for Brax into ``data/ant_maze.xml`` (the changes are listed at the top of that file; attribution in
``data/README.md``) and loaded with ``brax.io.mjcf``. Units: metres, seconds, world frame.

- arena: floor centred on ``(5, 5)``; border walls (0.6 m thick, 4 m high) centred on ``x = -30, 40`` and
  ``y = -30, 40``, so the torso stays within ``[-29.7, 39.7]^2``; three inner walls (boxes centred on
  ``(-15, 20)`` half-size ``0.3 x 17``, ``(-3, -15)`` half-size ``13 x 0.3``, ``(10, -15)`` half-size
  ``0.3 x 15``). The torso starts at ``(-25, -25)``, 0.6 m high, at rest;
- the ant: as in the original file, which scales every mass so that the model weighs 25755 kg (a static
  "monster" body included), which leaves a **41.4 kg** ant (torso 14.9 kg) driven by 8 hinge motors of gear 150;
- controller: SERENE's MLP 29 -> 3x10 -> 8 (574 parameters, ``2 sigmoid - 1`` on every layer, one scalar bias
  per layer, genome clipped to ``[-5, 5]``; :mod:`qd.tasks.sparse.common`); its outputs, in ``[-1, 1]``, are
  the motor controls (unscaled, as in SERENE). Observation ``(29,) float32``: the generalised positions
  ``q (15,)`` (free joint: torso x, y, z, quaternion w, x, y, z; then the 8 joint angles in rad) with x and y
  replaced by ``(x - 5) / 70`` and ``(y - 5) / 70``, then the generalised velocities ``qd (14,)``, as the
  original ``_get_obs`` (Brax's ``q`` / ``qd`` conventions);
- time: 0.005 s physics steps, 5 per control step (0.025 s, the original ``frame_skip``); ``num_steps``
  control steps per episode, **3000** by default (the SERENE env pays its reward at ``ts >= 3000``; the STAX
  registry's 1000-step cap is inconsistent with it, see ``sparse_reward_qd.md``). No early termination (the
  original env never ends an episode before ``max_ts``, even when the ant is upside down);
- reward at the **last step only**: goals at ``(35, -25)`` and ``(-25, 35)``, radius 3 m; a final torso
  position at distance ``d <= 3`` from goal ``i`` earns ``(3 - d) / 3`` and ``reward_area = i``, anywhere
  else ``0`` and ``-1`` (:func:`qd.tasks.sparse.common.area_reward`; the goals are 60 m from the start);
- ground truth: the final torso position ``((x - 5) / 70, (y - 5) / 70)``, grid ``[-0.5, 0.5]^2`` (the
  original ``bc``), so :attr:`AntMaze.goal_centres` / :attr:`AntMaze.goal_radii` are in that unit
  (``(30, -30) / 70``, ``(-30, 30) / 70``, radius ``3 / 70``);
- image: a 64x64 top view of the arena computed in JAX (walls black, goals red, the ant blue: a disc of
  radius :data:`ANT_DRAW_RADIUS` around the final torso position) over ``[-30.3, 40.3]^2`` (1.1 m per
  pixel); row 0 is ``y = 40.3`` (north up); ``(64, 64, 3) float32`` in ``[0, 1]``.

Where this departs from the original (MuJoCo through mujoco-py, RK4 integrator):

- physics: Brax's ``spring`` backend by default (:data:`qd.tasks.brax.tasks.DEFAULT_BACKEND`: the
  fastest on CPU; ``positional``, ``generalized`` or ``mjx`` through ``backend``: each runs, only spring is tested),
  with Brax's ant constants for it; so trajectories differ from MuJoCo's, and gaits do not transfer between
  the two. Measured with random genomes (``N(0, 1)``, 1000 steps): the 41 kg ant moves its torso 0.2 to
  9 m (median about 3; 16 genomes) in Brax spring, but under 0.6 m (8 genomes) in MuJoCo 4.0 with the
  original file, so Brax's ant is the livelier one; either way the goals, 60 m away, are far out of reach
  of random genomes;
- collisions: the torso sphere touches the floor and the walls, the four feet (the end caps of the lower
  legs) the floor only, the other geoms nothing; in the original every ant geom touches both. So legs can
  reach through a wall, the torso cannot (wall contacts are the costly part of a step: feet-wall pairs
  would make it about 1.5x slower);
- start: one fixed state, the ankles at +-1 rad (the original file's ``init_qpos`` joint angles, inside the
  ankle limits; MuJoCo starts them at 0, outside their limits), without the original's reset noise
  (uniform +-0.1 on ``q``, ``0.1 N(0, 1)`` on ``qd``): one genome always gives the same outcome, as the
  other sparse tasks (the design notes ask for a fixed reset per evaluation); ``evaluate``'s key is unused;
- batch invariance: by default the episodes of a batch are ``vmap``-ed (:class:`SparseTask`), and the ant's
  float32 physics is chaotic, so one genome's outcome can depend on the batch (or shard) it is evaluated in:
  the vectorised kernels round differently for each batch shape. ``batch_invariant=True``
  (``--task-option batch_invariant=true``) rolls the genomes out one after the other (``lax.map`` of the
  same single-episode :func:`qd.tasks.brax.rollout.rollout`, as the Brax tasks' option of that name), so a
  genome gets bitwise the same outcome in any batch, any shard size, or alone (checked at batch 4, alone and
  split over 2 devices). Cost, measured (100-step episodes, jitted ``evaluate``, one device, 2-core CPU
  shared with other work): 2.3x the time of the default at batch 8, 2.7x at 64; far more on a GPU, where
  the batch is the parallelism;
- a final position that is not finite (a diverged simulation; not seen in our runs) earns nothing
  (``reward_area = -1``) and gets the start's descriptor; descriptors are clipped to ``[-0.5, 0.5]^2``
  (the walls keep the torso inside anyway).

Throughput (spring, population 200, jitted ``evaluate``, a 2-core CPU shared with other work, load about 5):
33 evaluations/s with 250-step episodes, 2.1 with SERENE's 3000 (6-8k control steps/s); first compilation
about 35 s. Brax is reached only through :mod:`qd.tasks.brax.env` (``load_mjcf_system``, ``pipeline_module``),
when the system is built (:func:`load_system`, at task construction).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from qd.tasks.brax.env import load_mjcf_system, pipeline_module
from qd.tasks.brax.rollout import rollout
from qd.tasks.brax.tasks import DEFAULT_BACKEND
from qd.tasks.sparse.common import (
    BLACK,
    BLUE,
    RED,
    WHITE,
    SparseTask,
    apply_controller,
    area_reward,
    disc_mask,
    paint,
    pixel_centres,
    unflatten_controller,
)
from qd.xla_options import fast_compile_options

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
MODEL_FILE = os.path.join(DATA_DIR, "ant_maze.xml")

TIMESTEP = 0.005  # s per physics step (the original <option timestep>)
FRAME_SKIP = 5  # physics steps per control step (the original frame_skip)
NUM_STEPS = 3000  # control steps per episode (SERENE's max_ts)
START = (-25.0, -25.0)
BD_OFFSET = 5.0  # ground truth = (xy - BD_OFFSET) / BD_SCALE, as the original env's bc
BD_SCALE = 70.0
_GOALS = np.array([[35.0, -25.0], [-25.0, 35.0]], np.float32)  # metres
_RADII = np.array([3.0, 3.0], np.float32)
# Walls as axis-aligned rectangles (centre x, centre y, half-size x, half-size y), metres: the boxes of
# data/ant_maze.xml (checked against the loaded system by the tests).
WALLS = np.array(
    [
        [5.0, 40.0, 35.0, 0.3],
        [5.0, -30.0, 35.0, 0.3],
        [40.0, 5.0, 0.3, 35.0],
        [-30.0, 5.0, 0.3, 35.0],
        [-15.0, 20.0, 0.3, 17.0],
        [-3.0, -15.0, 13.0, 0.3],
        [10.0, -15.0, 0.3, 15.0],
    ],
    np.float32,
)
# The rendered view: the arena's outer extent (walls included), square.
VIEW_LOWER = (-30.3, -30.3)
VIEW_UPPER = (40.3, 40.3)
ANT_DRAW_RADIUS = 1.6  # m: a little more than the legs' reach (1.1 m), so the ant covers a few 1.1 m pixels


@functools.lru_cache(maxsize=None)
def load_system(backend: str = DEFAULT_BACKEND):
    """The Brax ``System`` of ``data/ant_maze.xml`` (cached per backend), with the 0.005 s time step.

    For ``mjx`` the solver settings of Brax's own ant are applied (Newton, 1 iteration, 4 line-search
    iterations, no Euler damping).

    Raises:
        ValueError: unknown backend.
    """
    replacements = {"opt.timestep": TIMESTEP}
    if backend == "mjx":
        import mujoco

        replacements.update(
            {
                "opt.solver": mujoco.mjtSolver.mjSOL_NEWTON,
                "opt.disableflags": mujoco.mjtDisableBit.mjDSBL_EULERDAMP,
                "opt.iterations": 1,
                "opt.ls_iterations": 4,
            }
        )
    return load_mjcf_system(MODEL_FILE, backend, replacements)


@struct.dataclass
class AntMazeState:
    """State of :class:`AntMazeEnv` (the fields :mod:`qd.tasks.brax.rollout` reads, plus the step).

    Attributes:
        pipeline_state: Brax pipeline state (``q (15,)``, ``qd (14,)``, link transforms ``x``, ...).
        obs: ``((29,) float32 observation, () int32 control step)``: the policy is given both.
        reward: ``() float32``, always 0 (the sparse reward is computed from the final state).
        done: ``() float32``, always 0 (no early termination).
    """

    pipeline_state: Any
    obs: Any
    reward: jax.Array
    done: jax.Array


class AntMazeEnv:
    """The AntMaze environment, following :class:`qd.tasks.brax.env.Environment` (``reset`` / ``step``).

    ``reset`` ignores its key (one fixed start state, see the module docstring). Static and hashable by
    identity; build it through :class:`AntMaze`.
    """

    observation_size = 29
    action_size = 8

    def __init__(self, backend: str = DEFAULT_BACKEND):
        self.backend = backend
        self.sys = load_system(backend)
        self.pipeline = pipeline_module(backend)

    @staticmethod
    def observation(pipeline_state) -> jax.Array:
        """``(29,) float32``: ``q`` with x, y mapped by ``(v - 5) / 70``, then ``qd``."""
        q = pipeline_state.q
        q = q.at[:2].set((q[:2] - BD_OFFSET) / BD_SCALE)
        return jnp.concatenate([q, pipeline_state.qd]).astype(jnp.float32)

    def reset(self, key: jax.Array = None) -> AntMazeState:
        sys = self.sys
        ps = self.pipeline.init(sys, sys.init_q, jnp.zeros(sys.qd_size()))
        zero = jnp.zeros((), jnp.float32)
        return AntMazeState(ps, (self.observation(ps), jnp.zeros((), jnp.int32)), zero, zero)

    def step(self, state: AntMazeState, action: jax.Array) -> AntMazeState:
        action = jnp.clip(action, -1.0, 1.0)

        def f(ps, _):
            return self.pipeline.step(self.sys, ps, action), None

        ps, _ = jax.lax.scan(f, state.pipeline_state, None, length=FRAME_SKIP)
        return state.replace(pipeline_state=ps, obs=(self.observation(ps), state.obs[1] + 1))


def torso_xy(state: AntMazeState) -> jax.Array:
    """``(2,) float32`` world x-y (metres) of the torso (link 0)."""
    return state.pipeline_state.x.pos[0, :2].astype(jnp.float32)


@struct.dataclass
class AntMaze(SparseTask):
    """The AntMaze task (see the module docstring).

    Attributes (static):
        num_steps: ``T``, control steps per episode (default 3000, SERENE's; shorten it for tests).
        backend: Brax physics backend (default :data:`qd.tasks.brax.tasks.DEFAULT_BACKEND`).
        batch_invariant: roll genomes out one after the other, so an outcome does not depend on the batch
            (module docstring).
    """

    layer_sizes: Tuple[int, ...] = struct.field(pytree_node=False, default=(29, 10, 10, 10, 8))
    num_steps: int = struct.field(pytree_node=False, default=NUM_STEPS)
    backend: str = struct.field(pytree_node=False, default=DEFAULT_BACKEND)
    batch_invariant: bool = struct.field(pytree_node=False, default=False)

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, int) or self.num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer; got {self.num_steps!r}")
        if not isinstance(self.batch_invariant, (bool, np.bool_)):
            raise ValueError(f"batch_invariant must be true or false; got {self.batch_invariant!r}")
        _env(self.backend)  # builds (once) and checks the backend: errors surface here, on the host

    @property
    def env(self) -> AntMazeEnv:
        """The environment (built once per backend)."""
        return _env(self.backend)

    @property
    def compiler_options(self):
        """XLA options for programs that roll this task out (:func:`qd.xla_options.fast_compile_options`)."""
        return fast_compile_options()

    @property
    def descriptor_bounds(self):
        """``((-0.5, -0.5), (0.5, 0.5))``: ``(xy - 5) / 70`` over the 70 m arena."""
        return (-0.5, -0.5), (0.5, 0.5)

    @property
    def descriptor_names(self) -> Tuple[str, ...]:
        """Axis labels: the final torso position in arena widths from the arena's centre, ``(x - 5 m) / 70 m``."""
        return ("final torso (x - 5 m) / 70 m", "final torso (y - 5 m) / 70 m")

    @property
    def trajectory_start(self) -> np.ndarray:
        """``(2,) float32`` ground truth at the start (the torso at ``(-25, -25)`` m), the same for every genome."""
        return ((np.asarray(START, np.float32) - BD_OFFSET) / BD_SCALE).astype(np.float32)

    @property
    def goal_centres(self):
        """``(2, 2) float32`` goal centres in descriptor units."""
        return (_GOALS - BD_OFFSET) / BD_SCALE

    @property
    def goal_radii(self):
        """``(2,) float32`` goal radii in descriptor units (3 m / 70)."""
        return _RADII / BD_SCALE

    @staticmethod
    def reward(final_xy: jax.Array) -> Tuple[jax.Array, jax.Array]:
        """Sparse reward of final torso positions ``(..., 2)`` in metres: ``(reward (...,) float32, area
        (...,) int32)``; ``(3 - d) / 3`` inside goal ``i`` (``d <= 3`` m from its centre), else 0 and -1."""
        reward, area = area_reward(final_xy, jnp.asarray(_GOALS), jnp.asarray(_RADII))
        ok = jnp.all(jnp.isfinite(final_xy), axis=-1)
        return jnp.where(ok, reward, 0.0), jnp.where(ok, area, -1)

    @staticmethod
    def descriptor(final_xy: jax.Array) -> jax.Array:
        """Ground truth ``(..., 2) float32`` of final torso positions ``(..., 2)`` (metres): ``(xy - 5) / 70``
        clipped to ``[-0.5, 0.5]``; a non-finite position gets the start's, ``(-30 / 70, -30 / 70)``."""
        ok = jnp.all(jnp.isfinite(final_xy), axis=-1, keepdims=True)
        xy = jnp.where(ok, final_xy, jnp.asarray(START, jnp.float32))
        return jnp.clip((xy - BD_OFFSET) / BD_SCALE, -0.5, 0.5).astype(jnp.float32)

    def rollouts(self, genotypes: jax.Array):
        """:meth:`SparseTask.rollouts` (``vmap``-ed episodes); with ``batch_invariant``, the same episodes one
        genome after the other (``lax.map``), so that each is computed by the same program whatever ``B``."""
        if not self.batch_invariant:
            return super().rollouts(genotypes)

        def one(genome):
            layers = unflatten_controller(genome, self.layer_sizes)
            return self.episode(lambda obs, t: apply_controller(layers, obs))

        return jax.lax.map(one, genotypes)

    def episode(self, policy):
        """One episode of ``policy(observation (29,), step) -> action (8,)``: ``(gt (2,), reward (), area (),
        final_state)`` with ``final_state = {"xy": (2,) final torso x-y in metres}`` (and, with
        ``trajectory_samples = S > 0``, ``(trajectory (S, 2), {"xy": (S, 2)})``, the torso after each sampled
        step, recorded in the rollout's scan)."""
        env = self.env
        # rollout reads the descriptor signal in the state an action is taken in; one extra (discarded)
        # control step makes the last one read s_T, the state after num_steps steps. Likewise the sample after
        # step t (0-based) is read at step t + 1.
        sampling = {}
        if self.trajectory_samples:
            sampling = dict(sample_fn=torso_xy, sample_times=self.trajectory_times + 1)
        stats = rollout(
            env,
            lambda _, obs: policy(obs[0], obs[1]),
            None,
            env.reset(),
            self.num_steps + 1,
            step_reward=lambda s: jnp.zeros((), jnp.float32),
            state_descriptor=torso_xy,
            reduction="last",
            **sampling,
        )
        xy = stats.descriptor
        reward, area = self.reward(xy)
        out = self.descriptor(xy), reward, area, {"xy": xy}
        if stats.samples is None:
            return out
        return out + ((self.descriptor(stats.samples), {"xy": stats.samples}),)

    def render_one(self, final_state):
        """``(64, 64, 3) float32`` top view: floor white, walls black, goals red, the ant blue (a disc of
        :data:`ANT_DRAW_RADIUS` m at the final torso x-y); row 0 is ``y = 40.3`` (north up)."""
        pixels = pixel_centres(VIEW_LOWER, VIEW_UPPER)
        image = jnp.ones(pixels.shape[:2] + (3,), jnp.float32) * jnp.asarray(WHITE)
        for c, r in zip(_GOALS, _RADII):
            image = paint(image, disc_mask(pixels, jnp.asarray(c), r), RED)
        image = paint(image, wall_mask(pixels), BLACK)
        return paint(image, disc_mask(pixels, final_state["xy"], ANT_DRAW_RADIUS), BLUE)


def wall_mask(points: jax.Array) -> jax.Array:
    """``(...) bool``: points ``(..., 2)`` (metres) inside a wall, or within half a pixel of one (so the
    0.6 m walls show on a 64x64 image of the 70 m arena)."""
    half_pixel = 0.5 * (VIEW_UPPER[0] - VIEW_LOWER[0]) / 64
    walls = jnp.asarray(WALLS)
    d = jnp.abs(points[..., None, :] - walls[:, :2])  # (..., W, 2)
    return jnp.any(jnp.all(d <= walls[:, 2:] + half_pixel, axis=-1), axis=-1)


@functools.lru_cache(maxsize=None)
def _env(backend: str) -> AntMazeEnv:
    return AntMazeEnv(backend)
