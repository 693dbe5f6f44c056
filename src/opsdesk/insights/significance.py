"""Significance tests for experiments, with confidence intervals and sample sizes (SciPy).

- Rates (FCR, CSAT, reopen rate): the two-proportion z-test (pooled standard error for the test,
  unpooled for the Wald interval of the difference).
- Durations (first reply time, resolution time): skewed and heavy-tailed, so the Mann-Whitney U
  test; the effect is the relative change of the median, with a percentile bootstrap interval
  (a fixed seed, so the same data always reads the same).
- Minimum sample size per arm, computed before the experiment starts: the normal approximation
  for two proportions; for durations the two-sample t formula on log-seconds (durations are about
  log-normal, so a relative change is a shift of the log mean) inflated by the Mann-Whitney test's
  worst-case asymptotic relative efficiency of 0.864.

Pure: no I/O. Invariants: p-values lie in [0, 1]; intervals contain their point estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

MANN_WHITNEY_EFFICIENCY = 0.864
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261121


@dataclass(frozen=True, slots=True)
class Comparison:
    """Variant against control: the effect, its confidence interval, and the test's p-value.

    For rates ``effect`` is the difference of proportions (variant - control, absolute); for
    durations it is the relative change of the median ((variant - control) / control).
    """

    test: str
    control_estimate: float
    variant_estimate: float
    effect: float
    low: float
    high: float
    p_value: float
    relative: bool

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    @property
    def margin(self) -> float:
        """The half-width of the interval (the "± x" of a plain sentence)."""
        return (self.high - self.low) / 2


def two_proportion_z_test(
    control_successes: int,
    control_total: int,
    variant_successes: int,
    variant_total: int,
    *,
    alpha: float = 0.05,
) -> Comparison:
    if control_total <= 0 or variant_total <= 0:
        raise ValueError("each arm needs at least one observation")
    if not (0 <= control_successes <= control_total and 0 <= variant_successes <= variant_total):
        raise ValueError("successes must lie between 0 and the arm's total")
    p_control = control_successes / control_total
    p_variant = variant_successes / variant_total
    difference = p_variant - p_control
    pooled = (control_successes + variant_successes) / (control_total + variant_total)
    pooled_error = math.sqrt(pooled * (1 - pooled) * (1 / control_total + 1 / variant_total))
    if pooled_error == 0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        p_value = float(2 * stats.norm.sf(abs(difference) / pooled_error))
    error = math.sqrt(
        p_control * (1 - p_control) / control_total + p_variant * (1 - p_variant) / variant_total
    )
    z = float(stats.norm.ppf(1 - alpha / 2))
    return Comparison(
        test="two-proportion z-test",
        control_estimate=p_control,
        variant_estimate=p_variant,
        effect=difference,
        low=difference - z * error,
        high=difference + z * error,
        p_value=min(1.0, max(0.0, p_value)),
        relative=False,
    )


def _relative_median_change(control: np.ndarray, variant: np.ndarray, axis: int = -1) -> np.ndarray:
    control_median = np.median(control, axis=axis)
    return (np.median(variant, axis=axis) - control_median) / control_median  # type: ignore[no-any-return]


def mann_whitney(control: Sequence[float], variant: Sequence[float], *, alpha: float = 0.05) -> Comparison:
    if len(control) < 2 or len(variant) < 2:
        raise ValueError("each arm needs at least two observations")
    control_values = np.asarray(control, dtype=float)
    variant_values = np.asarray(variant, dtype=float)
    control_median = float(np.median(control_values))
    if control_median <= 0:
        raise ValueError("the control median must be positive to express a relative change")
    result = stats.mannwhitneyu(variant_values, control_values, alternative="two-sided")
    effect = float((np.median(variant_values) - control_median) / control_median)
    interval = stats.bootstrap(
        (control_values, variant_values),
        _relative_median_change,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=1 - alpha,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    ).confidence_interval
    low = min(float(interval.low), effect)
    high = max(float(interval.high), effect)
    return Comparison(
        test="Mann-Whitney U",
        control_estimate=control_median,
        variant_estimate=float(np.median(variant_values)),
        effect=effect,
        low=low,
        high=high,
        p_value=min(1.0, max(0.0, float(result.pvalue))),
        relative=True,
    )


def sample_size_two_proportions(
    baseline: float, minimum_effect: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Tickets per arm to detect an absolute change of ``minimum_effect`` from ``baseline``."""
    target = baseline + minimum_effect
    if not (0 < baseline < 1) or not (0 < target < 1) or minimum_effect == 0:
        raise ValueError("baseline and baseline + effect must be proportions strictly between 0 and 1")
    z_alpha = float(stats.norm.ppf(1 - alpha / 2))
    z_power = float(stats.norm.ppf(power))
    mean = (baseline + target) / 2
    numerator = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        baseline * (1 - baseline) + target * (1 - target)
    )
    return math.ceil(numerator**2 / minimum_effect**2)


def sample_size_durations(
    log_spread: float, relative_effect: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Tickets per arm to detect a relative change of the median of a roughly log-normal duration.

    ``log_spread`` is the standard deviation of log(duration) in the baseline (history gives it).
    """
    if log_spread <= 0:
        raise ValueError("the spread of log-durations must be positive")
    if not (relative_effect > -1) or relative_effect == 0:
        raise ValueError("the relative effect must be non-zero and above -100 %")
    shift = abs(math.log1p(relative_effect))
    z_alpha = float(stats.norm.ppf(1 - alpha / 2))
    z_power = float(stats.norm.ppf(power))
    per_arm = 2 * (z_alpha + z_power) ** 2 * log_spread**2 / shift**2
    return math.ceil(per_arm / MANN_WHITNEY_EFFICIENCY)


def log_spread(durations: Sequence[float]) -> float:
    """The standard deviation of log(duration), over the positive durations."""
    positive = np.asarray([value for value in durations if value > 0], dtype=float)
    if positive.size < 2:
        raise ValueError("need at least two positive durations to estimate the spread")
    return float(np.std(np.log(positive), ddof=1))


def _percent(value: float) -> str:
    return f"{abs(value) * 100:.0f} %"


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def sentence(variant: str, metric_label: str, comparison: Comparison, *, higher_is_better: bool) -> str:
    """A plain sentence: "variant B cut first reply time by 18 % ± 6 %, p = 0.003"."""
    if comparison.relative:
        size = f"{_percent(comparison.effect)} ± {_percent(comparison.margin)}"
    else:
        size = f"{abs(comparison.effect) * 100:.1f} points ± {comparison.margin * 100:.1f}"
    if not comparison.significant:
        return (
            f"variant {variant} changed {metric_label} by {size}, {_p(comparison.p_value)}: "
            "not a significant difference yet"
        )
    up = comparison.effect > 0
    verb = ("raised" if up else "lowered") if higher_is_better else ("increased" if up else "cut")
    return f"variant {variant} {verb} {metric_label} by {size}, {_p(comparison.p_value)}"
