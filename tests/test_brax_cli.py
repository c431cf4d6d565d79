"""`qd run` / `qd replay` end to end on a Brax task with a tiny budget."""

import os
import subprocess
import sys

import numpy as np
import pytest

from qd import runner
from qd.archives import read_archive_metadata
from qd.cli import main

TINY_BRAX = ["--task", "hopper_uni", "--task-option", "episode_length=12", "--task-option", "hidden_sizes=[8]",
             "--batch-size", "8", "--iterations", "4", "--chunk-size", "2", "--num-cells", "16", "--no-progress"]


def test_brax_run_writes_every_file_and_replays_an_elite(tmp_path, capsys):
    assert main(["run", *TINY_BRAX, "--output-dir", str(tmp_path), "--run-name", "hop"]) == 0
    run_dir = tmp_path / "hop"
    for name in ("config.yaml", "metrics.csv", "checkpoint.npz", "archive.npz", "archive.png", "metrics.png"):
        assert (run_dir / name).stat().st_size > 0, name
    metrics = runner.read_metrics(str(run_dir))
    np.testing.assert_array_equal(metrics["num_evaluations"], 8 * np.arange(1, 6))
    assert metrics["num_elites"][-1] >= 1
    archive = np.load(run_dir / "archive.npz")
    # One foot: the descriptor is the fraction of steps it touches the ground.
    filled = archive["filled"]
    assert ((archive["descriptors"][filled] >= 0) & (archive["descriptors"][filled] <= 1)).all()

    assert main(["replay", str(run_dir)]) == 0
    page = (run_dir / "replay_best.html").read_text()
    assert "<html" in page.lower() and len(page) > 1000
    empty = int(np.nonzero(~filled)[0][0])
    assert main(["replay", str(run_dir), "--elite", str(empty)]) == 2
    assert f"cell {empty} is empty" in capsys.readouterr().err


def test_replay_needs_a_brax_run(tmp_path, capsys):
    assert main(["run", "--task", "arm", "--task-option", "num_joints=4", "--resolution", "4", "--batch-size", "4",
                 "--iterations", "1", "--output-dir", str(tmp_path), "--run-name", "a", "--no-progress"]) == 0
    assert main(["replay", str(tmp_path / "a")]) == 2
    assert "Brax tasks only" in capsys.readouterr().err


def _qd(*argv, code=None):
    exe = [os.path.join(os.path.dirname(sys.executable), "qd")] if code is None else [sys.executable, "-c", code]
    return subprocess.run([*exe, *argv], capture_output=True, text=True, timeout=300)


NOISE = ("Failed to import warp", "Failed to import mujoco_warp", "not actively being maintained", "Traceback")

PLOT_WITHOUT_BRAX = """
import sys
from qd.cli import main
code = main(["plot", sys.argv[1]])
assert code == 0 and not any(m == "brax" or m.startswith(("brax.", "mujoco")) for m in sys.modules), sorted(sys.modules)
"""


def test_brax_commands_print_no_third_party_noise_and_plot_needs_no_brax(tmp_path):
    tasks = _qd("tasks")
    run = _qd("run", *TINY_BRAX, "--iterations", "1", "--compilation-cache", "false", "--output-dir", str(tmp_path),
              "--run-name", "hop")
    for result in (tasks, run):
        assert result.returncode == 0, result.stderr
        for noise in NOISE:
            assert noise not in result.stdout + result.stderr, (noise, result.stdout, result.stderr)
    assert "hopper_uni" in tasks.stdout
    assert run.stdout.strip() == f"run directory: {tmp_path / 'hop'}"
    metadata = read_archive_metadata(str(tmp_path / "hop" / "archive.npz"))
    assert metadata["task"] == "hopper_uni" and metadata["algorithm"] == "map_elites"
    assert len(metadata["descriptor_names"]) == 1  # one foot
    os.remove(tmp_path / "hop" / "archive.png")
    plot = _qd(str(tmp_path / "hop"), code=PLOT_WITHOUT_BRAX)
    assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "hop" / "archive.png").stat().st_size > 0
