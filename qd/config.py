"""Run configuration: defaults, files (YAML or TOML), command-line overrides and validation.

Precedence, lowest first: :data:`DEFAULTS`, the task's registered defaults, the ``--config`` file, then
command-line options. :func:`resolve_config` validates everything on the host, before anything compiles,
and raises :class:`ConfigError` with a one-line message that names the option and the accepted values.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Dict, Optional

from qd.tasks.registry import TASKS, get_task_spec


class ConfigError(ValueError):
    """A bad configuration value; the message names the option and what is accepted."""


class RunDirError(ValueError):
    """A run directory, or one of its files, that cannot be used: missing, empty, truncated, corrupt, of the
    wrong kind or written by another job. The message is one line that starts with the file's path.

    Attributes:
        path: the file (or folder) at fault.
    """

    def __init__(self, path: str, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{self.path}: {problem}")


# The built-in default job (``qd run`` with no arguments).
DEFAULTS: Dict[str, Any] = {
    "algorithm": "map_elites",
    "task": "walker2d_uni",  # the built-in default job: MAP-Elites on Brax walker2d (task defaults apply)
    "task_options": {},
    "archive": "grid",  # grid | cvt
    "resolution": [100, 100],  # grid cells per descriptor dimension
    "num_cells": 1024,  # CVT cells
    "lower": None,  # descriptor bounds; None = the task's
    "upper": None,
    "emitter": "iso_line",  # iso_line | gaussian
    "iso_sigma": 0.01,
    "line_sigma": 0.2,
    "sigma": 0.1,
    "batch_size": 1024,
    "iterations": 200,
    "seed": 0,
    # Devices each batch's evaluation is split over: a count, or "all" (every local device; on a CPU the
    # `qd` command exposes one device per core, see qd.parallel). Brax tasks default to "all".
    "devices": 1,
    "chunk_size": 25,  # iterations per compiled chunk (progress is reported between chunks)
    "checkpoint_every": 50,  # iterations between checkpoints (rounded up to whole chunks)
    "output_dir": "runs",
    "run_name": None,
    # JAX's persistent compilation cache (folder: $QD_JAX_CACHE_DIR or ~/.cache/qd-jax/jax): a second run
    # of the same job skips most of its compile time.
    "compilation_cache": True,
}

ALGORITHM_NAMES = ["map_elites"]  # extended by qd.runner's registry
ARCHIVE_NAMES = ["grid", "cvt"]
EMITTER_NAMES = ["iso_line", "gaussian"]

# Options every run uses, whatever its algorithm.
COMMON_OPTIONS = (
    "algorithm", "task", "task_options", "batch_size", "iterations", "seed", "devices", "chunk_size",
    "checkpoint_every", "output_dir", "run_name", "compilation_cache",
)
# The options each archive and emitter reads ("archive" and "emitter" in ALGORITHM_USES).
ARCHIVE_OPTIONS = {"grid": ("archive", "lower", "upper", "resolution"), "cvt": ("archive", "lower", "upper", "num_cells")}
EMITTER_OPTIONS = {"iso_line": ("emitter", "iso_sigma", "line_sigma"), "gaussian": ("emitter", "sigma")}
# Algorithm -> what it reads beyond COMMON_OPTIONS: "archive", "emitter" or option names (filled by
# qd.runner.register_algorithm). An algorithm missing here has every option recorded.
ALGORITHM_USES: Dict[str, tuple] = {"map_elites": ("archive", "emitter")}


def applicable_options(config: Dict[str, Any]) -> list:
    """The options of a resolved config that its run reads (see :data:`ALGORITHM_USES`), in sorted order.

    A grid run has no ``num_cells``, a CVT run no ``resolution``, an iso+line emitter no ``sigma``, novelty
    search no archive bounds nor emitter, random search no emitter.
    """
    uses = ALGORITHM_USES.get(config.get("algorithm"))
    if uses is None:
        return sorted(config)
    names = set(COMMON_OPTIONS)
    for use in uses:
        if use == "archive":
            names.update(ARCHIVE_OPTIONS.get(config.get("archive"), ("archive",)))
        elif use == "emitter":
            names.update(EMITTER_OPTIONS.get(config.get("emitter"), ("emitter",)))
        else:
            names.add(use)
    return sorted(n for n in names if n in config)


def recorded_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """What ``config.yaml`` records: the options of :func:`applicable_options`. :func:`resolve_config` of it
    gives back the same run (the options left out are filled from the defaults, and the run ignores them)."""
    return {name: copy.deepcopy(config[name]) for name in applicable_options(config)}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def yaml_problem(e: Exception) -> str:
    """A one-line description of a ``yaml.YAMLError`` (problem and 1-based line/column when known)."""
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or str(e)
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return _one_line(problem) + where


def read_mapping_file(path: str, what: str = "--config") -> Dict[str, Any]:
    """Parse a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file that must hold a mapping.

    Args:
        path: the file.
        what: how error messages name the file's role (``"--config"``).

    Returns:
        The mapping (an empty file is an empty mapping).

    Raises:
        ConfigError: missing file, a folder, unreadable or non-UTF-8 content, malformed YAML/TOML, unknown
            extension, or content that is not a mapping (one line naming the file and the problem).
    """
    import yaml

    ext = os.path.splitext(path)[1].lower()
    if ext not in (".yaml", ".yml", ".toml"):
        raise ConfigError(f"{what}: unknown file type {ext or path!r} of {path!r}; accepted: .yaml, .yml, .toml")
    if not os.path.exists(path):
        raise ConfigError(f"{what}: no such file {path!r}")
    if os.path.isdir(path):
        raise ConfigError(f"{what}: {path!r} is a folder, not a YAML or TOML file")
    try:
        with open(path, "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {path!r}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what}: {path!r} is not a text file (not UTF-8 at byte {e.start})") from None
    if ext == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{what}: {path!r} is not valid TOML: {_one_line(e)}") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{what}: {path!r} is not valid YAML: {yaml_problem(e)}") from None
        data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what}: {path!r} must contain a mapping of option: value; got a {type(data).__name__}"
        )
    return data


def load_config_file(path: str) -> Dict[str, Any]:
    """Read a ``--config`` file, YAML (``.yaml``/``.yml``) or TOML (``.toml``), into a dict.

    Raises:
        ConfigError: as :func:`read_mapping_file` (missing file, folder, malformed content, not a mapping...).
    """
    return read_mapping_file(path, "--config")


def _positive_int(config, name):
    value = config[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"--{name.replace('_', '-')}: must be a positive integer; got {value!r}")


def _positive_float(config, name):
    value = config[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"--{name.replace('_', '-')}: must be a positive number; got {value!r}")


def _choice(config, name, accepted):
    if config[name] not in accepted:
        raise ConfigError(
            f"--{name.replace('_', '-')}: unknown value {config[name]!r}; accepted: {', '.join(accepted)}"
        )


def resolve_config(overrides: Optional[Dict[str, Any]] = None, file_config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Merge defaults, the task's defaults, a file's values and overrides; validate the result.

    Args:
        overrides: command-line values (keys of :data:`DEFAULTS`; None values are ignored).
        file_config: values read from a ``--config`` file.

    Returns:
        A new, complete config dict.

    Raises:
        ConfigError: an unknown key or a bad value (one line naming the option and accepted values).
    """
    user: Dict[str, Any] = {}
    for source in (file_config or {}, overrides or {}):
        for k, v in source.items():
            if v is None:
                continue
            if k not in DEFAULTS:
                raise ConfigError(f"unknown option {k!r}; accepted: {', '.join(sorted(DEFAULTS))}")
            user[k] = v
    task = user.get("task", DEFAULTS["task"])
    if not isinstance(task, str) or task not in TASKS:
        raise ConfigError(f"--task: unknown task {task!r}; accepted: {', '.join(sorted(TASKS))}")
    config = copy.deepcopy(DEFAULTS)
    config.update(copy.deepcopy(get_task_spec(task).defaults))
    if isinstance(user.get("task_options"), dict):  # task options merge with the task's defaults
        user["task_options"] = {**config["task_options"], **user["task_options"]}
    config.update(user)
    _validate(config)
    return config


