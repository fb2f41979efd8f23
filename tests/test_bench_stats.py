"""Statistics: summaries match numpy, spread is flagged, bootstrap CIs cover and reproduce."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from adapterdrop.bench.stats import (
    HighSpreadWarning,
    ratio_across_processes,
    ratio_of_medians,
    relative_speeds,
    summarize,
)


def test_summary_matches_numpy():
    data = np.random.default_rng(1).lognormal(mean=-4, sigma=0.02, size=101)
    s = summarize(data)
    assert s.n == 101
    assert s.median == pytest.approx(np.median(data))
    assert s.q25 == pytest.approx(np.percentile(data, 25))
    assert s.q75 == pytest.approx(np.percentile(data, 75))
    assert s.p90 == pytest.approx(np.percentile(data, 90))
    assert s.iqr == pytest.approx(s.q75 - s.q25)
    assert s.mean == pytest.approx(data.mean())
    assert s.std == pytest.approx(data.std(ddof=1))
    assert s.cv == pytest.approx(s.std / s.mean)
    assert s.robust_cv == pytest.approx(s.iqr / s.median)
    assert (s.min, s.max) == (data.min(), data.max())
    assert not s.high_spread


def test_single_sample_has_zero_spread():
    s = summarize([0.5])
    assert (s.n, s.median, s.std, s.iqr) == (1, 0.5, 0.0, 0.0)


def test_tight_samples_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarize([1.0, 1.01, 0.99, 1.0, 1.02])
    assert not s.high_spread


def test_high_spread_is_flagged_and_warned():
    with pytest.warns(HighSpreadWarning, match="bert-point"):
        s = summarize([1.0, 1.5, 2.0, 2.5, 3.0], name="bert-point")
    assert s.high_spread
    assert s.to_dict()["high_spread"] is True


def test_spread_threshold_is_configurable():
    data = [1.0, 1.05, 1.1, 1.15, 1.2]  # robust CV = 0.1 / 1.1
    with pytest.warns(HighSpreadWarning):
        assert summarize(data, cv_threshold=0.05).high_spread
    assert not summarize(data, cv_threshold=0.2).high_spread


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [[1.0, 2.0]]])
def test_bad_samples_rejected(bad):
    with pytest.raises(ValueError):
        summarize(bad)


def _paired(rng: np.random.Generator, ratio: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Times of two callables sharing a per-round drift; population median ratio is exact."""
    drift = rng.lognormal(0.0, 0.3, size=n)
    a = ratio * drift * rng.lognormal(0.0, 0.05, size=n)
    b = drift * rng.lognormal(0.0, 0.05, size=n)
    return a, b


def test_ratio_ci_contains_true_ratio():
    a, b = _paired(np.random.default_rng(7), 1.5, 200)
    ci = ratio_of_medians(a, b)
    assert ci.low < 1.5 < ci.high
    assert ci.low <= ci.ratio <= ci.high
    assert ci.ratio == pytest.approx(np.median(a) / np.median(b))


def test_ratio_ci_coverage_is_near_nominal():
    rng = np.random.default_rng(11)
    trials = 40
    hits = 0
    for t in range(trials):
        a, b = _paired(rng, 1.2, 100)
        ci = ratio_of_medians(a, b, n_resamples=1000, seed=t)
        hits += ci.low < 1.2 < ci.high
    assert hits / trials >= 0.8  # nominal 95 %; loose bound keeps the test stable


def test_ratio_ci_is_deterministic_under_a_seed():
    a, b = _paired(np.random.default_rng(3), 2.0, 50)
    assert ratio_of_medians(a, b, seed=5) == ratio_of_medians(a, b, seed=5)
    assert ratio_of_medians(a, b, seed=5) != ratio_of_medians(a, b, seed=6)


def test_pairing_removes_shared_drift_from_the_interval():
    a, b = _paired(np.random.default_rng(4), 1.3, 200)
    paired = ratio_of_medians(a, b, paired=True)
    unpaired = ratio_of_medians(a, b, paired=False)
    assert paired.high - paired.low < 0.75 * (unpaired.high - unpaired.low)


def test_paired_needs_equal_lengths():
    with pytest.raises(ValueError):
        ratio_of_medians([1.0, 2.0], [1.0])
    assert ratio_of_medians([1.0, 2.0], [1.0], paired=False).ratio == 1.5


def test_relative_speeds_against_baseline():
    rng = np.random.default_rng(5)
    base, fast = _paired(rng, 2.0, 100)  # base takes twice as long as fast
    speeds = relative_speeds({"base": base, "fast": fast}, "base")
    assert speeds["base"].ratio == 1.0
    assert speeds["fast"].low < 2.0 < speeds["fast"].high
    with pytest.raises(KeyError):
        relative_speeds({"a": base}, "missing")


def test_ratio_across_processes_is_the_median_of_per_process_ratios():
    rng = np.random.default_rng(0)
    base = [rng.normal(1.0, 0.01, 60) for _ in range(3)]
    # three processes whose layouts bias the ratio to 1.00, 1.05 and 1.20
    numerators = [b * factor for b, factor in zip(base, (1.0, 1.05, 1.2), strict=True)]
    result = ratio_across_processes(numerators, base)
    assert result.ratio == pytest.approx(1.05)
    assert result.low <= 1.02 and result.high >= 1.1  # the processes disagree: a wide CI


def test_ratio_across_one_process_matches_its_ratio_of_medians():
    rng = np.random.default_rng(1)
    num, den = rng.normal(2.0, 0.05, 80), rng.normal(1.0, 0.05, 80)
    across = ratio_across_processes([num], [den])
    assert across.ratio == pytest.approx(ratio_of_medians(num, den).ratio)
    assert across.low < across.ratio < across.high


@pytest.mark.parametrize(
    "numerators, denominators, message",
    [
        ([], [], "same number"),
        ([[1.0]], [[1.0], [1.0]], "same number"),
        ([[1.0, 2.0]], [[1.0]], "equal lengths"),
    ],
)
def test_ratio_across_processes_refuses_mismatched_input(numerators, denominators, message):
    with pytest.raises(ValueError, match=message):
        ratio_across_processes(numerators, denominators)
