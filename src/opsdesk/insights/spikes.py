"""Spike detection against an hour-of-week seasonal baseline.

Ticket arrivals are roughly Poisson around a level that depends on the hour of the week (Monday
09:00 is not Sunday 03:00). For one series (a category, an account) the expected count of an
hour is the mean of the same hour-of-week over the previous ``weeks`` weeks; the hour is a spike
when its count is at least ``minimum`` and lies ``threshold`` Poisson standard deviations above
that expectation (the deviation floored at 1 so a quiet baseline of zero is not a spike at 2).
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

WEEK = timedelta(weeks=1)


@dataclass(frozen=True, slots=True)
class Spike:
    key: str
    hour: datetime
    observed: int
    expected: float
    score: float

    @property
    def ratio(self) -> float:
        return self.observed / self.expected if self.expected > 0 else math.inf


def expected_count(counts: Mapping[datetime, int], hour: datetime, *, weeks: int = 4) -> float:
    """Mean count of the same hour-of-week over the ``weeks`` weeks before ``hour``."""
    return sum(counts.get(hour - WEEK * back, 0) for back in range(1, weeks + 1)) / weeks


def detect(
    series: Mapping[str, Mapping[datetime, int]],
    hour: datetime,
    *,
    weeks: int = 4,
    threshold: float = 3.0,
    minimum: int = 5,
) -> list[Spike]:
    """The series whose count at ``hour`` is a spike, largest score first."""
    spikes = []
    for key, counts in series.items():
        observed = counts.get(hour, 0)
        if observed < minimum:
            continue
        expected = expected_count(counts, hour, weeks=weeks)
        score = (observed - expected) / max(1.0, math.sqrt(expected))
        if score >= threshold:
            spikes.append(Spike(key, hour, observed, expected, score))
    spikes.sort(key=lambda spike: (-spike.score, spike.key))
    return spikes
