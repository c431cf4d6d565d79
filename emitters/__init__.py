"""Emitters: proposal strategies that plug into ``qd`` algorithms through the archive interface, and SERENE's
local emitters (:mod:`emitters.local`: FIT, novelty, CMA-ES from an ancestor)."""

from emitters.bandit import BanditScheduler, BanditState
from emitters.base import Emitter
from emitters.cma_me import (
    CMAMAEEmitter,
    CMAMEEmitter,
    CMAMEState,
    ImprovementEmitter,
    OptimizingEmitter,
    RandomDirectionEmitter,
)
from emitters.composite import CompositeEmitter
from emitters.gaussian import GaussianEmitter
from emitters.isoline import IsoLineEmitter
from emitters.local import CMAESEmitter, FitnessEmitter, LocalEmitter, NoveltyEmitter

__all__ = [
    "BanditScheduler",
    "BanditState",
    "CMAESEmitter",
    "CMAMAEEmitter",
    "CMAMEEmitter",
    "CMAMEState",
    "CompositeEmitter",
    "Emitter",
    "FitnessEmitter",
    "GaussianEmitter",
    "ImprovementEmitter",
    "IsoLineEmitter",
    "LocalEmitter",
    "NoveltyEmitter",
    "OptimizingEmitter",
    "RandomDirectionEmitter",
]
