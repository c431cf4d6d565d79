"""Archives: one interface (``add``, ``sample``, queries) over grid, CVT, unstructured and DNS storage."""

from qd.archives.base import (
    IMPROVED,
    NEW,
    NOT_ADDED,
    AddResult,
    Archive,
    Elites,
    add,
    sample,
)
from qd.archives.cell import CellArchive
from qd.archives.container import UnstructuredContainer, container_size_control
from qd.archives.cvt import CVTArchive, cvt_centroids
from qd.archives.dns import DominatedNoveltyArchive
from qd.archives.grid import GridArchive, cell_edges
from qd.archives.threshold import ThresholdCVTArchive, ThresholdGridArchive, with_thresholds
from qd.archives.io import elite_table, export_csv, load_archive, read_archive_metadata, save_archive
from qd.archives.unstructured import UnstructuredArchive

__all__ = [
    "AddResult",
    "Archive",
    "CellArchive",
    "CVTArchive",
    "DominatedNoveltyArchive",
    "Elites",
    "GridArchive",
    "IMPROVED",
    "NEW",
    "NOT_ADDED",
    "add",
    "cell_edges",
    "container_size_control",
    "cvt_centroids",
    "elite_table",
    "export_csv",
    "load_archive",
    "read_archive_metadata",
    "save_archive",
    "sample",
    "ThresholdCVTArchive",
    "ThresholdGridArchive",
    "with_thresholds",
    "UnstructuredArchive",
    "UnstructuredContainer",
]
