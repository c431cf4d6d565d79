"""Registries of the components a run is composed of: archives, emitters, schedulers and algorithms.

A :class:`Component` is a name, a typed configuration class (a :class:`qd.options.Model`: pydantic, with
defaults, validated, unknown fields rejected) and a builder. The command line's options and a config
file's sections are generated from the configuration classes (:mod:`qd.config`), so a new component is its
module, one ``register`` call in :mod:`qd.components` (the one place where the built-in components are
registered) and its tests::

    class CMAMEConfig(Model):
        sigma0: PositiveFloat = Field(0.5, description="CMA-ME initial step size")

    EMITTERS.register("cma_me_imp", CMAMEConfig, build_cma_me_imp, "CMA-ME improvement emitter")

Builders (see :mod:`qd.components` for the built-ins):

- archive: ``build(cfg, ctx) -> Archive`` (empty);
- emitter: ``build(cfg, ctx, batch_size) -> Emitter`` (``batch_size`` is the member's share of the batch);
- scheduler: ``build(cfg, ctx, members) -> Emitter`` where ``members`` is a list of
  ``batch_size -> Emitter`` functions, one per emitter of the config's ``emitter`` list;
- algorithm: ``build(cfg, ctx) -> qd.jobs.Job``; ``uses`` names the sections it reads (``"archive"``,
  ``"emitter"`` with ``"scheduler"``); ``config.yaml`` records only those.

``ctx`` is a :class:`qd.jobs.BuildContext` (the resolved config, the task, and ``ctx.archive()`` /
``ctx.emitter()`` to build the config's other sections).

Nothing registers itself when a module is imported elsewhere: :mod:`qd.components` defines the registries'
contents, and importing :mod:`qd.runner` or :mod:`qd.cli` adds nothing to them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Iterator, Tuple

from qd.options import ConfigError, Model, flag

KINDS = ("algorithm", "archive", "emitter", "scheduler")


@dataclasses.dataclass(frozen=True)
class Component:
    """A registered component.

    Attributes:
        kind: ``"archive"``, ``"emitter"``, ``"scheduler"`` or ``"algorithm"``.
        name: its name (``--emitter NAME``, ``emitter: {name: NAME}``).
        config: its configuration class (a :class:`qd.options.Model` subclass; every field has a default).
        build: its builder (signature by kind: see the module docstring).
        description: one line for ``--help``.
        uses: algorithms only: the sections it reads besides its own (``"archive"``, ``"emitter"``,
            ``"scheduler"``).
    """

    kind: str
    name: str
    config: type
    build: Callable[..., Any]
    description: str = ""
    uses: Tuple[str, ...] = ()


class Registry:
    """Components of one kind, by name, in registration order."""

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; accepted: {', '.join(KINDS)}")
        self.kind = kind
        self._components: Dict[str, Component] = {}

    def register(
        self, name: str, config: type, build: Callable[..., Any], description: str = "", *,
        uses: Tuple[str, ...] = (), replace: bool = False,
    ) -> Component:
        """Add a component; returns it.

        Raises:
            ValueError: a name already registered (unless ``replace``), a name that is not an identifier, a
                config class that is not a :class:`qd.options.Model` or has a field without a default, or
                ``uses`` outside ``archive``/``emitter``/``scheduler``.
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{self.kind} name must be an identifier; got {name!r}")
        if name in self._components and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if not (isinstance(config, type) and issubclass(config, Model)):
            raise ValueError(f"{self.kind} {name!r}: config must be a qd.options.Model subclass; got {config!r}")
        required = [f for f, info in config.model_fields.items() if info.is_required()]
        if required:
            raise ValueError(f"{self.kind} {name!r}: every option needs a default; {', '.join(required)} have none")
        if "name" in config.model_fields:
            raise ValueError(f"{self.kind} {name!r}: 'name' is reserved (the section's component name)")
        bad = [u for u in uses if u not in ("archive", "emitter", "scheduler")]
        if bad or (uses and self.kind != "algorithm"):
            raise ValueError(f"{self.kind} {name!r}: bad uses {tuple(uses)!r}")
        component = Component(self.kind, name, config, build, description, tuple(uses))
        self._components[name] = component
        return component

    def unregister(self, name: str) -> None:
        """Remove a component (tests register and remove their own)."""
        del self._components[name]

    def names(self) -> Tuple[str, ...]:
        return tuple(self._components)

    def get(self, name: Any) -> Component:
        """The component called ``name``.

        Raises:
            ConfigError: ``--KIND: unknown value NAME; accepted: ...`` (one line).
        """
        if not isinstance(name, str) or name not in self._components:
            raise ConfigError(f"{flag(self.kind)}: unknown value {name!r}; accepted: {', '.join(self._components)}")
        return self._components[name]

    def __contains__(self, name: Any) -> bool:
        return name in self._components

    def __iter__(self) -> Iterator[Component]:
        return iter(tuple(self._components.values()))

    def __len__(self) -> int:
        return len(self._components)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._components)})"
