"""Matplotlib figures of archives (any archive, any descriptor dimension) and of metric curves.

:func:`plot_archive` picks the picture by the descriptor dimension ``d`` and the archive's kind:

- ``d = 1``: fitness along the descriptor axis: a bar per filled cell of a grid (:func:`plot_grid_bars`), a
  scatter of descriptor against fitness for CVT and unstructured archives (:func:`plot_fitness_strip`);
- ``d = 2``: a map coloured by fitness: grid cells (:func:`plot_grid_heatmap`), CVT Voronoi cells
  (:func:`plot_cvt_heatmap`), or the elites as points (:func:`plot_elites_scatter`, unstructured archives);
- ``d >= 3``: every pairwise 2-D projection, in a lower-triangular grid of panels (:func:`plot_projections`:
  a grid shows the best fitness over the other dimensions in each projected cell, other archives their
  elites as points). :func:`plot_parallel_axes` is a one-panel alternative.

Descriptor axes are labelled with ``descriptor_names`` (e.g. a task's ``descriptor_names``, see
:func:`qd.tasks.base.descriptor_names`), ``"descriptor 1"``, ... by default; colour bars read ``"fitness"``.
Where an archive's bounds are infinite (an :class:`qd.UnstructuredArchive` created without bounds) the
plots span the elites' extent plus a 5 % margin (``[-1.1, 1.1]`` when the archive is empty).

All functions run on the host; they return the matplotlib ``Axes`` they drew in, or the ``Figure`` for the
multi-panel pictures (:func:`plot_projections`, :func:`plot_metrics`), so users can restyle them.
Common keyword arguments of the archive plots: ``cmap`` (a matplotlib colormap name) and ``vmin`` /
``vmax`` (the fitness range of the colours; default: the elites' range). Pass them by keyword: the
functions that predate ``descriptor_names`` keep their old positional order.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from qd.tasks.base import check_descriptor_names

# Margin added on each side of the elites' extent along an unbounded descriptor axis (fraction of the
# extent), the half-width used when the extent is a single value, and the extent of an empty archive.
_MARGIN = 0.05
_POINT_HALF_WIDTH = 0.5
_EMPTY_EXTENT = (-1.0, 1.0)


def _pyplot():
    # Imported lazily so that ``import qd`` stays light; matplotlib picks a headless backend by itself
    # when there is no display.
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------------------------------- #
# What an archive holds, on the host
# ---------------------------------------------------------------------------------------------------- #
def _dim(archive) -> int:
    return int(np.shape(archive.descriptors)[1])


def _is_grid(archive) -> bool:
    return hasattr(archive, "resolution")


def _is_cvt(archive) -> bool:
    centroids = getattr(archive, "centroids", None)  # an array on CVT archives, a method on grids
    return centroids is not None and not callable(centroids)


def _elites(archive) -> Tuple[np.ndarray, np.ndarray]:
    """``(descriptors (n, d) float64, fitnesses (n,) float64)`` of the filled cells (no genotypes copied)."""
    filled = np.asarray(archive.filled)
    return np.asarray(archive.descriptors, np.float64)[filled], np.asarray(archive.fitnesses, np.float64)[filled]


def plot_extent(archive) -> Tuple[np.ndarray, np.ndarray]:
    """The descriptor box the plots span: ``(lo (d,), hi (d,))`` float64, finite, ``lo < hi``.

    The archive's bounds where they are finite; along an unbounded axis, the elites' extent widened by 5 %
    on each side (by 0.5 when all elites share one value; ``[-1.1, 1.1]`` for an empty archive).
    """
    desc, _ = _elites(archive)
    lower, upper = np.asarray(archive.lower, np.float64), np.asarray(archive.upper, np.float64)
    if desc.shape[0]:
        dmin, dmax = desc.min(axis=0), desc.max(axis=0)
    else:
        dmin, dmax = np.full_like(lower, _EMPTY_EXTENT[0]), np.full_like(upper, _EMPTY_EXTENT[1])
    pad = np.where(dmax > dmin, _MARGIN * (dmax - dmin), _POINT_HALF_WIDTH)
    lo = np.where(np.isfinite(lower), lower, dmin - pad)
    hi = np.where(np.isfinite(upper), upper, dmax + pad)
    return lo, np.where(hi > lo, hi, lo + 2 * _POINT_HALF_WIDTH)


def grid_projection(archive, dims: Sequence[int] = (0, 1)) -> np.ndarray:
    """Best fitness of a :class:`qd.GridArchive` over every dimension but ``dims = (i, j)``.

    Returns:
        ``(resolution[i], resolution[j]) float64``: entry ``[a, b]`` is the best fitness among the cells
        whose index is ``a`` along dimension ``i`` and ``b`` along ``j``; NaN where all of them are empty.
        With ``d = 2`` and ``dims = (0, 1)`` this is the archive's fitness grid itself.

    Raises:
        ValueError: ``dims`` are not two different dimensions of the archive.
    """
    i, j = _check_dims(dims, len(archive.resolution))
    filled = np.asarray(archive.filled)
    fit = np.where(filled, np.asarray(archive.fitnesses, np.float64), -np.inf).reshape(archive.resolution)
    others = tuple(k for k in range(fit.ndim) if k not in (i, j))
    best = fit.max(axis=others)  # axes i and j remain, in increasing order
    best = best if i < j else best.T
    return np.where(np.isfinite(best), best, np.nan)


# ---------------------------------------------------------------------------------------------------- #
# Checks and drawing blocks
# ---------------------------------------------------------------------------------------------------- #
def _check_dims(dims: Sequence[int], d: int) -> Tuple[int, int]:
    dims = tuple(dims)
    if len(dims) != 2 or not all(isinstance(k, (int, np.integer)) and 0 <= k < d for k in dims) or dims[0] == dims[1]:
        raise ValueError(f"dims must be two different descriptor dimensions in [0, {d}); got {dims}")
    return int(dims[0]), int(dims[1])


def _check_dim(archive, accepted, picture: str) -> int:
    d = _dim(archive)
    if d not in accepted:
        raise ValueError(f"a {picture} needs {accepted} descriptor dimensions; this archive has {d}")
    return d


def _fitness_norm(values: np.ndarray, vmin=None, vmax=None):
    from matplotlib.colors import Normalize

    finite = values[np.isfinite(values)]
    lo = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
    hi = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    if hi <= lo:  # one fitness value (or none): a readable range around it, not an offset of 1e-9
        half = 0.05 * max(1.0, abs(float(lo)))
        lo, hi = float(lo) - half, float(lo) + half
    return Normalize(lo, hi)


def _axes(ax):
    return ax if ax is not None else _pyplot().subplots(figsize=(6, 5))[1]


def _colorbar(fig, norm, cmap, axes):
    mappable = _pyplot().cm.ScalarMappable(norm=norm, cmap=cmap)
    return fig.colorbar(mappable, ax=axes, label="fitness")


def _draw_image(ax, image: np.ndarray, lo, hi, dims, norm, cmap):
    """``image (n_i, n_j)`` over the box of ``dims = (i, j)``, first index along x."""
    (i, j) = dims
    return ax.imshow(
        image.T, origin="lower", extent=(lo[i], hi[i], lo[j], hi[j]), cmap=cmap, norm=norm, aspect="auto"
    )


def _draw_points(ax, desc: np.ndarray, fit: np.ndarray, dims, norm, cmap):
    """Elites as points, coloured by fitness; the best are drawn last, on top."""
    order = np.argsort(fit, kind="stable")
    return ax.scatter(desc[order, dims[0]], desc[order, dims[1]], c=fit[order], s=6, cmap=cmap, norm=norm)


def _label_and_limit(ax, names, dims, lo, hi):
    (i, j) = dims
    ax.set_xlim(lo[i], hi[i])
    ax.set_ylim(lo[j], hi[j])
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])


def _draw_projection(ax, archive, dims, lo, hi, norm, cmap):
    """One 2-D view: the grid's best-fitness projection as an image, or the elites as points."""
    if _is_grid(archive):
        return _draw_image(ax, grid_projection(archive, dims), lo, hi, dims, norm, cmap)
    desc, fit = _elites(archive)
    return _draw_points(ax, desc, fit, dims, norm, cmap)


