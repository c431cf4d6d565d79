"""Run configuration: defaults, files (YAML or TOML), command-line overrides and validation.

A resolved config is the run options (:class:`RunOptions`: task, batch size, seed, devices...) and one
section per component kind, ``{"name": ..., option: value, ...}``, each validated by its component's typed
configuration class (:mod:`qd.registry`, :mod:`qd.components`)::

    task: arm
    batch_size: 1024
    algorithm: {name: map_elites}
    archive: {name: grid, lower: null, upper: null, resolution: [100, 100]}
    emitter: [{name: iso_line, iso_sigma: 0.005, line_sigma: 0.05}]     # a list: the scheduler's pool
    scheduler: {name: composite}

Precedence, lowest first: the components' defaults (:data:`DEFAULT_COMPONENTS`, their config classes and
:class:`RunOptions`), the task's registered defaults, the ``--config`` file, then command-line options.
Files may use sections or the flat keys of before (``emitter: gaussian``, ``sigma: 0.2``), which old run
directories' ``config.yaml`` files have. The command line's options are generated from the same classes
(:func:`cli_options`). :func:`resolve_config` validates everything on the host, before anything compiles,
and raises :class:`ConfigError` with a one-line message that names the option and the accepted values.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Dict, List, Optional, Tuple

from pydantic import Field

from qd.tasks.registry import TASKS, get_task_spec


from qd.options import (  # noqa: F401  (ConfigError and RunDirError are re-exported: their historic home)
    Bool, ConfigError, Devices, FolderName, Model, NonNegativeInt, OptionalFolderName, PositiveInt, RunDirError,
    cli_of, flag, validation_error,
)
from qd.registry import KINDS, Registry


class RunOptions(Model):
    """The options of every run, whatever its components (top-level keys of a config file)."""

    task: str = Field("walker2d_uni", description="task name (see `qd tasks`)")
    task_options: Dict[str, Any] = Field(default_factory=dict, description="task options (--task-option KEY=VALUE)")
    iterations: PositiveInt = Field(200, description="iterations after the initial batch")
    batch_size: PositiveInt = Field(1024, description="candidates evaluated per iteration")
    seed: NonNegativeInt = Field(0, description="random seed (a run is reproducible from its seed and config)")
    # Devices each batch's evaluation is split over: a count, or "all" (every local device; on a CPU the `qd`
    # command exposes one device per core, see qd.parallel). Brax tasks default to "all".
    devices: Devices = Field(1, description="devices each batch's evaluation is split over: a count or 'all' (one per CPU core)")
    chunk_size: PositiveInt = Field(25, description="iterations per compiled chunk (progress is reported between chunks)")
    checkpoint_every: PositiveInt = Field(50, description="iterations between checkpoints (rounded up to whole chunks)")
    output_dir: FolderName = Field("runs", description="parent folder of run directories (default: runs)")
    run_name: OptionalFolderName = Field(None, description="run directory name (default: timestamp-task-algorithm)")
    # JAX's persistent compilation cache (folder: $QD_JAX_CACHE_DIR or ~/.cache/qd-jax/jax): a second run of the
    # same job skips most of its compile time.
    compilation_cache: Bool = Field(True, description="true/false: JAX's persistent compilation cache (default true)")


RUN_OPTIONS = tuple(RunOptions.model_fields)

# The component each kind defaults to (``qd run`` with no arguments: MAP-Elites on walker2d, whose task
# defaults pick a CVT archive and iso+line with QDax's sigmas). ``emitter`` is a list: the scheduler's pool.
DEFAULT_COMPONENTS: Dict[str, Any] = {"algorithm": "map_elites", "archive": "grid", "emitter": ["iso_line"], "scheduler": "composite"}

# The built-in default job as flat options (for reference; components' own defaults live in their config
# classes, see qd.components).
DEFAULTS: Dict[str, Any] = {**RunOptions().model_dump(), **DEFAULT_COMPONENTS}


def default_registries() -> Dict[str, Registry]:
    """``{kind: Registry}`` of the built-in components (:mod:`qd.components`)."""
    from qd.components import REGISTRIES

    return REGISTRIES


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


# --------------------------------------------------------------------------------------------- #
# Options of the components: flat names (the command line's flags) and sections
# --------------------------------------------------------------------------------------------- #
def component_options(registries: Optional[Dict[str, Registry]] = None) -> Dict[str, List[Tuple[str, Any]]]:
    """``{option: [(kind, component), ...]}``: each component option's name and the components declaring it.

    One flat name (``--sigma``) sets the option of every selected component that declares it (the gaussian
    emitter's and novelty search's ``sigma``); a config file's sections set one component's only.

    Raises:
        ValueError: an option name that is a run option or a kind, or one declared with two parse types.
    """
    registries = registries or default_registries()
    options: Dict[str, List[Tuple[str, Any]]] = {}
    for kind in KINDS:
        for component in registries[kind]:
            for name, info in component.config.model_fields.items():
                if name in RUN_OPTIONS or name in KINDS:
                    raise ValueError(f"{kind} {component.name!r}: option {name!r} clashes with the run option {name!r}")
                if name in options:
                    other_kind, other = options[name][0]
                    if cli_of(other.config.model_fields[name]) != cli_of(info):
                        raise ValueError(
                            f"option {name!r} of {kind} {component.name!r} is parsed unlike that of {other_kind} {other.name!r}"
                        )
                options.setdefault(name, []).append((kind, component))
    return options


def cli_options(registries: Optional[Dict[str, Registry]] = None) -> List[Tuple[str, str, Dict[str, Any]]]:
    """``qd run``'s generated options: ``(flag, dest, argparse kwargs)``; ``dest`` is the config key.

    Run options (:class:`RunOptions`, but ``task_options``: ``--task-option``), one ``--KIND`` per component
    kind (``--emitter`` takes several: the scheduler's pool), then every component option, from the registries.
    """
    registries = registries or default_registries()
    out: List[Tuple[str, str, Dict[str, Any]]] = []

    def add(name, info, help_text):
        cli = cli_of(info)
        kwargs: Dict[str, Any] = dict(type=cli.type, help=help_text, dest=name)
        if cli.nargs:
            kwargs["nargs"] = cli.nargs
        if cli.metavar:
            kwargs["metavar"] = cli.metavar
        out.append((flag(name), name, kwargs))

    for name, info in RunOptions.model_fields.items():
        if name != "task_options":
            add(name, info, info.description)
    for kind in KINDS:
        names = ", ".join(registries[kind].names())
        kwargs = dict(dest=kind, help=f"{kind}: {names} (default: the task's, else {DEFAULT_COMPONENTS[kind]})")
        if kind == "emitter":
            kwargs.update(nargs="+", help=f"emitters (several: the scheduler's pool): {names}")
        out.append((flag(kind), kind, kwargs))
    for name, users in component_options(registries).items():
        info = users[0][1].config.model_fields[name]
        where = ", ".join(f"{kind} {c.name}" for kind, c in users)
        add(name, info, f"{info.description or name} [{where}]")
    return out


# --------------------------------------------------------------------------------------------- #
# Resolution
# --------------------------------------------------------------------------------------------- #
def _check_option(component, name: str, value: Any, where: str = "") -> None:
    from pydantic import ValidationError

    try:
        component.config.model_validate({name: value})
    except ValidationError as e:
        raise validation_error(e, where) from None


class _Layers:
    """Values of the component options, layer after layer (later layers win, whatever their form)."""

    def __init__(self, registries: Dict[str, Registry]):
        self.registries = registries
        self.options = component_options(registries)
        self.names: Dict[str, Any] = {k: v for k, v in DEFAULT_COMPONENTS.items() if k != "emitter"}
        self.values: Dict[str, Dict[str, Any]] = {k: {} for k in KINDS}  # flat and section values, by kind
        self.members: List[Tuple[str, Dict[str, Any]]] = [(n, {}) for n in DEFAULT_COMPONENTS["emitter"]]

    def flat(self, name: str, value: Any) -> None:
        for kind, component in self.options[name]:
            _check_option(component, name, value)
            self.values[kind][name] = value
            if kind == "emitter":
                for member_name, explicit in self.members:
                    if name in self.registries["emitter"].get(member_name).config.model_fields:
                        explicit[name] = value

    def _section(self, kind: str, section: Any, current: Optional[str]) -> Tuple[str, Dict[str, Any]]:
        if isinstance(section, dict):
            name = section.get("name", current)
            fields = {k: v for k, v in section.items() if k != "name"}
        else:
            name, fields = section, {}
        component = self.registries[kind].get(name)
        where = f" ({kind} {component.name})"
        for key, value in fields.items():
            if key not in component.config.model_fields:
                accepted = ", ".join(component.config.model_fields) or "none"
                raise ConfigError(f"{flag(kind)} {component.name}: unknown option {key!r}; accepted: {accepted}")
            _check_option(component, key, value, where)
        return component.name, dict(fields)

    def section(self, kind: str, value: Any) -> None:
        if kind == "emitter":
            items = value if isinstance(value, list) else [value]
            if not items:
                raise ConfigError(f"--emitter: at least one emitter; accepted: {', '.join(self.registries['emitter'].names())}")
            self.members = [self._section(kind, item, None) for item in items]
            return
        name, fields = self._section(kind, value, self.names[kind])
        self.names[kind] = name
        self.values[kind].update(fields)

    def resolved(self, kind: str) -> Any:
        if kind == "emitter":
            out = []
            for name, explicit in self.members:
                component = self.registries[kind].get(name)
                fields = component.config.model_fields
                given = {k: v for k, v in self.values[kind].items() if k in fields}
                given.update(explicit)
                out.append({"name": name, **component.config.model_validate(given).model_dump()})
            return out
        component = self.registries[kind].get(self.names[kind])
        given = {k: v for k, v in self.values[kind].items() if k in component.config.model_fields}
        return {"name": component.name, **component.config.model_validate(given).model_dump()}


def resolve_config(
    overrides: Optional[Dict[str, Any]] = None,
    file_config: Optional[Dict[str, Any]] = None,
    registries: Optional[Dict[str, Registry]] = None,
) -> Dict[str, Any]:
    """Merge defaults, the task's defaults, a file's values and overrides; validate the result.

    Each source is a mapping of run options (:class:`RunOptions`), component kinds and component options.
    A kind's value is a component name (``emitter: gaussian``; the emitter also a list of them) or a section
    (``emitter: {name: gaussian, sigma: 0.2}``, several for the emitter); a component option given flat
    (``sigma: 0.2``, ``--sigma 0.2``) applies to every kind whose components declare it. Later sources win.
    Flat options that the selected components do not read are checked, then ignored.

    Args:
        overrides: command-line values (None values are ignored).
        file_config: values read from a ``--config`` file (flat, as before sections, or with sections).
        registries: ``{kind: Registry}``; default :func:`default_registries`.

    Returns:
        A new, complete config: the run options, and one section per kind (``{"name": ..., option: value}``;
        ``"emitter"``: a list of sections).

    Raises:
        ConfigError: an unknown key, name or value (one line naming the option and the accepted values).
    """
    from pydantic import ValidationError

    registries = registries or default_registries()
    sources = [file_config or {}, overrides or {}]
    task = RunOptions().task
    for source in sources:
        if source.get("task") is not None:
            task = source["task"]
    if not isinstance(task, str) or task not in TASKS:
        raise ConfigError(f"--task: unknown task {task!r}; accepted: {', '.join(sorted(TASKS))}")
    layers = _Layers(registries)
    run: Dict[str, Any] = {}
    for source in [copy.deepcopy(get_task_spec(task).defaults)] + sources:
        for key, value in source.items():
            if value is None:
                continue
            value = copy.deepcopy(value)
            if key == "task_options":
                if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                    raise ConfigError(f"--task-option: must be a mapping of option name: value; got {value!r}")
                run[key] = {**run.get(key, {}), **value}  # task options merge with the task's defaults
            elif key in RUN_OPTIONS:
                run[key] = value
            elif key in KINDS:
                layers.section(key, value)
            elif key in layers.options:
                layers.flat(key, value)
            else:
                accepted = sorted(set(RUN_OPTIONS) | set(KINDS) | set(layers.options))
                raise ConfigError(f"unknown option {key!r}; accepted: {', '.join(accepted)}")
    try:
        config = RunOptions.model_validate(run).model_dump()
    except ValidationError as e:
        raise validation_error(e) from None
    for kind in KINDS:
        config[kind] = layers.resolved(kind)
    return config


# --------------------------------------------------------------------------------------------- #
# What config.yaml records
# --------------------------------------------------------------------------------------------- #
def algorithm_of(config: Dict[str, Any], registries: Optional[Dict[str, Registry]] = None):
    """The registered algorithm component of a resolved config."""
    return (registries or default_registries())["algorithm"].get(config["algorithm"]["name"])


def recorded_config(config: Dict[str, Any], registries: Optional[Dict[str, Registry]] = None) -> Dict[str, Any]:
    """What ``config.yaml`` records: the run options, the algorithm's section and the sections it uses
    (``archive``, ``emitter``, ``scheduler``): a grid run has no ``num_cells``, novelty search no archive nor
    emitter, random search no emitter. :func:`resolve_config` of it gives back the same run."""
    uses = algorithm_of(config, registries).uses
    return {k: copy.deepcopy(v) for k, v in config.items() if k in RUN_OPTIONS or k == "algorithm" or k in uses}


def applicable_options(config: Dict[str, Any]) -> list:
    """The top-level keys of :func:`recorded_config`, sorted."""
    return sorted(recorded_config(config))


def flat_items(config: Dict[str, Any]) -> Dict[str, Any]:
    """A config as ``{dotted.key: value}`` (``archive.resolution``, ``emitter[0].sigma``), for comparisons
    and messages."""
    out: Dict[str, Any] = {}
    for key, value in config.items():
        if key in KINDS and isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        elif key == "emitter" and isinstance(value, list):
            for i, section in enumerate(value):
                out.update({f"emitter[{i}].{k}": v for k, v in section.items()})
        else:
            out[key] = value
    return out
