"""Plots: the pictures show what the archive holds, for every kind of archive and descriptor dimension."""

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from qd import CVTArchive, GridArchive, UnstructuredArchive
from qd.plotting import (
    grid_projection,
    plot_archive,
    plot_elites_scatter,
    plot_fitness_strip,
    plot_grid_heatmap,
    plot_metrics,
    plot_parallel_axes,
)
from qd.tasks.base import default_descriptor_names, descriptor_names

# A singular-limits warning, an all-NaN reduction or a NaN limit is a failure here.
pytestmark = pytest.mark.filterwarnings("error")

KINDS = ("grid", "cvt", "unstructured_bounded", "unstructured_unbounded")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _names(d):
    return tuple(f"axis {k + 1} (unit {k})" for k in range(d))


def _archive(kind: str, d: int, n: int = 12, seed: int = 0, offset: float = 0.0):
    """An archive of ``kind`` over ``[0, 1]^d`` (or unbounded), holding ``n`` random elites of distinct fitness
    whose descriptors are shifted by ``offset`` (outside the box when unbounded)."""
    rng = np.random.default_rng(seed)
    lower, upper = (0.0,) * d, (1.0,) * d
    if kind == "grid":
        archive = GridArchive.create(jnp.zeros(1), 3, lower, upper)
    elif kind == "cvt":
        centroids = rng.uniform(0, 1, (20, d)).astype(np.float32)
        archive = CVTArchive.create(genotype_template=jnp.zeros(1), lower=lower, upper=upper, centroids=centroids)
    else:
        bounds = dict(lower=lower, upper=upper) if kind == "unstructured_bounded" else {}
        archive = UnstructuredArchive.create(
            genotype_template=jnp.zeros(1), capacity=64, descriptor_dim=d, threshold=0.0, **bounds
        )
    if n == 0:
        return archive
    desc = jnp.asarray(rng.uniform(0, 1, (n, d)) + offset, jnp.float32)
    archive, _ = archive.add(jnp.zeros((n, 1)), desc, jnp.asarray(rng.permutation(n) - 3.5, jnp.float32))
    assert int(archive.num_elites) > 0
    return archive


def _panels(fig: Figure):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _colorbars(fig: Figure):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _assert_finite_increasing_limits(ax):
    for lo, hi in (ax.get_xlim(), ax.get_ylim()):
        assert np.isfinite(lo) and np.isfinite(hi) and lo < hi


# ------------------------------------------------------------------------------------------------- #
# Every kind, every dimension, empty or not
# ------------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("empty", [False, True], ids=["filled", "empty"])
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("kind", KINDS)
def test_every_archive_and_dimension_draws_a_labelled_picture(kind, d, empty):
    archive = _archive(kind, d, n=0 if empty else 12)
    names = _names(d)
    out = plot_archive(archive, descriptor_names=names)
    if d <= 2:
        assert isinstance(out, Axes)
        assert out.get_xlabel() == names[0]
        assert out.get_ylabel() == (names[1] if d == 2 else "fitness")
        _assert_finite_increasing_limits(out)
        fig = out.figure
        if d == 2:
            assert [cb.get_ylabel() for cb in _colorbars(fig)] == ["fitness"]
    else:
        assert isinstance(out, Figure)
        panels = _panels(out)
        assert len(panels) == d * (d - 1) // 2
        spans = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start): ax for ax in panels}
        assert set(spans) == {(r, c) for r in range(d - 1) for c in range(r + 1)}  # lower triangle
        # Bottom row: dimensions 0 .. d-2 along x; left column: dimensions 1 .. d-1 along y.
        assert [spans[d - 2, c].get_xlabel() for c in range(d - 1)] == list(names[:-1])
        assert [spans[r, 0].get_ylabel() for r in range(d - 1)] == list(names[1:])
        for (r, c), ax in spans.items():  # each panel is the pair (c, r + 1), in the archive's bounds
            assert ax.get_xlabel() == names[c] and ax.get_ylabel() == names[r + 1]
            _assert_finite_increasing_limits(ax)
        assert [cb.get_ylabel() for cb in _colorbars(out)] == ["fitness"]
    out.canvas.draw() if isinstance(out, Figure) else out.figure.canvas.draw()  # renders without warnings


