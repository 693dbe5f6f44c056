"""Retry delays: exponential in the number of attempts, capped, with jitter so a burst of
failures against one receiver does not come back as a burst."""

from __future__ import annotations

import random
from datetime import timedelta

BASE_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)


def retry_delay(
    attempts: int,
    *,
    base: timedelta = BASE_DELAY,
    ceiling: timedelta = MAX_DELAY,
    randomness: random.Random | None = None,
) -> timedelta:
    """The wait before the next try after ``attempts`` failed tries: between half and all of
    ``base * 2**(attempts-1)``, never more than ``ceiling``."""
    exponent = max(0, min(attempts - 1, 30))
    full = min(base.total_seconds() * (2**exponent), ceiling.total_seconds())
    draw = (randomness or random).uniform(0.5, 1.0)
    return timedelta(seconds=full * draw)
