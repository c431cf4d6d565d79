"""The specification of a benchmark (``qd bench SPEC``): configurations x tasks x seeds at budgets.

A spec is a mapping (a YAML or TOML file, or a dict in Python)::

    name: my-bench                       # names the bench directory
    seeds: 5                             # a count (seeds 0..4) or a list of seeds
    budgets: [10000, 50000]              # evaluations at which results are reported (each a multiple of
                                         #   every run's batch size)
    curve_points: 20                     # evaluation points of the plotted curves (default 20)
    options: {batch_size: 128}           # `qd run` options shared by every run (flat keys or sections)
    tasks: [arm, {name: sphere, label: sphere-LP, options: {batch_size: 64}, budgets: [6400]}]
    configs:
      - label: iso_line                  # the configuration's name in tables and plots (default: algorithm
        emitter: iso_line                #   and emitters); any other key is a `qd run` option
      - label: cma_me_imp
        emitter: {name: cma_me_imp, sigma0: 0.5}
        tasks: [sphere-LP]               # this configuration only on these tasks (labels)
    seeds_per_group: null                # seeds vmapped together (default: as many as fit, see execute)
    max_group_memory_gb: null            # memory a seed group may take (default: a quarter of the RAM)
    split_seeds: false                   # split each group's seeds over the local devices (see execute)

The options of one run are, later ones winning: the spec's ``options``, the task entry's ``options``, the
configuration's keys, then the task and the seed; ``devices`` is 1 (the vmapped seeds are the parallel axis). Every run's config is resolved and validated by
:func:`qd.config.resolve_config` (the same checks as ``qd run``) on the host, before anything compiles; a bad
spec raises :class:`qd.config.ConfigError` with one line that names the configuration, the task and the
problem. A budget-driven algorithm (SERENE, STAX) gets the largest budget as its ``budget``.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from qd.config import ConfigError, read_mapping_file, resolve_config

SPEC_KEYS = ("name", "seeds", "budgets", "curve_points", "options", "tasks", "configs", "seeds_per_group",
             "max_group_memory_gb", "split_seeds")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclasses.dataclass(frozen=True)
class Run:
    """One configuration on one task: every seed of it runs as one vmapped program (or a few groups).

    Attributes:
        id: ``"<config>__<task>"``, the run's file name in the bench directory.
        config_label, task_label: the labels of tables and plots.
        config: the resolved `qd run` config of seed 0 (:func:`qd.config.resolve_config`); seed ``s`` is the
            same with ``seed: s``.
        budgets: the evaluations results are reported at, increasing.
        curve: the evaluation points of the plotted curves (the budgets included), increasing.
    """

    id: str
    config_label: str
    task_label: str
    config: Dict[str, Any]
    budgets: Tuple[int, ...]
    curve: Tuple[int, ...]

    def seed_config(self, seed: int) -> Dict[str, Any]:
        """The resolved config of one seed."""
        return {**copy.deepcopy(self.config), "seed": int(seed)}


@dataclasses.dataclass(frozen=True)
class BenchSpec:
    """A validated spec: its runs (configurations x tasks), the seeds and the grouping options.

    Attributes:
        name: the bench's name.
        seeds: the seeds of every run.
        runs: one :class:`Run` per configuration and task.
        seeds_per_group: seeds vmapped together, or None (as many as fit in ``max_group_memory_gb``).
        max_group_memory_gb: the memory one seed group may take, or None (a quarter of the RAM).
        split_seeds: split each vmapped group's seeds over the local devices (:func:`qd.bench.execute.seed_sharding`).
        raw: the spec's mapping as given (``spec.yaml`` of the bench directory records it).
    """

    name: str
    seeds: Tuple[int, ...]
    runs: Tuple[Run, ...]
    seeds_per_group: Optional[int]
    max_group_memory_gb: Optional[float]
    raw: Dict[str, Any]
    split_seeds: bool = False

    @property
    def config_labels(self) -> List[str]:
        return list(dict.fromkeys(r.config_label for r in self.runs))

    @property
    def task_labels(self) -> List[str]:
        return list(dict.fromkeys(r.task_label for r in self.runs))


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"qd bench: {what} must be a positive integer; got {value!r}")
    return value


def _int_list(value: Any, what: str) -> List[int]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ConfigError(f"qd bench: {what} must not be empty")
    return [_positive_int(v, what) for v in values]


def _seeds(value: Any) -> Tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigError("qd bench: seeds must not be empty")
        seeds = []
        for s in value:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ConfigError(f"qd bench: seeds must be non-negative integers; got {s!r}")
            seeds.append(s)
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"qd bench: seeds must be distinct; got {seeds}")
        return tuple(seeds)
    return tuple(range(_positive_int(value, "seeds (a count or a list)")))


def _label(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _LABEL.match(value):
        raise ConfigError(f"qd bench: {what} label must be letters, digits, '_', '.', '+' or '-'; got {value!r}")
    return value


def _mapping(value: Any, what: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"qd bench: {what} must be a mapping; got {value!r}")
    return dict(value)


def _tasks(entries: Any, what: str) -> List[Dict[str, Any]]:
    if not isinstance(entries, (list, tuple)) or not entries:
        raise ConfigError(f"qd bench: {what} must be a non-empty list of tasks")
    tasks = []
    for entry in entries:
        entry = {"name": entry} if isinstance(entry, str) else _mapping(entry, f"{what} entry")
        unknown = set(entry) - {"name", "label", "options", "budgets"}
        if unknown:
            raise ConfigError(f"qd bench: {what} entry {entry!r}: unknown key(s) {sorted(unknown)}; accepted: name, label, options, budgets")
        if not isinstance(entry.get("name"), str):
            raise ConfigError(f"qd bench: {what} entry {entry!r} has no task name")
        tasks.append({"name": entry["name"], "label": _label(entry.get("label", entry["name"]), "task"),
                      "options": _mapping(entry.get("options"), f"task {entry['name']!r} options"),
                      "budgets": entry.get("budgets")})
    return tasks


def _default_label(options: Dict[str, Any]) -> str:
    def names(value):
        if isinstance(value, list):
            return "+".join(names(v) for v in value)
        return value.get("name", "") if isinstance(value, dict) else str(value)

    parts = [names(options[k]) for k in ("algorithm", "emitter") if k in options]
    return "_".join(p for p in parts if p) or "default"


def _curve(budgets: Sequence[int], points: int, step: int) -> Tuple[int, ...]:
    """``points`` evaluation points up to the largest budget, on multiples of ``step``, and the budgets."""
    top = max(budgets)
    grid = {max(step, int(round(top * i / points / step)) * step) for i in range(1, points + 1)}
    return tuple(sorted(grid | set(budgets)))


def _budgets_checked(budgets: Sequence[int], config: Dict[str, Any], where: str) -> None:
    batch = int(config["batch_size"])
    for b in budgets:
        if b % batch:
            raise ConfigError(f"qd bench: {where}: budget {b} is not a multiple of the batch size {batch}")


def parse_spec(spec: Dict[str, Any]) -> BenchSpec:
    """Validate a spec mapping and resolve every run's config (host only; nothing is built or compiled).

    Args:
        spec: the mapping (see the module docstring).

    Returns:
        The :class:`BenchSpec`.

    Raises:
        ConfigError: an unknown key, a missing or unknown task, an unknown algorithm, emitter or option, a
            budget that is not a multiple of a run's batch size, duplicate labels... (one line that names the
            configuration and the task).
    """
    spec = _mapping(spec, "the spec")
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ConfigError(f"qd bench: unknown spec key(s) {sorted(unknown)}; accepted: {', '.join(SPEC_KEYS)}")
    name = _label(spec.get("name", "bench"), "the bench's name")
    seeds = _seeds(spec.get("seeds", 5))
    if "budgets" not in spec:
        raise ConfigError("qd bench: the spec has no budgets (evaluations at which results are reported)")
    budgets = sorted(set(_int_list(spec["budgets"], "budgets")))
    points = _positive_int(spec.get("curve_points", 20), "curve_points")
    shared = _mapping(spec.get("options"), "options")
    tasks = _tasks(spec["tasks"], "tasks") if spec.get("tasks") is not None else []
    by_label = {t["label"]: t for t in tasks}
    if len(by_label) != len(tasks):
        raise ConfigError(f"qd bench: duplicate task labels in {[t['label'] for t in tasks]}")
    configs = spec.get("configs")
    if not isinstance(configs, (list, tuple)) or not configs:
        raise ConfigError("qd bench: the spec has no configs (a list of configurations to compare)")
    runs, labels = [], set()
    for i, entry in enumerate(configs):
        entry = _mapping(entry, f"configs[{i}]")
        options = {k: v for k, v in entry.items() if k not in ("label", "tasks")}
        label = _label(entry.get("label", _default_label(options)), f"configs[{i}]")
        if label in labels:
            raise ConfigError(f"qd bench: two configurations are labelled {label!r} (give each a distinct label)")
        labels.add(label)
        if "seed" in options or "seed" in shared:
            raise ConfigError(f"qd bench: config {label!r}: 'seed' is not an option here; use the spec's seeds")
        mine = tasks
        if entry.get("tasks") is not None:
            mine = []
            for t in entry["tasks"] if isinstance(entry["tasks"], (list, tuple)) else [entry["tasks"]]:
                if isinstance(t, str) and t in by_label:
                    mine.append(by_label[t])
                else:
                    mine.extend(_tasks([t], f"config {label!r} tasks"))
        if not mine:
            raise ConfigError(f"qd bench: config {label!r} has no task: give the spec's tasks or the config's tasks")
        for task in mine:
            runs.append(_run(label, task, shared, options, task["budgets"] or budgets, points))
    return BenchSpec(name, seeds, tuple(runs), _optional_int(spec.get("seeds_per_group"), "seeds_per_group"),
                     _optional_gb(spec.get("max_group_memory_gb")), copy.deepcopy(spec), _flag(spec.get("split_seeds", False)))


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"qd bench: split_seeds must be true or false; got {value!r}")
    return value


def _optional_int(value: Any, what: str) -> Optional[int]:
    return None if value is None else _positive_int(value, what)


def _optional_gb(value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"qd bench: max_group_memory_gb must be a positive number; got {value!r}")
    return float(value)


def _run(label: str, task: Dict[str, Any], shared: Dict[str, Any], options: Dict[str, Any], budgets: Any,
         points: int) -> Run:
    where = f"config {label!r} on task {task['label']!r}"
    budgets = sorted(set(_int_list(budgets, f"{where}: budgets")))
    merged: Dict[str, Any] = {}
    for source in (shared, task["options"], options):
        for key, value in source.items():
            if key == "task_options" and isinstance(value, dict):
                merged[key] = {**merged.get(key, {}), **value}
            else:
                merged[key] = copy.deepcopy(value)
    merged.update(task=task["name"], seed=0, devices=1)  # the seeds are the parallel axis (see execute)
    try:
        config = resolve_config(file_config=merged)
        if "budget" in config["algorithm"]:  # budget-driven (SERENE, STAX): the run spends the largest budget
            config = resolve_config(file_config={**merged, "algorithm": {**config["algorithm"], "budget": max(budgets)}})
    except ConfigError as e:
        raise ConfigError(f"qd bench: {where}: {e}") from None
    _budgets_checked(budgets, config, where)
    return Run(f"{label}__{task['label']}", label, task["label"], config, tuple(budgets),
               _curve(budgets, points, int(config["batch_size"])))


def load_spec(path: str) -> BenchSpec:
    """:func:`parse_spec` of a YAML or TOML file.

    Raises:
        ConfigError: the file cannot be read or parsed (one line naming it), or the spec is bad.
    """
    return parse_spec(read_mapping_file(path, what="qd bench"))
