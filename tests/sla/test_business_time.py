"""Business calendars against a minute-by-minute reference (hypothesis), across DST changes,
overnight spans and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from opsdesk.sla.business_time import BusinessCalendar, CalendarError, Interval, parse_hours

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
    "America/St_Johns",
]
# Instants near the 2026 DST changes of those zones (and one quiet week).
ANCHORS = [
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    datetime(2026, 4, 4, 15, 0, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
    datetime(2026, 6, 17, 12, 0, tzinfo=UTC),
]
WEEKDAY_HOURS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@st.composite
def calendars(
    draw: st.DrawFn,
) -> tuple[BusinessCalendar, list[tuple[int, int, int]], frozenset[date], ZoneInfo]:
    zone = draw(st.sampled_from(ZONES))
    spans: list[tuple[int, int, int]] = []
    weekly: dict[int, list[Interval]] = {}
    for day in range(7):
        for _ in range(draw(st.integers(0, 2))):
            start = draw(st.integers(0, 95)) * 15
            length = draw(st.integers(1, 80)) * 15  # up to 20 hours: overnight spans happen
            end = (start + length) % 1440
            weekly.setdefault(day, []).append(
                Interval(time(start // 60, start % 60), time(end // 60, end % 60))
            )
            spans.append((day, start, start + length))
    assume(spans)
    anchor = draw(st.sampled_from(ANCHORS))
    closed = frozenset(
        (anchor + timedelta(days=offset)).date() for offset in draw(st.lists(st.integers(-3, 6), max_size=3))
    )
    return BusinessCalendar(zone, weekly, closed_dates=closed), spans, closed, ZoneInfo(zone)


def reference_open(
    instant: datetime, spans: list[tuple[int, int, int]], closed: frozenset[date], zone: ZoneInfo
) -> bool:
    local = instant.astimezone(zone)
    if local.date() in closed:
        return False
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    for day, start, end in spans:
        if day == weekday and start <= minute < min(end, 1440):
            return True
        if (day + 1) % 7 == weekday and end > 1440 and minute < end - 1440:
            return True
    return False


starts = st.builds(
    lambda anchor, minutes: anchor + timedelta(minutes=minutes),
    st.sampled_from(ANCHORS),
    st.integers(-3 * 1440, 3 * 1440),
)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(calendars(), starts, st.integers(0, 3 * 1440))
def test_between_counts_the_open_minutes(case, start, minutes) -> None:  # type: ignore[no-untyped-def]
    calendar, spans, closed, zone = case
    expected = sum(
        reference_open(start + timedelta(minutes=step), spans, closed, zone) for step in range(minutes)
    )
    assert calendar.between(start, start + timedelta(minutes=minutes)) == timedelta(minutes=expected)
    assert calendar.between(start + timedelta(minutes=minutes), start) == -timedelta(minutes=expected)
    assert calendar.is_open(start) == reference_open(start, spans, closed, zone)


@PROPERTY
@given(calendars(), starts, st.integers(1, 900))
def test_add_ends_at_the_minute_the_budget_runs_out(case, start, minutes) -> None:  # type: ignore[no-untyped-def]
    calendar, spans, closed, zone = case
    counted = 0
    expected: datetime | None = None
    for step in range(16 * 1440):
        moment = start + timedelta(minutes=step)
        if reference_open(moment, spans, closed, zone):
            counted += 1
            if counted == minutes:
                expected = moment + timedelta(minutes=1)
                break
    assume(expected is not None)
    assert calendar.add(start, timedelta(minutes=minutes)) == expected
    assert calendar.between(start, expected) == timedelta(minutes=minutes)  # type: ignore[arg-type]


@PROPERTY
@given(calendars(), starts)
def test_next_opening_is_the_first_open_minute(case, start) -> None:  # type: ignore[no-untyped-def]
    calendar, spans, closed, zone = case
    expected = next(
        (
            start + timedelta(minutes=step)
            for step in range(16 * 1440)
            if reference_open(start + timedelta(minutes=step), spans, closed, zone)
        ),
        None,
    )
    assume(expected is not None)
    assert calendar.next_opening(start) == expected


def test_a_night_shift_is_five_hours_in_spring_and_seven_in_autumn() -> None:
    nights = BusinessCalendar("America/New_York", parse_hours({"sun": [["00:00", "06:00"]]}))
    spring = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # Sunday 00:00 EST
    autumn = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # Sunday 00:00 EDT
    assert nights.between(spring, spring + timedelta(days=1)) == timedelta(hours=5)
    assert nights.between(autumn, autumn + timedelta(days=1)) == timedelta(hours=7)
    # 09:00-17:00 stays eight hours a day across the change.
    office = BusinessCalendar(
        "Europe/Berlin", parse_hours({"sun": [["09:00", "17:00"]], "mon": [["09:00", "17:00"]]})
    )
    sunday = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert office.between(sunday, sunday + timedelta(days=2)) == timedelta(hours=16)
    assert office.next_opening(sunday) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST


def test_country_holidays_and_custom_dates_close_the_day() -> None:
    calendar = BusinessCalendar(
        "America/New_York", parse_hours(WEEKDAY_HOURS), holiday_country="US", closed_dates=[date(2026, 7, 6)]
    )
    thursday_afternoon = datetime(2026, 7, 2, 20, 0, tzinfo=UTC)  # 16:00 EDT
    # One hour on Thursday; Friday July 3 (Independence Day observed) and Monday (custom) closed.
    assert calendar.add(thursday_afternoon, timedelta(hours=4)) == datetime(2026, 7, 7, 16, 0, tzinfo=UTC)
    assert calendar.is_holiday(date(2026, 7, 3))
    assert not calendar.is_open(datetime(2026, 7, 3, 15, 0, tzinfo=UTC))


def test_overnight_span_runs_into_the_next_day() -> None:
    calendar = BusinessCalendar("UTC", parse_hours({"fri": [["22:00", "06:00"]]}))
    friday = datetime(2026, 5, 1, 21, 0, tzinfo=UTC)
    assert calendar.next_opening(friday) == datetime(2026, 5, 1, 22, 0, tzinfo=UTC)
    assert calendar.add(friday, timedelta(hours=8)) == datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
    assert calendar.add(friday, timedelta(hours=9)) == datetime(2026, 5, 8, 23, 0, tzinfo=UTC)


def test_vectorized_add_agrees_with_the_scalar_one() -> None:
    calendar = BusinessCalendar("Europe/Berlin", parse_hours(WEEKDAY_HOURS), holiday_country="DE")
    base = datetime(2026, 3, 20, tzinfo=UTC).timestamp()
    starts = np.array([base + step * 7_919.0 for step in range(500)])
    budgets = np.array([float((step % 9) * 1_800) for step in range(500)])
    vectorized = calendar.add_seconds_array(starts, budgets)
    scalar = [calendar.add_seconds(float(a), float(b)) for a, b in zip(starts, budgets, strict=True)]
    assert vectorized.tolist() == scalar


def test_bad_definitions_are_refused_with_a_reason() -> None:
    with pytest.raises(CalendarError, match="unknown time zone"):
        BusinessCalendar("Mars/Olympus", parse_hours(WEEKDAY_HOURS))
    with pytest.raises(CalendarError, match="at least one day"):
        BusinessCalendar("UTC", {})
    with pytest.raises(CalendarError, match="unknown weekday"):
        parse_hours({"funday": [["09:00", "17:00"]]})
    with pytest.raises(CalendarError, match="HH:MM"):
        parse_hours({"mon": [["9am", "17:00"]]})
    with pytest.raises(CalendarError, match="no holidays are known"):
        BusinessCalendar("UTC", parse_hours(WEEKDAY_HOURS), holiday_country="XX")
