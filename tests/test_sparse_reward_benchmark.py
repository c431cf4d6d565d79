"""Smoke test of benchmarks/sparse_reward.py: the JSON keys and the plot of a tiny run, and its restarting CMA-ES
on a toy problem (restarts on a flat reward, then climbs once a reward is found)."""

import importlib.util
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from qd import Evaluation, GridArchive
from qd.algorithms import Driver
from qd.metrics import GroundTruth

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "sparse_reward.py")


def _module():
    spec = importlib.util.spec_from_file_location("sparse_reward_benchmark", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_the_keys(tmp_path, capsys):
    bench = _module()
    result = bench.main(["--tasks", "point2d", "--algorithms", "random", "--budget", "600", "--seeds", "2",
                         "--chunk", "2", "--out", str(tmp_path)])
    for key in ("areas_found", "best_reward", "wall_s", "gt_coverage", "compile_s", "train_share"):
        assert f"random_point2d_{key}" in result
    assert result["random_point2d_evaluations"] == 600
    assert (tmp_path / "point2d.png").exists()
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("{")


def test_restarting_cmaes_restarts_then_climbs():
    bench = _module()
    dim = 4

    def evaluate(genotypes, key=None):
        # reward only near (1, 1, ...): flat zero elsewhere; area 0 where rewarded
        d = jnp.linalg.norm(genotypes - 1.0, axis=1)
        reward = jnp.maximum(1.0 - d / 1.5, 0.0)
        area = jnp.where(reward > 0, 0, -1).astype(jnp.int32)
        desc = jnp.clip(genotypes[:, :2] / 5.0, -1.0, 1.0)
        return Evaluation(reward, desc, {"gt_descriptor": desc, "reward_area": area})

    sample = lambda key, n: jnp.clip(jax.random.normal(key, (n, dim)), -5.0, 5.0)
    algorithm = bench.RestartingCMAES(dim, sample, sigma0=0.3)
    truth = GroundTruth.create(((-1.0, -1.0), (1.0, 1.0)), 1)
    driver = Driver(algorithm, evaluate, ground_truth=truth)
    archive = GridArchive.create(jnp.zeros(dim), 10, (-1.0, -1.0), (1.0, 1.0))
    state, _ = driver.init(archive, jax.random.key(0))
    state, metrics = driver.scan(state, 400)
    assert int(metrics["num_evaluations"][-1]) == 400 * bench.CMA_POPULATION
    assert int(metrics["reward_areas_found"][-1]) == 1
    assert float(metrics["best_reward_area_0"][-1]) > 0.9
    assert np.all(np.diff(np.asarray(metrics["cmaes_restarts"])) >= 0)
