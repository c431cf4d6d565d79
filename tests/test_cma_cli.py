"""The CMA-ES emitter family on the command line (#10): ``--emitter cma_me_imp|cma_me_opt|cma_me_rd|cma_mae``,
their options, the batch split over CMA-ES instances, CMA-MAE's two archives, exact resume."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from qd import runner
from qd.cli import main
from qd.components import cma_split, flat_genotype_dim
from qd.config import ConfigError, resolve_config
from qd.jobs import BuildContext
from qd.tasks.registry import get_task_spec

SPHERE = ["--task", "sphere", "--task-option", "num_params=6", "--resolution", "8", "--batch-size", "16",
          "--chunk-size", "2", "--no-progress"]  # the compilation cache: the session's temporary one


def make_task(name, **options):
    return get_task_spec(name).make(**options)


def _emitter(argv_config):
    config = resolve_config(argv_config)
    return runner.build_emitter(config, make_task(config["task"], **config["task_options"]))


@pytest.mark.parametrize(
    "name, cls", [("cma_me_imp", "ImprovementEmitter"), ("cma_me_opt", "OptimizingEmitter"),
                  ("cma_me_rd", "RandomDirectionEmitter"), ("cma_mae", "CMAMAEEmitter")],
)
def test_each_cma_emitter_is_built_from_its_options(name, cls):
    # sphere at 100-D, the papers' 540 per iteration: CMA-ES's default population there is 4 + 3 ln 100 = 17,
    # so the default is the most instances that keep >= 17 each: 30 x 18.
    base = {"task": "sphere", "task_options": {"num_params": 100}, "batch_size": 540, "emitter": name}
    emitter = _emitter(base)
    assert type(emitter).__name__ == cls
    assert (emitter.genotype_dim, emitter.num_instances, emitter.population, emitter.batch_size) == (100, 30, 18, 540)
    assert emitter.sigma0 == 0.5 and emitter.clip is None
    emitter = _emitter({**base, "num_instances": 15, "sigma0": 0.2})
    assert (emitter.num_instances, emitter.population, emitter.sigma0) == (15, 36, 0.2)
    arm = _emitter({"task": "arm", "task_options": {"num_joints": 4}, "batch_size": 8, "emitter": name})
    assert (arm.num_instances, arm.population, arm.clip) == (1, 8, make_task("arm", num_joints=4).genotype_bounds)


def test_the_batch_split_over_cma_instances():
    assert cma_split(None, 540, 100, "e") == (30, 18)
    assert cma_split(None, 10, 100, "e") == (1, 10)  # below the default population: one instance of them all
    assert cma_split(None, 37, 10, "e") == (1, 37)  # a prime batch
    assert cma_split(4, 36, 10, "e") == (4, 9)
    with pytest.raises(ConfigError, match="do not split evenly over 5 CMA-ES instances"):
        cma_split(5, 36, 10, "e")
    with pytest.raises(ConfigError, match="population of 1 per CMA-ES instance"):
        cma_split(36, 36, 10, "e")


class _PolicyTask:
    descriptor_bounds = ([0.0], [1.0])

    def initial_genotypes(self, key, n):
        return {"w": jnp.zeros((n, 3, 2)), "b": jnp.zeros((n, 2))}


def test_cma_emitters_need_a_flat_genotype():
    ctx = BuildContext({"task": "policy"}, _PolicyTask(), {})
    with pytest.raises(ConfigError, match=r"--emitter cma_me_imp needs a flat genotype \(one vector\); task 'policy' "
                                          r"has 2 array\(s\) of shapes \(2,\), \(3, 2\); use iso_line or gaussian"):
        flat_genotype_dim(ctx, "--emitter cma_me_imp")


def test_cma_me_emitters_run_side_by_side_and_improve_the_archive(tmp_path):
    """On the arm, whose genotypes are bounded: the samples are clipped (and cma_me_opt's "mu" selection
    with bounds is traced)."""
    names = ["cma_me_imp", "cma_me_opt", "cma_me_rd"]
    arm = ["--task", "arm", "--task-option", "num_joints=5", *SPHERE[4:]]
    assert main(["run", *arm, "--batch-size", "24", "--emitter", *names, "--iterations", "6",
                 "--output-dir", str(tmp_path), "--run-name", "r"]) == 0
    genotypes = np.load(tmp_path / "r" / "archive.npz")["genotypes"]
    low, high = make_task("arm", num_joints=5).genotype_bounds
    assert genotypes.min() >= low and genotypes.max() <= high
    metrics = runner.read_metrics(str(tmp_path / "r"))
    np.testing.assert_array_equal(metrics["iteration"], np.arange(7))
    assert np.all(np.diff(metrics["qd_score"]) >= 0) and metrics["coverage"][-1] > metrics["coverage"][0]
    with open(tmp_path / "r" / "config.yaml") as f:
        assert yaml.safe_load(f)["emitter"] == [{"name": n, "sigma0": 0.5, "num_instances": None} for n in names]


def test_cma_mae_reports_its_result_archive_and_resumes_exactly(tmp_path):
    """The result archive holds the best candidate ever seen per cell, so its QD-score is never below the
    optimisation archive's; a run cut after a checkpoint resumes to the very same state (both archives)."""
    options = [*SPHERE, "--emitter", "cma_mae", "--alpha", "0.1", "--iterations", "6", "--checkpoint-every", "2"]
    assert main(["run", *options, "--output-dir", str(tmp_path), "--run-name", "full"]) == 0
    metrics = runner.read_metrics(str(tmp_path / "full"))
    assert np.all(metrics["qd_score"] >= metrics["optimizer_qd_score"] - 1e-3)
    assert np.all(metrics["coverage"] >= metrics["optimizer_coverage"])
    assert np.all(np.diff(metrics["qd_score"]) >= 0)  # true elites are never lost
    config = runner.read_config(str(tmp_path / "full"))
    assert config["emitter"][0] == {"name": "cma_mae", "sigma0": 0.5, "num_instances": None, "alpha": 0.1,
                                    "threshold_min": None}

    def interrupt(done):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run({**config, "run_name": "cut"}, progress=False, on_chunk=interrupt)
    assert main(["run", "--resume", str(tmp_path / "cut"), "--no-progress"]) == 0
    _, full, _ = runner.load_run(str(tmp_path / "full"))
    _, resumed, _ = runner.load_run(str(tmp_path / "cut"))
    assert type(full.optimizer_archive).__name__ == "ThresholdGridArchive" and full.optimizer_archive.learning_rate == 0.1
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    saved = np.load(tmp_path / "full" / "archive.npz")
    np.testing.assert_array_equal(saved["fitnesses"], np.asarray(full.archive.fitnesses))  # the result archive
