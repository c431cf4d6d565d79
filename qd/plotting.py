"""Matplotlib figures: archive heatmaps (grid, CVT/Voronoi, any archive as a scatter) and metric curves.

All functions run on the host and take either an archive or plain numpy data; they return the matplotlib
``Axes`` (or ``Figure``) so users can restyle them.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np


def _pyplot():
    # Imported lazily so that ``import qd`` stays light; matplotlib picks a headless backend by itself
    # when there is no display.
    import matplotlib.pyplot as plt

    return plt


def _fitness_norm(values: np.ndarray, vmin=None, vmax=None):
    from matplotlib.colors import Normalize

    finite = values[np.isfinite(values)]
    lo = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
    hi = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    if hi <= lo:
        hi = lo + 1e-9
    return Normalize(lo, hi)


def plot_grid_heatmap(archive, ax=None, cmap: str = "viridis", vmin=None, vmax=None):
    """Heatmap of a 2-D :class:`qd.GridArchive`: each cell coloured by its elite's fitness, empty = white.

    Raises:
        ValueError: if the archive is not 2-D.
    """
    plt = _pyplot()
    if len(archive.resolution) != 2:
        raise ValueError(f"a grid heatmap needs 2 descriptor dimensions; this archive has {len(archive.resolution)}")
    ax = ax if ax is not None else plt.subplots(figsize=(6, 5))[1]
    filled = np.asarray(archive.filled)
    fit = np.where(filled, np.asarray(archive.fitnesses), np.nan).reshape(archive.resolution)
    norm = _fitness_norm(fit[np.isfinite(fit)], vmin, vmax)
    (x0, y0), (x1, y1) = archive.lower, archive.upper
    # Rows of ``fit`` index the first descriptor: transpose so that it runs along x.
    image = ax.imshow(fit.T, origin="lower", extent=(x0, x1, y0, y1), cmap=cmap, norm=norm, aspect="auto")
    ax.figure.colorbar(image, ax=ax, label="fitness")
    ax.set_xlabel("descriptor 1")
    ax.set_ylabel("descriptor 2")
    return ax


def plot_cvt_heatmap(archive, ax=None, cmap: str = "viridis", vmin=None, vmax=None):
    """Voronoi diagram of a 2-D :class:`qd.CVTArchive`, cells coloured by fitness, empty = white.

    The box edges bound the outer cells: the centroids are mirrored across the four edges before
    ``scipy.spatial.Voronoi`` so every original cell is finite and ends on the box.

    Raises:
        ValueError: if the archive is not 2-D.
    """
    from matplotlib.collections import PolyCollection
    from scipy.spatial import Voronoi

    plt = _pyplot()
    centroids = np.asarray(archive.centroids, np.float64)
    if centroids.shape[1] != 2:
        raise ValueError(f"a CVT heatmap needs 2 descriptor dimensions; this archive has {centroids.shape[1]}")
    ax = ax if ax is not None else plt.subplots(figsize=(6, 5))[1]
    (x0, y0), (x1, y1) = archive.lower, archive.upper
    mirrors = [centroids]
    for axis, edge in ((0, x0), (0, x1), (1, y0), (1, y1)):
        m = centroids.copy()
        m[:, axis] = 2 * edge - m[:, axis]
        mirrors.append(m)
    vor = Voronoi(np.concatenate(mirrors))
    polygons = [vor.vertices[vor.regions[vor.point_region[i]]] for i in range(len(centroids))]
    filled = np.asarray(archive.filled)
    fit = np.asarray(archive.fitnesses)
    norm = _fitness_norm(fit[filled], vmin, vmax)
    colors = np.where(filled[:, None], plt.get_cmap(cmap)(norm(np.where(filled, fit, 0.0))), (1, 1, 1, 1))
    ax.add_collection(PolyCollection(polygons, facecolors=colors, edgecolors=(0, 0, 0, 0.15), linewidths=0.3))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    ax.figure.colorbar(sm, ax=ax, label="fitness")
    ax.set_xlabel("descriptor 1")
    ax.set_ylabel("descriptor 2")
    return ax


def plot_elites_scatter(archive, ax=None, dims: Sequence[int] = (0, 1), cmap: str = "viridis"):
    """Scatter of the elites' descriptors (two chosen dimensions) coloured by fitness; any archive."""
    plt = _pyplot()
    ax = ax if ax is not None else plt.subplots(figsize=(6, 5))[1]
    elites = archive.elites()
    desc, fit = elites["descriptors"], elites["fitnesses"]
    i, j = dims if desc.shape[1] > 1 else (0, 0)
    points = ax.scatter(desc[:, i], desc[:, j], c=fit, s=6, cmap=cmap)
    ax.figure.colorbar(points, ax=ax, label="fitness")
    ax.set_xlim(archive.lower[i], archive.upper[i])
    ax.set_ylim(archive.lower[j], archive.upper[j])
    ax.set_xlabel(f"descriptor {i + 1}")
    ax.set_ylabel(f"descriptor {j + 1}")
    return ax


