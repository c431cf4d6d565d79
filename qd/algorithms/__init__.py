"""QD algorithms: small objects with ``init``, ``step`` and ``run``."""

from qd.algorithms.map_elites import MAPElites, MAPElitesState

__all__ = ["MAPElites", "MAPElitesState"]
