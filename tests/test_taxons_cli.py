"""`qd run --algorithm taxons ...`: the run directory of a learned behaviour space, and an exact resume
across AE trainings (tiny budget on point2d: 10 parents, trainings after generations 2 and 6)."""

import os

import jax
import numpy as np
import pytest

from qd import runner
from qd.cli import main
from qd.runner import progress_fields, read_metrics

TINY = ["--task", "point2d", "--batch-size", "20", "--exploration-chunk", "40", "--ae-max-epochs", "2",
        "--iterations", "6", "--chunk-size", "2", "--checkpoint-every", "2", "--no-progress"]


def test_taxons_run_directory_and_exact_resume_across_trainings(tmp_path):
    assert main(["run", "--algorithm", "taxons", *TINY, "--output-dir", str(tmp_path), "--run-name", "full"]) == 0
    full_dir = str(tmp_path / "full")
    metrics = read_metrics(full_dir)
    np.testing.assert_array_equal(metrics["ae_trainings"], [0, 0, 1, 1, 1, 1, 2])
    assert np.all(np.isfinite(metrics["ae_loss"][2:])) and np.isnan(metrics["ae_loss"][0])
    for name in ("latent_space.png", "reconstructions.png", "archive.png", "metrics.png"):
        assert os.path.getsize(os.path.join(full_dir, name)) > 0, name
    archive, metadata = runner.load_run_archive(full_dir)
    assert archive.descriptor_dim == 10 and metadata["descriptor_names"][0] == "latent 1"
    fields = progress_fields(metrics)
    assert fields["trainings"] == "2" and fields["ae_loss"] == f"{metrics['ae_loss'][-1]:.4g}"

    config = runner.read_config(full_dir)

    def interrupt(done):
        if done == 4:  # after the first training, before the second
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run({**config, "run_name": "cut"}, run_dir=str(tmp_path / "cut"), progress=False, on_chunk=interrupt)
    assert main(["run", "--resume", str(tmp_path / "cut"), "--no-progress"]) == 0
    _, full, _ = runner.load_run(full_dir)
    _, resumed, _ = runner.load_run(str(tmp_path / "cut"))
    assert int(resumed.algo.ae.num_trainings) == 2  # the AE's parameters and Adam state were checkpointed
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(read_metrics(str(tmp_path / "cut"))["ae_loss"], metrics["ae_loss"])


# The genotype (ps) and random (rbd) descriptors are checked on the algorithm (tests/test_taxons.py); here the
# two baselines whose job does more: ibd's image archive is sized to the run, nt runs with two views.
@pytest.mark.parametrize("algorithm,extra,dim", [
    ("ibd", [], 64 * 64 * 3),
    ("nt", ["--views", "2"], 20),  # STAX's multi: two frames per agent, their latents concatenated
])
def test_baselines_and_views_run_from_the_command_line(tmp_path, algorithm, extra, dim):
    args = ["run", "--algorithm", algorithm, "--task", "hard_maze", "--task-option", "num_steps=20", "--batch-size", "20",
            "--iterations", "2", "--chunk-size", "2", "--no-progress", "--output-dir", str(tmp_path), "--run-name", algorithm,
            *extra]
    assert main(args) == 0
    archive, _ = runner.load_run_archive(str(tmp_path / algorithm))
    assert archive.descriptor_dim == dim and int(archive.num_elites) == 10
    if algorithm == "ibd":  # 48 kB per slot: the archive holds what 2 generations (+ the first) can fill
        assert archive.capacity == 15
    metrics = read_metrics(str(tmp_path / algorithm))
    assert ("ae_loss" in metrics) == (algorithm == "nt") and np.all(metrics["ae_trainings" if algorithm == "nt" else "iteration"] >= 0)
