"""Where a learned behaviour space finds its observations: each agent's *source* in the evaluation's
extras, and the part of the extras an archive stores (the source, to re-encode it after a training, and
e.g. the ground truth). Shared by TAXONS and AURORA (and the algorithms that build on them)."""

from __future__ import annotations

from typing import Any

from qd.tasks.base import Evaluation


def evaluation_sources(evaluation: Evaluation, source_key: str, who: str) -> Any:
    """``evaluation.extras[source_key]``: the batch's sources (pytree, leading axis ``B``).

    Raises:
        ValueError: (at trace time) the extras are not a dict holding ``source_key``; ``who`` names the algorithm.
    """
    extras = evaluation.extras
    if not isinstance(extras, dict) or source_key not in extras:
        have = sorted(extras) if isinstance(extras, dict) else type(extras).__name__
        raise ValueError(f"{who}: the evaluation's extras must hold {source_key!r} (each agent's source); got {have}")
    return extras[source_key]


def stored_extras(archive: Any, evaluation: Evaluation, who: str) -> Any:
    """The evaluation's extras restricted to the entries ``archive`` stores (``archive.extras`` is a dict).

    Raises:
        ValueError: (at trace time) the archive stores an entry the evaluation does not return.
    """
    missing = [k for k in archive.extras if k not in evaluation.extras]
    if missing:
        raise ValueError(f"{who}: the archive stores extras {missing} that the evaluation does not return")
    return {k: evaluation.extras[k] for k in archive.extras}
