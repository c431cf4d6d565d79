"""Composition (#10): registries with typed configurations, generated command-line options and config
sections, one-line errors before anything compiles, old run directories, no import cycles."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from pydantic import Field

from qd import runner
from qd.cli import _parser, main
from qd.components import EMITTERS, REGISTRIES
from qd.config import ConfigError, load_config_file, resolve_config
from qd.options import Model, PositiveFloat

DATA = os.path.join(os.path.dirname(__file__), "data", "old_run_dirs")
TINY = ["--task", "arm", "--task-option", "num_joints=4", "--resolution", "4", "--batch-size", "8",
        "--iterations", "3", "--chunk-size", "1", "--compilation-cache", "false", "--no-progress"]


class TinyConfig(Model):
    tiny_scale: PositiveFloat = Field(0.3, description="tiny emitter: its Gaussian sigma")


def build_tiny(cfg, ctx, batch_size):
    from emitters import GaussianEmitter

    return GaussianEmitter(batch_size=batch_size, sigma=cfg.tiny_scale)


@pytest.fixture
def tiny_emitter():
    EMITTERS.register("tiny", TinyConfig, build_tiny, "a test's emitter")
    try:
        yield
    finally:
        EMITTERS.unregister("tiny")


def test_a_new_emitter_is_one_registration(tiny_emitter, tmp_path, capsys):
    """Its option on the command line, its section in files and config.yaml, its errors: no other edit."""
    help_text = _parser().commands["run"].format_help()
    assert "--tiny-scale" in help_text and "tiny emitter: its Gaussian sigma [emitter tiny]" in " ".join(help_text.split())
    assert main(["run", *TINY, "--emitter", "tiny", "--tiny-scale", "0.2", "--output-dir", str(tmp_path),
                 "--run-name", "t"]) == 0
    with open(tmp_path / "t" / "config.yaml") as f:
        assert yaml.safe_load(f)["emitter"] == [{"name": "tiny", "tiny_scale": 0.2}]
    assert main(["run", "--resume", str(tmp_path / "t"), "--iterations", "4", "--no-progress"]) == 0
    (tmp_path / "c.yaml").write_text("emitter: {name: tiny, tiny_scale: 0.5}\n")
    assert resolve_config({"task": "arm"}, load_config_file(str(tmp_path / "c.yaml")))["emitter"] == [
        {"name": "tiny", "tiny_scale": 0.5}]
    capsys.readouterr()
    assert main(["run", *TINY, "--emitter", "tiny", "--tiny-scale", "-1", "--output-dir", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == "qd run: error: --tiny-scale: must be a positive number; got -1.0"
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "argv, file, message",
    [
        (["--emitter", "nope"], None, "--emitter: unknown value 'nope'; accepted: iso_line, gaussian"),
        (["--scheduler", "nope"], None, "--scheduler: unknown value 'nope'; accepted: composite, bandit"),
        (["--algorithm", "cma"], None, "--algorithm: unknown value 'cma'; accepted: map_elites, ns, random"),
        (["--iso-sigma", "-1"], None, "--iso-sigma: must be a positive number; got -1.0"),
        (["--num-cells", "0"], None, "--num-cells: must be a positive integer; got 0"),  # checked even if unused
        (["--archive", "dns", "--capacity", "0"], None, "--capacity: must be a positive integer; got 0"),
        (["--scheduler", "bandit", "--zeta", "-1"], None, "--zeta: must be a finite number >= 0; got -1.0"),
        (["--scheduler", "bandit", "--reselect", "some"], None, "--reselect: unknown value 'some'; accepted: terminated, all"),
        (["--scheduler", "bandit", "--window", "0"], None, "--window: must be a positive integer; got 0"),
        (["--scheduler", "bandit", "--num-active", "3"], None,
         "--num-active: 3 is more than the 1 emitters of the pool (--emitter)"),
        (["--emitter", "iso_line", "gaussian", "--scheduler", "bandit", "--num-active", "2", "--batch-size", "9"], None,
         "--num-active: --batch-size 9 does not split evenly over 2 active emitters"),
        (["--emitter", "iso_line", "gaussian", "--batch-size", "9"], None,
         "--emitter: --batch-size 9 does not split evenly over 2 emitters"),
        (["--emitter", "cma_me_imp", "--num-instances", "3"], None,
         "--num-instances: --emitter cma_me_imp's 8 candidates per iteration do not split evenly over 3 CMA-ES instances"),
        (["--emitter", "cma_me_opt", "--num-instances", "8"], None,
         "--num-instances: --emitter cma_me_opt would have a population of 1 per CMA-ES instance; at least 2"),
        (["--emitter", "cma_me_rd", "--sigma0", "0"], None, "--sigma0: must be a positive number; got 0.0"),
        (["--emitter", "cma_mae", "--alpha", "1.5"], None, "--alpha: must be a number in [0, 1]; got 1.5"),
        (["--emitter", "cma_mae", "--threshold-min", "nan"], None, "--threshold-min: must be a finite number or -inf; got nan"),
        (["--emitter", "cma_mae", "--threshold-min=-inf"], None, "--alpha/--threshold-min (emitter cma_mae): "),
        (["--emitter", "cma_mae", "--archive", "dns"], None,
         "--emitter cma_mae: needs an archive with cells (per-cell thresholds): grid, cvt; got --archive dns"),
        ([], "emitter: [{name: cma_mae, alpha: 0.1}, {name: cma_mae, alpha: 0.2}]\nbatch_size: 16\n",
         "--alpha/--threshold-min: the cma_mae emitters share one archive; got [(0.1, "),
        ([], "emitter: {name: gaussian, iso_sigma: 1}\n", "--emitter gaussian: unknown option 'iso_sigma'; accepted: sigma"),
        ([], "archive: {name: cvt, num_cells: -1}\n", "--num-cells (archive cvt): must be a positive integer; got -1"),
        ([], "archive: {name: kdtree}\n", "--archive: unknown value 'kdtree'; accepted: grid, cvt, dns"),
        ([], "emitter: []\n", "--emitter: at least one emitter"),
        ([], "scheduler: {name: bandit, reselect: 3}\n", "--reselect (scheduler bandit): unknown value 3"),
        ([], "algorithm: {name: ns, sigma: x}\n", "--sigma (algorithm ns): must be a positive number; got 'x'"),
    ],
)
def test_bad_components_are_one_line_errors_before_anything_compiles(tmp_path, capsys, argv, file, message):
    _listen_to_compilations()
    del _COMPILATIONS[:]
    extra = []
    if file is not None:
        (tmp_path / "c.yaml").write_text(file)
        extra = ["--config", str(tmp_path / "c.yaml")]
    out = tmp_path / "out"
    code = main(["run", *TINY, *argv, *extra, "--output-dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and err.startswith("qd run: error: "), err
    assert message in err, err
    assert not out.exists()
    assert not _COMPILATIONS, _COMPILATIONS  # nothing compiled, not even an archive's first array


_COMPILATIONS = []


def _listen_to_compilations():
    import jax

    if not getattr(_listen_to_compilations, "done", False):
        jax.monitoring.register_event_duration_secs_listener(
            # tracing alone (jax.eval_shape of a task's genotypes, to learn their shapes) is not compiling
            lambda event, duration, **kw: _COMPILATIONS.append(event)
            if "compile" in event and "jaxpr_trace" not in event else None
        )
        _listen_to_compilations.done = True


def test_bandit_and_dns_runs_resume_exactly(tmp_path):
    options = [*TINY, "--emitter", "iso_line", "gaussian", "--scheduler", "bandit", "--num-active", "1",
               "--archive", "dns", "--capacity", "16", "--iterations", "5", "--checkpoint-every", "2"]
    assert main(["run", *options, "--output-dir", str(tmp_path), "--run-name", "full"]) == 0
    config = runner.read_config(str(tmp_path / "full"))
    assert config["scheduler"]["name"] == "bandit" and config["archive"] == {
        "name": "dns", "lower": None, "upper": None, "capacity": 16, "k": 3}

    def interrupt(done):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run({**config, "run_name": "cut"}, progress=False, on_chunk=interrupt)
    assert main(["run", "--resume", str(tmp_path / "cut"), "--no-progress"]) == 0
    _, full, _ = runner.load_run(str(tmp_path / "full"))
    _, resumed, _ = runner.load_run(str(tmp_path / "cut"))
    import jax

    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(a, b)


def test_run_directories_of_before_sections_resume_or_fail_in_one_line(tmp_path, capsys):
    """``flat_applicable``: written by the previous release (flat config.yaml of the options it used),
    interrupted after iteration 4 of 6; resumed here it ends with the very archive of that release's full run.
    ``flat_all_options``: written before the driver (another state layout): one line saying why."""
    d = tmp_path / "flat"
    shutil.copytree(os.path.join(DATA, "flat_applicable"), d)
    assert isinstance(yaml.safe_load((d / "config.yaml").read_text())["emitter"], str)  # the flat form
    assert main(["run", "--resume", str(d), "--no-progress"]) == 0
    resumed = np.load(d / "archive.npz")
    expected = np.load(os.path.join(DATA, "flat_applicable_full_archive.npz"))
    for key in ("fitnesses", "descriptors", "filled", "genotypes"):
        np.testing.assert_array_equal(resumed[key], expected[key])
    np.testing.assert_array_equal(runner.read_metrics(str(d))["iteration"], np.arange(7))

    old = tmp_path / "older"
    shutil.copytree(os.path.join(DATA, "flat_all_options"), old)
    capsys.readouterr()
    assert main(["run", "--resume", str(old), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"qd run: error: {old / 'checkpoint.npz'}: "), err


def test_flat_options_and_sections_mix_with_later_sources_winning():
    config = resolve_config({"iso_sigma": 0.3}, {"emitter": [{"name": "iso_line", "iso_sigma": 0.1}, "gaussian"],
                                                 "sigma": 0.7, "task": "arm"})
    assert config["emitter"] == [{"name": "iso_line", "iso_sigma": 0.3, "line_sigma": 0.05},
                                 {"name": "gaussian", "sigma": 0.7}]
    ns = resolve_config({"algorithm": "ns", "task": "point2d", "sigma": 0.2})
    assert ns["algorithm"] == {"name": "ns", "sigma": 0.2, "descriptor": "task", "trajectory_samples": 10, "signature_depth": 2}  # one flat name, every component declaring it
    with pytest.raises(ConfigError, match="unknown option 'sigmaa'"):
        resolve_config({"sigmaa": 1})


def test_registries_are_typed_and_checked():
    from qd.registry import Registry

    r = Registry("emitter")
    r.register("a", TinyConfig, build_tiny)
    with pytest.raises(ValueError, match="already registered"):
        r.register("a", TinyConfig, build_tiny)

    class NoDefault(Model):
        x: float

    with pytest.raises(ValueError, match="every option needs a default"):
        r.register("b", NoDefault, build_tiny)
    with pytest.raises(ValueError, match="qd.options.Model"):
        r.register("c", dict, build_tiny)
    with pytest.raises(ConfigError, match="--emitter: unknown value 'z'; accepted: a"):
        r.get("z")


_NO_CYCLE = r"""
import sys
import emitters  # first: emitters import qd's archives and option checks, never its algorithms
loaded = sorted(m for m in sys.modules if m.startswith(("qd.algorithms", "qd.runner", "qd.components", "qd.tasks")))
assert not loaded, loaded
import qd.exploration_jobs
assert "qd.runner" not in sys.modules
from qd.components import REGISTRIES
before = {kind: r.names() for kind, r in REGISTRIES.items()}
import qd.runner, qd.cli
qd.cli._parser()
after = {kind: r.names() for kind, r in REGISTRIES.items()}
assert before == after, (before, after)
import qd
assert qd.MAPElites.__module__ == "qd.algorithms.map_elites"
print("ok")
"""


def test_no_import_cycle_and_no_registration_on_import():
    result = subprocess.run([sys.executable, "-c", _NO_CYCLE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert set(REGISTRIES) == {"algorithm", "archive", "emitter", "scheduler"}
