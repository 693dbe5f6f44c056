"""Business calendars stored in the database: validation, and the pure calendar behind a row.

Calendars are built into :class:`~opsdesk.sla.business_time.BusinessCalendar` once per process
and version (``updated_at``), so the unrolled timeline is reused by every clock that needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opsdesk import config_cache, outbox
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.sla.business_time import BusinessCalendar, CalendarError, format_hours, parse_hours
from opsdesk.sla.errors import CalendarNotFoundError, InvalidCalendarError
from opsdesk.sla.models import BusinessCalendarRow

RECOMPUTE_JOB = "sla.recompute_due_times"
_cache: dict[int, tuple[datetime, BusinessCalendar]] = {}
_cache_lock = threading.Lock()


def build_calendar(
    time_zone: str,
    hours: Mapping[str, Sequence[Sequence[str]]],
    holiday_country: str | None,
    holiday_subdivision: str | None,
    closed_dates: Sequence[str],
) -> BusinessCalendar:
    """The pure calendar for a definition, or a field-level error saying what is wrong."""
    problems: list[FieldProblem] = []
    parsed_dates: list[date] = []
    for index, value in enumerate(closed_dates):
        try:
            parsed_dates.append(date.fromisoformat(value))
        except (TypeError, ValueError):
            problems.append(FieldProblem(("closed_dates", index), f"{value!r} is not a YYYY-MM-DD date"))
    try:
        weekly = parse_hours(hours)
    except CalendarError as error:
        problems.append(FieldProblem(("hours",), str(error)))
        weekly = {}
    if problems:
        raise InvalidCalendarError("the business calendar is not valid", fields=problems)
    try:
        return BusinessCalendar(
            time_zone,
            weekly,
            holiday_country=holiday_country or None,
            holiday_subdivision=holiday_subdivision or None,
            closed_dates=parsed_dates,
        )
    except CalendarError as error:
        message = str(error)
        field = (
            "time_zone" if "time zone" in message else "holiday_country" if "holidays" in message else "hours"
        )
        raise InvalidCalendarError(
            "the business calendar is not valid", fields=[FieldProblem((field,), message)]
        ) from error


WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def hours_from_text(texts: Mapping[str, str]) -> tuple[dict[str, list[list[str]]], list[FieldProblem]]:
    """Weekly hours typed one line per weekday (``"09:00-12:30, 13:30-17:00"``; ``"22:00-06:00"``
    runs overnight; blank = closed) into the ``hours`` mapping, with a problem per bad day."""
    hours: dict[str, list[list[str]]] = {}
    problems: list[FieldProblem] = []
    for day in WEEKDAY_NAMES:
        raw = (texts.get(day) or "").strip()
        if not raw:
            continue
        intervals: list[list[str]] = []
        for part in raw.replace(";", ",").split(","):
            piece = part.strip()
            if not piece:
                continue
            bounds = [value.strip() for value in piece.replace("\u2013", "-").split("-")]
            if len(bounds) != 2 or not all(bounds):
                message = f"{piece!r}: write each interval as HH:MM-HH:MM"
                problems.append(FieldProblem(("hours", day), message))
                continue
            intervals.append(bounds)
        if intervals:
            hours[day] = intervals
    return hours, problems


def hours_as_text(hours: Mapping[str, Sequence[Sequence[str]]]) -> dict[str, str]:
    return {day: ", ".join(f"{start}-{end}" for start, end in hours.get(day, [])) for day in WEEKDAY_NAMES}


def openings_preview(calendar: BusinessCalendar, after: datetime, count: int = 5) -> list[str]:
    """The next openings in the calendar's own time zone, for people to read."""
    lines = []
    for start, end in calendar.openings(after, count):
        local_start = start.astimezone(calendar.zone)
        local_end = end.astimezone(calendar.zone)
        same_day = local_end.date() == local_start.date() or local_end.time().isoformat() == "00:00:00"
        end_text = local_end.strftime("%H:%M") if same_day else local_end.strftime("%a %d %b %H:%M")
        lines.append(f"{local_start.strftime('%a %d %b %Y %H:%M')} to {end_text} ({calendar.time_zone})")
    return lines


