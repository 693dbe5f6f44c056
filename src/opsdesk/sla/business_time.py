"""Business calendars: weekly opening hours in a time zone, minus holidays, as pure functions.

A calendar is open during wall-clock intervals of each local date (several a day; an overnight
span such as 22:00-06:00 belongs to the day it starts and runs into the next date). A holiday
(from the ``holidays`` package for a country, or a custom date) closes its whole local date.
Business time is *real elapsed time* while the calendar is open, so across a DST change a
09:00-17:00 day is still 8 hours, and a 00:00-06:00 night is 5 or 7 hours.

Invariants
- A UTC instant is open iff its local wall time falls inside an interval of its local date and
  that date is not a holiday; every function below agrees with that minute-by-minute definition
  (property-tested against it).
- ``add(start, d)`` is the earliest instant with exactly ``d`` of business time since ``start``;
  ``between(a, b)`` is the business time in ``[a, b)``; ``next_opening(t)`` is ``t`` when open.

Speed: the calendar unrolls itself into a sorted timeline of open UTC intervals (epoch seconds)
with cumulative open time, extended a year at a time on demand; every query is then a binary
search (``bisect``) or, for arrays, ``numpy.searchsorted``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_package
import numpy as np
import numpy.typing as npt

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SECONDS = 86_400
MAX_YEARS_AHEAD = 30
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CalendarError(ValueError):
    """A calendar definition that cannot work (no open hours, unknown zone or country)."""


@dataclass(frozen=True, slots=True)
class Interval:
    """Opening hours on one weekday: ``start``-``end`` wall time; ``end <= start`` runs past
    midnight into the next day (``end == 00:00`` means until midnight)."""

    start: time
    end: time

    @property
    def minutes(self) -> tuple[int, int]:
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        if end <= start:
            end += 1440
        return start, end


def parse_hours(spec: Mapping[str, Sequence[Sequence[str]]]) -> dict[int, list[Interval]]:
    """``{"mon": [["09:00", "17:00"]], "fri": [["22:00", "06:00"]]}`` → intervals by weekday."""
    weekly: dict[int, list[Interval]] = {}
    for name, intervals in spec.items():
        key = name.strip().lower()[:3]
        if key not in WEEKDAYS:
            raise CalendarError(f"unknown weekday {name!r}; use mon, tue, wed, thu, fri, sat, sun")
        for pair in intervals:
            if len(pair) != 2:
                raise CalendarError(f"{name}: each interval is [start, end], got {list(pair)!r}")
            try:
                start, end = (time.fromisoformat(value) for value in pair)
            except ValueError as error:
                raise CalendarError(f"{name}: times are HH:MM ({error})") from error
            if start == end and start != time(0):
                raise CalendarError(f"{name}: an interval cannot start and end at {pair[0]}")
            weekly.setdefault(WEEKDAYS.index(key), []).append(Interval(start, end))
    return weekly


def format_hours(weekly: Mapping[int, Sequence[Interval]]) -> dict[str, list[list[str]]]:
    return {
        WEEKDAYS[day]: [[part.start.strftime("%H:%M"), part.end.strftime("%H:%M")] for part in parts]
        for day, parts in sorted(weekly.items())
    }


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class BusinessCalendar:
    """Opening hours, a time zone and holidays. Immutable once built; safe to share across threads."""

    def __init__(
        self,
        time_zone: str,
        weekly: Mapping[int, Sequence[Interval]],
        *,
        holiday_country: str | None = None,
        holiday_subdivision: str | None = None,
        closed_dates: Iterable[date] = (),
    ) -> None:
        try:
            self.zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise CalendarError(f"unknown time zone {time_zone!r}") from error
        self.time_zone = time_zone
        self.weekly = {day: list(parts) for day, parts in weekly.items()}
        # Wall ranges in minutes of each weekday's own date: overnight parts move to the next day.
        per_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for day, parts in self.weekly.items():
            if day not in range(7):
                raise CalendarError(f"weekday {day} is not 0 (Monday) to 6 (Sunday)")
            for part in parts:
                start, end = part.minutes
                per_day[day].append((start, min(end, 1440)))
                if end > 1440:
                    per_day[(day + 1) % 7].append((0, end - 1440))
        self._day_ranges = [_merge(ranges) for ranges in per_day]
        if not any(self._day_ranges):
            raise CalendarError("a business calendar needs opening hours on at least one day")
        self._country_holidays: holidays_package.HolidayBase | None = None
        if holiday_country:
            # Checked against the package's own list rather than by catching the exception it
            # raises for an unknown country or subdivision.
            subdivisions = holidays_package.list_supported_countries().get(holiday_country)
            if subdivisions is None or (holiday_subdivision and holiday_subdivision not in subdivisions):
                raise CalendarError(f"no holidays are known for country {holiday_country!r}")
            self._country_holidays = holidays_package.country_holidays(
                holiday_country, subdiv=holiday_subdivision
            )
        self.holiday_country = holiday_country
        self.holiday_subdivision = holiday_subdivision
        self.closed_dates = frozenset(closed_dates)
        self._lock = threading.Lock()
        self._first_year = 0
        self._last_year = -1
        self._covered_low = 0.0
        self._covered_high = -1.0
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._before: list[float] = []  # open seconds before each interval since the timeline start
        self._after: list[float] = []  # open seconds up to each interval's end

    # ------------------------------------------------------------------ public, datetimes

    def is_holiday(self, day: date) -> bool:
        return day in self.closed_dates or (
            self._country_holidays is not None and day in self._country_holidays
        )

    def is_open(self, instant: datetime) -> bool:
        seconds = _timestamp(instant)
        self._cover(seconds, seconds)
        index = bisect.bisect_right(self._starts, seconds) - 1
        return index >= 0 and seconds < self._ends[index]

    def add(self, start: datetime, duration: timedelta) -> datetime:
        return _instant(self.add_seconds(_timestamp(start), duration.total_seconds()))

    def between(self, start: datetime, end: datetime) -> timedelta:
        return timedelta(seconds=self.seconds_between(_timestamp(start), _timestamp(end)))

    def next_opening(self, instant: datetime) -> datetime:
        return _instant(self.next_opening_seconds(_timestamp(instant)))

    def openings(self, instant: datetime, count: int) -> list[tuple[datetime, datetime]]:
        """The next ``count`` open periods from ``instant`` (the current one, from ``instant``,
        when open now), as UTC (start, end) pairs; adjacent intervals are one period."""
        periods: list[tuple[datetime, datetime]] = []
        cursor = _timestamp(instant)
        while len(periods) < count:
            start = self.next_opening_seconds(cursor)
            index = bisect.bisect_right(self._starts, start) - 1
            end = self._ends[index]
            periods.append((_instant(start), _instant(end)))
            cursor = end
        return periods

    # ------------------------------------------------------------------ public, epoch seconds

    def add_seconds(self, start: float, seconds: float) -> float:
        """The instant (epoch seconds) after ``seconds`` of business time from ``start``."""
        if seconds < 0:
            raise ValueError("business time to add must not be negative")
        if seconds == 0:
            return start
        self._cover(start, start)
        target = self._open_before(start) + seconds
        while True:
            after = self._after
            index = bisect.bisect_left(after, target)
            if index < len(after):
                return self._starts[index] + (target - self._before[index])
            self._extend_forward(start)

    def seconds_between(self, start: float, end: float) -> float:
        """Business seconds in ``[start, end)``; negative when ``end`` is before ``start``."""
        if end < start:
            return -self.seconds_between(end, start)
        self._cover(start, end)
        return self._open_before(end) - self._open_before(start)

    def next_opening_seconds(self, instant: float) -> float:
        self._cover(instant, instant)
        while True:
            index = bisect.bisect_right(self._ends, instant)
            if index < len(self._ends):
                return max(instant, self._starts[index])
            self._extend_forward(instant)

    def add_seconds_array(
        self, starts: npt.NDArray[np.float64], seconds: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Vectorized :meth:`add_seconds` for many clocks at once (SLA recomputation)."""
        if starts.size == 0:
            return starts.copy()
        if np.any(seconds < 0):
            raise ValueError("business time to add must not be negative")
        self._cover(float(starts.min()), float(starts.max()))
        while True:
            starts_array, ends_array, before_array, after_array = self._arrays()
            index = np.searchsorted(starts_array, starts, side="right") - 1
            safe = np.clip(index, 0, None)
            inside = np.clip(starts - starts_array[safe], 0, ends_array[safe] - starts_array[safe])
            open_before = np.where(index >= 0, before_array[safe] + inside, 0.0)
            target = open_before + seconds
            found = np.searchsorted(after_array, target, side="left")
            if np.all(found < after_array.size):
                result = starts_array[found] + (target - before_array[found])
                return np.where(seconds == 0, starts, result)
            self._extend_forward(float(starts.max()))

    # ------------------------------------------------------------------ the timeline

    def _open_before(self, instant: float) -> float:
        index = bisect.bisect_right(self._starts, instant) - 1
        if index < 0:
            return 0.0
        return self._before[index] + min(instant, self._ends[index]) - self._starts[index]

    def _arrays(
        self,
    ) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]
    ]:
        cached = getattr(self, "_array_cache", None)
        if cached is None or cached[0] != len(self._starts):
            cached = (
                len(self._starts),
                np.asarray(self._starts),
                np.asarray(self._ends),
                np.asarray(self._before),
                np.asarray(self._after),
            )
            self._array_cache = cached
        return cached[1], cached[2], cached[3], cached[4]

    def _cover(self, start: float, end: float) -> None:
        """Make sure the timeline spans ``start``..``end`` with a day of margin each side."""
        if self._covered_low <= start and end <= self._covered_high:
            return
        first = _instant(start - DAY_SECONDS).year
        last = _instant(end + DAY_SECONDS).year
        if self._first_year <= first and last <= self._last_year:
            return
        with self._lock:
            new_first = min(first, self._first_year) if self._last_year >= self._first_year else first
            new_last = max(last, self._last_year)
            self._build(new_first, new_last)

    def _extend_forward(self, origin: float) -> None:
        if self._last_year - _instant(origin).year >= MAX_YEARS_AHEAD:
            raise CalendarError(f"the calendar has no open time in the {MAX_YEARS_AHEAD} years ahead")
        with self._lock:
            self._build(self._first_year, self._last_year + 1)

    def _build(self, first_year: int, last_year: int) -> None:
        ranges: list[tuple[float, float]] = []
        day = date(first_year, 1, 1) - timedelta(days=1)  # the day before: its overnight span
        stop = date(last_year, 12, 31)
        while day <= stop:
            day_ranges = self._day_ranges[day.weekday()]
            if day_ranges and not self.is_holiday(day):
                ranges.extend(self._utc_ranges(day, day_ranges))
            day += timedelta(days=1)
        ranges.sort()
        starts: list[float] = []
        ends: list[float] = []
        for start, end in ranges:
            if end <= start:
                continue
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        before: list[float] = []
        after: list[float] = []
        total = 0.0
        for start, end in zip(starts, ends, strict=True):
            before.append(total)
            total += end - start
            after.append(total)
        # Publish the new timeline all at once (readers on other threads see old or new, not half).
        self._starts, self._ends, self._before, self._after = starts, ends, before, after
        self._first_year, self._last_year = first_year, last_year
        self._covered_low = _timestamp(datetime(first_year, 1, 1, tzinfo=UTC)) + DAY_SECONDS
        self._covered_high = _timestamp(datetime(last_year, 12, 31, tzinfo=UTC)) - DAY_SECONDS

    def _utc_ranges(self, day: date, day_ranges: list[tuple[int, int]]) -> list[tuple[float, float]]:
        """The UTC instants whose local wall time is in one of ``day_ranges`` (minutes) of ``day``.

        Within one UTC offset, wall = utc + offset; a date has at most a couple of offsets (DST
        changes), so split the local date at its transitions and map each piece."""
        wall_midnight = _timestamp(datetime.combine(day, time(0), tzinfo=UTC))
        # UTC bounds generous enough to contain the whole local date whatever the offset.
        low = wall_midnight - 15 * 3600
        high = wall_midnight + DAY_SECONDS + 15 * 3600
        pieces: list[tuple[float, float]] = []
        for segment_start, segment_end, offset in self._offset_segments(low, high):
            for start_minute, end_minute in day_ranges:
                start = max(wall_midnight + start_minute * 60 - offset, segment_start)
                end = min(wall_midnight + end_minute * 60 - offset, segment_end)
                if end > start:
                    pieces.append((start, end))
        return pieces

    def _offset_segments(self, low: float, high: float) -> list[tuple[float, float, float]]:
        """``[low, high)`` split where the zone's UTC offset changes: (start, end, offset)."""
        segments: list[tuple[float, float, float]] = []
        cursor = low
        offset = self._offset(cursor)
        step = 6 * 3600.0
        while cursor < high:
            probe = min(cursor + step, high)
            probe_offset = self._offset(probe)
            if probe_offset == offset:
                cursor = probe
                continue
            # A change between cursor and probe: find it to the second.
            lower, upper = cursor, probe
            while upper - lower > 1:
                middle = (lower + upper) // 2
                if self._offset(middle) == offset:
                    lower = middle
                else:
                    upper = middle
            segments.append((segments[-1][1] if segments else low, upper, offset))
            offset = self._offset(upper)
            cursor = upper
        segments.append((segments[-1][1] if segments else low, high, offset))
        return segments

    def _offset(self, seconds: float) -> float:
        offset = _instant(seconds).astimezone(self.zone).utcoffset()
        return offset.total_seconds() if offset is not None else 0.0


def _timestamp(instant: datetime) -> float:
    if instant.tzinfo is None:
        raise ValueError("business time needs aware datetimes")
    return (instant - _EPOCH).total_seconds()


def _instant(seconds: float) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)