def plot_archive(archive, ax=None, **kwargs):
    """The most informative picture of any archive: grid heatmap, CVT Voronoi map, or elite scatter."""
    if hasattr(archive, "resolution") and len(getattr(archive, "resolution", ())) == 2:
        return plot_grid_heatmap(archive, ax=ax, **kwargs)
    centroids = getattr(archive, "centroids", None)
    if centroids is not None and np.asarray(centroids).shape[1] == 2:
        return plot_cvt_heatmap(archive, ax=ax, **kwargs)
    return plot_elites_scatter(archive, ax=ax)


DEFAULT_CURVES = ("qd_score", "coverage", "max_fitness", "mean_fitness")
# Exploration runs (novelty search, random search on the sparse-reward tasks; columns of
# :func:`qd.metrics.exploration_metrics`): ground-truth coverage, uniformity, reward areas found, and the best
# reward of every area in one panel (a key ending in ``*`` is one panel with a curve per matching column).
EXPLORATION_CURVES = ("gt_coverage", "uniformity", "reward_areas_found", "best_reward_area_*")
_TITLES = {"gt_coverage": "ground-truth coverage", "best_reward_area_*": "best reward per area"}


def default_curves(metrics: Dict[str, np.ndarray]) -> Sequence[str]:
    """The curves worth drawing for these metrics: :data:`EXPLORATION_CURVES` when the exploration columns
    (``gt_coverage``) are present, otherwise :data:`DEFAULT_CURVES` (MAP-Elites and friends)."""
    return EXPLORATION_CURVES if "gt_coverage" in metrics else DEFAULT_CURVES


def _columns(metrics: Dict[str, np.ndarray], key: str):
    """Columns of panel ``key``: itself, or for ``prefix*`` the matching columns in their numeric order."""
    if not key.endswith("*"):
        return [key] if key in metrics else []
    prefix = key[:-1]
    matches = [k for k in metrics if k.startswith(prefix)]
    return sorted(matches, key=lambda k: (int(k[len(prefix):]) if k[len(prefix):].isdigit() else float("inf"), k))


def plot_metrics(
    metrics: Dict[str, np.ndarray], keys: Optional[Sequence[str]] = None, x: str = "num_evaluations"
):
    """One panel per metric against ``metrics[x]`` (default: number of evaluations). Returns the Figure.

    Args:
        metrics: ``{name: (T,) array}`` (e.g. :func:`qd.runner.read_metrics` of ``metrics.csv``).
        keys: the panels; metrics absent from ``metrics`` are skipped. A key ending in ``*`` (e.g.
            ``"best_reward_area_*"``) draws every matching column in one panel, with a legend. Default:
            :func:`default_curves` (the exploration curves when ``gt_coverage`` is present, else the QD curves).
        x: the column for the horizontal axis (row index if absent).
    """
    plt = _pyplot()
    keys = default_curves(metrics) if keys is None else keys
    panels = [(k, _columns(metrics, k)) for k in keys]
    panels = [(k, cols) for k, cols in panels if cols]
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False)
    xs = np.asarray(metrics[x]) if x in metrics else np.arange(len(next(iter(metrics.values()))))
    for ax, (k, cols) in zip(axes[0], panels):
        for c in cols:
            label = "area " + c[len(k) - 1:] if k.endswith("*") else None
            ax.plot(xs, np.asarray(metrics[c]), label=label)
        if k.endswith("*"):
            ax.legend(fontsize="small")
        ax.set_title(_TITLES.get(k, k.replace("_", " ")))
        ax.set_xlabel(x.replace("_", " "))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