def calendar_of(row: BusinessCalendarRow) -> BusinessCalendar:
    with _cache_lock:
        cached = _cache.get(row.id)
        if cached is not None and cached[0] == row.updated_at:
            return cached[1]
    calendar = build_calendar(
        row.time_zone, row.hours, row.holiday_country, row.holiday_subdivision, row.closed_dates
    )
    with _cache_lock:
        _cache[row.id] = (row.updated_at, calendar)
    return calendar


def calendar_by_id(session: Session, calendar_id: int | None) -> BusinessCalendar | None:
    """The calendar with that id, else the default calendar, else None (calendar time).

    Cached per process while the configuration is unchanged: every new ticket's clocks ask."""

    def load(session: Session) -> BusinessCalendar | None:
        row = session.get(BusinessCalendarRow, calendar_id) if calendar_id is not None else None
        if row is None:
            row = default_calendar_row(session)
        return calendar_of(row) if row is not None else None

    return config_cache.cached(session, f"sla.calendar.{calendar_id}", load)


def default_calendar_id(session: Session) -> int | None:
    """The default calendar's id (cached like :func:`calendar_by_id`)."""

    def load(session: Session) -> int | None:
        row = default_calendar_row(session)
        return row.id if row is not None else None

    return config_cache.cached(session, "sla.default_calendar_id", load)


def default_calendar_row(session: Session) -> BusinessCalendarRow | None:
    return session.scalars(
        select(BusinessCalendarRow).order_by(BusinessCalendarRow.is_default.desc(), BusinessCalendarRow.id)
    ).first()


def list_calendars(session: Session, actor: Actor) -> list[BusinessCalendarRow]:
    require(actor, Permission.TICKET_READ)
    return list(session.scalars(select(BusinessCalendarRow).order_by(BusinessCalendarRow.name)))


def save_calendar(
    session: Session,
    actor: Actor,
    *,
    name: str,
    time_zone: str,
    hours: Mapping[str, Sequence[Sequence[str]]],
    holiday_country: str | None = None,
    holiday_subdivision: str | None = None,
    closed_dates: Sequence[str] = (),
    is_default: bool = False,
    calendar_id: int | None = None,
) -> BusinessCalendarRow:
    """Create a calendar, or replace the definition of ``calendar_id``. Validated before saving."""
    require(actor, Permission.RULE_MANAGE)
    clean_name = name.strip()
    if not clean_name or len(clean_name) > 120:
        raise InvalidCalendarError(
            "the business calendar is not valid",
            fields=[FieldProblem(("name",), "must be 1 to 120 characters")],
        )
    calendar = build_calendar(time_zone, hours, holiday_country, holiday_subdivision, list(closed_dates))
    clash = session.scalars(select(BusinessCalendarRow).where(BusinessCalendarRow.name == clean_name)).first()
    if clash is not None and clash.id != calendar_id:
        raise InvalidCalendarError(
            "the business calendar is not valid",
            fields=[FieldProblem(("name",), "another calendar has this name")],
        )
    values: dict[str, Any] = {
        "name": clean_name,
        "time_zone": time_zone,
        "hours": format_hours(calendar.weekly),
        "holiday_country": holiday_country or None,
        "holiday_subdivision": holiday_subdivision or None,
        "closed_dates": sorted(day.isoformat() for day in calendar.closed_dates),
        "is_default": is_default,
    }
    if is_default:  # one default calendar: clear the flag elsewhere before setting it here
        session.execute(
            update(BusinessCalendarRow)
            .where(BusinessCalendarRow.is_default.is_(True))
            .values(is_default=False)
            .execution_options(synchronize_session="fetch")
        )
    if calendar_id is None:
        row = BusinessCalendarRow(**values)
        session.add(row)
        action = "created"
    else:
        found = session.get(BusinessCalendarRow, calendar_id)
        if found is None:
            raise CalendarNotFoundError(f"business calendar {calendar_id} does not exist")
        row = found
        for key, value in values.items():
            setattr(row, key, value)
        action = "updated"
    session.flush()
    audit.record(session, actor, entity_type="business_calendar", entity_id=row.id, action=action, new=values)
    if calendar_id is not None or is_default:
        # Running business-hours targets on this calendar (or on the default) get new due times:
        # one vectorized pass over the active targets, on the job runner, after this commits.
        outbox.enqueue(
            session,
            RECOMPUTE_JOB,
            {"calendar_id": row.id},
            idempotency_key=f"{RECOMPUTE_JOB}:{row.id}:{row.updated_at.isoformat()}",
        )
    return row
