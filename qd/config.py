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


def load_config_file(path: str) -> Dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file into a dict.

    Raises:
        ConfigError: missing file, unknown extension, or content that is not a mapping.
    """
    if not os.path.exists(path):
        raise ConfigError(f"--config: no such file {path!r}")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".yaml", ".yml"):
        import yaml

        with open(path) as f:
            data = yaml.safe_load(f) or {}
    elif ext == ".toml":
        import tomllib

        with open(path, "rb") as f:
            data = tomllib.load(f)
    else:
        raise ConfigError(f"--config: unknown file type {ext!r}; accepted: .yaml, .yml, .toml")
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path!r} must contain a mapping of option: value")
    return data


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
    if task not in TASKS:
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
    if not isinstance(config["task_options"], dict):
        raise ConfigError("--task-options: must be a mapping of option: value")
    for name in ("lower", "upper"):
        value = config[name]
        if value is not None and (
            not isinstance(value, (list, tuple))
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise ConfigError(f"--{name}: must be a list of numbers, one per descriptor dimension; got {value!r}")
