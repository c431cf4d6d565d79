"""QD algorithms: small objects with ``init``, ``step`` and ``run``."""

from qd.algorithms.map_elites import MAPElites, MAPElitesState
from qd.algorithms.novelty_search import NoveltySearch, NoveltySearchState, RandomSearch, RandomSearchState

__all__ = [
    "MAPElites",
    "MAPElitesState",
    "NoveltySearch",
    "NoveltySearchState",
    "RandomSearch",
    "RandomSearchState",
]
