"""Emitters: proposal strategies that plug into ``qd`` algorithms through the archive interface."""

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

__all__ = [
    "BanditScheduler",
    "BanditState",
    "CMAMAEEmitter",
    "CMAMEEmitter",
    "CMAMEState",
    "CompositeEmitter",
    "Emitter",
    "GaussianEmitter",
    "ImprovementEmitter",
    "IsoLineEmitter",
    "OptimizingEmitter",
    "RandomDirectionEmitter",
]
