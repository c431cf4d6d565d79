"""`qd run` wiring of the exploration algorithms and sparse tasks (tiny budgets on point2d)."""

import os

import numpy as np
import pytest

from qd.cli import main
from qd import runner
from qd.runner import read_metrics


@pytest.mark.parametrize("algorithm", ["ns", "random", "map_elites"])
def test_qd_run_on_a_sparse_task(tmp_path, algorithm):
    args = ["run", "--algorithm", algorithm, "--task", "point2d", "--iterations", "3", "--chunk-size", "3",
            "--batch-size", "20", "--output-dir", str(tmp_path), "--run-name", algorithm, "--no-progress"]
    assert main(args) == 0
    run_dir = os.path.join(tmp_path, algorithm)
    metrics = read_metrics(run_dir)
    np.testing.assert_array_equal(metrics["iteration"], [0, 1, 2, 3])
    # Every algorithm reports the exploration metrics on a task with a ground truth, MAP-Elites included.
    assert "gt_coverage" in metrics and "uniformity" in metrics and "best_reward_area_3" in metrics
    assert np.all(np.diff(metrics["gt_coverage"]) >= 0) and metrics["gt_coverage"][-1] > 0
    assert "reward_areas_found" in metrics
    if algorithm == "ns":
        np.testing.assert_array_equal(metrics["num_evaluations"], [10, 30, 50, 70])  # 10 parents, 20 offspring
        np.testing.assert_array_equal(metrics["novelty_archive_size"], [0, 5, 10, 15])
    assert os.path.exists(os.path.join(run_dir, "archive.png"))
    if algorithm == "map_elites":  # sparse tasks have no Brax episode to replay: a one-line error
        assert main(["replay", run_dir]) == 2


def test_ns_run_resumes(tmp_path):
    common = ["--no-progress"]
    args = ["run", "--algorithm", "ns", "--task", "point2d", "--iterations", "4", "--chunk-size", "2",
            "--checkpoint-every", "2", "--batch-size", "20", "--output-dir", str(tmp_path), "--run-name", "a"] + common
    assert main(args) == 0
    run_dir = os.path.join(tmp_path, "a")
    assert main(["run", "--resume", run_dir, "--iterations", "6"] + common) == 0
    metrics = read_metrics(run_dir)
    np.testing.assert_array_equal(metrics["iteration"], np.arange(7))
    np.testing.assert_array_equal(metrics["novelty_archive_size"], 5 * np.arange(7))


def test_ns_progress_bar_and_archive_title_show_the_ground_truth_coverage(tmp_path, capsys):
    args = ["run", "--algorithm", "ns", "--task", "point2d", "--iterations", "3", "--chunk-size", "3",
            "--batch-size", "20", "--compilation-cache", "false", "--output-dir", str(tmp_path), "--run-name", "ns"]
    assert main(args) == 0  # with the progress bar
    err = capsys.readouterr().err
    metrics = read_metrics(os.path.join(tmp_path, "ns"))
    gt = metrics["gt_coverage"][-1]
    assert f"gt_cov={gt:.1%}" in err and "coverage=" not in err  # not the novelty archive's fill fraction
    archive, metadata = runner.load_run_archive(os.path.join(tmp_path, "ns"))
    assert runner.archive_title(archive, metrics, metadata) == (
        f"point2d (ns): novelty archive: 15 agents; ground-truth coverage {gt:.1%}"
    )
