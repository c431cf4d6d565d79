"""qd-jax: quality-diversity optimisation in JAX.

Public names (the interface ``emitters`` and user code rely on):

- archives: :class:`GridArchive`, :class:`CVTArchive`, :class:`UnstructuredArchive` (novelty),
  :class:`DominatedNoveltyArchive` (Dominated Novelty Search), the
  :class:`Archive` base, :class:`AddResult`,
  :class:`Elites`, status codes :data:`NEW`, :data:`IMPROVED`, :data:`NOT_ADDED`, :func:`add`, :func:`sample`;
  saved archives: :func:`save_archive`, :func:`load_archive`, :func:`export_csv` (tidy CSV);
- algorithms: :class:`MAPElites` (novelty search and random search live in :mod:`qd.algorithms`);
- tasks: :class:`Evaluation`, :class:`Arm`, :class:`Sphere`, :class:`Rastrigin`;
- metrics: :func:`archive_metrics`.
"""

from qd.archives import (
    IMPROVED,
    NEW,
    NOT_ADDED,
    AddResult,
    Archive,
    CVTArchive,
    DominatedNoveltyArchive,
    Elites,
    GridArchive,
    add,
    cvt_centroids,
    export_csv,
    load_archive,
    sample,
    save_archive,
    UnstructuredArchive,
)
from qd.algorithms import MAPElites, MAPElitesState
from qd.metrics import archive_metrics
from qd.tasks import Arm, Evaluation, Rastrigin, Sphere

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "Archive",
    "Arm",
    "CVTArchive",
    "DominatedNoveltyArchive",
    "Elites",
    "Evaluation",
    "GridArchive",
    "IMPROVED",
    "MAPElites",
    "MAPElitesState",
    "NEW",
    "NOT_ADDED",
    "Rastrigin",
    "Sphere",
    "add",
    "archive_metrics",
    "cvt_centroids",
    "export_csv",
    "load_archive",
    "sample",
    "save_archive",
    "UnstructuredArchive",
]
