"""`qd run --algorithm serene ...`: a budget-driven run directory (metrics up to the budget, SERENE's pictures,
`qd plot`), an exact resume from a checkpoint in the middle, the options from a config file, and the
one-line errors of a bad job. Tiny budget on point2d: 10 parents (20 evaluations a generation), chunks of
200 evaluations, 4 emitter slots."""

import os

import jax
import numpy as np
import pytest

from qd import runner
from qd.archives import load_archive
from qd.cli import main
from qd.config import resolve_config
from qd.runner import progress_fields, read_metrics

BUDGET, POPULATION = 600, 10
TINY = ["--algorithm", "serene", "--task", "point2d", "--batch-size", "20", "--budget", str(BUDGET),
        "--chunk-evaluations", "200", "--emitter-slots", "4", "--chunk-size", "10", "--checkpoint-every", "20",
        "--iterations", "1", "--no-progress"]  # --iterations is not used: the budget drives the run
PICTURES = ("archive.png", "metrics.png", "rewards.png", "coverage.png", "final_positions.png")


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """A finished tiny run (its folder)."""
    root = tmp_path_factory.mktemp("serene")
    assert main(["run", *TINY, "--output-dir", str(root), "--run-name", "full"]) == 0
    return str(root / "full")


def test_budget_driven_run_directory(full):
    for name in ("config.yaml", "metrics.csv", "checkpoint.npz", "archive.npz", "reward_archive.npz", *PICTURES):
        assert os.path.getsize(os.path.join(full, name)) > 0, name
    m = read_metrics(full)
    evals = m["num_evaluations"]
    # The run stops within one iteration (a generation of 20 or an emitter step of at most 12) of the budget,
    # and keeps no row after the iteration that reached it; every logged iteration evaluated something.
    assert BUDGET <= evals[-1] < BUDGET + 20 and np.all(evals[:-1] < BUDGET) and np.all(np.diff(evals) > 0)
    np.testing.assert_array_equal(m["iteration"], np.arange(len(evals)))
    assert m["phase"][-1] == 2 and np.all(m["phase"][:-1] != 2)
    np.testing.assert_array_equal(m["explore_evaluations"] + m["exploit_evaluations"] + POPULATION, evals)
    assert m["explore_evaluations"][-1] > 0 and m["exploit_evaluations"][-1] > 0 and m["reward_areas_found"][-1] >= 1
    fields = progress_fields(m)
    assert fields["explore"] == str(int(m["explore_evaluations"][-1]))
    assert fields["exploit"] == str(int(m["exploit_evaluations"][-1]))
    assert fields["best"] == "/".join(f"{m[f'best_reward_area_{i}'][-1]:.2f}" for i in range(4))
    rewards = load_archive(os.path.join(full, "reward_archive.npz"))
    assert int(rewards.num_elites) >= 1 and np.all(np.asarray(rewards.fitnesses)[np.asarray(rewards.filled)] > 0)
    for name in PICTURES:  # `qd plot` redraws them all from the run directory's files
        os.remove(os.path.join(full, name))
    assert main(["plot", full]) == 0
    assert all(os.path.getsize(os.path.join(full, name)) > 0 for name in PICTURES)


def test_resume_from_the_middle_is_exact(full, tmp_path):
    config = runner.read_config(full)

    def interrupt(done):
        if done == 30:  # after the checkpoint at iteration 20: the resumed run drops rows 21..30 and redoes them
            raise KeyboardInterrupt

    cut = str(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        runner.run({**config, "run_name": "cut"}, run_dir=cut, progress=False, on_chunk=interrupt)
    assert not os.path.exists(os.path.join(cut, "reward_archive.npz"))
    assert main(["run", "--resume", cut, "--no-progress"]) == 0
    _, a, _ = runner.load_run(full)
    _, b, _ = runner.load_run(cut)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)
    ma, mb = read_metrics(full), read_metrics(cut)
    assert sorted(ma) == sorted(mb)
    for k in ma:
        np.testing.assert_array_equal(ma[k], mb[k], err_msg=k)
    ra, rb = load_archive(os.path.join(full, "reward_archive.npz")), load_archive(os.path.join(cut, "reward_archive.npz"))
    np.testing.assert_array_equal(ra.descriptors, rb.descriptors)


