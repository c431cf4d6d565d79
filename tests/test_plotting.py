"""Plots: the pictures show what the archive holds."""

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import numpy as np

from qd import CVTArchive, GridArchive
from qd.plotting import plot_archive, plot_metrics


def test_grid_heatmap_puts_each_elite_in_its_cell():
    archive = GridArchive.create(jnp.zeros(1), (4, 2), (0.0, 0.0), (4.0, 2.0))
    archive, _ = archive.add(jnp.zeros((2, 1)), jnp.asarray([[3.5, 0.5], [0.5, 1.5]]), jnp.asarray([1.0, 2.0]))
    ax = plot_archive(archive)
    image = ax.images[0].get_array()
    assert image.shape == (2, 4)  # rows = descriptor 2, columns = descriptor 1
    assert image[0, 3] == 1.0 and image[1, 0] == 2.0
    assert np.isnan(np.ma.filled(image.astype(float), np.nan)).sum() == 6  # empty cells are blank


def test_cvt_heatmap_draws_one_bounded_polygon_per_cell():
    centroids = np.random.default_rng(0).uniform(0, 1, (50, 2))
    archive = CVTArchive.create(jnp.zeros(1), (0, 0), (1, 1), centroids=centroids)
    archive, _ = archive.add(jnp.zeros((1, 1)), jnp.asarray(centroids[7:8], jnp.float32), jnp.ones(1))
    ax = plot_archive(archive)
    polygons = ax.collections[0].get_paths()
    assert len(polygons) == 50
    vertices = np.concatenate([p.vertices for p in polygons])
    assert vertices.min() > -1e-6 and vertices.max() < 1 + 1e-6  # cells end on the box
    assert polygons[7].contains_point(centroids[7])
    colors = ax.collections[0].get_facecolors()
    assert not np.allclose(colors[7], 1.0) and np.allclose(colors[8], 1.0)  # filled vs empty (white)


def test_metric_curves_one_panel_per_metric():
    fig = plot_metrics({"num_evaluations": np.arange(5), "qd_score": np.arange(5.0), "coverage": np.ones(5)})
    assert [ax.get_title() for ax in fig.axes] == ["qd score", "coverage"]
