"""When tickets arrive: a realistic pattern over a span of days.

Volume follows the hour of day (customers in the Americas and Europe, so UTC afternoons peak),
the weekday (Monday busiest, weekends quiet), slow growth over the span, hour-to-hour noise, and
a few incident bursts where volume jumps for a few hours. The counts per hour are allotted by
largest remainder, so exactly the asked number of tickets arrives, in time order. Pure logic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Relative ticket volume per UTC hour (Europe mornings, then the Americas' working day).
HOUR_WEIGHTS = (
    0.35,
    0.28,
    0.22,
    0.2,
    0.22,
    0.3,
    0.45,
    0.65,
    0.85,
    1.0,
    1.05,
    1.05,
    1.1,
    1.35,
    1.6,
    1.75,
    1.7,
    1.6,
    1.45,
    1.25,
    1.0,
    0.8,
    0.6,
    0.45,
)
# Monday .. Sunday.
WEEKDAY_WEIGHTS = (1.2, 1.12, 1.05, 1.0, 0.88, 0.32, 0.28)
GROWTH_OVER_SPAN = 0.3


@dataclass(frozen=True, slots=True)
class Burst:
    """An incident: extra tickets between ``start`` and ``end`` (epoch seconds)."""

    start: int
    end: int
    multiplier: float


def plan_bursts(generator: random.Random, start: int, days: int) -> list[Burst]:
    bursts: list[Burst] = []
    for _ in range(max(1, days // 18)):
        hour = generator.randrange(0, max(1, days * 24 - 6))
        # Outages start at a random minute and are noticed by customers within the hour.
        begin = start + hour * 3600 + generator.randrange(0, 3600)
        bursts.append(Burst(begin, begin + generator.randrange(2, 6) * 3600, generator.uniform(3.0, 6.0)))
    return sorted(bursts, key=lambda burst: burst.start)


def arrival_times(
    generator: random.Random, start: int, days: int, count: int, bursts: list[Burst]
) -> list[int]:
    """``count`` epoch seconds within ``[start, start + days)``, sorted."""
    hours = days * 24
    first_hour = start // 3600
    weights: list[float] = []
    for offset in range(hours):
        hour_number = first_hour + offset
        weekday = (hour_number // 24 + 3) % 7  # 1970-01-01 was a Thursday
        weight = HOUR_WEIGHTS[hour_number % 24] * WEEKDAY_WEIGHTS[weekday]
        weight *= 1.0 + GROWTH_OVER_SPAN * offset / hours
        weight *= max(0.3, generator.gauss(1.0, 0.12))
        hour_start = start + offset * 3600
        for burst in bursts:
            if burst.start < hour_start + 3600 and hour_start < burst.end:
                weight *= burst.multiplier
        weights.append(weight)
    total = sum(weights)
    expected = [count * weight / total for weight in weights]
    counts = [int(value) for value in expected]
    missing = count - sum(counts)
    by_remainder = sorted(range(hours), key=lambda index: expected[index] - counts[index], reverse=True)
    for index in by_remainder[:missing]:
        counts[index] += 1
    times: list[int] = []
    randrange = generator.randrange
    for offset, hour_count in enumerate(counts):
        if hour_count:
            hour_start = start + offset * 3600
            times.extend(sorted(hour_start + randrange(3600) for _ in range(hour_count)))
    return times
