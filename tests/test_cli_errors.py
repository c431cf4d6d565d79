"""Bad input to every `qd` subcommand: options, config files and run directories that are missing, empty,
truncated, corrupt, of the wrong kind or another job's. Each must give one line `qd <cmd>: error: ...` on
stderr that names the option or file, a non-zero exit, and no traceback."""

import os
import shutil
import subprocess
import sys

import pytest

from qd import runner
from qd.cli import main

ARM = ["--task", "arm", "--task-option", "num_joints=4", "--resolution", "4", "--batch-size", "8",
       "--iterations", "2", "--chunk-size", "1", "--checkpoint-every", "1", "--compilation-cache", "false",
       "--no-progress"]
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny runs: ``good`` and ``other`` (another job: 6 joints, another seed)."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["run", *ARM, "--output-dir", str(root), "--run-name", "good"]) == 0
    assert main(["run", *ARM, "--task-option", "num_joints=6", "--output-dir", str(root), "--run-name", "other"]) == 0
    assert main(["run", *ARM, "--seed", "3", "--output-dir", str(root), "--run-name", "seed3"]) == 0
    return root


def _copy(runs, tmp_path, name="good"):
    dst = tmp_path / "run"
    shutil.copytree(runs / name, dst)
    return dst


def _write(path, data):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
    if data is None:
        return
    if data == "DIR":
        os.makedirs(path)
    else:
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())


