"""QD algorithms: small objects with ``init``, ``step`` and ``run``; input checks in :mod:`qd.algorithms.checks`;
the exploration comparison of notebook 02 in :mod:`qd.algorithms.comparison`."""

from qd.algorithms.map_elites import MAPElites, MAPElitesState
from qd.algorithms.novelty_search import NoveltySearch, NoveltySearchState, RandomSearch, RandomSearchState
from qd.algorithms.comparison import compare_exploration, plot_exploration_comparison

__all__ = [
    "MAPElites",
    "MAPElitesState",
    "NoveltySearch",
    "NoveltySearchState",
    "RandomSearch",
    "RandomSearchState",
    "compare_exploration",
    "plot_exploration_comparison",
]
