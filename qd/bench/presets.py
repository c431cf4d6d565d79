"""The built-in benchmark specs (``qd bench --preset NAME [--quick]``).

- ``sparse-emitters``: SERENE's exploitation emitters (FIT, CMA-ES, novelty; Paolo et al. 2021) with its own
  alternating schedule, and FIT under the other phase schedulers of the STAX code (fixed, time, ucb), on
  curling, redundant_arm and hard_maze. Metrics: reward areas found, best reward per area, evaluations to the
  first reward, ground-truth coverage.
- ``qd-emitters``: MAP-Elites with Gaussian, iso+line, the three CMA-ME emitters (improvement, optimizing,
  random direction; Fontaine et al. 2020), CMA-MAE (Fontaine & Nikolaidis 2023) and a UCB1 bandit over
  iso+line, Gaussian and CMA-ME improvement (Cully 2021), on the sphere and Rastrigin linear-projection
  tasks (CMA-ME's benchmark), the planar arm and Brax hopper (Gaussian, iso+line and a bandit over the two
  only: the CMA emitters need a flat genotype).

``quick=True`` gives the same comparisons at small budgets and fewer seeds (minutes on a 2-core CPU):
numbers to see the report, not to conclude from.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List

from qd.config import ConfigError


def _sparse_emitters(quick: bool) -> Dict[str, Any]:
    serene = lambda **kw: {"algorithm": {"name": "serene", **kw}}
    configs = [
        {"label": "FIT", **serene(local_emitter="fit")},
        {"label": "CMA-ES", **serene(local_emitter="cma_es")},
        {"label": "NS-emitter", **serene(local_emitter="novelty")},
        {"label": "FIT-fixed", **serene(local_emitter="fit", phase_scheduler="fixed")},
        {"label": "FIT-time", **serene(local_emitter="fit", phase_scheduler="time")},
        {"label": "FIT-ucb", **serene(local_emitter="fit", phase_scheduler="ucb")},
    ]
    return {
        "name": "sparse-emitters" + ("-quick" if quick else ""),
        "seeds": 3 if quick else 10,
        "budgets": [2000, 4000] if quick else [50000, 100000],
        "curve_points": 8 if quick else 20,
        "tasks": ["curling", "redundant_arm", "hard_maze"],
        "configs": configs,
    }


def _qd_emitters(quick: bool) -> Dict[str, Any]:
    functions = ["sphere-LP", "rastrigin-LP", "arm"]
    batch = 64 if quick else 256
    configs = [
        {"label": "gaussian", "emitter": {"name": "gaussian"}},
        {"label": "iso_line", "emitter": {"name": "iso_line"}},
        {"label": "cma_me_imp", "emitter": {"name": "cma_me_imp"}, "tasks": functions},
        {"label": "cma_me_opt", "emitter": {"name": "cma_me_opt"}, "tasks": functions},
        {"label": "cma_me_rd", "emitter": {"name": "cma_me_rd"}, "tasks": functions},
        {"label": "cma_mae", "emitter": {"name": "cma_mae"}, "tasks": functions},
        {"label": "bandit", "emitter": ["iso_line", "gaussian", "cma_me_imp"], "scheduler": {"name": "bandit"},
         "tasks": functions},
        {"label": "bandit-brax", "emitter": ["iso_line", "gaussian"], "scheduler": {"name": "bandit"},
         "tasks": ["hopper"]},
    ]
    function_budgets = [batch * 50, batch * 100] if quick else [batch * 1000, batch * 4000]
    brax = {"batch_size": 32 if quick else 128, "iterations": 1, "chunk_size": 5 if quick else 25,
            "task_options": {"episode_length": 50 if quick else 250}, "num_cells": 128 if quick else 1024}
    return {
        "name": "qd-emitters" + ("-quick" if quick else ""),
        "seeds": 3 if quick else 10,
        "budgets": function_budgets,
        "curve_points": 10 if quick else 20,
        "options": {"batch_size": batch, "chunk_size": 25},
        "tasks": [
            {"name": "sphere", "label": "sphere-LP"},
            {"name": "rastrigin", "label": "rastrigin-LP"},
            {"name": "arm", "options": {"task_options": {"num_joints": 20 if quick else 100}}},
            {"name": "hopper_uni", "label": "hopper", "options": brax,
             "budgets": [brax["batch_size"] * 20, brax["batch_size"] * 40] if quick else [128 * 200, 128 * 500]},
        ],
        "configs": configs,
    }


PRESETS = {"sparse-emitters": _sparse_emitters, "qd-emitters": _qd_emitters}


def preset(name: str, quick: bool = False) -> Dict[str, Any]:
    """The spec mapping of a built-in preset (a fresh copy: edit it freely, e.g. fewer tasks or seeds).

    Raises:
        ConfigError: an unknown preset name (the message lists the presets).
    """
    if name not in PRESETS:
        raise ConfigError(f"qd bench: --preset: unknown preset {name!r}; accepted: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name](quick))


def preset_names() -> List[str]:
    return list(PRESETS)