def _truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    _write(path, data[: len(data) // 2])


def _run_dir_case(file, content, command="run", extra=()):
    """A copy of the good run whose ``file`` is replaced by ``content`` (bytes/str, None = removed,
    "DIR" = a folder, "TRUNCATE" = its first half, ("COPY", run, name) = another run's file)."""

    def make(runs, tmp_path):
        d = _copy(runs, tmp_path)
        path = d / file
        if content == "TRUNCATE":
            _truncate(path)
        elif isinstance(content, tuple):
            shutil.copy(runs / content[1] / content[2], path)
        else:
            _write(path, content)
        argv = {"run": ["run", "--resume", str(d), "--no-progress"], "plot": ["plot", str(d)],
                "replay": ["replay", str(d)]}[command]
        return argv + list(extra), str(path)

    return make


def _config_case(name, content, names_file=True):
    """``--config`` with a file ``name`` of ``content``; a bad value (``names_file=False``) is named by its
    option, a bad file by its path."""

    def make(runs, tmp_path):
        path = tmp_path / name
        _write(path, content)
        return ["run", *ARM, "--output-dir", str(tmp_path / "out"), "--config", str(path)], str(path) if names_file else None

    return make


def _argv_case(*argv, names=None):
    def make(runs, tmp_path):
        return [a.replace("TMP", str(tmp_path)) for a in argv], names

    return make


def _file_as_output_dir(runs, tmp_path):
    _write(tmp_path / "afile", "x")
    return ["run", *ARM, "--output-dir", str(tmp_path / "afile")], str(tmp_path / "afile")


def _resume_a_file(runs, tmp_path):
    _write(tmp_path / "afile", "x")
    return ["run", "--resume", str(tmp_path / "afile")], str(tmp_path / "afile")


CASES = {
    # argparse's own errors (usage + last line "qd run: error: ...")
    "bad-int": (_argv_case("run", "--iterations", "abc"), "argument --iterations: invalid int value: 'abc'"),
    "unknown-option": (_argv_case("run", "--iteratons", "3"), "unrecognized arguments: --iteratons"),
    "plot-no-dir": (_argv_case("plot"), "the following arguments are required: RUN_DIR"),
    "tasks-extra": (_argv_case("tasks", "extra"), "unrecognized arguments: extra"),
    # options
    "unknown-task": (_argv_case("run", "--task", "nope", "--output-dir", "TMP"), "--task: unknown task 'nope'"),
    "task-option-yaml": (_argv_case("run", *ARM, "--task-option", "num_joints=[", "--output-dir", "TMP"),
                         "--task-option: num_joints: '[' is not a YAML value"),
    "task-option-value": (_argv_case("run", *ARM, "--task-option", "num_joints=abc", "--output-dir", "TMP"),
                          "--task-option: bad options for task 'arm'"),
    "task-option-name": (_argv_case("run", *ARM, "--task-option", "joints=3", "--output-dir", "TMP"),
                         "--task-option: bad options for task 'arm'"),
    "output-dir-is-a-file": (_file_as_output_dir, "Not a directory"),
    "resume-and-task": (_argv_case("run", "--resume", "TMP", "--task", "arm"), "--resume: only --iterations"),
    # --config files
    "config-missing": (_config_case("c.yaml", None), "--config: no such file"),
    "config-bad-yaml": (_config_case("c.yaml", "task: arm\niterations: [1, 2\n"), "is not valid YAML"),
    "config-bad-toml": (_config_case("c.toml", "task = \n"), "is not valid TOML"),
    "config-a-list": (_config_case("c.yaml", "- 1\n- 2\n"), "must contain a mapping of option: value; got a list"),
    "config-a-folder": (_config_case("c.yaml", "DIR"), "is a folder"),
    "config-png": (_config_case("c.yaml", PNG), "is not a text file"),
    "config-json": (_config_case("c.json", "{}"), "unknown file type '.json'"),
    "config-algorithm-a-list": (_config_case("c.yaml", "algorithm: [ns]\n", names_file=False),
                                "--algorithm: unknown value ['ns']"),
    "config-run-name-int": (_config_case("c.yaml", "run_name: 5\n", names_file=False), "--run-name: must be a non-empty folder name"),
    "config-unknown-key": (_config_case("c.toml", "iterationz = 3\n", names_file=False), "unknown option 'iterationz'"),
    # run --resume RUN_DIR
    "resume-missing-dir": (_argv_case("run", "--resume", "TMP/nope"), "no such run directory"),
    "resume-a-file": (_resume_a_file, "not a run directory (a file, not a folder)"),
    "resume-no-config": (_run_dir_case("config.yaml", None), "no such file (not a run directory)"),
    "resume-empty-config": (_run_dir_case("config.yaml", ""), "empty file"),
    "resume-config-list": (_run_dir_case("config.yaml", "- a\n"), "must be a mapping of option: value; got a list"),
    "resume-config-bad-yaml": (_run_dir_case("config.yaml", "task: [arm\n"), "not valid YAML"),
    "resume-config-unknown-task": (_run_dir_case("config.yaml", "task: walker9\n"), "--task: unknown task 'walker9'"),
    "resume-config-png": (_run_dir_case("config.yaml", PNG), "not a text file"),
    "resume-no-checkpoint": (_run_dir_case("checkpoint.npz", None), "no such file"),
    "resume-empty-checkpoint": (_run_dir_case("checkpoint.npz", b""), "empty file"),
    "resume-truncated-checkpoint": (_run_dir_case("checkpoint.npz", "TRUNCATE"), "not a readable checkpoint"),
    "resume-png-checkpoint": (_run_dir_case("checkpoint.npz", PNG), "not a readable checkpoint"),
    "resume-checkpoint-a-folder": (_run_dir_case("checkpoint.npz", "DIR"), "is a folder"),
    "resume-checkpoint-other-shapes": (_run_dir_case("checkpoint.npz", ("COPY", "other", "checkpoint.npz")), "shape"),
    "resume-checkpoint-other-seed": (_run_dir_case("checkpoint.npz", ("COPY", "seed3", "checkpoint.npz")),
                                     "written by another job than this folder's config.yaml (seed: 3 vs 0)"),
    "resume-ragged-metrics": (_run_dir_case("metrics.csv", "iteration,a,b\n0,1,2\n1,2\n"), "line 3 has 2 fields"),
    "resume-metrics-not-numbers": (_run_dir_case("metrics.csv", "iteration,a\n0,x\n"), "line 2: 'x' is not a number"),
    "resume-metrics-other-job": (_run_dir_case("metrics.csv", "iteration,a\n0,1\n", extra=["--iterations", "3"]), "written by another job?"),
    # plot RUN_DIR
    "plot-missing-dir": (_argv_case("plot", "TMP/nope"), "no such run directory"),
    "plot-no-archive": (_run_dir_case("archive.npz", None, "plot"), "no such file"),
    "plot-empty-archive": (_run_dir_case("archive.npz", b"", "plot"), "empty file"),
    "plot-truncated-archive": (_run_dir_case("archive.npz", "TRUNCATE", "plot"), "not a readable archive file"),
    "plot-png-archive": (_run_dir_case("archive.npz", PNG, "plot"), "not a readable archive file"),
    "plot-checkpoint-as-archive": (_run_dir_case("archive.npz", ("COPY", "good", "checkpoint.npz"), "plot"),
                                   "not a qd-jax archive"),
    "plot-archive-a-folder": (_run_dir_case("archive.npz", "DIR", "plot"), "folder"),
    "plot-no-metrics": (_run_dir_case("metrics.csv", None, "plot"), "no such file"),
    "plot-empty-metrics": (_run_dir_case("metrics.csv", "", "plot"), "empty file"),
    "plot-ragged-metrics": (_run_dir_case("metrics.csv", "iteration,a\n0,1\n1\n", "plot"), "line 3 has 1 fields"),
    "plot-metrics-png": (_run_dir_case("metrics.csv", PNG, "plot"), "not a text file"),
    # replay RUN_DIR
    "replay-missing-dir": (_argv_case("replay", "TMP/nope"), "no such run directory"),
    "replay-config-list": (_run_dir_case("config.yaml", "[1, 2]\n", "replay"), "must be a mapping"),
    "replay-truncated-checkpoint": (_run_dir_case("checkpoint.npz", "TRUNCATE", "replay"), "not a readable checkpoint"),
    "replay-not-brax": (lambda runs, tmp_path: (["replay", str(runs / "good")], None), "Brax tasks only"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_one_line_error(runs, tmp_path, capsys, case):
    make, message = CASES[case]
    argv, named = make(runs, tmp_path)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    command = argv[0]
    if lines[0].startswith("usage:"):  # argparse: the usage, then one error line
        lines = lines[-1:]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"qd {command}: error: "), err
    assert message in lines[0], err
    if named is not None:
        assert named in lines[0], err  # names the file at fault


def _qd(*argv):
    exe = os.path.join(os.path.dirname(sys.executable), "qd")
    return subprocess.run([exe, *argv], capture_output=True, text=True, timeout=120)


def test_console_entry_point_gives_the_same_one_line_errors(runs, tmp_path):
    d = _copy(runs, tmp_path)
    _truncate(d / "checkpoint.npz")
    _write(d / "archive.npz", PNG)
    for argv, message in (
        (["run", "--resume", str(d), "--no-progress"], f"qd run: error: {d / 'checkpoint.npz'}: not a readable checkpoint"),
        (["plot", str(d)], f"qd plot: error: {d / 'archive.npz'}: not a readable archive file"),
        (["run", "--batch-size", "x"], "qd run: error: argument --batch-size: invalid int value: 'x'"),
    ):
        result = _qd(*argv)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