@pytest.mark.parametrize("d", [1, 2, 3])
def test_default_axis_names_are_descriptor_i(d):
    out = plot_archive(_archive("grid", d))
    ax = out if d <= 2 else [a for a in _panels(out) if a.get_subplotspec().rowspan.start == 0][0]  # dims (0, 1)
    assert ax.get_xlabel() == "descriptor 1"
    assert ax.get_ylabel() == ("fitness" if d == 1 else "descriptor 2")


# ------------------------------------------------------------------------------------------------- #
# The values drawn
# ------------------------------------------------------------------------------------------------- #
def test_grid_heatmap_image_is_the_fitness_grid_with_descriptor_1_along_x():
    archive = GridArchive.create(jnp.zeros(1), (4, 3), (0.0, -1.0), (4.0, 2.0))
    desc = jnp.asarray([[3.5, -0.5], [0.5, 1.5], [1.5, 0.5], [2.5, 1.9]])
    archive, _ = archive.add(jnp.zeros((4, 1)), desc, jnp.asarray([1.0, 2.0, -3.0, 4.5]))
    ax = plot_archive(archive, descriptor_names=("width", "height"))
    image = np.ma.filled(np.ma.asarray(ax.images[0].get_array(), float), np.nan)
    expected = np.full((4, 3), np.nan)  # [cell along descriptor 1, cell along descriptor 2]
    expected[3, 0], expected[0, 2], expected[1, 1], expected[2, 2] = 1.0, 2.0, -3.0, 4.5
    np.testing.assert_array_equal(image, expected.T)  # rows = descriptor 2 (from the bottom), columns = descriptor 1
    assert ax.images[0].origin == "lower"
    assert tuple(ax.images[0].get_extent()) == (0.0, 4.0, -1.0, 2.0)
    np.testing.assert_array_equal(grid_projection(archive), expected)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("width", "height")


def test_grid_bars_are_the_elites_fitnesses_at_their_cells():
    archive = GridArchive.create(jnp.zeros(1), 5, (0.0,), (10.0,))
    archive, _ = archive.add(jnp.zeros((3, 1)), jnp.asarray([[0.5], [4.1], [9.9]]), jnp.asarray([-1.5, 2.0, 3.25]))
    ax = plot_archive(archive, descriptor_names=("foot contact fraction",))
    bars = ax.patches
    np.testing.assert_allclose([b.get_height() for b in bars], [-1.5, 2.0, 3.25])
    np.testing.assert_allclose([b.get_x() + b.get_width() / 2 for b in bars], [1.0, 5.0, 9.0])  # cell centres
    np.testing.assert_allclose([b.get_width() for b in bars], [2.0, 2.0, 2.0])
    assert ax.get_xlim() == (0.0, 10.0)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("foot contact fraction", "fitness")


@pytest.mark.parametrize("kind", ["cvt", "unstructured_bounded", "unstructured_unbounded"])
def test_one_dimensional_strip_plots_descriptor_against_fitness(kind):
    archive = _archive(kind, 1, n=8, offset=5.0 if kind == "unstructured_unbounded" else 0.0)
    ax = plot_archive(archive)
    points = ax.collections[0].get_offsets()
    filled = np.asarray(archive.filled)
    expected = np.stack([np.asarray(archive.descriptors)[filled, 0], np.asarray(archive.fitnesses)[filled]], 1)
    order = np.argsort(expected[:, 1])
    np.testing.assert_allclose(np.asarray(points), expected[order])


def test_grid_projection_shows_the_best_fitness_over_the_other_dimensions():
    archive = _archive("grid", 3, n=40, seed=3)
    fig = plot_archive(archive)
    fit = np.where(np.asarray(archive.filled), np.asarray(archive.fitnesses), -np.inf).reshape(3, 3, 3)
    reference = np.full((3, 3), np.nan)  # dims (0, 2): best over dimension 1, cell by cell
    for a in range(3):
        for c in range(3):
            best = max(fit[a, b, c] for b in range(3))
            reference[a, c] = best if np.isfinite(best) else np.nan
    np.testing.assert_array_equal(grid_projection(archive, (0, 2)), reference)
    np.testing.assert_array_equal(grid_projection(archive, (2, 0)), reference.T)
    panel = next(ax for ax in _panels(fig) if ax.get_subplotspec().rowspan.start == 1
                 and ax.get_subplotspec().colspan.start == 0)  # row j - 1 = 1, column i = 0
    image = np.ma.filled(np.ma.asarray(panel.images[0].get_array(), float), np.nan)
    np.testing.assert_array_equal(image, reference.T)
    # The same picture, one panel at a time.
    ax = plot_grid_heatmap(archive, dims=(0, 2))
    np.testing.assert_array_equal(np.ma.filled(np.ma.asarray(ax.images[0].get_array(), float), np.nan), reference.T)