# ---------------------------------------------------------------------------------------------------- #
# One descriptor dimension
# ---------------------------------------------------------------------------------------------------- #
def plot_grid_bars(archive, ax=None, descriptor_names=None, cmap: str = "viridis", vmin=None, vmax=None):
    """Fitness along a 1-D :class:`qd.GridArchive`: one bar per filled cell, as wide as the cell, whose
    height is the elite's fitness (from 0); empty cells have no bar. Returns the Axes.

    Args:
        archive: a grid with ``d = 1`` (``C`` cells).
        ax: the Axes to draw in (default: a new figure).
        descriptor_names: one label for the x axis (default ``("descriptor 1",)``).
        cmap, vmin, vmax: bar colours by fitness (see the module docstring).

    Raises:
        ValueError: the archive is not 1-D; ``descriptor_names`` does not have one entry.
    """
    _check_dim(archive, (1,), "grid bar plot")
    names = check_descriptor_names(descriptor_names, 1)
    ax = _axes(ax)
    filled = np.asarray(archive.filled)
    fit = np.asarray(archive.fitnesses, np.float64)[filled]
    centres = np.asarray(archive.centroids(), np.float64)[filled, 0]
    (lo,), (hi,) = archive.lower, archive.upper
    norm = _fitness_norm(fit, vmin, vmax)
    colours = _pyplot().get_cmap(cmap)(norm(fit)).reshape(-1, 4)
    ax.bar(centres, fit, width=(hi - lo) / archive.resolution[0], color=colours, edgecolor="none")
    ax.set_xlim(lo, hi)
    ax.set_xlabel(names[0])
    ax.set_ylabel("fitness")
    return ax