def test_options_from_a_config_file(full, tmp_path):
    path = tmp_path / "serene.yaml"
    path.write_text("task: point2d\nbatch_size: 20\nalgorithm:\n  name: serene\n  budget: 600\n  chunk_evaluations: 200\n"
                    "  emitter_slots: 4\n  local_emitter: cma_es\n  mode: parallel\n  phase_scheduler: ucb\n")
    from qd.config import load_config_file

    section = resolve_config({}, load_config_file(str(path)))["algorithm"]
    assert section == {"name": "serene", "budget": 600, "local_emitter": "cma_es", "mode": "parallel",
                       "phase_scheduler": "ucb", "chunk_evaluations": 200, "emitter_slots": 4, "sigma": 0.05}
    recorded = runner.read_config(full)["algorithm"]  # config.yaml of the command-line run: the same options
    assert {**recorded, "local_emitter": "cma_es", "mode": "parallel", "phase_scheduler": "ucb"} == section


def test_phase_scheduler_choices_are_the_core_schedulers():
    from qd.algorithms.phase_schedulers import SCHEDULERS
    from qd.serene_jobs import PHASE_SCHEDULERS

    assert PHASE_SCHEDULERS == SCHEDULERS


@pytest.mark.parametrize("args,message", [
    (["--task", "point2d", "--budget", "100"], "--budget: 100 evaluations is less than one chunk (--chunk-evaluations 1000)"),
    (["--task", "point2d", "--batch-size", "1"], "--batch-size: SERENE's novelty search needs at least 2"),
    (["--task", "point2d", "--local-emitter", "cmaes"], "--local-emitter: unknown value 'cmaes'; accepted: fit, cma_es, novelty"),
])
def test_bad_jobs_fail_in_one_line_before_compiling(tmp_path, capsys, monkeypatch, args, message):
    from qd.algorithms import driver

    def no_compiling(*a, **k):
        raise AssertionError("a SERENE job was built")

    monkeypatch.setattr(driver.Driver, "__init__", no_compiling)
    assert main(["run", "--algorithm", "serene", *args, "--no-progress", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("qd run: error: ")
    assert not os.listdir(tmp_path)  # no run directory


def test_a_task_without_a_bounded_2d_ground_truth_is_rejected():
    from types import SimpleNamespace

    from qd.options import ConfigError
    from qd.serene_jobs import _ground_truth

    with pytest.raises(ConfigError, match="task 'hopper_uni' has a 1-D descriptor; SERENE needs a 2-D ground truth"):
        _ground_truth(SimpleNamespace(descriptor_bounds=((0.0,), (1.0,))), "hopper_uni")
    with pytest.raises(ConfigError, match="unbounded descriptors"):
        _ground_truth(SimpleNamespace(descriptor_bounds=((0.0, -np.inf), (1.0, np.inf))), "t")


def test_final_positions_plot_edge_cases():
    from qd.plotting import plot_final_positions

    # no reward area, an empty set, unbounded axes: the limits follow the points
    fig = plot_final_positions({"a": np.array([[0.0, 1.0], [2.0, 3.0]]), "b": np.zeros((0, 2))}, [], [],
                               ((-np.inf, -np.inf), (np.inf, np.inf)))
    (x0, x1), (y0, y1) = fig.axes[0].get_xlim(), fig.axes[0].get_ylim()
    assert x0 < 0.0 and x1 > 2.0 and y0 < 1.0 and y1 > 3.0
    with pytest.raises(ValueError, match="2 goal centres but 1 radii"):
        plot_final_positions({}, [[0, 0], [1, 1]], [0.1], ((0, 0), (1, 1)))
    with pytest.raises(ValueError, match="must be \\(N, 2\\)"):
        plot_final_positions({"a": np.zeros((3, 3))}, [], [], ((0, 0), (1, 1)))
