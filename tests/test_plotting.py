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


def test_metric_curves_of_an_exploration_run_show_the_exploration_metrics():
    # The columns a novelty-search / random-search run writes to metrics.csv (archive metrics included).
    n = np.arange(6.0)
    metrics = {"iteration": n, "num_evaluations": 200 * n, "qd_score": n, "coverage": n / 10, "max_fitness": n,
               "mean_fitness": n, "num_elites": n, "gt_coverage": n / 20, "uniformity": 1 - n / 50,
               "reward_areas_found": np.minimum(n, 3), "archive_size": 5 * n}
    for i in (0, 1, 2, 10):  # numeric order, not text order
        metrics[f"best_reward_area_{i}"] = n * (i + 1) / 100
    fig = plot_metrics(metrics)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["ground-truth coverage", "uniformity", "reward areas found", "best reward per area"]
    assert all(ax.get_xlabel() == "num evaluations" for ax in fig.axes)
    per_area = fig.axes[3]
    assert [line.get_label() for line in per_area.get_lines()] == ["area 0", "area 1", "area 2", "area 10"]
    np.testing.assert_allclose(per_area.get_lines()[3].get_ydata(), metrics["best_reward_area_10"])
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), metrics["num_evaluations"])
    # A MAP-Elites run keeps its QD curves; explicit keys still choose the panels.
    qd_only = {k: metrics[k] for k in ("num_evaluations", "qd_score", "coverage", "max_fitness", "mean_fitness")}
    titles = [ax.get_title() for ax in plot_metrics(qd_only).axes]
    assert titles == ["qd score", "coverage", "max fitness", "mean fitness"]
    titles = [ax.get_title() for ax in plot_metrics(metrics, keys=("qd_score", "uniformity")).axes]
    assert titles == ["qd score", "uniformity"]
