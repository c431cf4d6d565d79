"""Named tasks for the command line and configs: ``name -> factory``.

Factories may be given as ``"module:function"`` strings so that heavy dependencies (Brax) are imported only
when such a task is actually used. A factory takes keyword options (``task_options`` in a run config) and
returns a task object following :class:`qd.tasks.base.Task`; the task may also expose
``genotype_bounds = (low, high)``, which emitters use to clip genotypes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Union

Factory = Union[str, Callable[..., Any]]


@dataclass(frozen=True)
class TaskSpec:
    """A registered task.

    Attributes:
        name: the task's name (``--task NAME``).
        factory: callable or ``"module:function"`` string returning the task.
        description: one line for ``--help``.
        defaults: run-config values that suit this task (e.g. grid resolution, mutation sigmas); they
            override the generic defaults and are overridden by the user's config.
    """

    name: str
    factory: Factory
    description: str = ""
    defaults: Dict[str, Any] = field(default_factory=dict)

    def make(self, **options: Any) -> Any:
        """Build the task with ``options`` (keyword arguments of the factory)."""
        factory = self.factory
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        return factory(**options)


TASKS: Dict[str, TaskSpec] = {}


def register_task(name: str, factory: Factory, description: str = "", **defaults: Any) -> None:
    """Register (or replace) a task under ``name``."""
    TASKS[name] = TaskSpec(name, factory, description, dict(defaults))


def get_task_spec(name: str) -> TaskSpec:
    """The spec registered under ``name``.

    Raises:
        ValueError: unknown name (the message lists the accepted names).
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; accepted: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def _arm(num_joints: int = 100):
    from qd.tasks.functions import Arm

    return Arm(num_joints=int(num_joints))


def _sphere(num_params: int = 20):
    from qd.tasks.functions import Sphere

    return Sphere(num_params=int(num_params))


def _rastrigin(num_params: int = 20):
    from qd.tasks.functions import Rastrigin

    return Rastrigin(num_params=int(num_params))


register_task(
    "arm",
    _arm,
    "planar arm, fitness -std(joint angles), descriptor end-effector x-y",
    resolution=[100, 100],
    iso_sigma=0.005,
    line_sigma=0.05,
)

def _brax_factory(name: str):
    def make(**options):
        from qd.tasks.brax import make_task

        return make_task(name, **options)

    return make


# Brax locomotion (qd/tasks/brax): CVT archive of 1024 cells, iso+line with QDax's Brax settings,
# episodes of 250 steps by default (``--task-option episode_length=1000`` for the papers' length).
# Task options are make_task's keyword arguments, e.g. ``--task-option batch_invariant=true``: scores that do
# not depend on the batch (or shard) and that ``qd replay`` reproduces exactly, at 1.6-3x the CPU time and
# far more on a GPU (qd.tasks.brax.tasks).
_BRAX_DEFAULTS = dict(
    archive="cvt", num_cells=1024, emitter="iso_line", iso_sigma=0.005, line_sigma=0.05, batch_size=128,
    task_options={"episode_length": 250},
    # Sized for a 2-core CPU: measured 85 s end to end with a cold compilation cache, 0.97 GB peak memory,
    # 63% coverage (both cores evaluating, see devices below).
    # Chunks of one iteration: a rollout batch takes far longer than a host call, and MAP-Elites then compiles
    # a single program (the initial batch included).
    iterations=120, chunk_size=1,
    # The population split over every device (on a CPU, one per core): a Brax rollout keeps about 1.6 of 2
    # cores busy, two half-batches in parallel keep both (qd.parallel; benchmarks/brax_throughput.py).
    devices="all",
)
_BRAX_TASKS = {
    "hopper_uni": "Brax hopper, fitness forward reward, descriptor foot contact fraction",
    "walker2d_uni": "Brax walker2d, fitness forward reward, descriptor feet contact fractions",
    "halfcheetah_uni": "Brax halfcheetah, fitness forward reward, descriptor feet contact fractions",
    "ant_uni": "Brax ant, fitness forward reward, descriptor feet contact fractions",
    "ant_omni": "Brax ant, fitness -control cost + survival, descriptor final x-y",
    "humanoid_omni": "Brax humanoid, fitness -control cost + survival, descriptor final x-y",
}
for _name, _description in _BRAX_TASKS.items():
    register_task(_name, _brax_factory(_name), _description, **_BRAX_DEFAULTS)

register_task("sphere", _sphere, "shifted sphere, CMA-ME clipped-sum descriptor", resolution=[100, 100], sigma=0.5)
register_task(
    "rastrigin", _rastrigin, "shifted Rastrigin, CMA-ME clipped-sum descriptor", resolution=[100, 100], sigma=0.5
)

# Sparse-reward tasks (qd/tasks/sparse): fitness = sparse reward, descriptor = ground truth (50x50 grid).
_SPARSE_DEFAULTS = dict(resolution=[50, 50], emitter="gaussian", sigma=0.05, batch_size=200)
register_task("point2d", "qd.tasks.sparse:Point2D", "sparse toy: a point in [-1, 1]^2, 4 reward boxes", **_SPARSE_DEFAULTS)
register_task("curling", "qd.tasks.sparse:Curling", "sparse: 2-link arm pushes a ball into 2 goal areas", **_SPARSE_DEFAULTS)
register_task("hard_maze", "qd.tasks.sparse:HardMaze", "sparse: robot with lasers in the hard maze, 2 goals", **_SPARSE_DEFAULTS)
register_task(
    "redundant_arm", "qd.tasks.sparse:RedundantArm", "sparse: 20-joint arm among walls, 3 goals", **_SPARSE_DEFAULTS
)
# AntMaze: Brax ant, 574-parameter controller. SERENE's episodes are 3000 steps (about 100 s per generation of
# 200 on a 2-core CPU); the command line defaults to 250 (``--task-option num_steps=3000`` for SERENE's length)
# and 30 generations (about 5 minutes on a 2-core CPU, compilation included).
# ``--task-option batch_invariant=true`` makes outcomes independent of the batch (qd.tasks.sparse.ant_maze).
register_task(
    "ant_maze",
    "qd.tasks.sparse:AntMaze",
    "sparse: Brax ant in a walled 70 m arena, 2 distant goals",
    **dict(_SPARSE_DEFAULTS, task_options={"num_steps": 250}, iterations=30, chunk_size=1, devices="all"),
)