def plot_fitness_strip(archive, ax=None, descriptor_names=None, cmap: str = "viridis", vmin=None, vmax=None):
    """Fitness against the descriptor of a 1-D archive (any kind): one point per elite. Returns the Axes.

    Args:
        archive: an archive with ``d = 1``.
        ax: the Axes to draw in (default: a new figure).
        descriptor_names: one label for the x axis (default ``("descriptor 1",)``).
        cmap, vmin, vmax: point colours by fitness (see the module docstring).

    Raises:
        ValueError: the archive is not 1-D; ``descriptor_names`` does not have one entry.
    """
    _check_dim(archive, (1,), "fitness strip")
    names = check_descriptor_names(descriptor_names, 1)
    ax = _axes(ax)
    desc, fit = _elites(archive)
    lo, hi = plot_extent(archive)
    order = np.argsort(fit, kind="stable")
    ax.scatter(desc[order, 0], fit[order], c=fit[order], s=8, cmap=cmap, norm=_fitness_norm(fit, vmin, vmax))
    ax.set_xlim(lo[0], hi[0])
    ax.set_xlabel(names[0])
    ax.set_ylabel("fitness")
    return ax


# ---------------------------------------------------------------------------------------------------- #
# Two descriptor dimensions (or two chosen ones)
# ---------------------------------------------------------------------------------------------------- #
def plot_grid_heatmap(
    archive, ax=None, cmap: str = "viridis", vmin=None, vmax=None, descriptor_names=None, dims: Sequence[int] = (0, 1)
):
    """Heatmap of a :class:`qd.GridArchive` over descriptor dimensions ``dims = (i, j)`` (``i`` along x):
    each cell coloured by its elite's fitness, empty = white. Returns the Axes.

    With ``d = 2`` the image is the fitness grid, ``(resolution[1], resolution[0])`` pixels (rows: dimension
    ``j`` from the bottom up). With ``d >= 3`` each pixel is the best fitness over the other dimensions
    (:func:`grid_projection`).

    Args:
        archive: a grid with ``d >= 2``.
        ax: the Axes to draw in (default: a new figure).
        descriptor_names: ``d`` axis labels (default ``"descriptor 1"``, ...).
        dims: the two dimensions shown.
        cmap, vmin, vmax: see the module docstring.

    Raises:
        ValueError: the archive is 1-D; bad ``dims``; ``descriptor_names`` without ``d`` entries.
    """
    d = _dim(archive)
    if d < 2:
        raise ValueError(f"a grid heatmap needs at least 2 descriptor dimensions; this archive has {d} (use plot_grid_bars)")
    dims = _check_dims(dims, d)
    names = check_descriptor_names(descriptor_names, d)
    ax = _axes(ax)
    lo, hi = plot_extent(archive)
    norm = _fitness_norm(_elites(archive)[1], vmin, vmax)
    _draw_image(ax, grid_projection(archive, dims), lo, hi, dims, norm, cmap)
    _colorbar(ax.figure, norm, cmap, ax)
    _label_and_limit(ax, names, dims, lo, hi)
    return ax


