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

import importlib as _importlib

# Public name -> the module that defines it. Imported on first use (PEP 562), so that importing one part of
# qd (qd.options, qd.archives; what the emitters use) does not import the algorithms, tasks and metrics too.
_EXPORTS = {
    **dict.fromkeys(
        ("IMPROVED", "NEW", "NOT_ADDED", "AddResult", "Archive", "CVTArchive", "DominatedNoveltyArchive", "Elites",
         "GridArchive", "add", "cvt_centroids", "export_csv", "load_archive", "sample", "save_archive",
         "UnstructuredArchive"),
        "qd.archives",
    ),
    "MAPElites": "qd.algorithms",
    "MAPElitesState": "qd.algorithms",
    "archive_metrics": "qd.metrics",
    **dict.fromkeys(("Arm", "Evaluation", "Rastrigin", "Sphere"), "qd.tasks"),
}


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(module), name)
        globals()[name] = value
        return value
    try:  # a submodule: qd.runner, qd.algorithms, ...
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


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
