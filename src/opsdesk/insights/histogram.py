"""Fixed log-spaced histograms of durations, for percentiles from pre-aggregated rollups.

Bins (the same everywhere, in SQL and here):
- bin 0 holds 0 (and negative values, which the metric layer never produces): exactly 0;
- bin 1 holds values in (0, 1) seconds: represented by 0.5;
- bin ``2 + floor(8 * log2(v))`` holds ``v >= 1``: an eighth of an octave,
  ``[2^(k/8), 2^((k+1)/8))``, represented by its geometric middle ``2^((k + 1/2) / 8)``.

Error bound. A percentile (``percentile_cont``: linear between the order statistics around
``(n - 1) * p``) is estimated by replacing each of those two order statistics with its bin's
representative. Each replacement is off by at most ``2^(1/16) - 1`` = 4.43 % of the value for
values of 1 s or more, and by less than 0.5 s below 1 s; a weighted mean of two values each
within that bound is within it too, so

    |estimate - exact| <= 0.0443 * exact + 0.5 s.

Scores (ratings 1-5) are not binned: their bin is the rating itself, so their percentiles are
exact. Counts, sums and means never come from bins (rollups keep exact sums).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

BINS_PER_OCTAVE = 8
RELATIVE_ERROR = 2 ** (1 / (2 * BINS_PER_OCTAVE)) - 1
ABSOLUTE_ERROR_SECONDS = 0.5


def bin_of(value: float) -> int:
    """The bin of a duration in seconds (as the SQL expression computes it)."""
    if value <= 0:
        return 0
    if value < 1:
        return 1
    return 2 + math.floor(math.log(value) * BINS_PER_OCTAVE / math.log(2))


def representative(bin_number: int) -> float:
    """The value a bin stands for."""
    if bin_number <= 0:
        return 0.0
    if bin_number == 1:
        return 0.5
    return float(2 ** ((bin_number - 2 + 0.5) / BINS_PER_OCTAVE))


def percentile(bins: Mapping[int, int], fraction: float, *, exact_bins: bool = False) -> float | None:
    """``percentile_cont(fraction)`` estimated from ``{bin: units}``.

    ``exact_bins``: the bins are the values themselves (scores), so the answer is exact.
    """
    total = sum(bins.values())
    if total <= 0:
        return None
    position = (total - 1) * fraction
    lower = math.floor(position)
    low_value = _order_statistic(bins, lower, exact_bins)
    if lower + 1 >= total or position == lower:
        return low_value
    high_value = _order_statistic(bins, lower + 1, exact_bins)
    return low_value + (position - lower) * (high_value - low_value)


def _order_statistic(bins: Mapping[int, int], rank: int, exact_bins: bool) -> float:
    """The value standing for the ``rank``-th smallest unit (0-based)."""
    seen = 0
    for bin_number in sorted(bins):
        seen += bins[bin_number]
        if rank < seen:
            return float(bin_number) if exact_bins else representative(bin_number)
    raise ValueError(f"rank {rank} is outside a histogram of {seen} units")


def within_bound(estimate: float, exact: float) -> bool:
    """Whether an estimate keeps the documented bound (tests and docs use the same rule)."""
    return abs(estimate - exact) <= RELATIVE_ERROR * abs(exact) + ABSOLUTE_ERROR_SECONDS + 1e-9
