"""QD algorithms: each is ``init`` / ``ask`` / ``tell`` on its state (the protocol of
:mod:`qd.algorithms.driver`), run by the one :class:`Driver` (compiled loop in chunks, lazy initial batch,
sharding, host-side ask/tell, several seeds as one program); input checks in :mod:`qd.algorithms.checks`;
the exploration comparison of notebook 02 in :mod:`qd.algorithms.comparison`; learned behaviour spaces:
:mod:`qd.algorithms.taxons` (TAXONS and variants), :mod:`qd.algorithms.aurora`; sparse rewards:
:mod:`qd.algorithms.serene` (SERENE, its chunk schedulers in :mod:`qd.algorithms.phase_schedulers`) and
:mod:`qd.algorithms.stax` (STAX, STAX-P, STAX-NT)."""

from qd.algorithms.driver import Driver, RunState
from qd.algorithms.cma_mae import CMAMAE, CMAMAEAlgorithm, CMAMAEState
from qd.algorithms.map_elites import MAPElites, MAPElitesAlgorithm, MAPElitesState
from qd.algorithms.novelty_search import NoveltySearch, NoveltySearchAlgorithm, NoveltySearchState
from qd.algorithms.random_search import RandomSearch, RandomSearchAlgorithm, RandomSearchState
from qd.algorithms.taxons import Taxons, TaxonsAlgorithm, TaxonsState
from qd.algorithms.aurora import Aurora, AuroraAlgorithm, AuroraState
from qd.algorithms.phase_schedulers import PhaseScheduler
from qd.algorithms.serene import Serene, SereneAlgorithm, SereneState
from qd.algorithms.stax import Stax, StaxAlgorithm, StaxState
from qd.algorithms.comparison import compare_exploration, plot_exploration_comparison

__all__ = [
    "Aurora",
    "AuroraAlgorithm",
    "AuroraState",
    "CMAMAE",
    "CMAMAEAlgorithm",
    "CMAMAEState",
    "Driver",
    "MAPElites",
    "MAPElitesAlgorithm",
    "MAPElitesState",
    "NoveltySearch",
    "NoveltySearchAlgorithm",
    "NoveltySearchState",
    "PhaseScheduler",
    "RandomSearch",
    "RandomSearchAlgorithm",
    "RandomSearchState",
    "RunState",
    "Serene",
    "SereneAlgorithm",
    "SereneState",
    "Stax",
    "StaxAlgorithm",
    "StaxState",
    "Taxons",
    "TaxonsAlgorithm",
    "TaxonsState",
    "compare_exploration",
    "plot_exploration_comparison",
]