def _bounded_voronoi_cells(centroids: np.ndarray, lo, hi):
    """Polygons (list of ``(k, 2)`` vertex arrays) of the Voronoi cells of ``centroids (C, 2)`` in the box.

    The centroids are mirrored across the four edges before ``scipy.spatial.Voronoi`` so that every
    original cell is finite and ends on the box.
    """
    from scipy.spatial import Voronoi

    mirrors = [centroids]
    for axis, edge in ((0, lo[0]), (0, hi[0]), (1, lo[1]), (1, hi[1])):
        m = centroids.copy()
        m[:, axis] = 2 * edge - m[:, axis]
        mirrors.append(m)
    vor = Voronoi(np.concatenate(mirrors))
    return [vor.vertices[vor.regions[vor.point_region[i]]] for i in range(len(centroids))]


def plot_cvt_heatmap(archive, ax=None, cmap: str = "viridis", vmin=None, vmax=None, descriptor_names=None):
    """Voronoi diagram of a 2-D :class:`qd.CVTArchive`, cells coloured by fitness, empty = white. Returns
    the Axes; ``ax.collections[0]`` holds one polygon per cell, in cell order.

    Args:
        archive: a CVT archive with ``d = 2`` (``C`` centroids).
        ax: the Axes to draw in (default: a new figure).
        descriptor_names: two axis labels (default ``("descriptor 1", "descriptor 2")``).
        cmap, vmin, vmax: see the module docstring.

    Raises:
        ValueError: the archive is not 2-D; ``descriptor_names`` without 2 entries.
    """
    from matplotlib.collections import PolyCollection

    _check_dim(archive, (2,), "CVT heatmap")
    names = check_descriptor_names(descriptor_names, 2)
    ax = _axes(ax)
    lo, hi = plot_extent(archive)
    polygons = _bounded_voronoi_cells(np.asarray(archive.centroids, np.float64), lo, hi)
    filled = np.asarray(archive.filled)
    fit = np.asarray(archive.fitnesses, np.float64)
    norm = _fitness_norm(fit[filled], vmin, vmax)
    colours = _pyplot().get_cmap(cmap)(norm(np.where(filled, fit, 0.0)))
    colours = np.where(filled[:, None], colours, (1.0, 1.0, 1.0, 1.0))
    ax.add_collection(PolyCollection(polygons, facecolors=colours, edgecolors=(0, 0, 0, 0.15), linewidths=0.3))
    _colorbar(ax.figure, norm, cmap, ax)
    _label_and_limit(ax, names, (0, 1), lo, hi)
    return ax


