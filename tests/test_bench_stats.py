"""qd.bench.stats: bootstrap intervals as scipy computes them, the edge cases of a few seeds, Holm, Mann-Whitney."""

import warnings

import numpy as np
import pytest
import scipy.stats

from qd.bench.stats import bootstrap_ci, holm, mann_whitney, mean_ci

_RNG = np.random.default_rng(20240611)
SAMPLES = {
    "normal_10": _RNG.normal(1.0, 2.0, size=10),
    "exponential_8": _RNG.exponential(3.0, size=8),
    "normal_30": _RNG.normal(-5.0, 0.5, size=30),
}


def _scipy_ci(x, method, rng):
    try:
        res = scipy.stats.bootstrap((x,), np.mean, confidence_level=0.95, method=method, n_resamples=9999, rng=rng)
    except TypeError:  # scipy < 1.15 names the generator random_state
        res = scipy.stats.bootstrap((x,), np.mean, confidence_level=0.95, method=method, n_resamples=9999,
                                    random_state=np.random.default_rng(rng))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_the_interval_of_a_known_sample_matches_scipy(name, method):
    x = SAMPLES[name]
    ours = bootstrap_ci(x, confidence=0.95, n_resamples=9999, method=method, seed=0)
    # Independent resamples: the endpoints differ by Monte-Carlo noise only. Their standard error is ~1-2 % of
    # the sample's std for these samples (BCa's extreme levels at n = 8-10), so allow ~4-5 standard errors.
    for rng in (1, 2):
        theirs = _scipy_ci(x, method, rng)
        assert ours == pytest.approx(theirs, abs=0.08 * x.std())
    # The same generator draws the same resamples: then the interval is scipy's to rounding.
    assert ours == pytest.approx(_scipy_ci(x, method, 0), rel=1e-12, abs=1e-12)
    assert ours[0] < x.mean() < ours[1]


def test_bca_differs_from_percentile_on_a_skewed_sample_and_is_shifted_the_scipy_way():
    x = SAMPLES["exponential_8"]
    bca, pct = bootstrap_ci(x, method="bca"), bootstrap_ci(x, method="percentile")
    assert bca != pct
    assert bca[1] > pct[1]  # right-skewed: BCa moves the interval up
    wider = bootstrap_ci(x, confidence=0.99)
    assert wider[0] < bca[0] and wider[1] > bca[1]


def test_nans_are_dropped_first():
    x = SAMPLES["normal_10"]
    with_nans = np.concatenate([[np.nan], x[:5], [np.nan, np.nan], x[5:]])
    assert bootstrap_ci(with_nans) == bootstrap_ci(x)
    mean, low, high, n = mean_ci(with_nans)
    assert (mean, n) == (pytest.approx(x.mean()), 10) and (low, high) == bootstrap_ci(x)


def test_edge_cases_give_no_nan_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = bootstrap_ci([])
        assert np.isnan(low) and np.isnan(high)
        low, high = bootstrap_ci([np.nan, np.nan])
        assert np.isnan(low) and np.isnan(high)
        assert bootstrap_ci([3.5]) == (3.5, 3.5)
        assert bootstrap_ci([2.0, 2.0, 2.0, np.nan, 2.0], method="bca") == (2.0, 2.0)
        assert bootstrap_ci([2.0] * 5, method="percentile") == (2.0, 2.0)
        mean, low, high, n = mean_ci([np.nan])
        assert np.isnan(mean) and np.isnan(low) and np.isnan(high) and n == 0
        assert mean_ci([1.0, np.nan]) == (1.0, 1.0, 1.0, 1)
        # two values: still a proper interval within their range
        low, high = bootstrap_ci([0.0, 1.0])
        assert 0.0 <= low <= high <= 1.0


def test_large_resample_counts_are_chunked_and_stay_correct():
    x = SAMPLES["normal_30"]
    low, high = bootstrap_ci(x, n_resamples=200_000, method="percentile", seed=3)  # 6e6 indices: 2 chunks
    ref = _scipy_ci(x, "percentile", 0)
    assert (low, high) == pytest.approx(ref, abs=0.03 * x.std())


@pytest.mark.parametrize(
    "kwargs, match",
    [({"confidence": 1.0}, "confidence"), ({"confidence": 0.0}, "confidence"), ({"confidence": 95}, "confidence"),
     ({"n_resamples": 0}, "n_resamples"), ({"n_resamples": 2.5}, "n_resamples"), ({"method": "basic"}, "method")],
)
def test_bad_arguments_raise_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ci([1.0, 2.0, 3.0], **kwargs)
    with pytest.raises(ValueError, match=match):
        mean_ci([1.0, 2.0, 3.0], **kwargs)


def test_holm_matches_a_hand_computed_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> monotone 0.06)
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.2, np.nan, 0.6, 0.01])  # m = 3: 0.01 x3, 0.2 x2, 0.6 x1 -> capped monotone
    assert np.isnan(adjusted[1])
    assert adjusted[[0, 2, 3]] == pytest.approx([0.4, 0.6, 0.03])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.04]) == pytest.approx([0.04])
    assert holm([]).shape == (0,)
    assert np.all(np.isnan(holm([np.nan, np.nan])))
    rng = np.random.default_rng(0)
    raw = rng.uniform(size=20)
    adj = holm(raw)
    assert np.all(adj >= raw) and np.all(adj <= 1.0)
    order = np.argsort(raw)
    assert np.all(np.diff(adj[order]) >= 0)


def test_mann_whitney_matches_scipy_and_handles_degenerate_samples():
    a = np.array([3.1, 2.4, 5.0, 4.2, 3.3, np.nan])
    b = np.array([1.0, 0.4, 2.5, 1.9, 1.2])
    ref = scipy.stats.mannwhitneyu(a[:-1], b, alternative="two-sided")
    assert mann_whitney(a, b) == pytest.approx((ref.statistic, ref.pvalue))
    u, p = mann_whitney(a, b)
    assert u == 24.0 and p < 0.05  # a beats b in 24 of the 25 pairs
    u_ties, p_ties = mann_whitney([1, 1, 2, 2, 3], [2, 3, 3, 4, 4])
    ref = scipy.stats.mannwhitneyu([1, 1, 2, 2, 3], [2, 3, 3, 4, 4], alternative="two-sided")
    assert (u_ties, p_ties) == pytest.approx((ref.statistic, ref.pvalue))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in (([], [1.0, 2.0]), ([1.0], [np.nan]), ([2.0, 2.0], [2.0, 2.0, 2.0])):
            u, p = mann_whitney(x, y)
            assert np.isnan(u) and p == 1.0
    # infinite values are ranked ("never found" on a lower-is-better metric)
    u, p = mann_whitney([100, 200, 150, 120, 180], [np.inf] * 5)
    assert u == 0.0 and p < 0.05
