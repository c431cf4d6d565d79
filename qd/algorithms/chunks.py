"""The host loop of :meth:`qd.algorithms.driver.Driver.run`: compiled chunks of iterations, a callback between them."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import jax
import numpy as np


def run_in_chunks(
    scan: Callable[[Any, int], Tuple[Any, Dict[str, Any]]],
    state: Any,
    num_iterations: int,
    chunk_size: int,
    callback: Optional[Callable[[Any, Dict[str, np.ndarray]], None]] = None,
    first_chunk: Optional[int] = None,
    axis: int = 0,
) -> Tuple[Any, Dict[str, np.ndarray]]:
    """Call ``scan(state, n)`` with ``n = chunk_size`` (the first chunk: ``first_chunk`` if given; the last:
    the remainder) until ``num_iterations`` iterations are done; ``callback(state, chunk_metrics)`` runs on
    the host after each.

    ``scan`` compiles one program per distinct ``n``: at most three (the first chunk, the full chunk and the
    remainder), one with ``chunk_size=1``.

    Returns:
        ``(state, metrics)``, every metric a numpy array of shape ``(num_iterations,)``; the chunks are joined
        along ``axis`` (1 for the ``(S, n)`` metrics of several seeds).

    Raises:
        ValueError: ``chunk_size < 1``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive; got {chunk_size}")
    history, done = [], 0
    while done < num_iterations:
        n = min(chunk_size if done or first_chunk is None else first_chunk, num_iterations - done)
        state, metrics = scan(state, n)
        metrics = jax.device_get(metrics)
        history.append(metrics)
        done += n
        if callback is not None:
            callback(state, metrics)
    merged = {k: np.concatenate([h[k] for h in history], axis=axis) for k in history[0]} if history else {}
    return state, merged
