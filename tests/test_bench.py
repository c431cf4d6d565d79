"""``qd bench``: seeds vmapped in one program equal the separate runs, a bad spec fails in one line before
anything compiles, an interrupted bench resumes without running its finished runs again, and the bench
directory holds what the issue lists."""

import csv
import io
import os
from contextlib import redirect_stderr

import jax
import numpy as np
import pytest

import qd.bench
from qd.bench import execute
from qd.cli import main
from qd.config import ConfigError
from qd.runner import build_job

TINY_ARM = {"name": "arm", "options": {"task_options": {"num_joints": 8}, "resolution": [8, 8]}}
SPEC = {
    "name": "tiny",
    "seeds": 3,
    "budgets": [64, 128],
    "curve_points": 4,
    "options": {"batch_size": 16, "chunk_size": 4},
    "tasks": [TINY_ARM],
    "configs": [{"label": "gaussian", "emitter": {"name": "gaussian", "sigma": 0.1}},
                {"label": "iso_line", "emitter": "iso_line"}],
}


def _separate(run, seed, rows):
    """One seed run alone by its own job (``qd run --seed seed``) for ``rows`` metric rows: ``{metric: (rows,)}``."""
    job = build_job(run.seed_config(seed))
    state, metrics = job.init(jax.random.PRNGKey(seed))
    parts = [{k: np.asarray(v).reshape(1) for k, v in metrics.items()}] if int(metrics["iteration"]) == 0 else []
    if state.pending:
        state, metrics = job.scan(state, 1)
        parts.append(jax.device_get(metrics))
    state, metrics = job.scan(state, rows - sum(len(p["iteration"]) for p in parts))
    parts.append(jax.device_get(metrics))
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


CASES = {
    "map_elites_arm": ({"label": "me"}, TINY_ARM),
    "ns_point2d": ({"label": "ns", "algorithm": "ns"}, "point2d"),
    # phased: its seeds run one after another with one driver (qd.bench.execute.vmappable); under the "fixed"
    # phase scheduler, scanned by the driver of another configuration (alternating) that lowers to the same program
    "serene_point2d": ({"label": "serene", "algorithm": {"name": "serene", "chunk_evaluations": 48, "emitter_slots": 2,
                                                          "phase_scheduler": "fixed"}}, "point2d"),
}


def _donor(run, config, task, programs):
    """Register, in ``programs``, the driver of ``config`` (lowered, not compiled nor run) as the first owner of
    its chunk program; returns its run."""
    (donor,) = qd.bench.parse_spec({"seeds": 1, "budgets": list(run.budgets), "options": {"batch_size": 16, "chunk_size": 3},
                                    "tasks": [task], "configs": [config]}).runs
    (job,) = execute.build_jobs(donor, [0])
    state, _ = job.driver.init(*job.init_args(jax.random.PRNGKey(0)))
    programs.driver(donor, job.config, job.driver, state, seeds=False)
    return donor


