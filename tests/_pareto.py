"""Brute-force Pareto fronts, the reference the NSGA-II selection tests compare with."""

import numpy as np


def brute_force_fronts(points):
    """Non-dominated fronts (maximisation) of ``(N, m)`` points, peeled one by one: a list of index sets."""
    remaining, fronts = set(range(len(points))), []
    while remaining:
        front = {i for i in remaining
                 if not any(np.all(points[j] >= points[i]) and np.any(points[j] > points[i]) for j in remaining)}
        fronts.append(front)
        remaining -= front
    return fronts


def assert_best_fronts_chosen(chosen, points, n):
    """``chosen`` (``n`` indices) holds whole fronts of ``points`` in order, then part of the next one."""
    chosen, needed = set(chosen), n
    assert len(chosen) == n
    for front in brute_force_fronts(points):
        if len(front) <= needed:
            assert front <= chosen
            needed -= len(front)
        else:
            assert len(chosen & front) == needed
            break