def _validate(config: Dict[str, Any]) -> None:
    _choice(config, "algorithm", ALGORITHM_NAMES)
    _choice(config, "archive", ARCHIVE_NAMES)
    _choice(config, "emitter", EMITTER_NAMES)
    for name in ("batch_size", "iterations", "chunk_size", "checkpoint_every", "num_cells"):
        _positive_int(config, name)
    if isinstance(config["seed"], bool) or not isinstance(config["seed"], int) or config["seed"] < 0:
        raise ConfigError(f"--seed: must be a non-negative integer; got {config['seed']!r}")
    for name in ("iso_sigma", "line_sigma", "sigma"):
        _positive_float(config, name)
    res = config["resolution"]
    if isinstance(res, int):
        res = config["resolution"] = [res]
    if not isinstance(res, (list, tuple)) or not res or any(
        isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in res
    ):
        raise ConfigError(f"--resolution: must be positive integers, one per descriptor dimension; got {res!r}")
    devices = config["devices"]
    if devices != "all" and (isinstance(devices, bool) or not isinstance(devices, int) or devices < 1):
        raise ConfigError(f"--devices: must be a positive integer or 'all'; got {devices!r}")
    if not isinstance(config["compilation_cache"], bool):
        raise ConfigError(f"--compilation-cache: must be true or false; got {config['compilation_cache']!r}")
    if not isinstance(config["task_options"], dict) or not all(isinstance(k, str) for k in config["task_options"]):
        raise ConfigError(f"--task-option: must be a mapping of option name: value; got {config['task_options']!r}")
    for name in ("output_dir", "run_name"):
        value = config[name]
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"--{name.replace('_', '-')}: must be a non-empty folder name; got {value!r}")
    for name in ("lower", "upper"):
        value = config[name]
        if value is not None and (
            not isinstance(value, (list, tuple))
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise ConfigError(f"--{name}: must be a list of numbers, one per descriptor dimension; got {value!r}")
