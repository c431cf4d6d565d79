"""The `qd` command line and run directories: files, resume, plots, bad options."""

import os
import tempfile

import jax
import numpy as np
import pytest
import yaml

import qd.archives
from qd import runner
from qd.cache import default_cache_dir
from qd.checkpoint import load_checkpoint, save_checkpoint
from qd.cli import main
from qd.config import ConfigError, resolve_config
from qd.tasks.registry import TaskSpec

TINY = {"task": "arm", "task_options": {"num_joints": 8}, "resolution": [10, 10], "batch_size": 32,
        "iterations": 9, "chunk_size": 2, "checkpoint_every": 4}


def tiny_config(tmp_path, **kw):
    return resolve_config({**TINY, "output_dir": str(tmp_path), **kw})


def test_run_writes_every_file_and_plot_redraws(tmp_path, capsys):
    code = main(["run", "--task", "arm", "--task-option", "num_joints=8", "--resolution", "10", "10",
                 "--batch-size", "32", "--iterations", "5", "--chunk-size", "2", "--output-dir", str(tmp_path),
                 "--run-name", "r", "--no-progress"])
    assert code == 0
    run_dir = tmp_path / "r"
    for name in ("config.yaml", "metrics.csv", "checkpoint.npz", "archive.npz", "archive.png", "metrics.png"):
        assert (run_dir / name).stat().st_size > 0, name
    metrics = runner.read_metrics(str(run_dir))
    np.testing.assert_array_equal(metrics["iteration"], np.arange(6))
    np.testing.assert_array_equal(metrics["num_evaluations"], 32 * np.arange(1, 7))
    archive = np.load(run_dir / "archive.npz")
    assert archive["filled"].sum() == metrics["num_elites"][-1]
    os.remove(run_dir / "archive.png")
    assert main(["plot", str(run_dir)]) == 0
    assert (run_dir / "archive.png").exists()


@pytest.mark.parametrize("devices", [1, 2])
def test_resume_after_interruption_gives_the_same_archive(tmp_path, devices):
    full, _ = runner.run(tiny_config(tmp_path, run_name="full", devices=devices), progress=False)

    def interrupt(done):
        if done == 6:
            raise KeyboardInterrupt

    config = tiny_config(tmp_path, run_name="cut", devices=devices)
    with pytest.raises(KeyboardInterrupt):
        runner.run(config, progress=False, on_chunk=interrupt)
    cut_dir = os.path.join(str(tmp_path), "cut")
    _, meta = load_checkpoint(os.path.join(cut_dir, runner.CHECKPOINT_FILE),
                              jax.eval_shape(runner.build_job(config).init, jax.random.PRNGKey(0))[0])
    assert meta["iteration"] == 4  # checkpoints every 4 iterations, on chunk boundaries
    with open(os.path.join(cut_dir, runner.METRICS_FILE), "a") as f:
        f.write("7,12.5,0.")  # a row half-written when the run was killed: resuming drops it
    assert main(["run", "--resume", cut_dir, "--no-progress"]) == 0
    _, resumed, meta = runner.load_run(cut_dir)
    assert meta["iteration"] == 9
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    metrics = runner.read_metrics(cut_dir)  # rows after the checkpoint were rewritten, not duplicated
    np.testing.assert_array_equal(metrics["iteration"], np.arange(10))
    np.testing.assert_array_equal(metrics["qd_score"], runner.read_metrics(os.path.join(str(tmp_path), "full"))["qd_score"])


