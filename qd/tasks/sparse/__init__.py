"""Sparse-reward tasks in pure JAX (jittable, vmapped over the population): the environments of the
TAXONS / SERENE / STAX papers, re-implemented. See each module for where it departs from the original.

- :class:`Point2D`: the toy (fast tests);
- :class:`Curling`: a 2-link arm pushes a ball into one of two goal areas;
- :class:`HardMaze`: a differential-drive robot with lasers and bumpers in the hard maze;
- :class:`RedundantArm`: a 20-joint arm among walls, illegal moves end the episode;
- :class:`AntMaze`: the Brax ant in a walled arena with two distant goals (Brax is imported when one is built).

Every task returns ``Evaluation(fitnesses=reward, descriptors=ground truth, extras={"gt_descriptor",
"reward_area", "final_state"})`` and renders 64x64 top-down images of final states with ``task.render``; with
``trajectory_samples=S`` (``task.with_trajectory_samples(S)``) also ``"trajectory"`` ``(B, S, 2)`` and
``"trajectory_states"`` (see :mod:`qd.tasks.sparse.common`).
"""

from qd.tasks.sparse.ant_maze import AntMaze
from qd.tasks.sparse.common import SparseTask, apply_controller, area_reward, controller_num_params
from qd.tasks.sparse.curling import Curling
from qd.tasks.sparse.hard_maze import HardMaze
from qd.tasks.sparse.point2d import Point2D
from qd.tasks.sparse.redundant_arm import RedundantArm

__all__ = [
    "AntMaze",
    "Curling",
    "HardMaze",
    "Point2D",
    "RedundantArm",
    "SparseTask",
    "apply_controller",
    "area_reward",
    "controller_num_params",
]
