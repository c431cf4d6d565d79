"""Tasks: batched, jittable scoring functions (``evaluate(genotypes, key) -> Evaluation``)."""

from qd.tasks.base import Evaluation, Task
from qd.tasks.functions import Arm, Rastrigin, Sphere, clipped_sum_descriptors

__all__ = ["Arm", "Evaluation", "Rastrigin", "Sphere", "Task", "clipped_sum_descriptors"]