def test_checkpoint_is_plain_numpy_and_checks_shapes(tmp_path):
    state = {"a": np.arange(3, dtype=np.float32), "k": jax.random.key(1), "n": {"b": np.ones((2, 2), np.int32)}}
    path = str(tmp_path / "c.npz")
    save_checkpoint(path, state, {"iteration": 7})
    restored, meta = load_checkpoint(path, state)
    assert meta == {"iteration": 7}
    np.testing.assert_array_equal(restored["n"]["b"], state["n"]["b"])
    np.testing.assert_array_equal(jax.random.key_data(restored["k"]), jax.random.key_data(state["k"]))
    abstract, _ = load_checkpoint(path, jax.eval_shape(lambda: state))  # a template from eval_shape
    np.testing.assert_array_equal(jax.random.key_data(abstract["k"]), jax.random.key_data(state["k"]))
    rbg = {"k": jax.random.key(2, impl="rbg")}
    save_checkpoint(path, rbg)
    restored_rbg, _ = load_checkpoint(path, jax.eval_shape(lambda: rbg))
    assert str(jax.random.key_impl(restored_rbg["k"])) == "rbg"
    save_checkpoint(path, state, {"iteration": 7})
    with pytest.raises(ValueError, match="shape"):
        load_checkpoint(path, {**state, "a": np.arange(4, dtype=np.float32)})
    assert sorted(f for f in os.listdir(tmp_path)) == ["c.npz"]  # no temporary left behind


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "nope"], "--task: unknown task 'nope'; accepted: "),
        (["--batch-size", "-4"], "--batch-size: must be a positive integer"),
        (["--archive", "kdtree"], "--archive: unknown value 'kdtree'; accepted: grid, cvt, dns"),
        (["--task", "arm", "--lower", "0", "0", "0"], "--lower: task 'arm' has 2 descriptor dimensions; got 3 values"),
        (["--task", "arm", "--resolution", "10", "10", "10"], "--resolution: expected 1 or 2 values; got 3"),
        (["--task-option", "joints"], "--task-option: expected KEY=VALUE"),
        (["--config", "missing.toml"], "--config: no such file"),
        (["--task", "arm", "--devices", "0"], "--devices: must be a positive integer or 'all'; got 0"),
        (["--task", "arm", "--devices", "some"], "--devices: must be a positive integer or 'all'; got 'some'"),
        (["--task", "arm", "--devices", "64"], "--devices: asked for 64 devices; this machine has 2"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    code = main(["run", "--output-dir", str(tmp_path), "--no-progress"] + argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "\n" not in err
    assert not any(tmp_path.iterdir())  # failed before creating a run directory


def test_config_file_toml_and_yaml(tmp_path):
    (tmp_path / "c.toml").write_text('task = "arm"\niterations = 3\nbatch_size = 16\n[task_options]\nnum_joints = 4\n')
    (tmp_path / "c.yaml").write_text("iterations: 3\nemitter: gaussian\nsigma: 0.2\n")
    from qd.config import load_config_file

    toml = resolve_config({"seed": 2}, load_config_file(str(tmp_path / "c.toml")))
    assert (toml["iterations"], toml["batch_size"], toml["task_options"], toml["seed"]) == (3, 16, {"num_joints": 4}, 2)
    yaml_config = resolve_config({"iterations": 5}, load_config_file(str(tmp_path / "c.yaml")))
    assert yaml_config["iterations"] == 5  # command line wins
    assert yaml_config["emitter"] == [{"name": "gaussian", "sigma": 0.2}]  # flat keys of before still load
    (tmp_path / "s.yaml").write_text("iterations: 3\nemitter: {name: gaussian, sigma: 0.3}\narchive: {name: cvt, num_cells: 64}\n")
    sections = resolve_config({"task": "arm"}, load_config_file(str(tmp_path / "s.yaml")))
    assert sections["emitter"] == [{"name": "gaussian", "sigma": 0.3}]
    assert sections["archive"] == {"name": "cvt", "lower": None, "upper": None, "num_cells": 64}
    assert resolve_config({"task": "arm", "sigma": 0.4}, load_config_file(str(tmp_path / "s.yaml")))["emitter"][0]["sigma"] == 0.4
    (tmp_path / "bad.yaml").write_text("iterationz: 3\n")
    with pytest.raises(ConfigError, match="unknown option 'iterationz'"):
        resolve_config({}, load_config_file(str(tmp_path / "bad.yaml")))


def test_default_job_is_map_elites_on_a_brax_task():
    config = resolve_config({})
    assert (config["algorithm"]["name"], config["task"], config["archive"]["name"]) == ("map_elites", "walker2d_uni", "cvt")
    assert config["emitter"] == [{"name": "iso_line", "iso_sigma": 0.005, "line_sigma": 0.05}]  # QDax's Brax sigmas
    assert config["archive"]["num_cells"] == 1024 and config["scheduler"] == {"name": "composite"}
    # The budget `qd run` is sized with (see qd/tasks/registry.py): 120 x 128 episodes of 250 steps.
    assert (config["iterations"], config["batch_size"], config["task_options"]["episode_length"]) == (120, 128, 250)
    assert config["devices"] == "all" and resolve_config({"task": "arm"})["devices"] == 1
    merged = resolve_config({"task_options": {"hidden_sizes": [8]}})
    assert merged["task_options"] == {"episode_length": 250, "hidden_sizes": [8]}  # merged, not replaced


def test_ctrl_c_prints_the_resume_command_with_the_real_run_dir(tmp_path, capsys, monkeypatch):
    real_run = runner.run

    def interrupt(done):
        if done == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", lambda config, **kw: real_run(config, on_chunk=interrupt, **kw))
    argv = ["run", "--task", "arm", "--task-option", "num_joints=4", "--resolution", "4", "--batch-size", "8",
            "--iterations", "6", "--chunk-size", "1", "--checkpoint-every", "2", "--compilation-cache", "false",
            "--output-dir", str(tmp_path), "--run-name", "cut", "--no-progress"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    run_dir = os.path.join(str(tmp_path), "cut")
    assert f"qd run --resume {run_dir}`" in err and "RUN_DIR" not in err and "Traceback" not in err
    assert main(["plot", run_dir]) == 0  # archive.npz is written with every checkpoint
    assert main(["run", "--resume", run_dir, "--no-progress"]) == 130  # interrupted again, same message
    assert f"qd run --resume {run_dir}`" in capsys.readouterr().err
    monkeypatch.setattr(runner, "run", real_run)
    assert main(["run", "--resume", run_dir, "--no-progress"]) == 0
    np.testing.assert_array_equal(runner.read_metrics(run_dir)["iteration"], np.arange(7))

    def interrupt_while_building(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "build_job", interrupt_while_building)
    assert main(argv[:-3] + ["--run-name", "early", "--no-progress"]) == 130
    assert "interrupted before the run directory was created: nothing to resume" in capsys.readouterr().err


_ALWAYS = {"algorithm", "task", "task_options", "batch_size", "iterations", "seed", "devices", "chunk_size",
           "checkpoint_every", "output_dir", "run_name", "compilation_cache"}


@pytest.mark.parametrize(
    "options, recorded",
    [
        ({"algorithm": "map_elites", "archive": "grid", "emitter": "iso_line"},
         {"archive": {"name": "grid", "lower": None, "upper": None, "resolution": [50, 50]},
          "emitter": [{"name": "iso_line", "iso_sigma": 0.01, "line_sigma": 0.2}], "scheduler": {"name": "composite"}}),
        ({"algorithm": "map_elites", "archive": "grid", "emitter": "gaussian"},
         {"archive": {"name": "grid", "lower": None, "upper": None, "resolution": [50, 50]},
          "emitter": [{"name": "gaussian", "sigma": 0.05}], "scheduler": {"name": "composite"}}),
        ({"algorithm": "map_elites", "archive": "cvt", "emitter": "iso_line"},
         {"archive": {"name": "cvt", "lower": None, "upper": None, "num_cells": 1024},
          "emitter": [{"name": "iso_line", "iso_sigma": 0.01, "line_sigma": 0.2}], "scheduler": {"name": "composite"}}),
        ({"algorithm": "map_elites", "archive": "cvt", "emitter": ["iso_line", "gaussian"], "scheduler": "bandit"},
         {"archive": {"name": "cvt", "lower": None, "upper": None, "num_cells": 1024},
          "emitter": [{"name": "iso_line", "iso_sigma": 0.01, "line_sigma": 0.2}, {"name": "gaussian", "sigma": 0.05}],
          "scheduler": {"name": "bandit", "num_active": 1, "zeta": 0.05, "reselect": "terminated", "window": None}}),
        ({"algorithm": "ns"}, {}),  # its own unstructured archive on the task's bounds, no emitter
        ({"algorithm": "random", "archive": "grid"}, {"archive": {"name": "grid", "lower": None, "upper": None, "resolution": [50, 50]}}),
        ({"algorithm": "random", "archive": "cvt"}, {"archive": {"name": "cvt", "lower": None, "upper": None, "num_cells": 1024}}),
    ],
)
def test_config_yaml_records_only_the_options_the_run_uses(tmp_path, options, recorded):
    config = resolve_config({"task": "point2d", "output_dir": str(tmp_path), **options})
    runner._write_config(str(tmp_path), config)
    with open(tmp_path / "config.yaml") as f:
        saved = yaml.safe_load(f)
    assert set(saved) == _ALWAYS | set(recorded)
    assert {k: saved[k] for k in recorded} == recorded
    algorithm = {"ns": {"name": "ns", "sigma": 0.05, "descriptor": "task", "trajectory_samples": 10, "signature_depth": 2}}.get(options["algorithm"], {"name": options["algorithm"]})
    assert saved["algorithm"] == algorithm  # novelty search's sigma is its own section's
    assert runner.read_config(str(tmp_path)) == config  # the rest is filled from the defaults


def test_progress_bar_shows_the_ground_truth_coverage_of_exploration_runs():
    ns = {"num_evaluations": np.array([10, 30]), "gt_coverage": np.array([0.5, 0.92]),
          "novelty_archive_fill": np.array([0.01, 0.015])}
    assert runner.progress_fields(ns) == {"evals": "30", "gt_cov": "92.0%"}
    sparse = {**ns, "reward_areas_found": np.array([0, 1]), "best_reward_area_0": np.array([0.0, 0.4]),
              "best_reward_area_1": np.array([0.0, 0.0])}
    assert runner.progress_fields(sparse) == {"evals": "30", "gt_cov": "92.0%", "areas": "1/2"}
    me = {"num_evaluations": np.array([8]), "qd_score": np.array([3.0]), "coverage": np.array([0.25]),
          "max_fitness": np.array([-0.5])}
    assert runner.progress_fields(me) == {"evals": "8", "qd_score": "3", "coverage": "25.0%", "max_fit": "-0.5"}
    assert runner.progress_fields({}) == {}


def test_plot_redraws_from_archive_and_metrics_without_the_task(tmp_path, monkeypatch, capsys):
    run_dir = str(tmp_path / "r")
    runner.run(tiny_config(tmp_path, run_name="r", iterations=2, compilation_cache=False), progress=False)
    assert qd.archives.read_archive_metadata(os.path.join(run_dir, "archive.npz"))["task"] == "arm"
    for name in ("archive.png", "metrics.png", "checkpoint.npz", "config.yaml"):
        os.remove(os.path.join(run_dir, name))  # plot needs neither the checkpoint nor the config

    def no_task(*args, **kwargs):
        raise AssertionError("qd plot built a task")

    monkeypatch.setattr(runner, "build_job", no_task)
    monkeypatch.setattr(TaskSpec, "make", no_task)
    assert main(["plot", run_dir]) == 0
    assert os.path.getsize(os.path.join(run_dir, "archive.png")) > 0
    archive, metadata = runner.load_run_archive(run_dir)
    title = runner.archive_title(archive, runner.read_metrics(run_dir), metadata)
    assert title == f"arm (map_elites): {int(archive.num_elites)} elites, coverage {float(archive.coverage):.1%}"


def test_tests_write_caches_under_a_temporary_folder(tmp_path):
    root = os.path.realpath(tempfile.gettempdir())
    assert os.path.realpath(default_cache_dir()).startswith(root + os.sep)
    assert os.path.realpath(os.environ["XDG_CACHE_HOME"]).startswith(root + os.sep)
    runner.run(tiny_config(tmp_path, run_name="c", iterations=1, compilation_cache=True), progress=False)
    assert os.path.realpath(jax.config.jax_compilation_cache_dir).startswith(root + os.sep)