def plot_elites_scatter(
    archive, ax=None, dims: Sequence[int] = (0, 1), cmap: str = "viridis", descriptor_names=None, vmin=None, vmax=None
):
    """The elites' descriptors along dimensions ``dims = (i, j)`` as points coloured by fitness; any archive
    with ``d >= 2`` (for ``d = 1`` see :func:`plot_fitness_strip`). Returns the Axes.

    The axes span the archive's bounds, or the elites' extent where the bounds are infinite
    (:func:`plot_extent`).

    Args:
        archive: any archive with ``d >= 2``.
        ax: the Axes to draw in (default: a new figure).
        descriptor_names: ``d`` axis labels (default ``"descriptor 1"``, ...).
        dims: the two dimensions shown.
        cmap, vmin, vmax: see the module docstring.

    Raises:
        ValueError: bad ``dims`` (a 1-D archive has none); ``descriptor_names`` without ``d`` entries.
    """
    d = _dim(archive)
    dims = _check_dims(dims, d)
    names = check_descriptor_names(descriptor_names, d)
    ax = _axes(ax)
    desc, fit = _elites(archive)
    lo, hi = plot_extent(archive)
    norm = _fitness_norm(fit, vmin, vmax)
    _draw_points(ax, desc, fit, dims, norm, cmap)
    _colorbar(ax.figure, norm, cmap, ax)
    _label_and_limit(ax, names, dims, lo, hi)
    return ax


# ---------------------------------------------------------------------------------------------------- #
# Three or more descriptor dimensions
# ---------------------------------------------------------------------------------------------------- #
def plot_projections(archive, descriptor_names=None, cmap: str = "viridis", vmin=None, vmax=None):
    """Every pairwise 2-D projection of an archive with ``d >= 2``, in a ``(d - 1, d - 1)`` lower-triangular
    grid of panels with one colour bar. Returns the Figure.

    The panel in row ``j - 1``, column ``i`` (``i < j``) shows dimension ``i`` along x and ``j`` along y:
    for a grid, the best fitness over the other dimensions in each projected cell (:func:`grid_projection`);
    for CVT and unstructured archives, every elite as a point (the best on top). All panels share one
    colour scale. Only the outer panels carry axis labels: the bottom row dimensions ``0 .. d - 2`` along
    x, the left column dimensions ``1 .. d - 1`` along y. ``d (d - 1) / 2`` panels: 15 at ``d = 6``.

    Args:
        archive: any archive with ``d >= 2``.
        descriptor_names: ``d`` axis labels (default ``"descriptor 1"``, ...).
        cmap, vmin, vmax: see the module docstring.

    Raises:
        ValueError: a 1-D archive; ``descriptor_names`` without ``d`` entries.
    """
    d = _dim(archive)
    if d < 2:
        raise ValueError("projections need at least 2 descriptor dimensions; this archive has 1 (use plot_archive)")
    names = check_descriptor_names(descriptor_names, d)
    n = d - 1
    fig, grid = _pyplot().subplots(n, n, figsize=(2.3 * n + 1.2, 2.1 * n + 0.4), squeeze=False)
    lo, hi = plot_extent(archive)
    norm = _fitness_norm(_elites(archive)[1], vmin, vmax)
    rows, cols = np.tril_indices(n)
    for row, col in zip(rows, cols):  # one panel per pair of dimensions (col, row + 1)
        _projection_panel(grid[row, col], archive, (col, row + 1), lo, hi, norm, cmap, names, n)
    for row, col in zip(*np.triu_indices(n, k=1)):
        fig.delaxes(grid[row, col])
    _colorbar(fig, norm, cmap, list(grid[rows, cols]))
    return fig


def _projection_panel(ax, archive, dims, lo, hi, norm, cmap, names, n):
    _draw_projection(ax, archive, dims, lo, hi, norm, cmap)
    _label_and_limit(ax, names, dims, lo, hi)
    bottom, left = dims[1] == n, dims[0] == 0
    ax.tick_params(labelbottom=bottom, labelleft=left, labelsize="small")
    ax.xaxis.label.set_visible(bottom)
    ax.yaxis.label.set_visible(left)


