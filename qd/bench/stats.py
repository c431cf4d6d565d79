"""Statistics of ``qd bench``: bootstrap intervals over seeds and rank tests between configurations.

Pure numpy / scipy (no JAX), on the host. What is computed:

- :func:`bootstrap_ci`: a bootstrap confidence interval of the **mean** of a 1-D sample (one value per
  seed), by the bias-corrected and accelerated method (BCa, the default) or the percentile method, with the
  definitions of :func:`scipy.stats.bootstrap` (resample indices of shape ``(n_resamples, n)`` drawn with
  ``np.random.default_rng(seed).integers``; ``z0`` from the 'mean'-kind percentile of the observed mean among
  the resampled means, ``(#{< mean} + #{<= mean}) / (2 B)``; the acceleration from the jackknife, Efron &
  Tibshirani eq. 14.15; quantiles of the resampled means with numpy's default linear interpolation). With
  the same ``seed`` and no chunking it returns the same interval as ``scipy.stats.bootstrap(..., rng=seed)``,
  but vectorised for the mean alone and with the edge cases of a handful of seeds defined (no warnings).
- :func:`mean_ci`: the mean, the interval and the number of values used, in one call.
- :func:`mann_whitney`: the two-sided Mann-Whitney U test of two samples (:func:`scipy.stats.mannwhitneyu`).
- :func:`holm`: Holm-Bonferroni step-down adjusted p-values of a family of tests.

Why BCa by default: QD metrics over a few seeds are often skewed (a seed that finds a reward area or not,
a QD-score bounded below), and the percentile interval is then biased and too narrow; BCa corrects for the
bias (``z0``) and for a standard error that changes with the parameter (the acceleration ``a``), and is
second-order accurate (Efron & Tibshirani 1993, ch. 14). It is also scipy's default.

References:
    B. Efron and R. J. Tibshirani (1993), *An Introduction to the Bootstrap*, Chapman & Hall, ch. 13-14
    (percentile and BCa intervals).
    S. Holm (1979), "A simple sequentially rejective multiple test procedure", *Scandinavian Journal of
    Statistics* 6(2), 65-70.
    H. B. Mann and D. R. Whitney (1947), "On a test of whether one of two random variables is
    stochastically larger than the other", *Annals of Mathematical Statistics* 18(1), 50-60.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from scipy import special
from scipy import stats as _scipy_stats

METHODS = ("bca", "percentile")

# Largest number of resampled values held at once (int64 indices + float64 values: ~64 MiB).
_CHUNK_ELEMENTS = 1 << 22


def _clean(sample) -> np.ndarray:
    """``sample`` as a 1-D float64 array without its NaNs."""
    x = np.asarray(sample, dtype=np.float64).reshape(-1)
    return x[~np.isnan(x)]


def _check(confidence: float, n_resamples: int, method: str) -> None:
    if not (isinstance(confidence, (int, float, np.floating)) and 0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must be a number in (0, 1), e.g. 0.95; got {confidence!r}")
    if not isinstance(n_resamples, (int, np.integer)) or isinstance(n_resamples, bool) or n_resamples < 1:
        raise ValueError(f"n_resamples must be an integer >= 1; got {n_resamples!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")


def _resampled_means(x: np.ndarray, n_resamples: int, seed) -> np.ndarray:
    """``(n_resamples,)`` means of bootstrap resamples of ``x (n,)``, drawn in chunks of rows."""
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // n)
    if rows >= n_resamples:  # one draw, as scipy.stats.bootstrap does it
        return x[rng.integers(0, n, (n_resamples, n))].mean(axis=-1)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        out[start:stop] = x[rng.integers(0, n, (stop - start, n))].mean(axis=-1)
    return out


def _bca_levels(x: np.ndarray, theta_hat: float, theta_b: np.ndarray, alpha: float) -> Tuple[float, float]:
    """BCa quantile levels ``(alpha_1, alpha_2)`` (Efron & Tibshirani 1993, eqs. 14.9-14.15)."""
    b = theta_b.shape[0]
    percentile = (np.count_nonzero(theta_b < theta_hat) + np.count_nonzero(theta_b <= theta_hat)) / (2 * b)
    z0 = special.ndtri(percentile)
    n = x.shape[0]
    theta_i = (x.sum() - x) / (n - 1)  # jackknife means, each leaving one value out
    u = (n - 1) * (theta_i.mean() - theta_i)
    num = np.sum(u**3) / n**3
    den = np.sum(u**2) / n**2
    a_hat = num / (6.0 * den**1.5)
    z_alpha = float(special.ndtri(alpha))
    num1 = z0 + z_alpha
    num2 = z0 - z_alpha
    return float(special.ndtr(z0 + num1 / (1 - a_hat * num1))), float(special.ndtr(z0 + num2 / (1 - a_hat * num2)))


def bootstrap_ci(
    sample: Sequence[float], confidence: float = 0.95, n_resamples: int = 9999, method: str = "bca", seed=0
) -> Tuple[float, float]:
    """Two-sided bootstrap confidence interval of the mean of ``sample``.

    Args:
        sample: 1-D values (any array-like of floats; flattened), e.g. one metric value per seed. NaNs are
            dropped first; ``n`` below is the number of values that remain.
        confidence: the confidence level, in (0, 1).
        n_resamples: the number of bootstrap resamples ``B``, >= 1.
        method: ``"bca"`` (bias-corrected and accelerated, the default) or ``"percentile"``.
        seed: seed of ``np.random.default_rng`` (an int, or anything it accepts) that draws the resamples.

    Returns:
        ``(low, high)`` floats: ``(nan, nan)`` when ``n == 0``; ``(mean, mean)`` when ``n == 1`` or every value
        is the same (a degenerate sample: no resampling, no NaN, no warning). Otherwise the quantiles
        ``alpha, 1 - alpha`` (percentile; ``alpha = (1 - confidence) / 2``) or the BCa-adjusted levels of the
        ``B`` resampled means (linear interpolation), as :func:`scipy.stats.bootstrap` computes them. Should
        the BCa levels be undefined (they are not for the mean of a non-degenerate sample), the percentile
        interval is returned.

    Raises:
        ValueError: ``confidence`` is not in (0, 1), ``n_resamples < 1`` or ``method`` is unknown.
    """
    _check(confidence, n_resamples, method)
    x = _clean(sample)
    n = x.shape[0]
    if n == 0:
        return float("nan"), float("nan")
    theta_hat = float(x.mean())
    if n == 1 or np.all(x == x[0]):
        return theta_hat, theta_hat
    theta_b = _resampled_means(x, int(n_resamples), seed)
    alpha = (1.0 - float(confidence)) / 2.0
    levels = (alpha, 1.0 - alpha)
    if method == "bca":
        bca = _bca_levels(x, theta_hat, theta_b, alpha)
        if all(np.isfinite(bca)):
            levels = bca
    low, high = np.quantile(theta_b, levels)
    return float(low), float(high)


def mean_ci(
    sample: Sequence[float], confidence: float = 0.95, n_resamples: int = 9999, method: str = "bca", seed=0
) -> Tuple[float, float, float, int]:
    """``(mean, low, high, n)`` of ``sample``: the mean of its non-NaN values (NaN when there are none), the
    interval of :func:`bootstrap_ci` (same arguments, same errors) and the number ``n`` of non-NaN values."""
    _check(confidence, n_resamples, method)
    x = _clean(sample)
    mean = float(x.mean()) if x.size else float("nan")
    low, high = bootstrap_ci(x, confidence=confidence, n_resamples=n_resamples, method=method, seed=seed)
    return mean, low, high, int(x.size)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> Tuple[float, float]:
    """Two-sided Mann-Whitney U test of samples ``a`` and ``b`` (1-D floats; NaNs dropped).

    Returns:
        ``(u, p)``: ``u`` is the U statistic of ``a`` (the number of pairs in which ``a``'s value is the larger,
        ties counted 1/2; ``u > len(a) * len(b) / 2`` when ``a`` tends to be larger) and ``p`` the two-sided
        p-value of :func:`scipy.stats.mannwhitneyu` (its ``method="auto"``: exact for small samples without
        ties, else the normal approximation with tie and continuity corrections). ``(nan, 1.0)`` when either
        sample is empty or all values of both are identical (no evidence of a difference). Infinite values
        are ranked as such (e.g. +inf for "never happened" on a lower-is-better metric).
    """
    x, y = _clean(a), _clean(b)
    if x.size == 0 or y.size == 0:
        return float("nan"), 1.0
    both = np.concatenate([x, y])
    if np.all(both == both[0]):
        return float("nan"), 1.0
    res = _scipy_stats.mannwhitneyu(x, y, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values, in the order given.

    With the ``m`` non-NaN p-values sorted increasingly, ``p_(1) <= ... <= p_(m)``, the adjusted value of
    ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) p_(j))`` (monotone in ``p``, capped at 1; Holm 1979).
    Rejecting the hypotheses whose adjusted value is below ``alpha`` controls the family-wise error rate at
    ``alpha``.

    Args:
        pvalues: 1-D p-values in [0, 1]; NaNs are kept as NaN and not counted in ``m``.

    Returns:
        ``(len(pvalues),) float64`` adjusted p-values (``>=`` the raw ones).
    """
    p = np.asarray(pvalues, dtype=np.float64).reshape(-1)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out