@pytest.mark.parametrize("case", sorted(CASES))
def test_vmapped_seeds_are_the_separate_runs(case):
    config, task = CASES[case]
    spec = qd.bench.parse_spec({"seeds": [0, 3, 7, 9], "budgets": [160], "options": {"batch_size": 16, "chunk_size": 3},
                                "tasks": [task], "configs": [config]})
    (run,) = spec.runs
    programs = execute.SharedPrograms()
    if case == "serene_point2d":
        alternating = {**config, "label": "alternating", "algorithm": {**config["algorithm"], "phase_scheduler": "alternating"}}
        donor = _donor(run, alternating, task, programs)
    curves = execute.run_seeds(run, spec.seeds, group=4, split=True, programs=programs)  # 4 seeds split over 2 devices
    if case == "serene_point2d":
        assert programs.shared == {run.id: donor.id}
    assert (curves["num_evaluations"][:, -1] >= 160).all()
    lengths = 1 + np.argmax(curves["iteration"], axis=1)  # a budget-driven seed that ended early: its last row repeated
    if case == "serene_point2d":
        assert len(set(lengths)) > 1, "the fixed scheduler's seeds should take different numbers of iterations"
    for index, seed in enumerate(spec.seeds):
        own = lengths[index]
        alone = _separate(run, seed, own)
        for name, values in curves.items():
            np.testing.assert_array_equal(values[index, own:], values[index, own - 1], err_msg=name)
            if name == "uniformity":  # a float sum over the histogram: vmap may add in another order
                np.testing.assert_allclose(alone[name], values[index, :own], rtol=1e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(alone[name], values[index, :own], err_msg=f"{case} seed {seed}: {name}")


def test_seed_groups_give_the_same_results_as_one_program():
    spec = qd.bench.parse_spec({**SPEC, "configs": SPEC["configs"][:1]})
    (run,) = spec.runs
    whole = execute.run_seeds(run, spec.seeds, group=3)
    grouped = execute.run_seeds(run, spec.seeds, group=2)  # 2 + 1 padded to 2: the same compiled chunks
    for name in whole:
        np.testing.assert_allclose(whole[name], grouped[name], rtol=1e-5, err_msg=name)


def test_serene_phase_schedulers_share_a_program_and_local_emitters_do_not():
    # The phase scheduler's rule is a traced value of SERENE's state: FIT under alternating, fixed and ucb
    # lowers to one program (qd bench compiles it once); the CMA-ES local emitter is another program.
    serene = lambda **kw: {"label": "-".join(kw.values()), "algorithm": {"name": "serene", "chunk_evaluations": 48,
                                                                         "emitter_slots": 2, **kw}}
    spec = qd.bench.parse_spec({"seeds": 1, "budgets": [96], "options": {"batch_size": 16}, "tasks": ["point2d"],
                                "configs": [serene(local_emitter="fit", phase_scheduler=p) for p in ("alternating", "fixed", "ucb")]
                                + [serene(local_emitter="cma_es", phase_scheduler="alternating")]})
    keys = []
    for run in spec.runs:
        (job,) = execute.build_jobs(run, [0])
        state, _ = job.driver.init(*job.init_args(jax.random.PRNGKey(0)))
        keys.append(job.driver.program_key(state, 4))
    assert keys[0] == keys[1] == keys[2] != keys[3]


def test_budget_rows_read_the_last_iteration_within_each_budget():
    spec = qd.bench.parse_spec({"seeds": 1, "budgets": [32, 48], "curve_points": 1, "tasks": ["point2d"],
                                "options": {"batch_size": 16}, "configs": [{"label": "me"}]})
    (run,) = spec.runs
    curves = {"num_evaluations": np.array([[16, 32, 48]]), "qd_score": np.array([[1.0, 2.0, 3.0]]),
              "coverage": np.array([[0.1, 0.2, 0.3]]), "max_fitness": np.array([[0.0, 0.5, 0.5]]),
              "reward_areas_found": np.array([[0, 0, 1]]), "best_reward_area_0": np.array([[0.0, 0.0, 0.7]])}
    rows = {(r["budget"], r["metric"]): (r["evaluations"], r["value"]) for r in execute.budget_rows(run, [0], curves)}
    assert rows[(32, "qd_score")] == (32, 2.0)
    assert rows[(48, "best_reward_area_0")] == (48, pytest.approx(0.7))
    assert np.isnan(rows[(32, "evaluations_to_first_reward")][1])
    assert rows[(48, "evaluations_to_first_reward")] == (48, 48.0)


class _Compiles:
    """Counts XLA compilations (JAX's monitoring events) while active."""

    def __init__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if "backend_compile" in event:
            self.count += 1


COMPILES = _Compiles()

BAD_SPECS = {
    "unknown algorithm": ({**SPEC, "configs": [{"label": "x", "algorithm": "map_elitez"}]}, "map_elitez"),
    "budget not a multiple of the batch": ({**SPEC, "budgets": [100]}, "not a multiple of the batch size 16"),
    "missing task": ({k: v for k, v in SPEC.items() if k != "tasks"}, "has no task"),
    "unknown task": ({**SPEC, "tasks": ["arms"]}, "unknown task 'arms'"),
    "unknown key": ({**SPEC, "budget": [64]}, "unknown spec key"),
    "no budgets": ({k: v for k, v in SPEC.items() if k != "budgets"}, "no budgets"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_a_bad_spec_is_a_one_line_error_before_anything_compiles(case, tmp_path):
    import yaml

    spec, expected = BAD_SPECS[case]
    before = COMPILES.count
    with pytest.raises(ConfigError, match=expected):
        qd.bench.run(spec, output_dir=str(tmp_path))
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    err = io.StringIO()
    with redirect_stderr(err):
        assert main(["bench", str(path), "--no-progress", "--output-dir", str(tmp_path / "out")]) == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qd bench: error:") and expected.split("'")[0] in lines[0]
    assert COMPILES.count == before, "the spec must be rejected before anything compiles"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_builder_error_is_found_before_the_first_run(tmp_path):
    spec = {**SPEC, "tasks": [{"name": "hopper_uni", "options": {"batch_size": 16}}],
            "configs": [{"label": "cma", "emitter": "cma_me_imp"}]}
    with pytest.raises(ConfigError, match="cma_me_imp"):
        qd.bench.run(spec, output_dir=str(tmp_path))


def test_unknown_preset_and_presets_resolve():
    with pytest.raises(ConfigError, match="sparse-emitters"):
        qd.bench.preset("nope")
    for name in qd.bench.preset_names():
        for quick in (True, False):
            spec = qd.bench.parse_spec(qd.bench.preset(name, quick=quick))
            assert spec.runs and all(b % r.config["batch_size"] == 0 for r in spec.runs for b in r.budgets)
    sparse = qd.bench.parse_spec(qd.bench.preset("sparse-emitters", quick=True))
    assert set(sparse.task_labels) == {"curling", "redundant_arm", "hard_maze"}
    assert {r.config["algorithm"]["local_emitter"] for r in sparse.runs} == {"fit", "cma_es", "novelty"}
    assert {r.config["algorithm"]["phase_scheduler"] for r in sparse.runs} == {"alternating", "fixed", "time", "ucb"}
    assert all(r.config["algorithm"]["budget"] == max(r.budgets) for r in sparse.runs)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return qd.bench.run(SPEC, output_dir=str(tmp_path_factory.mktemp("benches")), progress=False)


def test_the_bench_directory_holds_the_spec_csv_table_plots_and_html(bench):
    files = set(os.listdir(bench.bench_dir))
    assert {"spec.yaml", "results.csv", "report.md", "report.html", "plots", "runs"} <= files
    with open(os.path.join(bench.bench_dir, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    metrics = {"qd_score", "coverage", "max_fitness"}
    assert {r["metric"] for r in rows} == metrics
    curve = bench.spec.runs[0].curve
    assert len(rows) == 2 * 3 * len(curve) * len(metrics)  # configs x seeds x budgets x metrics
    assert {int(r["budget"]) for r in rows} == set(curve) and {64, 128} <= set(curve)
    assert all(int(r["evaluations"]) <= int(r["budget"]) for r in rows)
    assert os.path.exists(os.path.join(bench.bench_dir, "plots", "arm.png"))
    assert "gaussian" in bench.markdown and "iso_line" in bench.markdown
    html = open(os.path.join(bench.bench_dir, "report.html")).read()
    assert "data:image/png;base64," in html and "https://" not in html
    assert bench.groups == {"gaussian__arm": 3, "iso_line__arm": 3}
    assert COMPILES.count > 0  # the compile counter of the bad-spec tests sees compilations
    # the bench's seed s is `qd run --seed s`: its final QD-score at the largest budget
    qd_final = {(r["config"], r["seed"]): r["value"] for r in bench.rows if r["metric"] == "qd_score" and r["budget"] == 128}
    run = bench.spec.runs[0]
    job = build_job(run.seed_config(2))
    state, _ = job.init(jax.random.PRNGKey(2))
    state, metrics = job.scan(state, 1)
    state, metrics = job.scan(state, 7)
    assert float(metrics["qd_score"][-1]) == pytest.approx(qd_final[("gaussian", 2)], rel=1e-6)


def test_an_interrupted_bench_resumes_and_skips_finished_runs(bench, tmp_path, monkeypatch):
    def stop(run_id):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        qd.bench.run(SPEC, output_dir=str(tmp_path), progress=False, on_run=stop)
    (bench_dir,) = [str(p) for p in tmp_path.iterdir()]
    assert os.listdir(os.path.join(bench_dir, "runs")) == ["gaussian__arm.csv"]
    ran = []
    real = execute.run_seeds
    monkeypatch.setattr(execute, "run_seeds", lambda run, *a, **k: ran.append(run.id) or real(run, *a, **k))
    resumed = qd.bench.run(None, bench_dir=bench_dir, resume=True, progress=False)
    assert ran == ["iso_line__arm"] and resumed.skipped == ["gaussian__arm"]
    key = lambda r: (r["config"], r["seed"], r["budget"], r["metric"])
    assert sorted(resumed.rows, key=key) == sorted(bench.rows, key=key)
    with pytest.raises(ConfigError, match="differs"):
        qd.bench.run({**SPEC, "seeds": 4}, bench_dir=bench_dir, resume=True, progress=False)


def test_the_command_line_runs_a_spec_file_and_resumes_a_finished_bench(bench, tmp_path, capsys):
    import yaml

    path = tmp_path / "spec.toml"
    path.write_text(
        'name = "tiny"\nseeds = 3\nbudgets = [64, 128]\ncurve_points = 4\n'
        '[options]\nbatch_size = 16\nchunk_size = 4\n'
        '[[tasks]]\nname = "arm"\n[tasks.options]\nresolution = [8, 8]\n[tasks.options.task_options]\nnum_joints = 8\n'
        '[[configs]]\nlabel = "gaussian"\n[configs.emitter]\nname = "gaussian"\nsigma = 0.1\n'
        '[[configs]]\nlabel = "iso_line"\nemitter = "iso_line"\n'
    )
    out = tmp_path / "benches"
    assert main(["bench", str(path), "--no-progress", "--output-dir", str(out)]) == 0
    (bench_dir,) = list(out.iterdir())
    assert (bench_dir / "report.html").exists() and "iso_line" in capsys.readouterr().out
    with open(bench_dir / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(bench.rows)
    assert yaml.safe_load((bench_dir / "spec.yaml").read_text())["spec"]["seeds"] == 3
    assert main(["bench", "--resume", str(bench_dir), "--no-progress"]) == 0  # nothing left to run