def plot_parallel_axes(archive, ax=None, descriptor_names=None, cmap: str = "viridis", vmin=None, vmax=None):
    """Parallel-axes plot of any archive: one polyline per elite through its ``d`` descriptor values, each
    axis scaled to the plotted range (0 = lower bound, 1 = upper, :func:`plot_extent`), coloured by fitness
    (the best on top). Returns the Axes; ``ax.collections[0]`` holds the ``n`` lines, ``(d, 2)`` vertices each.

    Args:
        archive: any archive (``d >= 1``).
        ax: the Axes to draw in (default: a new figure).
        descriptor_names: ``d`` tick labels of the axes (default ``"descriptor 1"``, ...).
        cmap, vmin, vmax: see the module docstring.

    Raises:
        ValueError: ``descriptor_names`` without ``d`` entries.
    """
    from matplotlib.collections import LineCollection

    d = _dim(archive)
    names = check_descriptor_names(descriptor_names, d)
    ax = ax if ax is not None else _pyplot().subplots(figsize=(1.4 * d + 2.5, 4))[1]
    desc, fit = _elites(archive)
    lo, hi = plot_extent(archive)
    order = np.argsort(fit, kind="stable")
    scaled = (desc[order] - lo) / (hi - lo)  # (n, d)
    xs = np.broadcast_to(np.arange(d, dtype=np.float64), scaled.shape)
    norm = _fitness_norm(fit, vmin, vmax)
    lines = LineCollection(np.stack([xs, scaled], axis=-1), cmap=cmap, norm=norm, linewidths=0.6, alpha=0.7)
    lines.set_array(fit[order])
    ax.add_collection(lines)
    ax.set_xticks(np.arange(d), names, rotation=20, ha="right")
    ax.set_xlim(-0.25, d - 0.75)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("position in the plotted range")
    _colorbar(ax.figure, norm, cmap, ax)
    return ax


# ---------------------------------------------------------------------------------------------------- #
# Any archive
# ---------------------------------------------------------------------------------------------------- #
def plot_archive(archive, ax=None, descriptor_names=None, **kwargs):
    """The most informative picture of any archive, by descriptor dimension ``d`` and kind.

    - ``d = 1``: :func:`plot_grid_bars` (grid) or :func:`plot_fitness_strip` (CVT, unstructured): Axes;
    - ``d = 2``: :func:`plot_grid_heatmap`, :func:`plot_cvt_heatmap` or :func:`plot_elites_scatter`
      (unstructured): Axes;
    - ``d >= 3``: :func:`plot_projections`: a **Figure** (one panel per pair of dimensions). Use
      ``fig = out if isinstance(out, matplotlib.figure.Figure) else out.figure`` to save either.

    Args:
        archive: a :class:`qd.GridArchive`, :class:`qd.CVTArchive` or :class:`qd.UnstructuredArchive` (any
            ``d``, bounded or not, empty or not).
        ax: the Axes to draw in (``d <= 2``; default: a new figure).
        descriptor_names: ``d`` axis labels, e.g. a task's ``descriptor_names`` (default ``"descriptor i"``).
        **kwargs: ``cmap``, ``vmin``, ``vmax`` (see the module docstring).

    Raises:
        ValueError: ``ax`` given for ``d >= 3`` (draw one projection with :func:`plot_grid_heatmap` /
            :func:`plot_elites_scatter` and ``dims``, or use :func:`plot_parallel_axes`);
            ``descriptor_names`` without ``d`` entries.
    """
    d = _dim(archive)
    if d >= 3:
        if ax is not None:
            raise ValueError(
                f"a {d}-D archive is drawn as a grid of {d * (d - 1) // 2} panels, not in one Axes: pass ax=None, "
                "or draw one projection with plot_grid_heatmap / plot_elites_scatter(dims=(i, j)), "
                "or use plot_parallel_axes"
            )
        return plot_projections(archive, descriptor_names=descriptor_names, **kwargs)
    if d == 1:
        draw = plot_grid_bars if _is_grid(archive) else plot_fitness_strip
    elif _is_grid(archive):
        draw = plot_grid_heatmap
    else:
        draw = plot_cvt_heatmap if _is_cvt(archive) else plot_elites_scatter
    return draw(archive, ax=ax, descriptor_names=descriptor_names, **kwargs)


