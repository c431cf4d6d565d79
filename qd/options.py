"""Typed option values for component configurations, and their one-line errors.

Every component (archive, emitter, scheduler, algorithm; see :mod:`qd.registry`) describes its options as a
pydantic model whose fields use the annotated types below. Each type carries its own validator (the message
the command line prints, e.g. ``must be a positive integer; got -4``) and a :class:`Cli` marker that says how
the command line parses the flag's text (``type=int``, ``nargs="+"``...). :func:`validation_error` turns a
pydantic ``ValidationError`` into a :class:`ConfigError` of one line that names the option
(``--iso-sigma: must be a positive number; got -1``).

This module imports neither JAX nor the rest of ``qd``: the composition layer, the command line and the
emitters' checks can all import it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Annotated, Any, Callable, List, Optional, Sequence, Tuple, Union

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError

__all__ = [
    "Bool", "Choice", "Cli", "ConfigError", "Devices", "FolderName", "Model", "NonNegativeFloat", "NonNegativeInt", "Numbers",
    "OptionalFloatOrMinusInf", "OptionalFolderName", "OptionalNumbers", "OptionalPositiveInt", "PositiveFloat",
    "PositiveInt", "PositiveInts", "RunDirError", "UnitFloat", "check_clip", "check_positive", "check_positive_int",
    "cli_of", "flag", "validation_error",
]


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


def flag(name: str) -> str:
    """The command-line flag of an option: ``iso_sigma`` -> ``--iso-sigma``."""
    return "--" + name.replace("_", "-")


# --------------------------------------------------------------------------------------------- #
# Plain checks (also used by the emitters' constructors: no pydantic needed there)
# --------------------------------------------------------------------------------------------- #
def _is_real(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_int(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float; raises ``ValueError`` unless it is a positive, finite real number."""
    if not _is_real(value) or not math.isfinite(float(value)) or not float(value) > 0:
        raise ValueError(f"{name} must be positive and finite; got {value!r}")
    return float(value)


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int; raises ``ValueError`` unless it is an integer ``>= 1`` (not a bool, not 2.5)."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_clip(name: str, clip: Any) -> Optional[Tuple[float, float]]:
    """``clip`` as ``(low, high)`` floats, or None.

    Raises:
        ValueError: ``clip`` is not None nor a pair of real numbers (``-inf`` / ``inf`` allowed, NaN not),
            or ``low >= high``.
    """
    if clip is None:
        return None
    try:
        low, high = clip
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be None or a pair (low, high) of numbers, e.g. (-1.0, 1.0); got {clip!r}"
        ) from None
    if not (_is_real(low) and _is_real(high)) or math.isnan(float(low)) or math.isnan(float(high)):
        raise ValueError(f"{name} must be None or a pair (low, high) of numbers (inf allowed, NaN not); got {clip!r}")
    if not float(low) < float(high):
        raise ValueError(f"{name}: low must be below high; got {clip!r}")
    return float(low), float(high)


# --------------------------------------------------------------------------------------------- #
# Annotated option types
# --------------------------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class Cli:
    """How the command line parses an option's text: argparse's ``type`` and ``nargs`` (None: one value)."""

    type: Callable[[str], Any] = str
    nargs: Optional[str] = None
    metavar: Optional[str] = None


def cli_of(field: Any) -> Cli:
    """The :class:`Cli` marker of a pydantic field (``str``, one value, when it has none)."""
    for m in getattr(field, "metadata", ()):
        if isinstance(m, Cli):
            return m
    return Cli()


def _typed(check: Callable[[Any], Any], cli: Cli):
    return (PlainValidator(check), cli)


def _positive_int(v):
    if not _is_int(v) or v < 1:
        raise ValueError(f"must be a positive integer; got {v!r}")
    return int(v)


def _non_negative_int(v):
    if not _is_int(v) or v < 0:
        raise ValueError(f"must be a non-negative integer; got {v!r}")
    return int(v)


def _positive_float(v):
    if not _is_real(v) or not math.isfinite(float(v)) or not float(v) > 0:
        raise ValueError(f"must be a positive number; got {v!r}")
    return float(v)


def _non_negative_float(v):
    if not _is_real(v) or not math.isfinite(float(v)) or float(v) < 0:
        raise ValueError(f"must be a finite number >= 0; got {v!r}")
    return float(v)


