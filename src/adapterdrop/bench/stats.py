"""Summary statistics of timing samples and bootstrap confidence intervals for speed ratios.

Timing distributions are right-skewed (a pause can only make a call slower), so the
reported centre is the median and the spread that decides whether a measurement is
trustworthy is the robust coefficient of variation IQR / median. The classic
std / mean is reported alongside for reference but does not drive the flag: one
garbage-collector pause among a hundred samples inflates it without moving the median.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Robust CV (IQR / median) above which a measurement is flagged. For normally
#: distributed samples this corresponds to a classic CV of about 0.074 (IQR = 1.35 sigma).
DEFAULT_CV_THRESHOLD = 0.1
#: Bootstrap resamples; 2000 puts the Monte-Carlo error of a 95 % percentile bound well
#: below the third significant digit of a ratio for the sample sizes we collect.
DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


class HighSpreadWarning(UserWarning):
    """Samples vary too much for their median to be quoted without caveat."""


@dataclass(frozen=True)
class SampleStats:
    """Summary of one sample set, in the samples' unit (seconds for timings)."""

    n: int
    median: float
    q25: float
    q75: float
    iqr: float
    p90: float
    mean: float
    std: float
    min: float
    max: float
    cv: float
    robust_cv: float
    cv_threshold: float
    high_spread: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RatioCI:
    """Ratio of medians ``median(numerator) / median(denominator)`` with a bootstrap CI."""

    ratio: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    paired: bool
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_array(samples: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(samples, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains non-finite values")
    return arr


def percentile_ci(
    ratio: float, boot: np.ndarray, *, confidence: float, seed: int, paired: bool = True
) -> RatioCI:
    """``ratio`` with the percentile interval of its bootstrap distribution ``boot``."""
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return RatioCI(
        ratio=float(ratio),
        low=float(low),
        high=float(high),
        confidence=confidence,
        n_resamples=int(boot.size),
        paired=paired,
        seed=seed,
    )


def summarize(
    samples: Sequence[float],
    *,
    cv_threshold: float = DEFAULT_CV_THRESHOLD,
    name: str | None = None,
) -> SampleStats:
    """Summarise samples; warn with :class:`HighSpreadWarning` if robust CV > threshold.

    ``std`` is the sample standard deviation (ddof=1; 0 for a single sample). Quantiles
    use numpy's default linear interpolation. ``name`` only labels the warning.
    """
    arr = _as_array(samples, name or "samples")
    q25, median, q75, p90 = (float(q) for q in np.percentile(arr, [25, 50, 75, 90]))
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    iqr = q75 - q25
    cv = std / mean if mean != 0 else float("inf")
    robust_cv = iqr / median if median != 0 else float("inf")
    high_spread = robust_cv > cv_threshold
    if high_spread:
        warnings.warn(
            f"{name or 'samples'}: robust CV (IQR/median) {robust_cv:.3f} exceeds "
            f"{cv_threshold:.3f} (n={arr.size}, median={median:.4g}); treat with care",
            HighSpreadWarning,
            stacklevel=2,
        )
    return SampleStats(
        n=int(arr.size),
        median=median,
        q25=q25,
        q75=q75,
        iqr=iqr,
        p90=p90,
        mean=mean,
        std=std,
        min=float(arr.min()),
        max=float(arr.max()),
        cv=cv,
        robust_cv=robust_cv,
        cv_threshold=cv_threshold,
        high_spread=high_spread,
    )


def ratio_of_medians(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    paired: bool = True,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> RatioCI:
    """Ratio of medians with a percentile bootstrap confidence interval.

    For a speed-up of B over A pass A's times as numerator: ``t_A / t_B > 1`` means B is
    faster. ``paired`` resamples the same round indices from both sets, which keeps the
    drift shared by one interleaved round (see ``measure_interleaved``) out of the
    interval; it needs equal lengths. Unpaired resamples each set independently. The
    resampling uses a seeded ``numpy.random.Generator`` so the interval is reproducible.
    """
    num = _as_array(numerator, "numerator")
    den = _as_array(denominator, "denominator")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if paired and num.size != den.size:
        raise ValueError(f"paired samples need equal lengths, got {num.size} and {den.size}")
    rng = np.random.default_rng(seed)
    idx_num = rng.integers(0, num.size, size=(n_resamples, num.size))
    idx_den = idx_num if paired else rng.integers(0, den.size, size=(n_resamples, den.size))
    boot = np.median(num[idx_num], axis=1) / np.median(den[idx_den], axis=1)
    ratio = np.median(num) / np.median(den)
    return percentile_ci(ratio, boot, confidence=confidence, seed=seed, paired=paired)


def ratio_across_processes(
    numerators: Sequence[Sequence[float]],
    denominators: Sequence[Sequence[float]],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> RatioCI:
    """Median over fresh processes of each process's paired ratio of medians.

    A process's memory layout (ASLR) can bias a ratio by a few % while that process's own CI
    stays tight, so several processes measure it (as pyperf runs many worker processes). The
    interval is a two-level bootstrap: resample processes, then rounds within each, and take
    the median of the resampled processes' ratios; with few processes it is wide, as it
    should be.
    """
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError(
            f"need the same number (>= 1) of processes for both, got {len(numerators)} "
            f"and {len(denominators)}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    pairs = []
    for k, (num, den) in enumerate(zip(numerators, denominators, strict=True)):
        num, den = _as_array(num, f"numerator {k}"), _as_array(den, f"denominator {k}")
        if num.size != den.size:
            raise ValueError(f"process {k}: paired samples need equal lengths")
        pairs.append((num, den))
    rng = np.random.default_rng(seed)
    per_resample = np.empty((n_resamples, len(pairs)))
    for column, pick in enumerate(rng.integers(0, len(pairs), size=(len(pairs), n_resamples))):
        for row, k in enumerate(pick):
            num, den = pairs[k]
            idx = rng.integers(0, num.size, size=num.size)
            per_resample[row, column] = np.median(num[idx]) / np.median(den[idx])
    ratio = np.median([np.median(num) / np.median(den) for num, den in pairs])
    return percentile_ci(ratio, np.median(per_resample, axis=1), confidence=confidence, seed=seed)


def relative_speeds(
    samples: Mapping[str, Sequence[float]],
    baseline: str,
    *,
    paired: bool = True,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> dict[str, RatioCI]:
    """Speed of every entry relative to ``baseline``: ``t_baseline / t_name`` (> 1 = faster)."""
    if baseline not in samples:
        raise KeyError(f"baseline {baseline!r} not among {sorted(samples)}")
    return {
        name: ratio_of_medians(
            samples[baseline],
            times,
            paired=paired,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        for name, times in samples.items()
    }