def ground_truth_view(archive):
    """For an unstructured archive whose descriptors are not the ground truth (a learned space's latents,
    a signature) but which stores ``extras["gt_descriptor"] (C, 2)``: a copy placed by that ground truth
    (unbounded: the plots span the elites), to draw where the agents ended up. Any other archive: None."""
    extras = getattr(archive, "extras", None)
    truth = extras.get("gt_descriptor") if isinstance(extras, dict) else None
    if truth is None or truth.ndim != 2 or truth.shape[1] != 2 or _dim(archive) == 2 or _is_grid(archive) or _is_cvt(archive):
        return None
    inf = float("inf")
    return archive.replace(descriptors=truth.astype(archive.descriptors.dtype), lower=(-inf, -inf), upper=(inf, inf))


DEFAULT_CURVES = ("qd_score", "coverage", "max_fitness", "mean_fitness")
# Exploration runs (novelty search, random search on the sparse-reward tasks; columns of
# :func:`qd.metrics.exploration_metrics`): ground-truth coverage, uniformity, reward areas found, and the best
# reward of every area in one panel (a key ending in ``*`` is one panel with a curve per matching column).
EXPLORATION_CURVES = ("gt_coverage", "uniformity", "reward_areas_found", "best_reward_area_*")
_TITLES = {"gt_coverage": "ground-truth coverage", "best_reward_area_*": "best reward per area",
           "ae_loss": "autoencoder loss (last training)"}


def default_curves(metrics: Dict[str, np.ndarray]) -> Sequence[str]:
    """The curves worth drawing for these metrics: :data:`EXPLORATION_CURVES` when the exploration columns
    (``gt_coverage``) are present, otherwise :data:`DEFAULT_CURVES` (MAP-Elites and friends); with a learned
    behaviour space (``ae_loss``) its training loss too."""
    curves = EXPLORATION_CURVES if "gt_coverage" in metrics else DEFAULT_CURVES
    return tuple(curves) + (("ae_loss",) if "ae_loss" in metrics else ())


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


def plot_final_positions(points: Dict[str, np.ndarray], goal_centres, goal_radii, bounds, descriptor_names=None,
                         title: str = "final positions"):
    """Sets of 2-D descriptors (e.g. the final positions that SERENE's novelty and reward archives hold) as
    scatters of their own colours over the reward areas, drawn as red circles. Returns the Figure.

    Args:
        points: ``{label: (N, 2) array}``, drawn in this order (later sets on top).
        goal_centres: ``(A, 2)`` centres of the reward areas (``A`` may be 0).
        goal_radii: ``(A,)`` their radii.
        bounds: ``(lower (2,), upper (2,))``, the axes' limits (plus 2 %); an infinite bound falls back to the
            points' extent plus a 5 % margin.
        descriptor_names: the two axis labels (default ``descriptor 1``, ``descriptor 2``).
        title: the panel's title.

    Raises:
        ValueError: points that are not ``(N, 2)``, or centres and radii of different lengths.
    """
    plt = _pyplot()
    centres = np.asarray(goal_centres, np.float64).reshape(-1, 2)
    radii = np.asarray(goal_radii, np.float64).reshape(-1)
    if centres.shape[0] != radii.shape[0]:
        raise ValueError(f"plot_final_positions: {centres.shape[0]} goal centres but {radii.shape[0]} radii")
    sets = {}
    for label, p in points.items():
        p = np.asarray(p, np.float64)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"plot_final_positions: {label!r} must be (N, 2) descriptors; got shape {p.shape}")
        sets[label] = p
    lo, hi = (np.asarray(b, np.float64).reshape(2) for b in bounds)
    everything = np.concatenate([p for p in sets.values()] + [centres], axis=0)
    for i in range(2):
        if not (np.isfinite(lo[i]) and np.isfinite(hi[i])):
            a, b = (everything[:, i].min(), everything[:, i].max()) if everything.size else _EMPTY_EXTENT
            pad = _MARGIN * (b - a) if b > a else _POINT_HALF_WIDTH
            lo[i], hi[i] = (a - pad if not np.isfinite(lo[i]) else lo[i]), (b + pad if not np.isfinite(hi[i]) else hi[i])
    pad = 0.02 * (hi - lo)  # points on the bounds (clipped descriptors) stay visible
    lo, hi = lo - pad, hi + pad
    fig, ax = plt.subplots(figsize=(5, 5))
    for c, r in zip(centres, radii):
        ax.add_patch(plt.Circle(tuple(c), r, color="red", alpha=0.25, zorder=0))
    for (label, p), size in zip(sets.items(), (3, 8, 8, 8)):
        ax.scatter(p[:, 0], p[:, 1], s=size, label=f"{label} ({p.shape[0]})", zorder=2)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    names = list(descriptor_names) if descriptor_names is not None else ["descriptor 1", "descriptor 2"]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title)
    if sets:
        ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------- #