def _unit_float(v):
    if not _is_real(v) or not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"must be a number in [0, 1]; got {v!r}")
    return float(v)


def _float_or_minus_inf(v):
    if not _is_real(v) or math.isnan(float(v)) or float(v) == math.inf:
        raise ValueError(f"must be a finite number or -inf; got {v!r}")
    return float(v)


def _bool(v):
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false; got {v!r}")
    return v


def _parse_bool(text: str):
    return {"true": True, "false": False}.get(text.lower(), text)


def _numbers(v):
    if not isinstance(v, (list, tuple)) or not all(_is_real(x) for x in v):
        raise ValueError(f"must be a list of numbers, one per descriptor dimension; got {v!r}")
    return [float(x) if not _is_int(x) else x for x in v]


def _optional(check):
    return lambda v: None if v is None else check(v)


def _positive_ints(v):
    if _is_int(v) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, (list, tuple)) or not v or not all(_is_int(x) and x >= 1 for x in v):
        raise ValueError(f"must be positive integers, one per descriptor dimension; got {v!r}")
    return [int(x) for x in v]


def _devices(v):
    if v != "all" and (not _is_int(v) or v < 1):
        raise ValueError(f"must be a positive integer or 'all'; got {v!r}")
    return v if v == "all" else int(v)


def _parse_devices(text: str):
    return text if text == "all" else int(text) if text.isdigit() else text


def _folder(v):
    if not isinstance(v, str) or not v:
        raise ValueError(f"must be a non-empty folder name; got {v!r}")
    return v


PositiveInt = Annotated[int, *_typed(_positive_int, Cli(int))]
OptionalPositiveInt = Annotated[Optional[int], *_typed(_optional(_positive_int), Cli(int))]
NonNegativeInt = Annotated[int, *_typed(_non_negative_int, Cli(int))]
PositiveFloat = Annotated[float, *_typed(_positive_float, Cli(float))]
NonNegativeFloat = Annotated[float, *_typed(_non_negative_float, Cli(float))]
UnitFloat = Annotated[float, *_typed(_unit_float, Cli(float))]
OptionalFloatOrMinusInf = Annotated[Optional[float], *_typed(_optional(_float_or_minus_inf), Cli(float))]
Bool = Annotated[bool, *_typed(_bool, Cli(_parse_bool, metavar="true|false"))]
Numbers = Annotated[List[float], *_typed(_numbers, Cli(float, "+"))]
OptionalNumbers = Annotated[Optional[List[float]], *_typed(_optional(_numbers), Cli(float, "+"))]
PositiveInts = Annotated[List[int], *_typed(_positive_ints, Cli(int, "+"))]
Devices = Annotated[Union[int, str], *_typed(_devices, Cli(_parse_devices, metavar="N|all"))]
FolderName = Annotated[str, *_typed(_folder, Cli(str))]
OptionalFolderName = Annotated[Optional[str], *_typed(_optional(_folder), Cli(str))]


def Choice(*accepted: str):
    """A string option among ``accepted`` (``--reselect terminated|all``)."""

    def check(v):
        if not isinstance(v, str) or v not in accepted:
            raise ValueError(f"unknown value {v!r}; accepted: {', '.join(accepted)}")
        return v

    return Annotated[str, PlainValidator(check), Cli(str, metavar="|".join(accepted))]


class Model(BaseModel):
    """Base of every component's configuration: typed fields with defaults, unknown fields rejected,
    immutable. A field's ``description`` is its ``--help`` line."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validation_error(e: ValidationError, where: str = "") -> ConfigError:
    """A one-line :class:`ConfigError` for the first error of ``e``, naming the option by its flag.

    Args:
        e: pydantic's error.
        where: appended after the flag (e.g. `` (emitter gaussian)``) for options in a section.
    """
    err = e.errors(include_url=False)[0]
    name = ".".join(str(p) for p in err.get("loc", ())) or "?"
    if err.get("type") == "value_error":
        problem = str(err.get("ctx", {}).get("error", err.get("msg")))
    elif err.get("type") == "extra_forbidden":
        problem = "not an option of this component"
    else:
        problem = f"{err.get('msg')}; got {err.get('input')!r}"
    return ConfigError(" ".join(f"{flag(name)}{where}: {problem}".split()))


def field_names(model: type) -> Sequence[str]:
    """The option names of a config class, in declaration order."""
    return tuple(model.model_fields)