def test_cvt_heatmap_draws_one_bounded_polygon_per_cell():
    centroids = np.random.default_rng(0).uniform(0, 1, (50, 2))
    archive = CVTArchive.create(genotype_template=jnp.zeros(1), lower=(0, 0), upper=(1, 1), centroids=centroids)
    archive, _ = archive.add(jnp.zeros((1, 1)), jnp.asarray(centroids[7:8], jnp.float32), jnp.ones(1))
    ax = plot_archive(archive, descriptor_names=("x", "y"))
    polygons = ax.collections[0].get_paths()
    assert len(polygons) == 50
    vertices = np.concatenate([p.vertices for p in polygons])
    assert vertices.min() > -1e-6 and vertices.max() < 1 + 1e-6  # cells end on the box
    assert polygons[7].contains_point(centroids[7])
    colors = ax.collections[0].get_facecolors()
    assert not np.allclose(colors[7], 1.0) and np.allclose(colors[8], 1.0)  # filled vs empty (white)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")


def test_parallel_axes_draw_one_line_per_elite_through_its_scaled_descriptors():
    archive = _archive("unstructured_bounded", 4, n=10)
    ax = plot_parallel_axes(archive, descriptor_names=_names(4))
    lines = ax.collections[0].get_segments()
    filled = np.asarray(archive.filled)
    desc, fit = np.asarray(archive.descriptors)[filled], np.asarray(archive.fitnesses)[filled]
    np.testing.assert_allclose(np.stack(lines)[..., 1], desc[np.argsort(fit)], rtol=1e-6)  # bounds [0, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(_names(4))


# ------------------------------------------------------------------------------------------------- #
# Unbounded archives
# ------------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("d", [1, 2, 3])
def test_unbounded_limits_are_finite_and_contain_every_elite(d):
    archive = _archive("unstructured_unbounded", d, n=15, offset=-250.0)  # far outside any default box
    desc = np.asarray(archive.descriptors)[np.asarray(archive.filled)]
    out = plot_archive(archive)
    panels = [out] if d <= 2 else _panels(out)
    for ax in panels:
        _assert_finite_increasing_limits(ax)
        i = ax.get_xlabel().split()[-1]
        dims = [int(i) - 1] + ([int(ax.get_ylabel().split()[-1]) - 1] if d > 1 else [])
        for k, (lo, hi) in zip(dims, (ax.get_xlim(), ax.get_ylim())):
            assert lo < desc[:, k].min() and desc[:, k].max() < hi
            assert hi - lo < 2 * (desc[:, k].max() - desc[:, k].min())  # the data's extent, not a fixed box
    if d >= 2:
        ax = plot_elites_scatter(archive)
        _assert_finite_increasing_limits(ax)
        assert ax.get_xlim()[0] < desc[:, 0].min() and desc[:, 0].max() < ax.get_xlim()[1]


def test_unbounded_archive_with_one_elite_or_none_gets_a_nonsingular_box():
    archive = _archive("unstructured_unbounded", 2, n=0)
    ax = plot_elites_scatter(archive)
    assert ax.get_xlim() == pytest.approx((-1.1, 1.1)) and ax.get_ylim() == pytest.approx((-1.1, 1.1))
    archive, _ = archive.add(jnp.zeros((1, 1)), jnp.asarray([[3.0, -7.0]]), jnp.ones(1))
    ax = plot_elites_scatter(archive)
    assert ax.get_xlim() == pytest.approx((2.5, 3.5)) and ax.get_ylim() == pytest.approx((-7.5, -6.5))
    ax = plot_fitness_strip(_archive("unstructured_unbounded", 1, n=1, offset=40.0))
    _assert_finite_increasing_limits(ax)


# ------------------------------------------------------------------------------------------------- #
# Bad input
# ------------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", [1, 2, 4])
def test_descriptor_names_of_the_wrong_length_are_refused(kind, d):
    archive = _archive(kind, d)
    with pytest.raises(ValueError, match=f"{d} dimensions"):
        plot_archive(archive, descriptor_names=_names(d + 1))
    with pytest.raises(ValueError, match="single string"):
        plot_archive(archive, descriptor_names="x")


