"""The one source of "now".

Domain code calls :func:`now` and never ``datetime.now()``; tests freeze or move time with
:func:`frozen`. Every instant is timezone-aware UTC.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

_local = threading.local()


def _system_now() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _system_now


def now() -> datetime:
    """The current instant, aware, in UTC."""
    override: datetime | None = getattr(_local, "frozen", None)
    if override is not None:
        return override
    return _source()


@contextlib.contextmanager
def frozen(at: datetime) -> Iterator[FrozenClock]:
    """Freeze time for the current thread (tests, benchmarks, replays of history)."""
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    previous = getattr(_local, "frozen", None)
    clock = FrozenClock(at.astimezone(UTC))
    _local.frozen = clock.instant
    try:
        yield clock
    finally:
        _local.frozen = previous


class FrozenClock:
    """A handle on a frozen clock that can be moved forward."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def advance(self, delta: timedelta) -> datetime:
        self.instant = self.instant + delta
        _local.frozen = self.instant
        return self.instant

    def set(self, instant: datetime) -> datetime:
        self.instant = instant.astimezone(UTC)
        _local.frozen = self.instant
        return self.instant


def ensure_utc(value: datetime) -> datetime:
    """Aware UTC for storage; a naive value is refused because its zone is unknown."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; give a time zone")
    return value.astimezone(UTC)