# Learned behaviour spaces
# --------------------------------------------------------------------------------------------- #
def project_2d(points: np.ndarray) -> np.ndarray:
    """``(N, L) -> (N, 2)``: the first two principal components (scikit-learn's PCA); ``L <= 2`` is padded
    with zeros instead."""
    points = np.asarray(points, np.float64)
    if points.shape[1] <= 2 or points.shape[0] < 3:
        out = np.zeros((points.shape[0], 2))
        out[:, : min(2, points.shape[1])] = points[:, :2]
        return out
    from sklearn.decomposition import PCA

    return PCA(n_components=2).fit_transform(points)


def plot_latent_space(latents, ground_truth=None, truth_names: Sequence[str] = ("ground-truth x", "ground-truth y")):
    """A learned descriptor space, projected to 2-D by PCA: one panel per ground-truth axis, each point
    coloured by that coordinate (a space that learned the outcome shows smooth colour gradients).

    Args:
        latents: ``(N, L)`` descriptors (e.g. an archive's latent codes).
        ground_truth: ``(N, 2)`` the agents' ground-truth descriptors (e.g. final positions), or None (one
            uncoloured panel).
        truth_names: the colour bars' labels.

    Returns:
        The matplotlib ``Figure``.
    """
    plt = _pyplot()
    xy = project_2d(latents)
    panels = 1 if ground_truth is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.5), squeeze=False)
    for i, ax in enumerate(axes[0]):
        if ground_truth is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=4)
        else:
            points = ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(ground_truth)[:, i], s=4, cmap="viridis")
            fig.colorbar(points, ax=ax, label=truth_names[i])
        ax.set_xlabel("latent PC 1")
        ax.set_ylabel("latent PC 2")
    fig.suptitle(f"learned descriptor space ({np.asarray(latents).shape[1]}-D, PCA), {len(xy)} agents")
    fig.tight_layout()
    return fig


def plot_reconstructions(images, reconstructions):
    """Images (top row) over their autoencoder reconstructions (bottom row).

    Args:
        images, reconstructions: ``(N, H, W, 3)`` float RGB in ``[0, 1]`` (values outside are clipped).

    Returns:
        The matplotlib ``Figure``.
    """
    plt = _pyplot()
    images, reconstructions = np.asarray(images), np.asarray(reconstructions)
    n = images.shape[0]
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    for j in range(n):
        for row, picture in enumerate((images[j], reconstructions[j])):
            axes[row][j].imshow(np.clip(picture, 0.0, 1.0))
            axes[row][j].set_xticks([])
            axes[row][j].set_yticks([])
    axes[0][0].set_ylabel("image")
    axes[1][0].set_ylabel("reconstruction")
    fig.tight_layout()
    return fig


def save_figure(fig, path: str, dpi: int = 120) -> None:
    """Save ``fig`` to ``path`` and close it."""
    plt = _pyplot()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