def test_bad_dims_and_multi_panel_in_one_axes_are_refused():
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="grid of 6 panels"):
        plot_archive(_archive("grid", 4), ax=ax)
    with pytest.raises(ValueError, match="dims"):
        plot_elites_scatter(_archive("cvt", 3), dims=(0, 3))
    with pytest.raises(ValueError, match="dims"):
        plot_elites_scatter(_archive("cvt", 3), dims=(1, 1))
    with pytest.raises(ValueError, match="dims"):
        plot_elites_scatter(_archive("unstructured_bounded", 1))
    with pytest.raises(ValueError, match="at least 2"):
        plot_grid_heatmap(_archive("grid", 1))


# ------------------------------------------------------------------------------------------------- #
# Tasks name their descriptor axes
# ------------------------------------------------------------------------------------------------- #
def _function_and_sparse_tasks():
    from qd.tasks.functions import Arm, Rastrigin, Sphere
    from qd.tasks.sparse.ant_maze import AntMaze
    from qd.tasks.sparse.curling import Curling
    from qd.tasks.sparse.hard_maze import HardMaze
    from qd.tasks.sparse.point2d import Point2D
    from qd.tasks.sparse.redundant_arm import RedundantArm

    # AntMaze builds its Brax system on construction; its names do not depend on it.
    return [Arm(num_joints=4), Sphere(num_params=6), Rastrigin(num_params=6), Curling(), HardMaze(), Point2D(),
            RedundantArm(), object.__new__(AntMaze)]


def test_every_task_names_each_descriptor_dimension():
    for task in _function_and_sparse_tasks():
        d = len(task.descriptor_bounds[0])
        names = task.descriptor_names
        assert isinstance(names, tuple) and len(names) == d, type(task).__name__
        assert len(set(names)) == d and all(isinstance(n, str) and n for n in names)
        assert names != default_descriptor_names(d)
        assert descriptor_names(task, d) == names
    assert _function_and_sparse_tasks()[0].descriptor_names == ("end-effector x", "end-effector y")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("hopper_uni", ("foot contact fraction",)),
        ("walker2d_uni", ("foot contact fraction", "foot_left contact fraction")),
        ("halfcheetah_uni", ("back foot (bfoot) contact fraction", "front foot (ffoot) contact fraction")),
        ("ant_omni", ("final torso x (m)", "final torso y (m)")),
        ("humanoid_omni", ("final torso x (m)", "final torso y (m)")),
    ],
)
def test_brax_tasks_name_their_descriptor_axes(name, expected):
    from qd.tasks.brax.tasks import DEFINITIONS, BraxTask

    definition = DEFINITIONS[name]
    links = definition.link_indices or tuple(range(len(definition.links)))  # indices are not read by the names
    task = BraxTask(name=name, env=None, policy=None, episode_length=10, descriptor_kind=definition.descriptor,
                    descriptor_links=links)
    assert task.descriptor_names == expected
    assert len(task.descriptor_names) == task.descriptor_dim


def test_ant_uni_names_its_four_feet():
    from qd.tasks.brax.tasks import DEFINITIONS, BraxTask

    task = BraxTask(name="ant_uni", env=None, policy=None, episode_length=10, descriptor_kind="feet_contact",
                    descriptor_links=DEFINITIONS["ant_uni"].link_indices)
    assert len(task.descriptor_names) == 4 == len(set(task.descriptor_names))
    assert all(n.endswith("foot contact fraction") for n in task.descriptor_names)


def test_descriptor_names_helper_defaults_and_checks_the_dimension():
    def plain_task(genotypes, key):  # a plain evaluate function is a task too
        raise NotImplementedError

    assert descriptor_names(plain_task, 3) == ("descriptor 1", "descriptor 2", "descriptor 3")
    from qd.tasks.sparse.curling import Curling

    with pytest.raises(ValueError, match="3 dimensions"):
        descriptor_names(Curling(), 3)
    with pytest.raises(ValueError, match="positive integer"):
        default_descriptor_names(0)


# ------------------------------------------------------------------------------------------------- #
# Metric curves
# ------------------------------------------------------------------------------------------------- #
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
